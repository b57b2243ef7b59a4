// Where a device keeps its state: the profile (account, tokens, keys, inbox cursor), one
// serialized MLS group state per conversation, the private halves of its KeyPackages, and
// the local message history. Everything here is secret (or plaintext): the IndexedDB
// implementation that comes with the UI must keep it in the origin's storage only.
//
// Group states are stored as bytes (ts-mls `encodeGroupState`), never as live objects, so
// every implementation — this in-memory one included — round-trips them exactly as a
// persistent one will.

import type { Message } from "./content.js";

export interface Profile {
  /** Base URL of the server, e.g. `https://chat.example.org`. */
  server: string;
  userId: string;
  username: string;
  accessToken: string;
  refreshToken: string;
  sessionId: string;
  /** This device's id, once registered. */
  deviceId?: string;
  /** This device's MLS signature key pair (base64; the private half in ts-mls's format). */
  deviceSignatureKey?: string;
  deviceSigningKey?: string;
  /** The user's Ed25519 identity key seed (base64 of 32 bytes). */
  identitySeed: string;
  /** The `id` of the last inbox item handled. */
  inboxCursor: number;
  /** Other users' keys as this device accepted them, by user id (trust.ts). */
  knownKeys?: Record<string, KnownKeys>;
}

/** A user's keys as this device last accepted them. */
export interface KnownKeys {
  /** Base64 of the Ed25519 identity key. */
  identityKey: string;
  /** The device ids it vouched for. */
  devices: string[];
}

/** A KeyPackage this device uploaded, with the private keys a Welcome to it needs. */
export interface StoredKeyPackage {
  /** The `MLSMessage` (`mls_key_package`), base64. */
  keyPackage: string;
  initPrivateKey: string;
  hpkePrivateKey: string;
  /** The last-resort KeyPackage may be used by many Welcomes: keep it after use. */
  lastResort: boolean;
}

export interface Storage {
  loadProfile(): Promise<Profile | undefined>;
  saveProfile(profile: Profile): Promise<void>;

  /** The serialized MLS state of conversation `id`'s group, if this device is in it. */
  loadGroup(id: string): Promise<Uint8Array | undefined>;
  saveGroup(id: string, state: Uint8Array): Promise<void>;
  deleteGroup(id: string): Promise<void>;
  groupIds(): Promise<string[]>;

  /** KeyPackages by their KeyPackageRef (hex). */
  loadKeyPackage(ref: string): Promise<StoredKeyPackage | undefined>;
  saveKeyPackage(ref: string, keyPackage: StoredKeyPackage): Promise<void>;
  deleteKeyPackage(ref: string): Promise<void>;

  appendMessage(message: Message): Promise<void>;
  /** The history, oldest first; only conversation `id`'s if given. */
  messages(id?: string): Promise<Message[]>;
}

/** Keeps everything in memory, as copies (nothing is shared with the caller's objects). */
export class MemoryStorage implements Storage {
  private profile: string | undefined;
  private readonly groups = new Map<string, Uint8Array>();
  private readonly keyPackages = new Map<string, string>();
  private readonly log: string[] = [];

  loadProfile(): Promise<Profile | undefined> {
    return Promise.resolve(this.profile === undefined ? undefined : (JSON.parse(this.profile) as Profile));
  }

  saveProfile(profile: Profile): Promise<void> {
    this.profile = JSON.stringify(profile);
    return Promise.resolve();
  }

  loadGroup(id: string): Promise<Uint8Array | undefined> {
    const state = this.groups.get(id);
    return Promise.resolve(state === undefined ? undefined : state.slice());
  }

  saveGroup(id: string, state: Uint8Array): Promise<void> {
    this.groups.set(id, state.slice());
    return Promise.resolve();
  }

  deleteGroup(id: string): Promise<void> {
    this.groups.delete(id);
    return Promise.resolve();
  }

  groupIds(): Promise<string[]> {
    return Promise.resolve([...this.groups.keys()]);
  }

  loadKeyPackage(ref: string): Promise<StoredKeyPackage | undefined> {
    const stored = this.keyPackages.get(ref);
    return Promise.resolve(stored === undefined ? undefined : (JSON.parse(stored) as StoredKeyPackage));
  }

  saveKeyPackage(ref: string, keyPackage: StoredKeyPackage): Promise<void> {
    this.keyPackages.set(ref, JSON.stringify(keyPackage));
    return Promise.resolve();
  }

  deleteKeyPackage(ref: string): Promise<void> {
    this.keyPackages.delete(ref);
    return Promise.resolve();
  }

  appendMessage(message: Message): Promise<void> {
    this.log.push(JSON.stringify(message));
    return Promise.resolve();
  }

  messages(id?: string): Promise<Message[]> {
    const all = this.log.map((line) => JSON.parse(line) as Message);
    return Promise.resolve(id === undefined ? all : all.filter((m) => m.conversationId === id));
  }
}
