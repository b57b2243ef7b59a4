// The app's actions on the session: register, log in (or link this browser), stay logged in
// across reloads, log out; the live connection that delivers messages, presence and typing;
// and how errors reach the banner. The state is in state.ts, the chat's actions in chat.ts;
// both are re-exported here, so screens import everything from this module.

import { batch } from "@preact/signals";
import type { Socket } from "socket.io-client";
import {
  ApiError,
  Client,
  connectInbox,
  IndexedDbStorage,
  SecureVoxError,
  type EphemeralEvent,
  type Message,
  type SyncReport,
} from "../core/index.js";
import { typingUpdate } from "./timeline.js";
import { acknowledge, refreshContacts, refreshConversations } from "./chat.js";
import {
  banner,
  commitsApplied,
  connection,
  conversations,
  contacts,
  history,
  knownUser,
  liveSocket,
  maybeClient,
  me,
  names,
  now,
  phase,
  presence,
  selected,
  setClient,
  typing,
  type Banner,
  type Presence,
} from "./state.js";

export * from "./state.js";
export * from "./chat.js";

let storage: IndexedDbStorage | undefined;
let socket: Socket | undefined;
const server = (): string => location.origin;

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
  // Kept until the login succeeds: after a failure, "Ask again" still has the credentials.
  await login(username, password, true);
  pendingLogin = undefined;
}

export function cancelLink(): void {
  pendingLogin = undefined;
  phase.value = "auth";
}

/** Asks to link this browser to the account of the login that needs it (Linking.tsx) — or,
 *  when an earlier request linked it already (an approval whose set-up failed after the
 *  device was saved), opens that device instead: a `Client`, ready for `linked`. */
export async function requestLink() {
  if (pendingLogin === undefined) throw new SecureVoxError("invalid_state", "log in first");
  const { username, password } = pendingLogin;
  const store = await openStorage();
  const saved = await store.loadProfile();
  if (saved?.deviceId !== undefined && saved.username === username) return Client.open({ storage: store });
  return Client.requestLink(server(), username, password, { storage: store });
}

/** This browser was linked: into the chat. `unfinished`: its set-up (KeyPackages, joining
 *  the conversations) failed after the device was saved; the joins are tried again here,
 *  the KeyPackages by the first sync's top-up. */
export async function linked(c: Client, unfinished = false): Promise<void> {
  pendingLogin = undefined;
  await start(c);
  if (unfinished) {
    await attempt(async () => {
      if ((await c.joinConversations()).joined.length > 0) await refreshConversations();
    });
  }
}

/** Ends the session on the server; the device's keys, groups and history stay here, so
 *  logging in again as the same user continues with them. */
export async function logout(endSession = true): Promise<void> {
  const c = maybeClient();
  socket?.disconnect();
  socket = undefined;
  // Off the app's screens first: nothing on them may still reach for the client.
  batch(() => {
    liveSocket.value = undefined;
    if (c !== undefined) knownUser.value = c.profile.username;
    me.value = undefined;
    presence.value = new Map();
    typing.value = new Map();
    contacts.value = [];
    conversations.value = [];
    history.value = new Map();
    selected.value = undefined;
    banner.value = undefined;
    phase.value = "auth";
  });
  setClient(undefined);
  if (c !== undefined) {
    // A session the server ended already needs no request (it would only be refused).
    if (endSession) await c.logout().catch(() => undefined);
    // Dropped from the API too: an operation finishing late saves the profile with the
    // API's tokens, and must not write them back.
    c.api.tokens = undefined;
    c.profile.accessToken = "";
    c.profile.refreshToken = "";
    await c.storage.saveProfile(c.profile);
  }
}

/** Deletes this browser's SecureVox data (another user can then log in here). */
export async function forgetDevice(): Promise<void> {
  const store = await openStorage();
  await store.forget();
  storage = undefined;
  knownUser.value = undefined;
}

async function start(c: Client): Promise<void> {
  setClient(c);
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
  if (report.commits > 0) commitsApplied.value += report.commits;
  if (report.joined.length > 0 || report.removedFrom.length > 0) await refreshConversations().catch(fail);
  if (report.warnings.length > 0) {
    banner.value = { code: "unverified_member", message: `a group member's device is not vouched for by their identity key: ${report.warnings.join("; ")}` };
  }
  const touched = new Set(report.messages.filter((m) => !m.outgoing).map((m) => m.conversationId));
  for (const id of touched) await acknowledge(id);
}
