// The admin pages (admins only; the server refuses the others anyway): users (disable, delete,
// promote), the capacity report with its levels, the limits (editable), live calls, and links
// to the metrics and the API docs.

import { useEffect, useState } from "preact/hooks";
import { attempt, currentClient, me, nameOf } from "./store.js";

type Role = "user" | "admin";
type Level = "ok" | "warning" | "critical" | "blocked";

interface AdminUser {
  id: string;
  username: string;
  display_name: string | null;
  role: Role;
  disabled: boolean;
  created_at: string;
  last_seen_at?: string;
}
interface Usage {
  name: string;
  used: number;
  limit: number;
  percent: number;
  level: Level;
}
interface Resource {
  name: string;
  used_bytes: number;
  total_bytes: number;
  percent: number;
  threshold_percent: number;
  level: Level;
}
type Limits = Record<string, number>;
interface Capacity {
  level: Level;
  generated_at: string;
  usage: Usage[];
  resources: Resource[];
  process_resident_bytes: number;
  limits: Limits;
}
interface CallStats {
  activeCalls: { sessionId: string; callerId: string; participants: { userId: string }[]; startedAt: string; state: string; media: string }[];
  totalActiveCalls: number;
  connectedUsers: number;
  participants: number;
}

/** Whether this user is an admin (asked once per login). */
export function useIsAdmin(): boolean {
  const [admin, setAdmin] = useState(false);
  const id = me.value?.id;
  useEffect(() => {
    if (id === undefined) return;
    currentClient()
      .api.json<{ role: Role }>("GET", "/api/v1/me")
      .then((u) => { setAdmin(u.role === "admin"); }, () => { setAdmin(false); });
  }, [id]);
  return admin;
}

const api = () => currentClient().api;
const mb = (bytes: number) => `${(bytes / 1_048_576).toFixed(0)} MB`;

export function Admin({ onClose }: { onClose: () => void }) {
  const [users, setUsers] = useState<AdminUser[]>([]);
  const [capacity, setCapacity] = useState<Capacity | undefined>(undefined);
  const [limits, setLimits] = useState<Limits>({});
  const [limitsSource, setLimitsSource] = useState("");
  const [calls, setCalls] = useState<CallStats | undefined>(undefined);

  const load = () =>
    attempt(async () => {
      const [u, c, l, s] = await Promise.all([
        api().json<{ users: AdminUser[] }>("GET", "/api/v1/admin/users?limit=200"),
        api().json<Capacity>("GET", "/api/v1/admin/capacity"),
        api().json<{ limits: Limits; source: string }>("GET", "/api/v1/admin/limits"),
        api().json<CallStats>("GET", "/api/call/stats"),
      ]);
      setUsers(u.users);
      setCapacity(c);
      setLimits(l.limits);
      setLimitsSource(l.source);
      setCalls(s);
    });
  useEffect(() => {
    void load();
  }, []);

  const update = (user: AdminUser, change: { disabled?: boolean; role?: Role }) =>
    void attempt(async () => {
      await api().request("PATCH", `/api/v1/admin/users/${encodeURIComponent(user.id)}`, { body: { json: change } });
      await load();
    });
  const remove = (user: AdminUser) => {
    if (!confirm(`Delete ${user.username} and all their data?`)) return;
    void attempt(async () => {
      await api().request("DELETE", `/api/v1/admin/users/${encodeURIComponent(user.id)}`);
      await load();
    });
  };
  const saveLimits = (e: Event) => {
    e.preventDefault();
    void attempt(async () => {
      const saved = await api().json<{ limits: Limits; source: string }>("PUT", "/api/v1/admin/limits", { body: { json: limits } });
      setLimits(saved.limits);
      setLimitsSource(saved.source);
      setCapacity(await api().json<Capacity>("GET", "/api/v1/admin/capacity"));
    });
  };

  return (
    <section class="admin" aria-label="Administration">
      <header class="row">
        <button type="button" class="back" onClick={onClose} aria-label="Close administration">
          ←
        </button>
        <h2 class="grow">Administration</h2>
        <button type="button" onClick={() => void load()}>
          Refresh
        </button>
      </header>
      <p class="small">
        <a href="/metrics" target="_blank" rel="noreferrer">
          Metrics
        </a>{" "}
        ·{" "}
        <a href="/api/docs" target="_blank" rel="noreferrer">
          API docs
        </a>
      </p>

      <h3>Capacity {capacity !== undefined && <span class={`level ${capacity.level}`} data-level={capacity.level}>{capacity.level}</span>}</h3>
      {capacity !== undefined && (
        <table class="admin-table" aria-label="Capacity">
          <tbody>
            {capacity.usage.map((u) => (
              <tr key={u.name} data-level={u.level}>
                <td>{u.name.replaceAll("_", " ")}</td>
                <td>
                  {u.used} / {u.limit === 0 ? "∞" : u.limit}
                </td>
                <td>{u.limit === 0 ? "" : `${u.percent.toFixed(0)} %`}</td>
                <td>
                  <span class={`level ${u.level}`}>{u.level}</span>
                </td>
              </tr>
            ))}
            {capacity.resources.map((r) => (
              <tr key={r.name} data-level={r.level}>
                <td>{r.name}</td>
                <td>
                  {mb(r.used_bytes)} / {mb(r.total_bytes)}
                </td>
                <td>
                  {r.percent.toFixed(0)} % (threshold {r.threshold_percent} %)
                </td>
                <td>
                  <span class={`level ${r.level}`}>{r.level}</span>
                </td>
              </tr>
            ))}
            <tr>
              <td>server memory</td>
              <td>{mb(capacity.process_resident_bytes)}</td>
              <td />
              <td />
            </tr>
          </tbody>
        </table>
      )}

      <h3>Limits {limitsSource !== "" && <span class="muted small">({limitsSource})</span>}</h3>
      <form class="limits" onSubmit={saveLimits}>
        {Object.entries(limits).map(([name, value]) => (
          <label key={name} class="row">
            <span class="grow">{name.replaceAll("_", " ")}</span>
            <input
              type="number"
              min={0}
              value={value}
              style={{ width: "7rem" }}
              onInput={(e) => {
                const next = Number(e.currentTarget.value);
                setLimits({ ...limits, [name]: Number.isFinite(next) ? next : 0 });
              }}
            />
          </label>
        ))}
        <button type="submit" class="primary">
          Save limits
        </button>
      </form>

      <h3>Live calls {calls !== undefined && <span class="muted small">({calls.totalActiveCalls} calls, {calls.participants} participants, {calls.connectedUsers} users connected)</span>}</h3>
      {calls !== undefined && calls.activeCalls.length === 0 && <p class="muted">No calls in progress.</p>}
      <ul class="calls">
        {calls?.activeCalls.map((c) => (
          <li key={c.sessionId} class="call-entry">
            <span class="grow">
              {c.media} · {nameOf(c.callerId)} → {c.participants.map((p) => nameOf(p.userId)).join(", ")}
            </span>
            <span class="small muted">
              {c.state} · since {new Date(c.startedAt).toLocaleTimeString()}
            </span>
          </li>
        ))}
      </ul>

      <h3>Users ({users.length})</h3>
      <ul class="admin-users">
        {users.map((u) => (
          <li key={u.id} class="row" data-username={u.username}>
            <span class="grow">
              <strong>{u.username}</strong> {u.role === "admin" && <span class="level ok">admin</span>} {u.disabled && <span class="level critical">disabled</span>}
              <br />
              <span class="small muted">last seen {u.last_seen_at === undefined ? "never" : new Date(u.last_seen_at).toLocaleString()}</span>
            </span>
            {u.id !== me.value?.id && (
              <>
                <button type="button" onClick={() => { update(u, { disabled: !u.disabled }); }} aria-label={`${u.disabled ? "Enable" : "Disable"} ${u.username}`}>
                  {u.disabled ? "Enable" : "Disable"}
                </button>
                <button type="button" onClick={() => { update(u, { role: u.role === "admin" ? "user" : "admin" }); }} aria-label={`${u.role === "admin" ? "Demote" : "Promote"} ${u.username}`}>
                  {u.role === "admin" ? "Demote" : "Promote"}
                </button>
                <button type="button" class="danger" onClick={() => { remove(u); }} aria-label={`Delete ${u.username}`}>
                  Delete
                </button>
              </>
            )}
          </li>
        ))}
      </ul>
    </section>
  );
}
