// Joining the user's conversations by external Commit: a linked device's first step
// (linking.ts), from the GroupInfo the server keeps for each conversation.

import {
  joinGroupExternal,
  type CiphersuiteImpl,
  type ClientState,
  type GroupInfo,
  type Hpke,
  type KeyPackage,
  type PrivateKeyPackage,
  type PublicMessage,
} from "ts-mls";
import { deviceIdOf, saveGroup, storedGroup, type Core } from "./core.js";
import { bytesEqual, utf8 } from "./encoding.js";
import { KEM_OUTPUT_LEN } from "./envelope.js";
import { clientError, errorCode, mlsError } from "./errors.js";
import { checkMembers } from "./inbox.js";
import { ownIdentity, signerOf } from "./keys.js";
import { ciphersuite, clientConfig, decodeMessage, encodeMessage, groupInfoFor, newKeyPackage } from "./mls.js";
import type { ConversationView } from "./wire.js";

/** What joining the user's conversations did. */
export interface JoinReport {
  joined: string[];
  /** Members of joined groups whose device is not vouched for by their user's identity key. */
  warnings: string[];
}

/** Joins, by external Commit, every conversation of the user this device is not in yet (a
 *  linked device's first step). One that has no GroupInfo yet is left for later. */
export async function joinConversations(core: Core): Promise<JoinReport> {
  const report: JoinReport = { joined: [], warnings: [] };
  const conversations = await core.api.json<ConversationView[]>("GET", "/api/v1/conversations");
  for (const conversation of conversations) {
    const id = conversation.id;
    if ((await storedGroup(core, id))?.groupActiveState.kind === "active") continue;
    try {
      await joinExternally(core, id);
    } catch (e) {
      if (errorCode(e) === "not_found") continue; // no GroupInfo published yet
      throw e;
    }
    report.joined.push(id);
    report.warnings.push(...(await checkMembers(core, id)));
  }
  return report;
}

/** Joins conversation `id` from the GroupInfo the server keeps; on `stale_epoch` (another
 *  Commit won the epoch) fetches the new GroupInfo and tries once more. */
async function joinExternally(core: Core, id: string): Promise<void> {
  const path = `/api/v1/conversations/${encodeURIComponent(id)}`;
  for (let attempt = 0; ; attempt++) {
    const { group_info } = await core.api.json<{ group_info: string }>("GET", `${path}/group-info`);
    const message = decodeMessage(group_info, "the GroupInfo");
    if (message.wireformat !== "mls_group_info") throw clientError("mls_error", "the server's GroupInfo is not a GroupInfo");
    const groupInfo = message.groupInfo;
    if (!bytesEqual(groupInfo.groupContext.groupId, utf8(id))) {
      throw clientError("mls_error", "the GroupInfo is for another group");
    }
    const own = await newKeyPackage(ownIdentity(core), signerOf(core), false);
    const joined = await joinFromGroupInfo(groupInfo, own.keyPackage, own.privateKeys);
    let after;
    try {
      after = await groupInfoFor(joined.newState);
    } catch (e) {
      throw mlsError("cannot make the GroupInfo after the join", e);
    }
    const body = {
      commit: encodeMessage({ version: "mls10", wireformat: "mls_public_message", publicMessage: joined.publicMessage }),
      group_info: encodeMessage({ version: "mls10", wireformat: "mls_group_info", groupInfo: after }),
    };
    try {
      await core.api.request("POST", `${path}/commits`, { device: deviceIdOf(core), body: { json: body } });
    } catch (e) {
      if (attempt > 0 || errorCode(e) !== "stale_epoch") throw e;
      continue;
    }
    await saveGroup(core, id, joined.newState);
    return;
  }
}

/** The external Commit that joins the group of `groupInfo` with this leaf, and the state after
 *  it (to keep once the server accepted the Commit). */
export async function joinFromGroupInfo(
  groupInfo: GroupInfo,
  keyPackage: KeyPackage,
  privateKeys: PrivateKeyPackage,
): Promise<{ publicMessage: PublicMessage; newState: ClientState }> {
  const cs = readingRfcExternalPub(await ciphersuite(), groupInfo);
  try {
    return await joinGroupExternal(groupInfo, keyPackage, privateKeys, false, cs, undefined, clientConfig);
  } catch (e) {
    throw mlsError("cannot join the group by external Commit", e);
  }
}

/** `cs`, but reading this GroupInfo's `external_pub` in the RFC 9420 form. ts-mls 1.6.4
 *  takes the extension's data as the bare HPKE key, while openmls and our own GroupInfos
 *  (mls.ts, `groupInfoFor`) write `struct { HPKEPublicKey external_pub; }`: a length, then
 *  the key. The extension cannot be rewritten before the join — the GroupInfo's signature
 *  covers it — so the key is unwrapped where ts-mls imports it. */
function readingRfcExternalPub(cs: CiphersuiteImpl, groupInfo: GroupInfo): CiphersuiteImpl {
  const data = groupInfo.extensions.find((e) => e.extensionType === "external_pub")?.extensionData;
  if (data?.length !== KEM_OUTPUT_LEN + 1 || data[0] !== KEM_OUTPUT_LEN) return cs;
  const key = data.subarray(1);
  const hpke = Object.create(cs.hpke) as Hpke;
  hpke.importPublicKey = (k: Uint8Array) => cs.hpke.importPublicKey(bytesEqual(k, data) ? key : k);
  return { ...cs, hpke };
}
