// The app's state as signals, shared by the store's actions (store.ts, chat.ts) and the
// screens: the phase, who is logged in, the banner, the live connection, contacts, presence,
// conversations, history, typing, and the client of the logged-in device.

import { signal } from "@preact/signals";
import type { Socket } from "socket.io-client";
import { SecureVoxError, type Client, type ContactView, type ConversationView, type Message, type UserView } from "../core/index.js";
import type { Typing } from "./timeline.js";

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
/** How many Commits this device applied since the page loaded (members' devices may have
 *  changed: a signal for the key-change warnings). */
export const commitsApplied = signal(0);
/** Ticks every second, so that typing indicators expire on screen. */
export const now = signal(Date.now());

let client: Client | undefined;
/** The live Socket.IO connection (chat and call events share it), while logged in. */
export const liveSocket = signal<Socket | undefined>(undefined);

export function currentClient(): Client {
  if (client === undefined) throw new SecureVoxError("invalid_state", "not logged in");
  return client;
}

/** The client of the logged-in device, if any. */
export function maybeClient(): Client | undefined {
  return client;
}

/** Who is logged in on this page (store.ts: start and log out). */
export function setClient(c: Client | undefined): void {
  client = c;
}

export function remember(users: UserView[]): void {
  const next = new Map(names.value);
  for (const u of users) next.set(u.id, u.username);
  names.value = next;
}

export function nameOf(userId: string): string {
  return names.value.get(userId) ?? `user ${userId.slice(0, 8)}`;
}
