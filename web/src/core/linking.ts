// Linking a new device to the user's identity (docs/E2EE.md, "Linking a device"), as
// crates/securevox-client/src/client/linking.rs does it.
//
// The new device logs in, makes its MLS signature key and a one-time HPKE transfer key, and
// asks the server (`requestLink`); it shows the 16-digit link code of those two keys. On a
// device that holds the identity key, the user approves the request that shows the same code
// (`approveLink`): it signs the new device's key with the identity key and seals the identity
// seed to the transfer key. The new device opens that envelope, checks it holds the account's
// published identity key, uploads KeyPackages and joins the user's conversations by external
// Commit (`PendingLink.wait`).

import {
  joinGroupExternal,
  type CiphersuiteImpl,
  type ClientState,
  type GroupInfo,
  type Hpke,
  type KeyPackage,
  type PrivateKey,
  type PrivateKeyPackage,
  type PublicMessage,
} from "ts-mls";
import { Api, tokensOf, type ApiOptions } from "./api.js";
import { deviceIdOf, saveGroup, saveProfile, storedGroup, type Core } from "./core.js";
import { bytesEqual, concatBytes, fromBase64, fromUtf8, toBase64, utf8 } from "./encoding.js";
import { clientError, errorCode, mlsError } from "./errors.js";
import { checkMembers } from "./inbox.js";
import { identityPublicKey, KEY_PACKAGE_BATCH, ownIdentity, signDevice, signerOf, uploadKeyPackages } from "./keys.js";
import { ciphersuite, clientConfig, decodeMessage, encodeMessage, groupInfoFor, newKeyPackage } from "./mls.js";
import { digitsOf, linkCode } from "./safety.js";
import type { Profile, Storage } from "./storage.js";
import type { AuthResponse, ConversationView, DeviceView, UserKeys } from "./wire.js";

/** HPKE `info` of a link envelope; its `aad` is the link request's id. The suite is the
 *  MLS ciphersuite's: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM, base mode. */
const ENVELOPE_INFO = utf8("SecureVox device link v1");
/** The X25519 KEM output's length: an envelope is `kem_output || ciphertext`. */
const KEM_OUTPUT_LEN = 32;

/** `GET /api/v1/devices/links[/{id}]`. */
interface LinkView {
  id: string;
  state: "pending" | "approved" | "rejected";
  name?: string | null;
  signature_key: string;
  transfer_key: string;
  created_at: string;
  expires_at: string;
  device?: DeviceView;
  envelope?: string;
}

/** A request, seen from a device that may approve it. */
export interface LinkRequest {
  id: string;
  name: string | null;
  /** The code the new device shows (16 digits), computed here from its keys. */
  code: string;
  createdAt: string;
  expiresAt: string;
}

// ----- the envelope -----------------------------------------------------------------------------

/** Seals `plaintext` to `transferKey` for link request `linkId`: `kem_output || ciphertext`. */
export async function sealEnvelope(transferKey: Uint8Array, linkId: string, plaintext: Uint8Array): Promise<Uint8Array> {
  const hpke = (await ciphersuite()).hpke;
  const { ct, enc } = await hpke.seal(await hpke.importPublicKey(transferKey), plaintext, ENVELOPE_INFO, utf8(linkId));
  return concatBytes(enc, ct);
}

/** Opens an envelope sealed to this device's transfer key for link request `linkId`. */
export async function openEnvelope(privateKey: PrivateKey, linkId: string, sealed: Uint8Array): Promise<Uint8Array> {
  if (sealed.length <= KEM_OUTPUT_LEN) throw clientError("bad_envelope", "the approving device left no envelope");
  const hpke = (await ciphersuite()).hpke;
  try {
    return await hpke.open(privateKey, sealed.subarray(0, KEM_OUTPUT_LEN), sealed.subarray(KEM_OUTPUT_LEN), ENVELOPE_INFO, utf8(linkId));
  } catch (e) {
    throw clientError("bad_envelope", "the envelope does not open with this device's transfer key", e);
  }
}

/** The identity seed an opened envelope holds (`{"identity_key": base64(seed)}`). */
export function envelopeSeed(plaintext: Uint8Array): Uint8Array {
  let seed: Uint8Array | undefined;
  try {
    const value = (JSON.parse(fromUtf8(plaintext)) as { identity_key?: unknown }).identity_key;
    if (typeof value === "string") seed = fromBase64(value, "identity key");
  } catch {
    seed = undefined;
  }
  if (seed?.length !== 32) throw clientError("bad_envelope", "the envelope holds no identity key");
  return seed;
}

// ----- the approving device ---------------------------------------------------------------------

/** Requests of new devices waiting for this user's approval, each with the code it shows. */
export async function linkRequests(core: Core): Promise<LinkRequest[]> {
  const links = await core.api.json<LinkView[]>("GET", "/api/v1/devices/links");
  return links.map((link) => ({
    id: link.id,
    name: link.name ?? null,
    code: linkCode(fromBase64(link.signature_key, "signature key"), fromBase64(link.transfer_key, "transfer key")),
    createdAt: link.created_at,
    expiresAt: link.expires_at,
  }));
}

/** Approves the request whose keys give `code` (the one the new device shows; spaces are
 *  ignored) — and, if `id` is given, only if that request is the one: vouches for its key
 *  with the identity key and seals the identity seed to its transfer key. Returns the new
 *  device. */
export async function approveLink(core: Core, code: string, id?: string): Promise<DeviceView> {
  const digits = digitsOf(code);
  const links = await core.api.json<LinkView[]>("GET", "/api/v1/devices/links");
  const link = links.find(
    (l) =>
      (id === undefined || l.id === id) &&
      linkCode(fromBase64(l.signature_key, "signature key"), fromBase64(l.transfer_key, "transfer key")) === digits,
  );
  if (link === undefined) {
    throw clientError("link_code_mismatch", "no waiting link request shows this code: check the code on the new device");
  }
  const seed = fromBase64(core.profile.identitySeed, "identity seed");
  const signatureKey = fromBase64(link.signature_key, "signature key");
  const envelope = await sealEnvelope(
    fromBase64(link.transfer_key, "transfer key"),
    link.id,
    utf8(JSON.stringify({ identity_key: core.profile.identitySeed })),
  );
  return core.api.json<DeviceView>("POST", `/api/v1/devices/links/${encodeURIComponent(link.id)}/approve`, {
    body: {
      json: {
        identity_signature: toBase64(signDevice(seed, core.profile.userId, signatureKey)),
        envelope: toBase64(envelope),
      },
    },
  });
}

export async function rejectLink(core: Core, id: string): Promise<void> {
  await core.api.request("POST", `/api/v1/devices/links/${encodeURIComponent(id)}/reject`);
}

// ----- joining conversations by external Commit -------------------------------------------------

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

// ----- the new device ---------------------------------------------------------------------------

export interface LinkOptions {
  /** Where the device's state will live; it must hold no device yet. */
  storage: Storage;
  deviceName: string;
  fetch?: ApiOptions["fetch"];
}

export interface WaitOptions {
  /** Stops waiting (the request stays until `cancel` or its expiry). */
  signal?: AbortSignal;
  /** Between two looks at the request; 1 s by default. */
  intervalMs?: number;
  /** Called once approved, before this device is set up (which takes a moment). */
  onApproved?: () => void;
}

/** Logs in on a new device and asks to link it to the account's identity. Show `code` to the
 *  user, then `wait` (or `poll`). `open` opens the profile the approval leaves in storage. */
export async function requestLink<C extends Core>(
  server: string,
  username: string,
  password: string,
  options: LinkOptions,
  open: () => Promise<C>,
): Promise<PendingLink<C>> {
  const existing = await options.storage.loadProfile();
  if (existing?.deviceId !== undefined) throw clientError("invalid_state", "this storage holds a device already");
  const api = new Api(server, undefined, { fetch: options.fetch });
  const auth = await api.json<AuthResponse>("POST", "/api/v1/auth/login", {
    auth: false,
    body: { json: { username, password, device_name: options.deviceName } },
  });
  api.tokens = tokensOf(auth);
  const cs = await ciphersuite();
  const signer = await cs.signature.keygen();
  const transfer = await cs.hpke.generateKeyPair();
  const transferKey = await cs.hpke.exportPublicKey(transfer.publicKey);
  const link = await api.json<LinkView>("POST", "/api/v1/devices/links", {
    body: { json: { name: options.deviceName, signature_key: toBase64(signer.publicKey), transfer_key: toBase64(transferKey) } },
  });
  return new PendingLink(api, auth, options.storage, link.id, linkCode(signer.publicKey, transferKey), signer, transfer.privateKey, open);
}

/** A new device's request, waiting for approval. */
export class PendingLink<C extends Core = Core> {
  private done = false;

  constructor(
    private readonly api: Api,
    private readonly auth: AuthResponse,
    private readonly storage: Storage,
    /** The request's id. */
    readonly id: string,
    /** The 16 digits to show (both devices derive them from this device's two keys). */
    readonly code: string,
    private readonly signer: { publicKey: Uint8Array; signKey: Uint8Array },
    private readonly transferKey: PrivateKey,
    private readonly open: () => Promise<C>,
  ) {}

  private get path(): string {
    return `/api/v1/devices/links/${encodeURIComponent(this.id)}`;
  }

  /** One look at the request: undefined while it waits; once approved, this device set up
   *  (identity, KeyPackages, conversations joined). Throws `link_rejected` or `link_expired`. */
  async poll(onApproved?: () => void): Promise<C | undefined> {
    if (this.done) throw clientError("invalid_state", "this link request is answered already");
    let link: LinkView;
    try {
      link = await this.api.json<LinkView>("GET", this.path);
    } catch (e) {
      if (errorCode(e) === "not_found") throw clientError("link_expired", "the link request expired: ask again");
      throw e;
    }
    if (link.state === "pending") return undefined;
    this.done = true;
    if (link.state === "rejected") {
      await this.forget();
      throw clientError("link_rejected", "the link request was rejected on your other device");
    }
    onApproved?.();
    return this.finish(link);
  }

  /** Polls until the request is answered (or `signal` aborts: `link_cancelled`). */
  async wait(options: WaitOptions = {}): Promise<C> {
    for (;;) {
      if (options.signal?.aborted === true) throw clientError("link_cancelled", "stopped waiting for the approval");
      const client = await this.poll(options.onApproved);
      if (client !== undefined) return client;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, options.intervalMs ?? 1000);
        options.signal?.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
      });
    }
  }

  /** Withdraws the request and ends this login's session. */
  async cancel(): Promise<void> {
    this.done = true;
    await this.forget();
    await this.api.request("POST", "/api/v1/auth/logout").catch(() => undefined);
  }

  private async forget(): Promise<void> {
    await this.api.request("DELETE", this.path).catch((e: unknown) => {
      if (errorCode(e) !== "not_found") throw e;
    });
  }

  /** Opens the envelope, checks the identity against the account's, saves the profile, and
   *  sets the device up. */
  private async finish(link: LinkView): Promise<C> {
    const device = link.device;
    if (device === undefined) throw clientError("bad_response", "approved without a device");
    if (!bytesEqual(fromBase64(device.signature_key, "device key"), this.signer.publicKey)) {
      throw clientError("bad_envelope", "the approved device key is not this device's");
    }
    const sealed = fromBase64(link.envelope ?? "", "envelope");
    const seed = envelopeSeed(await openEnvelope(this.transferKey, link.id, sealed));
    const userId = this.auth.user.id;
    const keys = await this.api.json<UserKeys>("GET", `/api/v1/users/${encodeURIComponent(userId)}/keys`);
    const published = keys.identity_key ? fromBase64(keys.identity_key, "identity key") : new Uint8Array();
    if (!bytesEqual(published, identityPublicKey(seed))) {
      throw clientError("bad_envelope", "the envelope's identity key is not the one the account publishes");
    }
    const tokens = this.api.tokens ?? tokensOf(this.auth);
    const profile: Profile = {
      server: this.api.base,
      userId,
      username: this.auth.user.username,
      accessToken: tokens.accessToken,
      refreshToken: tokens.refreshToken,
      sessionId: tokens.sessionId,
      deviceId: device.id,
      deviceSignatureKey: toBase64(this.signer.publicKey),
      deviceSigningKey: toBase64(this.signer.signKey),
      identitySeed: toBase64(seed),
      inboxCursor: 0,
    };
    await this.storage.saveProfile(profile);
    await this.forget();
    const client = await this.open();
    await uploadKeyPackages(client, KEY_PACKAGE_BATCH, true);
    await joinConversations(client);
    await saveProfile(client);
    return client;
  }
}
