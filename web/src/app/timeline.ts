// What a conversation shows, folded from its local history (docs/E2EE.md, "Message content"):
// text and files with their edits, deletions, reactions and receipts, and how many of the
// others' messages this user has not read yet. Pure functions, no framework: unit-tested.

import type { FileContent, Message } from "../core/index.js";

export interface Entry {
  /** The server's seq (every stored message has one). */
  seq: number;
  senderUserId: string;
  /** Sent by this user (from any of their devices). */
  mine: boolean;
  time: string;
  kind: "text" | "file" | "unknown";
  /** The text (latest edit), the file name, or the raw plaintext of an unknown type. */
  body: string;
  /** What a file message points to (kind `file`). */
  file?: FileContent;
  edited: boolean;
  deleted: boolean;
  /** emoji → users who reacted with it (in order). */
  reactions: Map<string, string[]>;
  /** Other users who got / read it (read implies delivered). */
  deliveredTo: Set<string>;
  readBy: Set<string>;
}

export interface Timeline {
  entries: Entry[];
  /** The others' messages this user has not sent a `read` receipt for. */
  unread: number;
  /** Their seqs, for the receipt to send when the conversation is shown. */
  unreadSeqs: number[];
}

/** Folds `messages` (one conversation, oldest first) as `me` sees them; messages from
 *  `hidden` users (blocked) are left out. */
export function fold(messages: readonly Message[], me: string, hidden: ReadonlySet<string> = new Set()): Timeline {
  const entries: Entry[] = [];
  const bySeq = new Map<number, Entry>();
  const readByMe = new Set<number>();
  for (const m of messages) {
    if (hidden.has(m.senderUserId)) continue;
    const c = m.content;
    switch (c.type) {
      case "text":
      case "file":
      case "unknown": {
        if (m.seq === undefined || bySeq.has(m.seq)) break;
        const entry: Entry = {
          seq: m.seq,
          senderUserId: m.senderUserId,
          mine: m.senderUserId === me,
          time: m.time,
          kind: c.type,
          body: c.type === "text" ? c.body : c.type === "file" ? c.name : c.raw,
          ...(c.type === "file" ? { file: c } : {}),
          edited: false,
          deleted: false,
          reactions: new Map(),
          deliveredTo: new Set(),
          readBy: new Set(),
        };
        entries.push(entry);
        bySeq.set(m.seq, entry);
        break;
      }
      case "edit": {
        const target = bySeq.get(c.target);
        // Only the sender's own text, and never once deleted.
        if (target?.senderUserId !== m.senderUserId || target.deleted || target.kind !== "text") break;
        target.body = c.body;
        target.edited = true;
        break;
      }
      case "delete": {
        const target = bySeq.get(c.target);
        if (target?.senderUserId !== m.senderUserId) break;
        target.deleted = true;
        target.body = "";
        delete target.file;
        target.reactions.clear();
        break;
      }
      case "reaction": {
        const target = bySeq.get(c.target);
        if (target === undefined || target.deleted) break;
        const users = (target.reactions.get(c.emoji) ?? []).filter((u) => u !== m.senderUserId);
        if (!c.remove) users.push(m.senderUserId);
        if (users.length === 0) target.reactions.delete(c.emoji);
        else target.reactions.set(c.emoji, users);
        break;
      }
      case "receipt": {
        for (const seq of c.targets) {
          if (m.senderUserId === me) {
            if (c.status === "read") readByMe.add(seq);
            continue;
          }
          const target = bySeq.get(seq);
          // A user's receipts for their own messages mean nothing.
          if (target === undefined || target.senderUserId === m.senderUserId) continue;
          target.deliveredTo.add(m.senderUserId);
          if (c.status === "read") target.readBy.add(m.senderUserId);
        }
        break;
      }
      case "typing":
        break;
    }
  }
  const unreadSeqs = entries.filter((e) => !e.mine && !e.deleted && !readByMe.has(e.seq)).map((e) => e.seq);
  return { entries, unread: unreadSeqs.length, unreadSeqs };
}

/** The others' messages `me` has not acknowledged as delivered or read: for a `delivered`
 *  receipt when they arrive while the conversation is not shown. */
export function undelivered(messages: readonly Message[], me: string): number[] {
  const acknowledged = new Set<number>();
  const theirs: number[] = [];
  for (const m of messages) {
    const c = m.content;
    if (c.type === "receipt" && m.senderUserId === me) c.targets.forEach((t) => acknowledged.add(t));
    else if ((c.type === "text" || c.type === "file") && m.senderUserId !== me && m.seq !== undefined) theirs.push(m.seq);
  }
  return theirs.filter((s) => !acknowledged.has(s));
}

/** The last shown message of a conversation, for the list's preview. */
export function preview(timeline: Timeline): string {
  const last = timeline.entries.at(-1);
  if (last === undefined) return "";
  if (last.deleted) return "message deleted";
  return last.kind === "file" ? `📎 ${last.body}` : last.body;
}

/** Who is typing: user id → when their indicator expires (ms). */
export type Typing = ReadonlyMap<string, number>;

/** Applies one typing event; an indicator lasts `ttlMs` unless renewed. */
export function typingUpdate(typing: Typing, userId: string, active: boolean, now: number, ttlMs = 6000): Map<string, number> {
  const next = new Map([...typing].filter(([, until]) => until > now));
  if (active) next.set(userId, now + ttlMs);
  else next.delete(userId);
  return next;
}

export function typingNow(typing: Typing, now: number): string[] {
  return [...typing].filter(([, until]) => until > now).map(([user]) => user);
}
