// The MLS layer over ts-mls: the one ciphersuite, the client configuration, encoding of
// MLSMessages to and from the API's base64, KeyPackages, and the serialization of group
// states. Modules above this one never touch ts-mls's codecs directly.

import {
  decodeGroupState,
  decodeMlsMessage,
  defaultAuthenticationService,
  defaultCapabilities,
  defaultKeyPackageEqualityConfig,
  defaultKeyRetentionConfig,
  defaultLifetimeConfig,
  defaultPaddingConfig,
  encodeGroupState,
  encodeMlsMessage,
  generateKeyPackageWithKey,
  getCiphersuiteFromName,
  getCiphersuiteImpl,
  type CiphersuiteImpl,
  type ClientConfig,
  type ClientState,
  type Extension,
  type GroupInfo,
  type KeyPackage,
  type LeafNode,
  type MLSMessage,
  type PrivateKeyPackage,
} from "ts-mls";
// Not re-exported by ts-mls's index (1.6.4), but modules the package exports.
import { createGroupInfo } from "ts-mls/createCommit.js";
import { makeKeyPackageRef, verifyKeyPackage } from "ts-mls/keyPackage.js";
import { encodeRatchetTree } from "ts-mls/ratchetTree.js";
import { clientError, mlsError } from "./errors.js";
import { fromBase64, toBase64, toHex, utf8 } from "./encoding.js";
import type { StoredKeyPackage } from "./storage.js";

/** The one ciphersuite SecureVox uses (0x0001). */
export const CIPHERSUITE = "MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519";
/** Application messages from this many past epochs can still be decrypted (as the Rust client). */
export const MAX_PAST_EPOCHS = 3;
/** RFC 9420 §17.3: the `last_resort` KeyPackage extension. */
export const LAST_RESORT_EXTENSION = 10;
/** KeyPackages are valid from an hour ago (clock skew) for 84 days, as openmls makes them. */
const LIFETIME_BEFORE_S = 3600n;
const LIFETIME_AFTER_S = 84n * 24n * 3600n;

let suite: Promise<CiphersuiteImpl> | undefined;

/** The ciphersuite's implementation (WebCrypto where it can, else @noble). */
export function ciphersuite(): Promise<CiphersuiteImpl> {
  suite ??= getCiphersuiteImpl(getCiphersuiteFromName(CIPHERSUITE));
  return suite;
}

export const clientConfig: ClientConfig = {
  keyRetentionConfig: { ...defaultKeyRetentionConfig, retainKeysForEpochs: MAX_PAST_EPOCHS },
  lifetimeConfig: defaultLifetimeConfig,
  keyPackageEqualityConfig: defaultKeyPackageEqualityConfig,
  paddingConfig: defaultPaddingConfig,
  // Members are checked against their user's identity-signed device list after each change
  // (inbox.ts, `checkMembers`), as the Rust client does.
  authService: defaultAuthenticationService,
};

// ----- MLSMessages --------------------------------------------------------------------------

/** An MLSMessage as the API carries it (base64). */
export function encodeMessage(message: MLSMessage): string {
  return toBase64(encodeMlsMessage(message));
}

/** Decodes a base64 MLSMessage; the bytes must hold exactly one message. */
export function decodeMessage(text: string, what: string): MLSMessage {
  const bytes = fromBase64(text, what);
  let decoded: [MLSMessage, number] | undefined;
  try {
    decoded = decodeMlsMessage(bytes, 0);
  } catch (e) {
    throw mlsError(`${what} does not decode`, e);
  }
  if (decoded === undefined || decoded[1] !== bytes.length) {
    throw clientError("mls_error", `${what} is not one well-formed MLSMessage`);
  }
  return decoded[0];
}

// ----- credentials and KeyPackages ------------------------------------------------------------

/** A device's credential identity: `<user id>:<device id>`. */
export function credentialIdentity(userId: string, deviceId: string): string {
  return `${userId}:${deviceId}`;
}

/** The `<user id>:<device id>` a leaf's basic credential names, if it is one. */
export function leafIdentity(leaf: LeafNode): string | undefined {
  if (leaf.credential.credentialType !== "basic") return undefined;
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(leaf.credential.identity);
  } catch {
    return undefined;
  }
}

export interface SignatureKeyPair {
  publicKey: Uint8Array;
  signKey: Uint8Array;
}

export interface NewKeyPackage {
  keyPackage: KeyPackage;
  privateKeys: PrivateKeyPackage;
  /** The KeyPackageRef, hex: how a Welcome names it. */
  ref: string;
}

/** A KeyPackage of this device (credential `<user>:<device>`, signed by its device key). */
export async function newKeyPackage(
  identity: string,
  signer: SignatureKeyPair,
  lastResort: boolean,
): Promise<NewKeyPackage> {
  const cs = await ciphersuite();
  const capabilities = defaultCapabilities();
  const extensions: Extension[] = [];
  if (lastResort) {
    // The extension must be listed in the leaf's capabilities, or receivers refuse it.
    capabilities.extensions = [...capabilities.extensions, LAST_RESORT_EXTENSION];
    extensions.push({ extensionType: LAST_RESORT_EXTENSION, extensionData: new Uint8Array() });
  }
  const now = BigInt(Math.floor(Date.now() / 1000));
  const lifetime = { notBefore: now - LIFETIME_BEFORE_S, notAfter: now + LIFETIME_AFTER_S };
  try {
    const { publicPackage, privatePackage } = await generateKeyPackageWithKey(
      { credentialType: "basic", identity: utf8(identity) },
      capabilities,
      lifetime,
      extensions,
      signer,
      cs,
    );
    const ref = toHex(await makeKeyPackageRef(publicPackage, cs.hash));
    return { keyPackage: publicPackage, privateKeys: privatePackage, ref };
  } catch (e) {
    throw mlsError("cannot make a KeyPackage", e);
  }
}

export function encodeKeyPackage(keyPackage: KeyPackage): string {
  return encodeMessage({ version: "mls10", wireformat: "mls_key_package", keyPackage });
}

/** Decodes a KeyPackage the server handed out and checks its ciphersuite and signature. */
export async function readKeyPackage(text: string): Promise<KeyPackage> {
  const message = decodeMessage(text, "a KeyPackage");
  if (message.wireformat !== "mls_key_package") {
    throw clientError("mls_error", "the server handed out something that is not a KeyPackage");
  }
  const keyPackage = message.keyPackage;
  const cs = await ciphersuite();
  // (The decoder accepts only protocol version mls10.)
  if (keyPackage.cipherSuite !== CIPHERSUITE) {
    throw clientError("mls_error", "a KeyPackage of another ciphersuite");
  }
  if (!(await verifyKeyPackage(keyPackage, cs.signature))) {
    throw clientError("mls_error", "a KeyPackage whose signature does not verify");
  }
  return keyPackage;
}

/** What `StoredKeyPackage` keeps, back as ts-mls objects (the signing key is the device's). */
export function readStoredKeyPackage(
  stored: StoredKeyPackage,
  signer: SignatureKeyPair,
): { keyPackage: KeyPackage; privateKeys: PrivateKeyPackage } {
  const message = decodeMessage(stored.keyPackage, "a stored KeyPackage");
  if (message.wireformat !== "mls_key_package") throw clientError("invalid_state", "a stored KeyPackage does not decode");
  return {
    keyPackage: message.keyPackage,
    privateKeys: {
      initPrivateKey: fromBase64(stored.initPrivateKey, "init key"),
      hpkePrivateKey: fromBase64(stored.hpkePrivateKey, "HPKE key"),
      signaturePrivateKey: signer.signKey,
    },
  };
}

export async function keyPackageRef(keyPackage: KeyPackage): Promise<string> {
  return toHex(await makeKeyPackageRef(keyPackage, (await ciphersuite()).hash));
}

// ----- GroupInfo ------------------------------------------------------------------------------

/** The GroupInfo of the group's current epoch, signed by this device, with the `external_pub`
 *  and `ratchet_tree` extensions: what the server keeps for a user's new device to join by
 *  external Commit.
 *
 *  ts-mls 1.6.4 (`createGroupInfoWithExternalPub*`) writes `external_pub`'s data as the bare
 *  public key; RFC 9420 §12.4.3.2 makes it `struct { HPKEPublicKey external_pub; }`, an
 *  `opaque<V>`, so openmls (and the server, which decodes with it) refuses those bytes. We
 *  write the RFC's form. (ts-mls's own `joinGroupExternal` reads the bare form: an external
 *  join from the web must strip the length first.) */
export async function groupInfoFor(state: ClientState): Promise<GroupInfo> {
  const cs = await ciphersuite();
  const keyPair = await cs.hpke.deriveKeyPair(state.keySchedule.externalSecret);
  const externalPub = await cs.hpke.exportPublicKey(keyPair.publicKey);
  const extensions: Extension[] = [
    { extensionType: "external_pub", extensionData: opaqueV(externalPub) },
    { extensionType: "ratchet_tree", extensionData: encodeRatchetTree(state.ratchetTree) },
  ];
  return createGroupInfo(state.groupContext, state.confirmationTag, state, extensions, cs);
}

/** RFC 9420 §2.1.2 `opaque<V>`: a variable-length integer length, then the bytes. */
export function opaqueV(bytes: Uint8Array): Uint8Array {
  const n = bytes.length;
  let prefix: Uint8Array;
  if (n < 0x40) prefix = new Uint8Array([n]);
  else if (n < 0x4000) prefix = new Uint8Array([0x40 | (n >> 8), n & 0xff]);
  else if (n < 0x40000000) prefix = new Uint8Array([0x80 | (n >>> 24), (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]);
  else throw clientError("invalid_state", "too long for opaque<V>");
  const out = new Uint8Array(prefix.length + n);
  out.set(prefix);
  out.set(bytes, prefix.length);
  return out;
}

// ----- group states -----------------------------------------------------------------------------

export function serializeGroup(state: ClientState): Uint8Array {
  return encodeGroupState(state);
}

export function deserializeGroup(bytes: Uint8Array): ClientState {
  const decoded = decodeGroupState(bytes, 0);
  if (decoded === undefined || decoded[1] !== bytes.length) {
    throw clientError("invalid_state", "a stored group state does not decode");
  }
  return { ...decoded[0], clientConfig };
}

/** The group's members: leaf index, credential identity and signature key. */
export function members(state: ClientState): { leafIndex: number; identity: string | undefined; signatureKey: Uint8Array }[] {
  const out = [];
  for (let node = 0; node < state.ratchetTree.length; node += 2) {
    const entry = state.ratchetTree[node];
    if (entry?.nodeType !== "leaf") continue;
    out.push({ leafIndex: node / 2, identity: leafIdentity(entry.leaf), signatureKey: entry.leaf.signaturePublicKey });
  }
  return out;
}

export function isActive(state: ClientState): boolean {
  return state.groupActiveState.kind === "active";
}
