// What a message says: the JSON plaintext inside an MLS application message, exactly as the
// Rust client (`securevox_client::Content`) writes it:
//   {"type":"text","body":"…"}
//   {"type":"file","attachment":"<id>","key":"<base64 32 bytes>","nonce":"<base64 12 bytes>",
//    "name":"…","size":123,"sha256":"<hex of the plaintext>","mime":"image/png"}  (mime optional)
//   {"type":"reaction","target":7,"emoji":"👍","remove":false}
//   {"type":"edit","target":7,"body":"…"}      {"type":"delete","target":7}
//   {"type":"receipt","status":"delivered"|"read","targets":[7,8]}
//   {"type":"typing","active":true}
// (`target`/`targets` are the server's `seq` of the message meant.) A plaintext this client
// does not understand is kept as `{type: "unknown", raw}` (never sent).

import { fromUtf8, utf8 } from "./encoding.js";

export interface TextContent {
  type: "text";
  body: string;
}

export interface FileContent {
  type: "file";
  /** The attachment's id on the server. */
  attachment: string;
  /** AES-256-GCM key, base64 (32 bytes). */
  key: string;
  /** AES-GCM nonce, base64 (12 bytes). */
  nonce: string;
  name: string;
  size: number;
  /** Hex SHA-256 of the plaintext file. */
  sha256: string;
  /** Its media type, when the sender knew it. */
  mime?: string;
}

export interface ReactionContent {
  type: "reaction";
  target: number;
  emoji: string;
  remove: boolean;
}

export interface EditContent {
  type: "edit";
  target: number;
  body: string;
}

export interface DeleteContent {
  type: "delete";
  target: number;
}

export interface ReceiptContent {
  type: "receipt";
  status: "delivered" | "read";
  targets: number[];
}

export interface TypingContent {
  type: "typing";
  active: boolean;
}

export interface UnknownContent {
  type: "unknown";
  raw: string;
}

/** What this client sends. */
export type KnownContent =
  | TextContent
  | FileContent
  | ReactionContent
  | EditContent
  | DeleteContent
  | ReceiptContent
  | TypingContent;

export type Content = KnownContent | UnknownContent;

export function text(body: string): TextContent {
  return { type: "text", body };
}

/** The plaintext bytes of `content`, its fields in the Rust client's order. */
export function encodeContent(content: KnownContent): Uint8Array {
  return utf8(JSON.stringify(wireValue(content)));
}

function wireValue(c: KnownContent): Record<string, unknown> {
  switch (c.type) {
    case "text":
      return { type: c.type, body: c.body };
    case "file":
      return {
        type: c.type,
        attachment: c.attachment,
        key: c.key,
        nonce: c.nonce,
        name: c.name,
        size: c.size,
        sha256: c.sha256,
        ...(c.mime === undefined ? {} : { mime: c.mime }),
      };
    case "reaction":
      return { type: c.type, target: c.target, emoji: c.emoji, remove: c.remove };
    case "edit":
      return { type: c.type, target: c.target, body: c.body };
    case "delete":
      return { type: c.type, target: c.target };
    case "receipt":
      return { type: c.type, status: c.status, targets: c.targets };
    case "typing":
      return { type: c.type, active: c.active };
  }
}

/** Reads a plaintext; anything that is not a well-formed known content becomes `unknown`. */
export function decodeContent(bytes: Uint8Array): Content {
  let raw: string;
  try {
    raw = fromUtf8(bytes);
  } catch {
    raw = new TextDecoder().decode(bytes);
    return { type: "unknown", raw };
  }
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return { type: "unknown", raw };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return { type: "unknown", raw };
  return known(value as Record<string, unknown>) ?? { type: "unknown", raw };
}

const isString = (v: unknown): v is string => typeof v === "string";
/** A JSON number that fits Rust's `i64`/`u64` exactly as JavaScript reads it. */
const isInteger = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v);

function known(v: Record<string, unknown>): KnownContent | undefined {
  switch (v.type) {
    case "text":
      return isString(v.body) ? { type: "text", body: v.body } : undefined;
    case "file":
      return isString(v.attachment) &&
        isString(v.key) &&
        isString(v.nonce) &&
        isString(v.name) &&
        isInteger(v.size) &&
        v.size >= 0 &&
        isString(v.sha256) &&
        (v.mime === undefined || v.mime === null || isString(v.mime))
        ? {
            type: "file",
            attachment: v.attachment,
            key: v.key,
            nonce: v.nonce,
            name: v.name,
            size: v.size,
            sha256: v.sha256,
            ...(isString(v.mime) ? { mime: v.mime } : {}),
          }
        : undefined;
    case "reaction":
      // `remove` may be left out (false).
      return isInteger(v.target) && isString(v.emoji) && (v.remove === undefined || typeof v.remove === "boolean")
        ? { type: "reaction", target: v.target, emoji: v.emoji, remove: v.remove ?? false }
        : undefined;
    case "edit":
      return isInteger(v.target) && isString(v.body) ? { type: "edit", target: v.target, body: v.body } : undefined;
    case "delete":
      return isInteger(v.target) ? { type: "delete", target: v.target } : undefined;
    case "receipt":
      return (v.status === "delivered" || v.status === "read") && Array.isArray(v.targets) && v.targets.every(isInteger)
        ? { type: "receipt", status: v.status, targets: v.targets }
        : undefined;
    case "typing":
      return typeof v.active === "boolean" ? { type: "typing", active: v.active } : undefined;
    default:
      return undefined;
  }
}

/** A message of a conversation, sent or received by this device (the local history). */
export interface Message {
  conversationId: string;
  /** The server's per-conversation sequence number. */
  seq: number | undefined;
  senderUserId: string;
  senderDeviceId: string;
  /** Sent by this device. */
  outgoing: boolean;
  /** When the server received it (received messages) or when it was sent (own ones). */
  time: string;
  content: Content;
}
