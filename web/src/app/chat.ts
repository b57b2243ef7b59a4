// The chat's actions: receipts, contacts, conversations (list, titles, unread counts,
// creation), and sending text, files and typing indicators.

import { display, SecureVoxError, type Client, type ContactView, type ConversationView, type Message, type UserView } from "../core/index.js";
import { missedUnread } from "./calllog.js";
import { contacts, conversations, currentClient, history, maybeClient, me, nameOf, remember, selected } from "./state.js";
import { fold, undelivered } from "./timeline.js";

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
  const c = maybeClient();
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
  const list = await currentClient().api.json<ConversationView[]>("GET", "/api/v1/conversations");
  // Members who are not contacts are named too (in groups and group calls).
  remember(list.flatMap((c) => (c.members ?? []).flatMap((m) => (m.username === undefined ? [] : [{ id: m.user_id, username: m.username }]))));
  conversations.value = list;
}

/** Unread messages over all conversations. */
export function totalUnread(): number {
  const self = me.value?.id ?? "";
  const hidden = blockedIds();
  let total = 0;
  // A missed call counts like an unread message.
  for (const c of conversations.value) total += fold(history.value.get(c.id) ?? [], self, hidden).unread + missedUnread(c.id, conversations.value);
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
  appendSent(conversationId, await currentClient().sendContent(conversationId, content));
}

let maxFileBytes: number | undefined;

/** Encrypts and sends `file` (refused before uploading when the server would not take it). */
export async function sendFile(conversationId: string, file: File): Promise<void> {
  const c = currentClient();
  maxFileBytes ??= await c.maxFileBytes();
  if (file.size === 0) throw new SecureVoxError("empty_file", `${file.name} is empty`);
  if (file.size > maxFileBytes) {
    throw new SecureVoxError("file_too_large", `${file.name} is ${byteSize(file.size)}: files can be at most ${byteSize(maxFileBytes)}`);
  }
  const data = new Uint8Array(await file.arrayBuffer());
  appendSent(conversationId, await c.sendFile(conversationId, file.name, data, file.type === "" ? undefined : file.type));
}

function appendSent(conversationId: string, sent: Message): void {
  const next = new Map(history.value);
  next.set(conversationId, [...(next.get(conversationId) ?? []), sent]);
  history.value = next;
}

/** `bytes` for people, in binary multiples as file managers show them: "820 B", "1.5 MB". */
export function byteSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KB", "MB", "GB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value).toString()} ${units[unit] ?? ""}`;
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
  maybeClient()?.sendEphemeral(conversationId, { type: "typing", active }).catch(() => undefined);
}
