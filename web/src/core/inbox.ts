// The device's inbox: sync from the cursor (Welcomes, Commits, proposals, application
// messages, in order), acknowledgement, items pushed over Socket.IO applied by `prev`, and
// the check of every member of a changed group against its user's identity-signed devices
// (docs/E2EE.md, "Conversations and ordering"; docs/SOCKETIO.md, "Chat").

import {
  emptyPskIndex,
  joinGroup,
  processPrivateMessage,
  processPublicMessage,
  zeroOutUint8Array,
  type ClientState,
  type PrivateMessage,
  type Welcome,
} from "ts-mls";
// Not re-exported by ts-mls's index (1.6.4): reads who sent a PrivateMessage.
import { decryptSenderData } from "ts-mls/privateMessage.js";
import { decodeContent, type Message } from "./content.js";
import { deviceIdOf, loadGroup, saveGroup, saveProfile, storedGroup, type Core } from "./core.js";
import { toHex } from "./encoding.js";
import { clientError, mlsError } from "./errors.js";
import { isVouched, signerOf, topUpKeyPackages, verifiedDevices, type VerifiedDevices } from "./keys.js";
import { ciphersuite, clientConfig, decodeMessage, leafIdentity, members, readStoredKeyPackage } from "./mls.js";
import type { EphemeralEvent, InboxEvent, InboxItem, InboxPage } from "./wire.js";

/** What a sync (or a pushed item) did. */
export interface SyncReport {
  /** New messages, in order. */
  messages: Message[];
  /** Conversations this device joined (from Welcomes). */
  joined: string[];
  /** Conversations this device was removed from. */
  removedFrom: string[];
  /** Commits applied. */
  commits: number;
  /** KeyPackages uploaded because the server's stock ran low. */
  keyPackagesUploaded: number;
  /** Items that could not be processed (acknowledged anyway, so one bad item does not
   *  block the inbox). */
  errors: string[];
  /** Members of changed groups whose device is not vouched for by their user's identity key:
   *  the server may have slipped someone in. */
  warnings: string[];
}

export function emptyReport(): SyncReport {
  return { messages: [], joined: [], removedFrom: [], commits: 0, keyPackagesUploaded: 0, errors: [], warnings: [] };
}

const PAGE = 100;

/** Fetches the inbox from the cursor, processes everything in order, acknowledges it, checks
 *  the members of changed groups, and tops up KeyPackages if the server's stock is low. */
export async function syncInbox(core: Core): Promise<SyncReport> {
  const device = deviceIdOf(core);
  const report = emptyReport();
  const changed = new Set<string>();
  for (;;) {
    const page = await core.api.json<InboxPage>(
      "GET",
      `/api/v1/devices/${device}/inbox?after=${core.profile.inboxCursor}&limit=${PAGE}`,
    );
    for (const item of page.items) await take(core, item, report, changed);
    await advanceCursor(core, page.next_after);
    if (!page.more || page.items.length === 0) break;
  }
  await checkChanged(core, changed, report);
  report.keyPackagesUploaded = await topUpKeyPackages(core);
  return report;
}

/** Applies an `inbox` event pushed over Socket.IO: the item when everything before it was
 *  handled (`item.prev` at or before the cursor), else — or for a bare hint — a sync. An
 *  item at or before the cursor was handled already. */
export async function receivePushed(core: Core, event: InboxEvent): Promise<SyncReport> {
  const item = event.item;
  if (item === undefined) return syncInbox(core);
  const cursor = core.profile.inboxCursor;
  if (item.id <= cursor) return emptyReport();
  if ((item.prev ?? 0) > cursor) return syncInbox(core);
  const report = emptyReport();
  const changed = new Set<string>();
  await take(core, item, report, changed);
  await advanceCursor(core, item.id);
  await checkChanged(core, changed, report);
  return report;
}

/** Decrypts an `ephemeral` event (a typing indicator): an application message only, never
 *  stored; undefined for anything else or anything that does not decrypt (a device behind an
 *  epoch misses it, which is harmless). The group's ratchet moves on, so the state is saved. */
export async function receiveEphemeral(core: Core, event: EphemeralEvent): Promise<Message | undefined> {
  if (event.senderDevice === core.profile.deviceId) return undefined;
  let message;
  try {
    message = decodeMessage(event.message, "an ephemeral message");
  } catch {
    return undefined;
  }
  if (message.wireformat !== "mls_private_message" || message.privateMessage.contentType !== "application") return undefined;
  const item: InboxItem = {
    id: 0,
    conversation_id: event.conversationId,
    kind: "message",
    sender_device: event.senderDevice,
    data: event.message,
    created_at: new Date().toISOString(),
  };
  try {
    const handled = await handle(core, item);
    return handled.kind === "message" ? { ...handled.message, seq: undefined } : undefined;
  } catch {
    return undefined;
  }
}

/** Moves the cursor to `to` (if it is ahead), saves it, and acknowledges up to it. */
async function advanceCursor(core: Core, to: number): Promise<void> {
  if (to <= core.profile.inboxCursor) return;
  core.profile.inboxCursor = to;
  await saveProfile(core);
  await core.api.request("POST", `/api/v1/devices/${deviceIdOf(core)}/inbox/ack`, { body: { json: { up_to: to } } });
}

/** Processes one item into `report`; a failure is reported, not thrown. */
async function take(core: Core, item: InboxItem, report: SyncReport, changed: Set<string>): Promise<void> {
  try {
    const handled = await handle(core, item);
    switch (handled.kind) {
      case "message":
        await core.storage.appendMessage(handled.message);
        report.messages.push(handled.message);
        break;
      case "joined":
        changed.add(item.conversation_id);
        report.joined.push(item.conversation_id);
        break;
      case "removed":
        report.removedFrom.push(item.conversation_id);
        break;
      case "commit":
        changed.add(item.conversation_id);
        report.commits += 1;
        break;
      case "nothing":
        break;
    }
  } catch (e) {
    const reason = e instanceof Error ? e.message : String(e);
    report.errors.push(`inbox item ${item.id} (${item.kind} in ${item.conversation_id}): ${reason}`);
  }
}

type Handled =
  | { kind: "message"; message: Message }
  | { kind: "joined" }
  | { kind: "removed" }
  | { kind: "commit" }
  | { kind: "nothing" };

async function handle(core: Core, item: InboxItem): Promise<Handled> {
  const message = decodeMessage(item.data, "an inbox item");
  const cs = await ciphersuite();
  if (item.kind === "welcome") {
    if (message.wireformat !== "mls_welcome") throw clientError("mls_error", "a welcome item that is not a Welcome");
    return join(core, item, message.welcome);
  }
  const state = await loadGroup(core, item.conversation_id);
  if (message.wireformat === "mls_private_message") {
    const pm = message.privateMessage;
    // Who sent it: read before processing, while the sending epoch's secrets are at hand.
    const sender = pm.contentType === "application" ? await senderIdentity(state, pm) : undefined;
    let result;
    try {
      result = await processPrivateMessage(state, pm, emptyPskIndex, cs);
    } catch (e) {
      throw mlsError("cannot process the message", e);
    }
    if (result.kind === "applicationMessage") {
      if (sender === undefined) throw clientError("mls_error", "the sender's credential is not user:device");
      const [userId, deviceId] = sender;
      if (item.sender_device !== undefined && item.sender_device !== deviceId) {
        throw clientError(
          "mls_error",
          `the server says device ${item.sender_device} sent it, the MLS credential says ${deviceId}`,
        );
      }
      await saveGroup(core, item.conversation_id, result.newState);
      result.consumed.forEach(zeroOutUint8Array);
      return {
        kind: "message",
        message: {
          conversationId: item.conversation_id,
          seq: item.seq,
          senderUserId: userId,
          senderDeviceId: deviceId,
          outgoing: false,
          time: item.created_at,
          content: decodeContent(result.message),
        },
      };
    }
    await saveGroup(core, item.conversation_id, result.newState);
    result.consumed.forEach(zeroOutUint8Array);
    return afterHandshake(pm.contentType, result.newState);
  }
  if (message.wireformat === "mls_public_message") {
    // External Commits (a member's newly linked device) and proposals come as PublicMessages.
    let result;
    try {
      result = await processPublicMessage(state, message.publicMessage, emptyPskIndex, cs);
    } catch (e) {
      throw mlsError("cannot process the message", e);
    }
    await saveGroup(core, item.conversation_id, result.newState);
    result.consumed.forEach(zeroOutUint8Array);
    return afterHandshake(message.publicMessage.content.contentType, result.newState);
  }
  throw clientError("mls_error", `an inbox message of wire format ${message.wireformat}`);
}

function afterHandshake(contentType: string, state: ClientState): Handled {
  if (state.groupActiveState.kind === "removedFromGroup") return { kind: "removed" };
  return contentType === "commit" ? { kind: "commit" } : { kind: "nothing" };
}

/** Joins a group from a Welcome addressed to one of this device's KeyPackages. */
async function join(core: Core, item: InboxItem, welcome: Welcome): Promise<Handled> {
  const cs = await ciphersuite();
  let found;
  for (const secrets of welcome.secrets) {
    const ref = toHex(secrets.newMember);
    const stored = await core.storage.loadKeyPackage(ref);
    if (stored !== undefined) {
      found = { ref, stored };
      break;
    }
  }
  if (found === undefined) throw clientError("mls_error", "the Welcome names none of this device's KeyPackages");
  const { keyPackage, privateKeys } = readStoredKeyPackage(found.stored, signerOf(core));
  let state: ClientState;
  try {
    // No tree passed: it comes in the Welcome's ratchet_tree extension.
    state = await joinGroup(welcome, keyPackage, privateKeys, emptyPskIndex, cs, undefined, undefined, clientConfig);
  } catch (e) {
    throw mlsError("cannot join from the Welcome", e);
  }
  const groupId = new TextDecoder().decode(state.groupContext.groupId);
  if (groupId !== item.conversation_id) {
    throw clientError("mls_error", "the Welcome is for another group than its conversation");
  }
  const previous = await storedGroup(core, item.conversation_id);
  if (previous !== undefined && previous.groupActiveState.kind === "active") {
    throw clientError("mls_error", "a Welcome to a group this device is in already");
  }
  await saveGroup(core, item.conversation_id, state);
  // A KeyPackage is used once; the last-resort one stays for the next Welcome.
  if (!found.stored.lastResort) await core.storage.deleteKeyPackage(found.ref);
  return { kind: "joined" };
}

/** The `[user id, device id]` of a PrivateMessage's sender, from the sender data and the
 *  tree of the message's epoch (the current one or a retained past one). */
async function senderIdentity(state: ClientState, pm: PrivateMessage): Promise<[string, string] | undefined> {
  const cs = await ciphersuite();
  const epochData =
    pm.epoch === state.groupContext.epoch
      ? { senderDataSecret: state.keySchedule.senderDataSecret, ratchetTree: state.ratchetTree }
      : state.historicalReceiverData.get(pm.epoch);
  if (epochData === undefined) return undefined;
  let senderData;
  try {
    senderData = await decryptSenderData(pm, epochData.senderDataSecret, cs);
  } catch {
    return undefined;
  }
  if (senderData === undefined) return undefined;
  const node = epochData.ratchetTree[senderData.leafIndex * 2];
  if (node?.nodeType !== "leaf") return undefined;
  const identity = leafIdentity(node.leaf);
  const colon = identity?.indexOf(":") ?? -1;
  if (identity === undefined || colon < 0) return undefined;
  return [identity.slice(0, colon), identity.slice(colon + 1)];
}

async function checkChanged(core: Core, changed: Set<string>, report: SyncReport): Promise<void> {
  const cache = new Map<string, VerifiedDevices | undefined>();
  for (const id of changed) report.warnings.push(...(await checkMembers(core, id, cache)));
}

/** Checks every member of conversation `id`'s group: its credential must be
 *  `<user id>:<device id>` of a device whose signature key the user's identity key signed.
 *  Returns the problems found (none for a group this device is not in). */
export async function checkMembers(
  core: Core,
  id: string,
  cache = new Map<string, VerifiedDevices | undefined>(),
): Promise<string[]> {
  const state = await storedGroup(core, id);
  if (state === undefined || state.groupActiveState.kind !== "active") return [];
  const problems: string[] = [];
  for (const member of members(state)) {
    const identity = member.identity ?? "";
    const colon = identity.indexOf(":");
    if (colon < 0) {
      problems.push(`${id}: member ${JSON.stringify(identity)} is not user:device`);
      continue;
    }
    const [user, device] = [identity.slice(0, colon), identity.slice(colon + 1)];
    if (!cache.has(user)) {
      try {
        cache.set(user, await verifiedDevices(core, user));
      } catch (e) {
        problems.push(`${id}: cannot verify ${user}: ${e instanceof Error ? e.message : String(e)}`);
        cache.set(user, undefined);
      }
    }
    const verified = cache.get(user);
    if (verified === undefined || !isVouched(verified, device, member.signatureKey)) {
      problems.push(`${id}: member ${identity} is not a device vouched for by its user's identity key`);
    }
  }
  return problems;
}

