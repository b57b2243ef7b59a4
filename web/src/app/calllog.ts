// The call history (`GET /api/v1/calls`) as the chats show it: each call in the conversation
// with the same members (the 1:1 or the group), with its text ("Missed video call", "No
// answer", the duration), and the missed calls this user has not seen yet, counted like unread
// messages. Which calls were seen is kept per user and conversation in localStorage. Imports
// nothing of the app, so that the store can count missed calls without an import cycle.

import { signal } from "@preact/signals";
import type { ConversationView } from "../core/index.js";
import type { Media } from "../core/calls.js";

export interface HistoryItem {
  session_id: string;
  caller_id: string;
  direction: "incoming" | "outgoing";
  media: Media;
  members: string[];
  state: string;
  outcome: "completed" | "missed" | "declined" | "cancelled" | "failed" | null;
  duration_s: number;
  created_at: string;
  answered_at: string | null;
  ended_at: string | null;
}

/** The newest calls of this user, newest first. */
export const callHistory = signal<HistoryItem[]>([]);
/** Conversation id → the newest missed call seen in it (RFC 3339), for this user. */
export const seenCalls = signal<ReadonlyMap<string, string>>(new Map());

/** `12:05` or `1:02:05`. */
export function clock(seconds: number): string {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  const two = (n: number) => String(n).padStart(2, "0");
  return h > 0 ? `${String(h)}:${two(m)}:${two(s)}` : `${String(m)}:${two(s)}`;
}

/** A call this user was invited to and never answered (rang out, or cancelled by the caller,
 *  or answered by the others of a group). */
export function isMissed(call: HistoryItem): boolean {
  return call.direction === "incoming" && call.outcome === "missed";
}

/** How a call reads in its conversation. */
export function callText(call: HistoryItem): string {
  const kind = call.media === "video" ? "video call" : "audio call";
  const Kind = call.media === "video" ? "Video call" : "Audio call";
  const duration = call.duration_s > 0 ? ` · ${clock(call.duration_s)}` : "";
  if (call.outcome === null) return `${Kind} in progress`;
  if (call.direction === "incoming") {
    if (call.outcome === "missed") return `Missed ${kind}`;
    if (call.outcome === "declined") return `Declined ${kind}`;
    if (call.outcome === "failed") return `${Kind} failed`;
    return `Incoming ${kind}${duration}`;
  }
  if (call.outcome === "missed" || call.outcome === "cancelled") return `${Kind} · No answer`;
  if (call.outcome === "declined") return `${Kind} · Declined`;
  if (call.outcome === "failed") return `${Kind} failed`;
  return `Outgoing ${kind}${duration}`;
}

/** The conversation of a call: the one with exactly its members (a 1:1 before a group). */
export function conversationOf(call: HistoryItem, conversations: readonly ConversationView[]): string | undefined {
  const members = new Set(call.members);
  const same = conversations.filter((c) => {
    const ids = (c.members ?? []).map((m) => m.user_id);
    return ids.length === members.size && ids.every((id) => members.has(id));
  });
  return (same.find((c) => c.kind === "direct") ?? same[0])?.id;
}

/** The calls of each conversation, oldest first. */
export function callsByConversation(calls: readonly HistoryItem[], conversations: readonly ConversationView[]): Map<string, HistoryItem[]> {
  const out = new Map<string, HistoryItem[]>();
  // The history is newest first; reversed, a stable sort keeps calls of the same second in order.
  for (const call of [...calls].reverse().sort((a, b) => Date.parse(a.created_at) - Date.parse(b.created_at))) {
    const id = conversationOf(call, conversations);
    if (id === undefined) continue;
    out.set(id, [...(out.get(id) ?? []), call]);
  }
  return out;
}

/** The missed calls of one conversation after `seenUntil` (RFC 3339). */
export function unseenMissed(calls: readonly HistoryItem[], seenUntil: string | undefined): HistoryItem[] {
  const after = seenUntil === undefined ? -Infinity : Date.parse(seenUntil);
  return calls.filter((c) => isMissed(c) && Date.parse(c.created_at) > after);
}

/** Messages (anything with an RFC 3339 `time`) and calls in one list, by time. */
export function interleave<T extends { time: string }>(entries: readonly T[], calls: readonly HistoryItem[]): (T | HistoryItem)[] {
  const out: (T | HistoryItem)[] = [];
  let i = 0;
  for (const entry of entries) {
    while (i < calls.length && Date.parse((calls[i] as HistoryItem).created_at) <= Date.parse(entry.time)) out.push(calls[i++] as HistoryItem);
    out.push(entry);
  }
  return [...out, ...calls.slice(i)];
}

const key = (userId: string) => `securevox.seenCalls.${userId}`;

/** Loads which missed calls `userId` has seen on this browser. */
export function loadSeenCalls(userId: string): void {
  try {
    const stored = JSON.parse(localStorage.getItem(key(userId)) ?? "{}") as Record<string, string>;
    seenCalls.value = new Map(Object.entries(stored));
  } catch {
    seenCalls.value = new Map();
  }
}

/** Marks the calls of `conversationId` up to `until` as seen (the conversation is shown). */
export function markCallsSeen(userId: string, conversationId: string, until: string): void {
  const before = seenCalls.value.get(conversationId);
  if (before !== undefined && Date.parse(before) >= Date.parse(until)) return;
  const next = new Map(seenCalls.value);
  next.set(conversationId, until);
  seenCalls.value = next;
  try {
    localStorage.setItem(key(userId), JSON.stringify(Object.fromEntries(next)));
  } catch {
    // Storage full or refused: seen for this page's life only.
  }
}

/** The history grouped by conversation, made again only when the history or the list of
 *  conversations changed (every row of the conversation list asks). */
let lastGrouping: { calls: readonly HistoryItem[]; conversations: readonly ConversationView[]; byConversation: Map<string, HistoryItem[]> } | undefined;
function grouped(conversations: readonly ConversationView[]): Map<string, HistoryItem[]> {
  const calls = callHistory.value;
  if (lastGrouping?.calls !== calls || lastGrouping.conversations !== conversations) {
    lastGrouping = { calls, conversations, byConversation: callsByConversation(calls, conversations) };
  }
  return lastGrouping.byConversation;
}

/** Missed calls not seen yet in `conversationId` (for its unread count). */
export function missedUnread(conversationId: string, conversations: readonly ConversationView[]): number {
  const calls = grouped(conversations).get(conversationId) ?? [];
  return unseenMissed(calls, seenCalls.value.get(conversationId)).length;
}
