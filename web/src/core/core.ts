// What every protocol module works on: one device of one user — its API connection, its
// storage and its profile — and the loading and saving of its MLS group states. `Client` (client.ts) is the public face; the modules take a
// `Core` so that they can call each other without going through `Client`'s lock.

import type { ClientState } from "ts-mls";
import type { Api } from "./api.js";
import { clientError } from "./errors.js";
import { deserializeGroup, isActive, serializeGroup } from "./mls.js";
import type { Profile, Storage } from "./storage.js";

export interface Core {
  readonly api: Api;
  readonly storage: Storage;
  profile: Profile;
}

export function deviceIdOf(core: Core): string {
  const id = core.profile.deviceId;
  if (id === undefined) throw clientError("invalid_state", "this profile has no device yet: log in again");
  return id;
}

/** Saves the profile with the API's current tokens. */
export async function saveProfile(core: Core): Promise<void> {
  const tokens = core.api.tokens;
  if (tokens !== undefined) {
    core.profile.accessToken = tokens.accessToken;
    core.profile.refreshToken = tokens.refreshToken;
    core.profile.sessionId = tokens.sessionId;
  }
  await core.storage.saveProfile(core.profile);
}

export function now(): string {
  return new Date().toISOString();
}

// ----- group states: one serialized ts-mls state per conversation ---------------------------------

/** The group of conversation `id`, if this device is in it (active or not). */
export async function storedGroup(core: Core, id: string): Promise<ClientState | undefined> {
  const bytes = await core.storage.loadGroup(id);
  return bytes === undefined ? undefined : deserializeGroup(bytes);
}

/** The group of conversation `id`; this device must be an active member. */
export async function loadGroup(core: Core, id: string): Promise<ClientState> {
  const state = await storedGroup(core, id);
  if (state === undefined) {
    throw clientError("not_in_group", `this device is not in conversation ${id} (sync first?)`);
  }
  if (!isActive(state)) throw clientError("not_in_group", `this device was removed from conversation ${id}`);
  return state;
}

export async function saveGroup(core: Core, id: string, state: ClientState): Promise<void> {
  await core.storage.saveGroup(id, serializeGroup(state));
}
