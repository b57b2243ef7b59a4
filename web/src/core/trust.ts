// What this device knows of other people's keys: trust on first use, then a warning when it
// changes. The first time a user's keys are seen, their identity key and the devices it vouches
// for are recorded in the profile; afterwards `checkKeys` reports a new identity key (the
// safety number changed: a reinstall, or someone else — compare it again) or devices that
// appeared since (linked by the identity, so the safety number stays). `acceptKeys` records
// what is published now, once the person has looked.

import { saveProfile, storedGroup, type Core } from "./core.js";
import { fromBase64, toBase64 } from "./encoding.js";
import { identityKeyOf, verifiedDevices } from "./keys.js";
import { members } from "./mls.js";
import { safetyNumber } from "./safety.js";
import type { KnownKeys } from "./storage.js";

/** How a user's published keys differ from the ones accepted before. */
export interface KeyChange {
  userId: string;
  /** A new identity key: the safety number changed. */
  identityChanged: boolean;
  /** Device ids that were not there before (under the same identity). */
  addedDevices: string[];
  /** The keys published now: what `acceptKeys` records. */
  published: KnownKeys;
}

async function published(core: Core, userId: string): Promise<KnownKeys> {
  const verified = await verifiedDevices(core, userId);
  return { identityKey: toBase64(verified.identityKey), devices: [...verified.devices.keys()].sort() };
}

/** Compares `userId`'s published keys with the accepted ones: `undefined` when nothing new
 *  (or on first sight, which records them). Removed devices are no reason to warn. */
export async function checkKeys(core: Core, userId: string): Promise<KeyChange | undefined> {
  const now = await published(core, userId);
  const known = core.profile.knownKeys?.[userId];
  if (known === undefined) {
    await remember(core, userId, now);
    return undefined;
  }
  const identityChanged = known.identityKey !== now.identityKey;
  const before = new Set(known.devices);
  const addedDevices = identityChanged ? now.devices : now.devices.filter((d) => !before.has(d));
  if (!identityChanged && addedDevices.length === 0) {
    // Only removals: nothing to tell, but stop knowing the removed ones.
    if (now.devices.length !== known.devices.length) await remember(core, userId, now);
    return undefined;
  }
  return { userId, identityChanged, addedDevices, published: now };
}

/** Accepts the keys a change reported (after the person saw the warning): later checks
 *  compare with those. */
export async function acceptKeys(core: Core, change: KeyChange): Promise<void> {
  await remember(core, change.userId, change.published);
}

async function remember(core: Core, userId: string, keys: KnownKeys): Promise<void> {
  core.profile.knownKeys = { ...core.profile.knownKeys, [userId]: keys };
  await saveProfile(core);
}

/** The safety number of the keys `change` reported — the very key that `acceptKeys` would
 *  record, never one fetched again (a server could show one key and slip in another). */
export function safetyNumberOf(core: Core, change: KeyChange): string {
  const theirs = fromBase64(change.published.identityKey, "identity key");
  return safetyNumber(identityKeyOf(core), core.profile.userId, theirs, change.userId);
}

/** The users this device's MLS state of conversation `id` has members of (credentials
 *  `<user id>:<device id>`), this user included: what to watch besides the server's list,
 *  which the server could shorten. */
export async function groupUsers(core: Core, id: string): Promise<string[]> {
  const state = await storedGroup(core, id);
  if (state === undefined) return [];
  const users = new Set<string>();
  for (const member of members(state)) {
    const user = member.identity?.split(":")[0];
    if (user !== undefined && user !== "") users.add(user);
  }
  return [...users];
}
