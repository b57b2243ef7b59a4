// Sending: text and other content as MLS application messages (retried once after a
// `stale_epoch`), encrypted attachments, and the safety number shared with another user.

import { sha256 } from "@noble/hashes/sha2.js";
import { createApplicationMessage, zeroOutUint8Array } from "ts-mls";
import { encodeContent, type FileContent, type KnownContent, type Message } from "./content.js";
import { deviceIdOf, loadGroup, now, saveGroup, type Core } from "./core.js";
import { fromBase64, toBase64, toHex } from "./encoding.js";
import { clientError, errorCode, mlsError } from "./errors.js";
import { findUser, removeGoneDevices } from "./groups.js";
import { syncInbox } from "./inbox.js";
import { identityKeyOf, verifiedDevices } from "./keys.js";
import { ciphersuite, encodeMessage } from "./mls.js";
import { safetyNumber as computeSafetyNumber } from "./safety.js";
import type { Accepted, AttachmentView } from "./wire.js";

/** Sends `content` in conversation `id`, after removing members gone from it (see
 *  `removeGoneDevices`). On `stale_epoch` syncs (applying the Commit that moved the group
 *  on) and tries once more. */
export async function sendContent(core: Core, id: string, content: KnownContent): Promise<Message> {
  await removeGoneDevices(core, id);
  const plaintext = encodeContent(content);
  const cs = await ciphersuite();
  for (let attempt = 0; ; attempt++) {
    const state = await loadGroup(core, id);
    let made;
    try {
      made = await createApplicationMessage(state, plaintext, cs);
    } catch (e) {
      throw mlsError("cannot encrypt the message", e);
    }
    // The ratchet moved on: saved before sending, so no key is ever used twice.
    await saveGroup(core, id, made.newState);
    made.consumed.forEach(zeroOutUint8Array);
    const message = encodeMessage({ version: "mls10", wireformat: "mls_private_message", privateMessage: made.privateMessage });
    let accepted: Accepted;
    try {
      accepted = await core.api.json<Accepted>("POST", `/api/v1/conversations/${encodeURIComponent(id)}/messages`, {
        device: deviceIdOf(core),
        body: { json: { message } },
      });
    } catch (e) {
      if (attempt > 0 || errorCode(e) !== "stale_epoch") throw e;
      await syncInbox(core);
      continue;
    }
    const sent: Message = {
      conversationId: id,
      seq: accepted.seq,
      senderUserId: core.profile.userId,
      senderDeviceId: deviceIdOf(core),
      outgoing: true,
      time: now(),
      content,
    };
    await core.storage.appendMessage(sent);
    return sent;
  }
}

/** Sends `content` (a typing indicator) as an ephemeral message: relayed to the group's
 *  connected devices, never stored, not retried. */
export async function sendEphemeral(core: Core, id: string, content: KnownContent): Promise<void> {
  const cs = await ciphersuite();
  const state = await loadGroup(core, id);
  let made;
  try {
    made = await createApplicationMessage(state, encodeContent(content), cs);
  } catch (e) {
    throw mlsError("cannot encrypt the message", e);
  }
  await saveGroup(core, id, made.newState);
  made.consumed.forEach(zeroOutUint8Array);
  const message = encodeMessage({ version: "mls10", wireformat: "mls_private_message", privateMessage: made.privateMessage });
  await core.api.request("POST", `/api/v1/conversations/${encodeURIComponent(id)}/ephemeral`, {
    device: deviceIdOf(core),
    body: { json: { message } },
  });
}

/** The local history (everything this device sent or received), oldest first. */
export function history(core: Core, id?: string): Promise<Message[]> {
  return core.storage.messages(id);
}

// ----- files ------------------------------------------------------------------------------------

const AES_GCM = "AES-GCM";

function buffer(bytes: Uint8Array): ArrayBuffer {
  return bytes.slice().buffer;
}

/** Encrypts `data` with a fresh AES-256-GCM key, uploads it to conversation `id`, and sends
 *  its key, name, size, digest and media type (if known) in an MLS message. */
export async function sendFile(core: Core, id: string, name: string, data: Uint8Array, mime?: string): Promise<Message> {
  const key = crypto.getRandomValues(new Uint8Array(32));
  const nonce = crypto.getRandomValues(new Uint8Array(12));
  const aesKey = await crypto.subtle.importKey("raw", buffer(key), AES_GCM, false, ["encrypt"]);
  const sealed = new Uint8Array(await crypto.subtle.encrypt({ name: AES_GCM, iv: buffer(nonce) }, aesKey, buffer(data)));
  const attachment = await core.api.json<AttachmentView>(
    "POST",
    `/api/v1/conversations/${encodeURIComponent(id)}/attachments`,
    { body: { bytes: sealed } },
  );
  const content: FileContent = {
    type: "file",
    attachment: attachment.id,
    key: toBase64(key),
    nonce: toBase64(nonce),
    name,
    size: data.length,
    sha256: toHex(sha256(data)),
    ...(mime === undefined || mime === "" ? {} : { mime }),
  };
  return sendContent(core, id, content);
}

/** Downloads attachment `attachmentId` of a file message of conversation `id` (found in the
 *  local history, after a sync if it is not there yet), decrypts it and checks its digest. */
export async function fetchFile(
  core: Core,
  id: string,
  attachmentId: string,
): Promise<{ name: string; data: Uint8Array }> {
  const find = async (): Promise<FileContent | undefined> => {
    const messages = await core.storage.messages(id);
    for (const message of messages.reverse()) {
      if (message.content.type === "file" && message.content.attachment === attachmentId) return message.content;
    }
    return undefined;
  };
  let file = await find();
  if (file === undefined) {
    await syncInbox(core);
    file = await find();
  }
  if (file === undefined) {
    throw clientError("not_found", `no file message for attachment ${attachmentId} in conversation ${id}`);
  }
  return { name: file.name, data: await openFile(core, file) };
}

/** Downloads the attachment a file message points to, decrypts it and checks its digest and
 *  size (no MLS state involved: safe to run beside other operations). */
export async function openFile(core: Pick<Core, "api">, file: FileContent): Promise<Uint8Array> {
  const sealed = await core.api.bytes("GET", `/api/v1/attachments/${encodeURIComponent(file.attachment)}`);
  const key = fromBase64(file.key, "file key");
  const nonce = fromBase64(file.nonce, "file nonce");
  if (key.length !== 32 || nonce.length !== 12) throw clientError("integrity_error", "bad file key or nonce length");
  let data: Uint8Array;
  try {
    const aesKey = await crypto.subtle.importKey("raw", buffer(key), AES_GCM, false, ["decrypt"]);
    data = new Uint8Array(await crypto.subtle.decrypt({ name: AES_GCM, iv: buffer(nonce) }, aesKey, buffer(sealed)));
  } catch (e) {
    throw clientError("integrity_error", "the attachment does not decrypt: corrupted or wrong key", e);
  }
  if (toHex(sha256(data)) !== file.sha256 || data.length !== file.size) {
    throw clientError("integrity_error", "the attachment's digest or size does not match its message");
  }
  return data;
}

// ----- verification -------------------------------------------------------------------------------

/** The safety number shared with `username`: compare it out of band with theirs. */
export async function safetyNumber(core: Core, username: string): Promise<string> {
  const user = await findUser(core, username);
  const theirs = await verifiedDevices(core, user.id);
  return computeSafetyNumber(identityKeyOf(core), core.profile.userId, theirs.identityKey, user.id);
}
