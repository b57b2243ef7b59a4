// Groups: users and KeyPackage claims, and changes to a conversation's MLS group made by
// Commit (create, add, remove, key update) — one Commit per epoch, retried once after a
// `stale_epoch`, always sent with the GroupInfo after it (docs/E2EE.md, "Conversations and
// ordering").

import {
  createCommit,
  createGroup as mlsCreateGroup,
  zeroOutUint8Array,
  type ClientState,
  type KeyPackage,
  type Proposal,
} from "ts-mls";
import { deviceIdOf, loadGroup, saveGroup, type Core } from "./core.js";
import { clientError, errorCode, mlsError } from "./errors.js";
import { utf8 } from "./encoding.js";
import { isVouched, ownIdentity, signerOf, verifiedDevices } from "./keys.js";
import {
  ciphersuite,
  clientConfig,
  credentialIdentity,
  encodeMessage,
  groupInfoFor,
  leafIdentity,
  members,
  newKeyPackage,
  readKeyPackage,
} from "./mls.js";
import { syncInbox } from "./inbox.js";
import type { Claimed, ConversationView, IdView, UserView } from "./wire.js";

/** A change to a group made by one Commit. */
export type Change =
  | { kind: "add"; keyPackages: KeyPackage[] }
  /** Every device of this user. */
  | { kind: "remove"; userId: string }
  /** These members (`<user id>:<device id>`), gone from the conversation; none left to
   *  remove (another member's Commit did) is no change. */
  | { kind: "removeGone"; identities: string[] }
  | { kind: "update" };

/** The user with exactly this username (ignoring case). */
export async function findUser(core: Core, username: string): Promise<UserView> {
  if (!/^[A-Za-z0-9_.-]{2,64}$/.test(username)) {
    throw clientError("not_found", `not a valid username: ${JSON.stringify(username)}`);
  }
  const users = await core.api.json<UserView[]>("GET", `/api/v1/users/search?q=${encodeURIComponent(username)}&limit=50`);
  const user = users.find((u) => u.username.toLowerCase() === username.toLowerCase());
  if (user === undefined) throw clientError("not_found", `no user named ${username}`);
  return user;
}

/** Adds `username` to the contacts. */
export async function addContact(core: Core, username: string): Promise<UserView> {
  const user = await findUser(core, username);
  await core.api.request("PUT", `/api/v1/contacts/${encodeURIComponent(user.id)}`);
  return user;
}

/** Claims one KeyPackage per device of each user; each must be well-formed, of our
 *  ciphersuite, self-signed, and name a device its user's identity key vouches for, with
 *  that device's signature key. For this device's own user: its other devices (none is
 *  fine; the server leaves out the asking device); anyone else needs at least one. */
export async function claimKeyPackages(core: Core, userIds: string[]): Promise<KeyPackage[]> {
  const packages: KeyPackage[] = [];
  for (const userId of userIds) {
    const verified = await verifiedDevices(core, userId);
    const claimed = await core.api.json<Claimed>(
      "POST",
      `/api/v1/users/${encodeURIComponent(userId)}/key-packages/claim`,
      { device: deviceIdOf(core), body: { json: {} } },
    );
    if (claimed.key_packages.length === 0 && userId !== core.profile.userId) {
      throw clientError("no_key_packages", `user ${userId} has no device with KeyPackages`);
    }
    for (const claim of claimed.key_packages) {
      const keyPackage = await readKeyPackage(claim.key_package);
      const leaf = keyPackage.leafNode;
      if (
        leafIdentity(leaf) !== credentialIdentity(userId, claim.device_id) ||
        !isVouched(verified, claim.device_id, leaf.signaturePublicKey)
      ) {
        throw clientError(
          "not_vouched",
          `KeyPackage of device ${claim.device_id} is not vouched for by ${userId}'s identity key`,
        );
      }
      packages.push(keyPackage);
    }
  }
  return packages;
}

// ----- changes ------------------------------------------------------------------------------------

/** Creates a conversation (`group` by default; `direct` for one other user) named `name`
 *  with the users `usernames`; returns its id. */
export async function createGroup(
  core: Core,
  name: string,
  usernames: string[],
  kind: "group" | "direct" = "group",
): Promise<string> {
  const userIds: string[] = [];
  for (const username of usernames) userIds.push((await findUser(core, username)).id);
  const conversation = await core.api.json<IdView>("POST", "/api/v1/conversations", {
    device: deviceIdOf(core),
    body: { json: { kind, name: name === "" ? null : name, members: userIds } },
  });
  const id = conversation.id;
  const cs = await ciphersuite();
  // The creator's own leaf comes from a KeyPackage that is never uploaded.
  const own = await newKeyPackage(ownIdentity(core), signerOf(core), false);
  let state: ClientState;
  try {
    state = await mlsCreateGroup(utf8(id), own.keyPackage, own.privateKeys, [], cs, clientConfig);
  } catch (e) {
    throw mlsError("cannot create the group", e);
  }
  await saveGroup(core, id, state);
  // Everyone's devices, this user's other ones too (they read the conversation as well).
  const keyPackages = await claimKeyPackages(core, [...new Set([...userIds, core.profile.userId])]);
  if (keyPackages.length > 0) await commit(core, id, { kind: "add", keyPackages });
  return id;
}

/** Adds `username` (all their devices) to conversation `id`. */
export async function addToGroup(core: Core, id: string, username: string): Promise<UserView> {
  const user = await findUser(core, username);
  await loadGroup(core, id);
  const keyPackages = await claimKeyPackages(core, [user.id]);
  await commit(core, id, { kind: "add", keyPackages });
  return user;
}

/** Removes `username` (all their devices) from conversation `id` (for its admins). */
export async function removeFromGroup(core: Core, id: string, username: string): Promise<UserView> {
  const user = await findUser(core, username);
  await commit(core, id, { kind: "remove", userId: user.id });
  return user;
}

/** Before sending to conversation `id`: the MLS group's members the server no longer has
 *  in the conversation (a removed device, a user who left) are removed by a Commit, so that
 *  they cannot read what comes next even if they got hold of it. */
export async function removeGoneDevices(core: Core, id: string): Promise<void> {
  const state = await loadGroup(core, id); // first: not in the group is local news
  const view = await core.api.json<ConversationView>("GET", `/api/v1/conversations/${encodeURIComponent(id)}`);
  if (view.devices === undefined) return;
  const present = new Set(view.devices);
  const own = deviceIdOf(core);
  const gone = members(state)
    .map((m) => m.identity)
    .filter((identity): identity is string => {
      if (identity === undefined) return false;
      const device = identity.slice(identity.indexOf(":") + 1);
      return device !== own && !present.has(device);
    });
  if (gone.length > 0) await commit(core, id, { kind: "removeGone", identities: gone });
}

/** A self-update Commit: new keys for this device in the group (post-compromise security). */
export async function updateKeys(core: Core, id: string): Promise<void> {
  await commit(core, id, { kind: "update" });
}

/** Commits `change` (with a Welcome for added members and the GroupInfo after it). The group
 *  state moves on only once the server accepted the Commit; on `stale_epoch` the Commit is
 *  dropped, the inbox synced (applying the Commit that won the epoch), and one retry made. */
export async function commit(core: Core, id: string, change: Change): Promise<void> {
  const path = `/api/v1/conversations/${encodeURIComponent(id)}/commits`;
  const cs = await ciphersuite();
  for (let attempt = 0; ; attempt++) {
    const state = await loadGroup(core, id);
    const proposals: Proposal[] = [];
    const removedDevices: string[] = [];
    if (change.kind === "add") {
      for (const keyPackage of change.keyPackages) proposals.push({ proposalType: "add", add: { keyPackage } });
    } else if (change.kind === "remove") {
      const prefix = `${change.userId}:`;
      for (const member of members(state)) {
        if (member.identity?.startsWith(prefix)) {
          proposals.push({ proposalType: "remove", remove: { removed: member.leafIndex } });
          removedDevices.push(member.identity.slice(prefix.length));
        }
      }
      if (proposals.length === 0) throw clientError("not_found", "that user is not in the group");
    } else if (change.kind === "removeGone") {
      for (const member of members(state)) {
        if (member.identity !== undefined && change.identities.includes(member.identity)) {
          proposals.push({ proposalType: "remove", remove: { removed: member.leafIndex } });
          removedDevices.push(member.identity.slice(member.identity.indexOf(":") + 1));
        }
      }
      if (proposals.length === 0) return;
    }
    let made;
    let groupInfo;
    try {
      made = await createCommit(
        { state, cipherSuite: cs },
        // Welcomes carry the ratchet tree: joiners (openmls too) need no other source.
        { extraProposals: proposals, ratchetTreeExtension: true },
      );
      // Published for the user's new devices, which join by external Commit.
      groupInfo = await groupInfoFor(made.newState);
    } catch (e) {
      throw mlsError("cannot make the Commit", e);
    }
    const body = {
      commit: encodeMessage(made.commit),
      welcome:
        made.welcome === undefined
          ? null
          : encodeMessage({ version: "mls10", wireformat: "mls_welcome", welcome: made.welcome }),
      group_info: encodeMessage({ version: "mls10", wireformat: "mls_group_info", groupInfo }),
      removed_devices: removedDevices,
    };
    try {
      await core.api.request("POST", path, { device: deviceIdOf(core), body: { json: body } });
    } catch (e) {
      // The old state is untouched (ts-mls states are immutable): nothing to roll back.
      if (attempt > 0 || errorCode(e) !== "stale_epoch") throw e;
      await syncInbox(core);
      continue;
    }
    await saveGroup(core, id, made.newState);
    made.consumed.forEach(zeroOutUint8Array);
    return;
  }
}
