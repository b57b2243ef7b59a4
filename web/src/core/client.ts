// `Client`: one device of one SecureVox user — the public face of the protocol core.
// Every method that changes state runs alone (one at a time per client), so a sync, a
// pushed item and a send never interleave their MLS state changes; each change is saved to
// the storage before the method returns.

import { Api, tokensOf, type ApiOptions } from "./api.js";
import type { FileContent, KnownContent, Message } from "./content.js";
import { text as textContent } from "./content.js";
import { deviceIdOf, saveProfile, type Core } from "./core.js";
import { toBase64 } from "./encoding.js";
import { clientError } from "./errors.js";
import * as groups from "./groups.js";
import * as inbox from "./inbox.js";
import * as keys from "./keys.js";
import * as linking from "./linking.js";
import * as messaging from "./messaging.js";
import * as trust from "./trust.js";
import type { Profile, Storage } from "./storage.js";
import type { AuthResponse, DeviceView, EphemeralEvent, InboxEvent, UserKeys, UserView } from "./wire.js";

/** The name this client gives its devices unless told otherwise. */
export const DEVICE_NAME = "SecureVox web";

export interface ConnectOptions {
  /** Where the device's state lives (`MemoryStorage`, later IndexedDB). */
  storage: Storage;
  deviceName?: string;
  fetch?: ApiOptions["fetch"];
}

export class Client implements Core {
  readonly api: Api;
  readonly storage: Storage;
  profile: Profile;
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(api: Api, storage: Storage, profile: Profile) {
    this.api = api;
    this.storage = storage;
    this.profile = profile;
  }

  private static api(server: string, options: ConnectOptions, holder: { client?: Client }): Api {
    return new Api(server, undefined, {
      fetch: options.fetch,
      // Refreshed tokens are saved at once: the old refresh token is spent.
      onTokens: async () => {
        if (holder.client !== undefined) await saveProfile(holder.client);
      },
    });
  }

  /** Creates an account, then sets up this device: a new identity key (published), a device
   *  vouched for by it, and KeyPackages. The storage must be empty. */
  static async register(
    server: string,
    username: string,
    password: string,
    inviteCode: string | undefined,
    options: ConnectOptions,
  ): Promise<Client> {
    if ((await options.storage.loadProfile()) !== undefined) {
      throw clientError("invalid_state", "this storage already holds a profile");
    }
    const holder: { client?: Client } = {};
    const api = Client.api(server, options, holder);
    const auth = await api.json<AuthResponse>("POST", "/api/v1/auth/register", {
      auth: false,
      body: {
        json: {
          username,
          password,
          invite_code: inviteCode ?? null,
          device_name: options.deviceName ?? DEVICE_NAME,
        },
      },
    });
    return Client.setUp(api, auth, options, holder);
  }

  /** Logs in. With a profile of the same user in the storage, keeps its identity, device and
   *  groups (new tokens only). With an empty storage, an account without an identity gets
   *  one with this device; an account that has one fails with `link_required` unless
   *  `newIdentity` (which signs the account's other devices out of chat). */
  static async login(
    server: string,
    username: string,
    password: string,
    options: ConnectOptions & { newIdentity?: boolean },
  ): Promise<Client> {
    const existing = await options.storage.loadProfile();
    const holder: { client?: Client } = {};
    const api = Client.api(server, options, holder);
    const auth = await api.json<AuthResponse>("POST", "/api/v1/auth/login", {
      auth: false,
      body: { json: { username, password, device_name: options.deviceName ?? DEVICE_NAME } },
    });
    api.tokens = tokensOf(auth);
    if (existing !== undefined) {
      if (existing.userId !== auth.user.id) {
        throw clientError("invalid_state", `this storage holds the profile of ${existing.username}`);
      }
      if (existing.deviceId !== undefined) {
        const client = new Client(api, options.storage, { ...existing, server: api.base });
        holder.client = client;
        await saveProfile(client);
        return client;
      }
    }
    const keys = await api.json<UserKeys>("GET", `/api/v1/users/${encodeURIComponent(auth.user.id)}/keys`);
    if (keys.identity_key && options.newIdentity !== true) {
      // Linking logs in afresh (`requestLink`): this session would only linger.
      await api.request("POST", "/api/v1/auth/logout").catch(() => undefined);
      throw clientError(
        "link_required",
        "this account already has devices: link this one from a device that is signed in, or start a new identity",
      );
    }
    return Client.setUp(api, auth, options, holder);
  }

  /** Logs in on a new device (an empty storage) of an account that has devices, and asks to
   *  link it to the account's identity: show the request's `code`, then `wait()` for a
   *  signed-in device to approve it (linking.ts). */
  static requestLink(
    server: string,
    username: string,
    password: string,
    options: ConnectOptions,
  ): Promise<linking.PendingLink<Client>> {
    const linkOptions = { storage: options.storage, deviceName: options.deviceName ?? DEVICE_NAME, fetch: options.fetch };
    return linking.requestLink(server, username, password, linkOptions, () => Client.open(options));
  }

  /** Opens the profile kept in `storage`. */
  static async open(options: ConnectOptions): Promise<Client> {
    const profile = await options.storage.loadProfile();
    if (profile === undefined) throw clientError("invalid_state", "no profile in this storage: register or log in first");
    const holder: { client?: Client } = {};
    const api = Client.api(profile.server, options, holder);
    api.tokens = { accessToken: profile.accessToken, refreshToken: profile.refreshToken, sessionId: profile.sessionId };
    const client = new Client(api, options.storage, profile);
    holder.client = client;
    return client;
  }

  private static async setUp(
    api: Api,
    auth: AuthResponse,
    options: ConnectOptions,
    holder: { client?: Client },
  ): Promise<Client> {
    api.tokens = tokensOf(auth);
    const profile: Profile = {
      server: api.base,
      userId: auth.user.id,
      username: auth.user.username,
      accessToken: auth.access_token,
      refreshToken: auth.refresh_token,
      sessionId: auth.session_id,
      identitySeed: toBase64(keys.newIdentitySeed()),
      inboxCursor: 0,
    };
    const client = new Client(api, options.storage, profile);
    holder.client = client;
    await saveProfile(client);
    await keys.setUpDevice(client, options.deviceName ?? DEVICE_NAME);
    return client;
  }

  /** Runs `task` after every task queued before it (one state change at a time). */
  private exclusive<T>(task: () => Promise<T>): Promise<T> {
    const run = this.queue.then(task, task);
    this.queue = run.catch(() => undefined);
    return run;
  }

  get userId(): string {
    return this.profile.userId;
  }

  get username(): string {
    return this.profile.username;
  }

  get deviceId(): string {
    return deviceIdOf(this);
  }

  // ----- users and devices --------------------------------------------------------------------

  findUser(username: string): Promise<UserView> {
    return groups.findUser(this, username);
  }

  addContact(username: string): Promise<UserView> {
    return groups.addContact(this, username);
  }

  devices(): Promise<DeviceView[]> {
    return keys.devices(this);
  }

  topUpKeyPackages(): Promise<number> {
    return this.exclusive(() => keys.topUpKeyPackages(this));
  }

  /** The safety number shared with `username` (see safety.ts). */
  safetyNumber(username: string): Promise<string> {
    return messaging.safetyNumber(this, username);
  }

  // ----- linking devices (linking.ts) ---------------------------------------------------------

  /** New devices of this user waiting for approval, with the code each shows. */
  linkRequests(): Promise<linking.LinkRequest[]> {
    return linking.linkRequests(this);
  }

  /** Approves the request whose new device shows `code` (request `id` only, if given). */
  approveLink(code: string, id?: string): Promise<DeviceView> {
    return linking.approveLink(this, code, id);
  }

  rejectLink(id: string): Promise<void> {
    return linking.rejectLink(this, id);
  }

  /** Joins by external Commit the user's conversations this device is not in. */
  joinConversations(): Promise<linking.JoinReport> {
    return this.exclusive(() => linking.joinConversations(this));
  }

  // ----- groups -------------------------------------------------------------------------------

  createGroup(name: string, usernames: string[]): Promise<string> {
    return this.exclusive(() => groups.createGroup(this, name, usernames));
  }

  /** A 1:1 (`direct`) conversation with `username`; returns its id. */
  createDirect(username: string): Promise<string> {
    return this.exclusive(() => groups.createGroup(this, "", [username], "direct"));
  }

  addToGroup(conversationId: string, username: string): Promise<UserView> {
    return this.exclusive(() => groups.addToGroup(this, conversationId, username));
  }

  removeFromGroup(conversationId: string, username: string): Promise<UserView> {
    return this.exclusive(() => groups.removeFromGroup(this, conversationId, username));
  }

  updateKeys(conversationId: string): Promise<void> {
    return this.exclusive(() => groups.updateKeys(this, conversationId));
  }

  checkMembers(conversationId: string): Promise<string[]> {
    return this.exclusive(() => inbox.checkMembers(this, conversationId));
  }

  // ----- messages -----------------------------------------------------------------------------

  sendText(conversationId: string, body: string): Promise<Message> {
    return this.sendContent(conversationId, textContent(body));
  }

  sendContent(conversationId: string, content: KnownContent): Promise<Message> {
    return this.exclusive(() => messaging.sendContent(this, conversationId, content));
  }

  sendFile(conversationId: string, name: string, data: Uint8Array, mime?: string): Promise<Message> {
    return this.exclusive(() => messaging.sendFile(this, conversationId, name, data, mime));
  }

  fetchFile(conversationId: string, attachmentId: string): Promise<{ name: string; data: Uint8Array }> {
    return this.exclusive(() => messaging.fetchFile(this, conversationId, attachmentId));
  }

  /** The largest file the server takes, in bytes (the encrypted blob's limit less the
   *  AES-GCM tag). */
  async maxFileBytes(): Promise<number> {
    const limits = await this.api.json<{ max_bytes: number }>("GET", "/api/v1/attachments/limits");
    return Math.max(0, limits.max_bytes - 16);
  }

  /** How `userId`'s keys changed since this device accepted them; `undefined` if they did
   *  not (the first look accepts them: trust on first use). */
  checkKeys(userId: string): Promise<trust.KeyChange | undefined> {
    return trust.checkKeys(this, userId);
  }

  /** The users this device's MLS group of conversation `id` has members of. */
  groupUsers(id: string): Promise<string[]> {
    return trust.groupUsers(this, id);
  }

  /** The safety number of the keys `change` reported (the ones `acceptKeys` records). */
  safetyNumberOf(change: trust.KeyChange): string {
    return trust.safetyNumberOf(this, change);
  }

  /** Accepts the keys `change` reported, after the person saw it. */
  acceptKeys(change: trust.KeyChange): Promise<void> {
    return trust.acceptKeys(this, change);
  }

  /** The plaintext of the file a received or sent file message points to. */
  openFile(file: FileContent): Promise<Uint8Array> {
    return messaging.openFile(this, file);
  }

  /** Fetches and processes the inbox from the cursor. */
  sync(): Promise<inbox.SyncReport> {
    return this.exclusive(() => inbox.syncInbox(this));
  }

  /** Applies an `inbox` event pushed over Socket.IO (see realtime.ts). */
  receivePushed(event: InboxEvent): Promise<inbox.SyncReport> {
    return this.exclusive(() => inbox.receivePushed(this, event));
  }

  /** Sends a typing indicator (or other unstored content) to the group's connected devices. */
  sendEphemeral(conversationId: string, content: KnownContent): Promise<void> {
    return this.exclusive(() => messaging.sendEphemeral(this, conversationId, content));
  }

  /** Decrypts an `ephemeral` event pushed over Socket.IO (see realtime.ts). */
  receiveEphemeral(event: EphemeralEvent): Promise<Message | undefined> {
    return this.exclusive(() => inbox.receiveEphemeral(this, event));
  }

  /** Ends this session on the server (its tokens stop working); the device's state stays. */
  async logout(): Promise<void> {
    await this.api.request("POST", "/api/v1/auth/logout");
  }

  history(conversationId?: string): Promise<Message[]> {
    return messaging.history(this, conversationId);
  }
}
