// The account: where it is logged in (sessions, each revocable), its chat devices, and the
// linking of new ones (Linking.tsx).

import { useEffect, useState } from "preact/hooks";
import type { DeviceView } from "../core/wire.js";
import { LinkDevices } from "./Linking.js";
import { attempt, currentClient, me } from "./store.js";

interface SessionView {
  id: string;
  device_name: string | null;
  last_used_at: string;
  ip: string | null;
  user_agent: string | null;
  current: boolean;
}

const when = (iso: string) => new Date(iso).toLocaleString([], { dateStyle: "medium", timeStyle: "short" });

export function Account() {
  const [sessions, setSessions] = useState<SessionView[]>([]);
  const [devices, setDevices] = useState<DeviceView[]>([]);
  const load = () =>
    attempt(async () => {
      const client = currentClient();
      setSessions(await client.api.json<SessionView[]>("GET", "/api/v1/me/sessions"));
      setDevices(await client.devices());
    });
  useEffect(() => {
    void load();
  }, []);
  const revoke = (id: string) =>
    attempt(async () => {
      await currentClient().api.request("DELETE", `/api/v1/me/sessions/${encodeURIComponent(id)}`);
      await load();
    });
  const ownDevice = me.value === undefined ? undefined : currentClient().deviceId;
  return (
    <section class="account" aria-label="Account">
      <h2>Sessions</h2>
      <p class="muted small">Where {me.value?.username} is logged in. Revoking one logs it out at once.</p>
      <ul class="list" aria-label="Sessions">
        {sessions.map((s) => (
          <li key={s.id} class="item">
            <span class="grow">
              {s.device_name ?? "unnamed"}
              {s.current && <strong> (this browser)</strong>}
              <br />
              <span class="muted small">
                last used {when(s.last_used_at)}
                {s.ip !== null && ` · ${s.ip}`}
              </span>
            </span>
            {!s.current && (
              <button type="button" class="danger" onClick={() => void revoke(s.id)} aria-label={`Revoke session ${s.device_name ?? s.id}`}>
                Revoke
              </button>
            )}
          </li>
        ))}
      </ul>
      <h2>Chat devices</h2>
      <p class="muted small">Each holds its own keys; contacts' apps check that your identity key vouches for it.</p>
      <ul class="list" aria-label="Chat devices">
        {devices.map((d) => (
          <li key={d.id} class="item">
            <span class="grow">
              {d.name ?? "unnamed"}
              {d.id === ownDevice && <strong> (this browser)</strong>}
              <br />
              <span class="muted small">added {when(d.created_at)}</span>
            </span>
          </li>
        ))}
      </ul>
      <LinkDevices onLinked={() => void load()} />
    </section>
  );
}
