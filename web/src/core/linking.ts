// Linking a new device to the user's identity (docs/E2EE.md, "Linking a device"), as
// crates/securevox-client/src/client/linking.rs does it.
//
// The new device logs in, makes its MLS signature key and a one-time HPKE transfer key, and
// asks the server (`requestLink`); it shows the 16-digit link code of those two keys. On a
// device that holds the identity key, the user approves the request that shows the same code
// (`approveLink`): it signs the new device's key with the identity key and seals the identity
// seed to the transfer key. The new device opens that envelope, checks it holds the account's
// published identity key, uploads KeyPackages and joins the user's conversations by external
// Commit (`PendingLink.wait`). The envelope is envelope.ts; joining the conversations,
// joining.ts.

import type { PrivateKey } from "ts-mls";
import { Api, tokensOf, type ApiOptions } from "./api.js";
import { saveProfile, type Core } from "./core.js";
import { bytesEqual, fromBase64, toBase64 } from "./encoding.js";
import { envelopeSeed, openEnvelope, sealEnvelope, seedPlaintext } from "./envelope.js";
import { clientError, errorCode } from "./errors.js";
import { joinConversations } from "./joining.js";
import { identityPublicKey, KEY_PACKAGE_BATCH, signDevice, uploadKeyPackages, verifyDevice } from "./keys.js";
import { ciphersuite } from "./mls.js";
import { digitsOf, linkCode } from "./safety.js";
import type { Profile, Storage } from "./storage.js";
import type { AuthResponse, DeviceView, UserKeys } from "./wire.js";

// What client.ts and index.ts take from here.
export { joinConversations, type JoinReport } from "./joining.js";

/** `GET /api/v1/devices/links[/{id}]`. */
interface LinkView {
  id: string;
  state: "pending" | "approved" | "rejected";
  name?: string | null;
  signature_key: string;
  transfer_key: string;
  created_at: string;
  expires_at: string;
  /** The registered device, with the identity key's signature over its key (base64). */
  device?: DeviceView & { identity_signature?: string };
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
  const envelope = await sealEnvelope(fromBase64(link.transfer_key, "transfer key"), link.id, seedPlaintext(core.profile.identitySeed));
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

// ----- the new device ---------------------------------------------------------------------------

export interface LinkOptions {
  /** Where the device's state will live; it must hold no device yet. */
  storage: Storage;
  deviceName: string;
  fetch?: ApiOptions["fetch"];
}

export interface PollOptions {
  /** Stops waiting: a look whose answer arrives after it ignores that answer (`link_cancelled`). */
  signal?: AbortSignal;
  /** Called once approved, before this device is set up (which takes a moment). */
  onApproved?: () => void;
  /** Called when uploading KeyPackages or joining the conversations failed after the device
   *  was saved: the device is linked all the same (the next sync tops KeyPackages up;
   *  `Client.joinConversations` joins what is left). */
  onSetupFailed?: (e: unknown) => void;
}

export interface WaitOptions extends PollOptions {
  /** Between two looks at the request; 1 s by default. */
  intervalMs?: number;
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
  try {
    const cs = await ciphersuite();
    const signer = await cs.signature.keygen();
    const transfer = await cs.hpke.generateKeyPair();
    const transferKey = await cs.hpke.exportPublicKey(transfer.publicKey);
    const link = await api.json<LinkView>("POST", "/api/v1/devices/links", {
      body: { json: { name: options.deviceName, signature_key: toBase64(signer.publicKey), transfer_key: toBase64(transferKey) } },
    });
    const code = linkCode(signer.publicKey, transferKey);
    return new PendingLink(api, auth, options.storage, link.id, code, signer, transfer.privateKey, open);
  } catch (e) {
    // No request to wait on: the session opened for it would only linger.
    await api.request("POST", "/api/v1/auth/logout").catch(() => undefined);
    throw e;
  }
}

const cancelled = () => clientError("link_cancelled", "stopped waiting for the approval");

/** Resolves after `ms`, or as soon as `signal` aborts; leaves no listener on `signal`. */
function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const end = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", end);
      resolve();
    };
    const timer = setTimeout(end, ms);
    if (signal?.aborted === true) end();
    else signal?.addEventListener("abort", end, { once: true });
  });
}

/** A new device's request, waiting for approval. */
export class PendingLink<C extends Core = Core> {
  /** The request was answered (approved or rejected), or withdrawn. */
  private answered = false;
  /** `cancel` was called: whatever a look brings back after that is ignored. */
  private cancelling = false;
  /** The approval's profile is in storage: this device is linked, nothing is left to cancel. */
  private saved = false;
  /** Looks under way, which `cancel` waits out. */
  private readonly looks = new Set<Promise<unknown>>();

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
   *  (identity, KeyPackages, conversations joined). Throws `link_rejected`, `link_expired`,
   *  or `link_cancelled` (`signal` aborted or `cancel` called, even while the look was under
   *  way: its answer is then ignored). */
  async poll(options: PollOptions = {}): Promise<C | undefined> {
    const look = this.look(options);
    this.looks.add(look);
    try {
      return await look;
    } finally {
      this.looks.delete(look);
    }
  }

  /** Polls until the request is answered (or `signal` aborts: `link_cancelled`). */
  async wait(options: WaitOptions = {}): Promise<C> {
    for (;;) {
      const client = await this.poll(options);
      if (client !== undefined) return client;
      await pause(options.intervalMs ?? 1000, options.signal);
    }
  }

  /** Withdraws the request and ends this login's session, once any look under way is over;
   *  false (and nothing done) if an approval had already linked this device. */
  async cancel(): Promise<boolean> {
    this.cancelling = true;
    await Promise.allSettled(this.looks);
    if (this.saved) return false;
    this.answered = true;
    await this.forget();
    await this.api.request("POST", "/api/v1/auth/logout").catch(() => undefined);
    return true;
  }

  private async look(options: PollOptions): Promise<C | undefined> {
    const stopped = () => this.cancelling || options.signal?.aborted === true;
    if (stopped()) throw cancelled();
    if (this.answered) throw clientError("invalid_state", "this link request is answered already");
    let link: LinkView;
    try {
      link = await this.api.json<LinkView>("GET", this.path);
    } catch (e) {
      if (stopped()) throw cancelled();
      if (errorCode(e) === "not_found") throw clientError("link_expired", "the link request expired: ask again");
      throw e;
    }
    // Cancelled while the answer was on its way: the user's Cancel wins over it.
    if (stopped()) throw cancelled();
    if (link.state === "pending") return undefined;
    this.answered = true;
    if (link.state === "rejected") {
      await this.forget();
      throw clientError("link_rejected", "the link request was rejected on your other device");
    }
    options.onApproved?.();
    return this.finish(link, options.onSetupFailed);
  }

  private async forget(): Promise<void> {
    await this.api.request("DELETE", this.path).catch((e: unknown) => {
      if (errorCode(e) !== "not_found") throw e;
    });
  }

  /** Opens the envelope, checks the identity against the device's signature and the
   *  account's published key, saves the profile, and sets the device up. */
  private async finish(link: LinkView, onSetupFailed?: (e: unknown) => void): Promise<C> {
    const device = link.device;
    if (device === undefined) throw clientError("bad_response", "approved without a device");
    if (!bytesEqual(fromBase64(device.signature_key, "device key"), this.signer.publicKey)) {
      throw clientError("bad_envelope", "the approved device key is not this device's");
    }
    const sealed = fromBase64(link.envelope ?? "", "envelope");
    const seed = envelopeSeed(await openEnvelope(this.transferKey, link.id, sealed));
    const identityKey = identityPublicKey(seed);
    const userId = this.auth.user.id;
    const signature = fromBase64(device.identity_signature ?? "", "identity signature");
    if (!verifyDevice(identityKey, userId, this.signer.publicKey, signature)) {
      throw clientError("bad_envelope", "the envelope's identity key did not sign this device's key");
    }
    const keys = await this.api.json<UserKeys>("GET", `/api/v1/users/${encodeURIComponent(userId)}/keys`);
    const published = keys.identity_key ? fromBase64(keys.identity_key, "identity key") : new Uint8Array();
    if (!bytesEqual(published, identityKey)) {
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
    this.saved = true;
    // From here on the device is linked: a failure to set it up is reported, not thrown (the
    // storage now holds the device, so asking again would only be refused).
    await this.forget().catch(() => undefined);
    const client = await this.open();
    try {
      await uploadKeyPackages(client, KEY_PACKAGE_BATCH, true);
      await joinConversations(client);
      await saveProfile(client);
    } catch (e) {
      onSetupFailed?.(e);
    }
    return client;
  }
}
