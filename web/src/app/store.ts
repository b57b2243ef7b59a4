// The app's state, as signals, and the actions that change it: the session (register, log
// in, stay logged in across reloads, log out), contacts and presence, conversations, the
// local history with live delivery over Socket.IO, typing indicators and receipts.

import { batch, signal } from "@preact/signals";
import type { Socket } from "socket.io-client";
import {
  ApiError,
  Client,
  connectInbox,
  display,
  IndexedDbStorage,
  SecureVoxError,
  type ContactView,
  type ConversationView,
  type EphemeralEvent,
  type Message,
  type SyncReport,
  type UserView,
} from "../core/index.js";
import { fold, typingUpdate, undelivered, type Typing } from "./timeline.js";

export type Phase = "loading" | "auth" | "link" | "app";
export type Connection = "connecting" | "connected" | "reconnecting" | "offline";
export type Presence = "online" | "away" | "offline";

export interface Banner {
  code: string;
  message: string;
}

export const phase = signal<Phase>("loading");
/** The username of the stored profile when logged out (prefilled on the login form). */
export const knownUser = signal<string | undefined>(undefined);
export const me = signal<{ id: string; username: string } | undefined>(undefined);
export const banner = signal<Banner | undefined>(undefined);
export const connection = signal<Connection>("connecting");
export const contacts = signal<ContactView[]>([]);
export const presence = signal<ReadonlyMap<string, Presence>>(new Map());
export const conversations = signal<ConversationView[]>([]);
export const history = signal<ReadonlyMap<string, readonly Message[]>>(new Map());
export const typing = signal<ReadonlyMap<string, Typing>>(new Map());
export const selected = signal<string | undefined>(undefined);
/** Usernames by user id: contacts, search results, and this user. */
export const names = signal<ReadonlyMap<string, string>>(new Map());
/** Ticks every second, so that typing indicators expire on screen. */
export const now = signal(Date.now());

let client: Client | undefined;
let storage: IndexedDbStorage | undefined;
let socket: Socket | undefined;
/** The live Socket.IO connection (chat and call events share it), while logged in. */
export const liveSocket = signal<Socket | undefined>(undefined);
const server = (): string => location.origin;

export function currentClient(): Client {
  if (client === undefined) throw new SecureVoxError("invalid_state", "not logged in");
  return client;
}

// ----- errors ---------------------------------------------------------------------------------

export function describe(e: unknown): Banner {
  if (e instanceof ApiError) {
    const text = e.message.replace(/^server refused \(\d+ [a-z_]+\): /, "");
    return { code: e.code, message: text === "" ? `the server answered ${e.status}` : text };
  }
  if (e instanceof SecureVoxError) {
    if (e.code === "network_error") return { code: e.code, message: "cannot reach the server: offline?" };
    return { code: e.code, message: e.message };
  }
  return { code: "error", message: e instanceof Error ? e.message : String(e) };
}

export function fail(e: unknown): void {
  // Refused even after a token refresh while logged in: the session was revoked (from
  // another device, by a password change or an admin) — back to the login form.
  if (e instanceof ApiError && e.status === 401 && phase.value === "app") {
    const reason = describe(e);
    void logout(false).then(() => {
      banner.value = { code: reason.code, message: `you were logged out: ${reason.message}` };
    });
    return;
  }
  banner.value = describe(e);
}

/** Runs `work`, showing its failure in the banner; true when it succeeded. */
export async function attempt(work: () => Promise<unknown>): Promise<boolean> {
  try {
    await work();
    banner.value = undefined;
    return true;
  } catch (e) {
    fail(e);
    return false;
  }
}

function remember(users: UserView[]): void {
  const next = new Map(names.value);
  for (const u of users) next.set(u.id, u.username);
  names.value = next;
}

export function nameOf(userId: string): string {
  return names.value.get(userId) ?? `user ${userId.slice(0, 8)}`;
}

// ----- session ----------------------------------------------------------------------------------

async function openStorage(): Promise<IndexedDbStorage> {
  storage ??= await IndexedDbStorage.open();
  return storage;
}

/** At start: opens the stored profile if it is logged in, else shows the login form. */
export async function init(): Promise<void> {
  setInterval(() => {
    now.value = Date.now();
  }, 1000);
  window.addEventListener("offline", () => {
    connection.value = "offline";
  });
  window.addEventListener("online", () => {
    if (connection.value === "offline") connection.value = socket?.connected === true ? "connected" : "reconnecting";
  });
  try {
    const store = await openStorage();
    const profile = await store.loadProfile();
    if (profile?.deviceId !== undefined && profile.refreshToken !== "") {
      await start(await Client.open({ storage: store }));
      return;
    }
    knownUser.value = profile?.username;
  } catch (e) {
    fail(e);
  }
  phase.value = "auth";
}

export async function register(username: string, password: string, invite: string): Promise<void> {
  const store = await openStorage();
  const created = await Client.register(server(), username, password, invite === "" ? undefined : invite, { storage: store });
  await start(created);
}

export async function login(username: string, password: string, newIdentity = false): Promise<void> {
  const store = await openStorage();
  try {
    await start(await Client.login(server(), username, password, { storage: store, newIdentity }));
  } catch (e) {
    if (e instanceof SecureVoxError && e.code === "link_required") {
      pendingLogin = { username, password };
      phase.value = "link";
      return;
    }
    throw e;
  }
}

/** The credentials of a login that needs linking, for "start a new identity". */
let pendingLogin: { username: string; password: string } | undefined;

export async function startNewIdentity(): Promise<void> {
  if (pendingLogin === undefined) {
    phase.value = "auth";
    return;
  }
  const { username, password } = pendingLogin;
  pendingLogin = undefined;
  await login(username, password, true);
}

export function cancelLink(): void {
  pendingLogin = undefined;
  phase.value = "auth";
}

/** Ends the session on the server; the device's keys, groups and history stay here, so
 *  logging in again as the same user continues with them. */
export async function logout(endSession = true): Promise<void> {
  const c = client;
  socket?.disconnect();
  socket = undefined;
  liveSocket.value = undefined;
  client = undefined;
  if (c !== undefined) {
    // A session the server ended already needs no request (it would only be refused).
    if (endSession) await c.logout().catch(() => undefined);
    c.profile.accessToken = "";
    c.profile.refreshToken = "";
    await c.storage.saveProfile(c.profile);
    knownUser.value = c.profile.username;
  }
  batch(() => {
    me.value = undefined;
    contacts.value = [];
    conversations.value = [];
    history.value = new Map();
    selected.value = undefined;
    banner.value = undefined;
    phase.value = "auth";
  });
}

/** Deletes this browser's SecureVox data (another user can then log in here). */
export async function forgetDevice(): Promise<void> {
  const store = await openStorage();
  await store.forget();
  storage = undefined;
  knownUser.value = undefined;
}

async function start(c: Client): Promise<void> {
  client = c;
  batch(() => {
    me.value = { id: c.userId, username: c.username };
    names.value = new Map([[c.userId, c.username]]);
    banner.value = undefined;
  });
  const all = await c.history();
  const byConversation = new Map<string, Message[]>();
  for (const m of all) byConversation.set(m.conversationId, [...(byConversation.get(m.conversationId) ?? []), m]);
  history.value = byConversation;
  phase.value = "app";
  await Promise.all([refreshContacts(), refreshConversations()]).catch(fail);
  connect(c);
}

function connect(c: Client): void {
  connection.value = "connecting";
  const s = connectInbox(c, {
    onReport: (report) => {
      void take(report);
    },
    onError: (e) => {
      // The server refused the socket's token ("<code>: <text>"): this session is over.
      const refused = e instanceof Error && /^(session_revoked|account_disabled|invalid_token): /.exec(e.message);
      if (refused) {
        const text = e.message;
        void logout(false).then(() => {
          banner.value = { code: refused[1] ?? "session_revoked", message: `you were logged out: ${text}` };
        });
        return;
      }
      if (e instanceof Error && !(e instanceof SecureVoxError) && connection.value !== "offline") {
        connection.value = "reconnecting";
        return;
      }
      fail(e);
    },
  });
  s.on("connect", () => {
    connection.value = "connected";
  });
  s.on("disconnect", (reason) => {
    connection.value = navigator.onLine ? "reconnecting" : "offline";
    // The server closed the socket (a revoked session, a disabled account, or a restart):
    // Socket.IO does not reconnect by itself then. Still logged in? Then reconnect.
    if (reason === "io server disconnect") {
      c.api.request("GET", "/api/v1/me").then(
        () => s.connect(),
        (e: unknown) => {
          if (socket === s) fail(e);
        },
      );
    }
  });
  s.on("presence", (event: { userId: string; status: Presence }) => {
    const next = new Map(presence.value);
    next.set(event.userId, event.status);
    presence.value = next;
  });
  s.on("ephemeral", (event: EphemeralEvent) => {
    void c.receiveEphemeral(event).then((message) => {
      if (message?.content.type !== "typing") return;
      const next = new Map(typing.value);
      next.set(message.conversationId, typingUpdate(typing.value.get(message.conversationId) ?? new Map(), message.senderUserId, message.content.active, Date.now()));
      typing.value = next;
    });
  });
  s.on("error", (event: { code?: string; message?: string }) => {
    banner.value = { code: event.code ?? "error", message: event.message ?? "the live connection refused a request" };
  });
  socket = s;
  liveSocket.value = s;
}

/** Adds what a sync or a pushed item brought. */
async function take(report: SyncReport): Promise<void> {
  if (report.messages.length > 0) {
    const next = new Map(history.value);
    for (const m of report.messages) {
      next.set(m.conversationId, [...(next.get(m.conversationId) ?? []), m]);
      // A message ends its sender's typing indicator.
      const t = typing.value.get(m.conversationId);
      if (t?.has(m.senderUserId) === true) {
        const nextTyping = new Map(typing.value);
        nextTyping.set(m.conversationId, typingUpdate(t, m.senderUserId, false, Date.now()));
        typing.value = nextTyping;
      }
    }
    history.value = next;
  }
  if (report.joined.length > 0 || report.removedFrom.length > 0) await refreshConversations().catch(fail);
  if (report.warnings.length > 0) {
    banner.value = { code: "unverified_member", message: `a group member's device is not vouched for by their identity key: ${report.warnings.join("; ")}` };
  }
  const touched = new Set(report.messages.filter((m) => !m.outgoing).map((m) => m.conversationId));
  for (const id of touched) await acknowledge(id);
}

// ----- receipts ---------------------------------------------------------------------------------

const acknowledging = new Map<string, Promise<void>>();

/** Sends `read` for the shown conversation's unread messages, `delivered` for the others'
 *  (one at a time per conversation, so that no receipt is sent twice). */
export function acknowledge(conversationId: string): Promise<void> {
  const run = (acknowledging.get(conversationId) ?? Promise.resolve()).then(() => sendReceipts(conversationId));
  acknowledging.set(conversationId, run);
  return run;
}

async function sendReceipts(conversationId: string): Promise<void> {
  const c = client;
  const self = me.value;
  if (c === undefined || self === undefined) return;
  const messages = history.value.get(conversationId) ?? [];
  const shown = selected.value === conversationId && document.visibilityState === "visible";
  try {
    if (shown) {
      const unread = fold(messages, self.id).unreadSeqs;
      if (unread.length > 0) await send(conversationId, { type: "receipt", status: "read", targets: unread });
    } else {
      const pending = undelivered(messages, self.id);
      if (pending.length > 0) await send(conversationId, { type: "receipt", status: "delivered", targets: pending });
    }
  } catch {
    // A receipt is a courtesy: a failure (e.g. removed from the group) is not worth a banner.
  }
}

// ----- contacts ---------------------------------------------------------------------------------

export async function refreshContacts(): Promise<void> {
  const list = await currentClient().api.json<ContactView[]>("GET", "/api/v1/contacts");
  remember(list.map((c) => c.user));
  contacts.value = list;
}

export async function searchUsers(query: string): Promise<UserView[]> {
  const users = await currentClient().api.json<UserView[]>("GET", `/api/v1/users/search?q=${encodeURIComponent(query)}&limit=20`);
  remember(users);
  return users.filter((u) => u.id !== me.value?.id);
}

export async function setContact(userId: string, action: "add" | "remove" | "block" | "unblock"): Promise<void> {
  const path = `/api/v1/contacts/${encodeURIComponent(userId)}${action === "block" || action === "unblock" ? "/block" : ""}`;
  await currentClient().api.request(action === "add" || action === "block" ? "PUT" : "DELETE", path);
  await refreshContacts();
}

export function blockedIds(): Set<string> {
  return new Set(contacts.value.filter((c) => c.state === "blocked").map((c) => c.user.id));
}

export async function safetyNumberWith(username: string): Promise<string> {
  return display(await currentClient().safetyNumber(username));
}

// ----- conversations ----------------------------------------------------------------------------

export async function refreshConversations(): Promise<void> {
  conversations.value = await currentClient().api.json<ConversationView[]>("GET", "/api/v1/conversations");
}

/** Unread messages over all conversations. */
export function totalUnread(): number {
  const self = me.value?.id ?? "";
  const hidden = blockedIds();
  let total = 0;
  for (const c of conversations.value) total += fold(history.value.get(c.id) ?? [], self, hidden).unread;
  return total;
}

export function titleOf(conversation: ConversationView): string {
  if (conversation.name !== undefined && conversation.name !== null && conversation.name !== "") return conversation.name;
  const others = (conversation.members ?? []).map((m) => m.user_id).filter((id) => id !== me.value?.id);
  return others.length === 0 ? "just you" : others.map(nameOf).join(", ");
}

/** Creates a 1:1 conversation (one user, no name) or a group; selects it. */
export async function createConversation(name: string, usernames: string[]): Promise<void> {
  const c = currentClient();
  const id = usernames.length === 1 && name === "" ? await c.createDirect(usernames[0] ?? "") : await c.createGroup(name, usernames);
  await refreshConversations();
  selected.value = id;
}

export async function send(conversationId: string, content: Parameters<Client["sendContent"]>[1]): Promise<void> {
  const sent = await currentClient().sendContent(conversationId, content);
  const next = new Map(history.value);
  next.set(conversationId, [...(next.get(conversationId) ?? []), sent]);
  history.value = next;
}

let lastTyping = 0;

/** Tells the others this user is typing (at most every 3 s), or stopped. */
export function sendTyping(conversationId: string, active: boolean): void {
  const t = Date.now();
  if (active && t - lastTyping < 3000) return;
  // Nothing to take back when no indicator was sent.
  if (!active && lastTyping === 0) return;
  lastTyping = active ? t : 0;
  // Typing is best-effort: nothing to report when it does not get through.
  client?.sendEphemeral(conversationId, { type: "typing", active }).catch(() => undefined);
}
