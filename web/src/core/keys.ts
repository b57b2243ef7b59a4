// The key directory, seen from a device: the user's Ed25519 identity key, this device's
// registration (its MLS signature key vouched for by the identity key), its stock of
// KeyPackages, and the verification of other users' devices (docs/E2EE.md, "Identities and
// devices", "KeyPackages").

import { ed25519 } from "@noble/curves/ed25519.js";
import { bytesEqual, concatBytes, fromBase64, toBase64, utf8 } from "./encoding.js";
import { deviceIdOf, saveProfile, type Core } from "./core.js";
import { clientError } from "./errors.js";
import { ciphersuite, credentialIdentity, encodeKeyPackage, newKeyPackage, type SignatureKeyPair } from "./mls.js";
import type { DeviceView, IdView, KeyPackageStatus, UserKeys } from "./wire.js";

/** KeyPackages uploaded at registration and at each top-up (as the Rust client). */
export const KEY_PACKAGE_BATCH = 20;
const DEVICE_SIGNATURE_CONTEXT = utf8("SecureVox device key v1\0");

/** What an identity key signs to vouch for a device:
 *  `"SecureVox device key v1" 0x00 || user_id || 0x00 || signature_key`. */
export function deviceSignatureMessage(userId: string, signatureKey: Uint8Array): Uint8Array {
  return concatBytes(DEVICE_SIGNATURE_CONTEXT, utf8(userId), new Uint8Array([0]), signatureKey);
}

export function newIdentitySeed(): Uint8Array {
  return ed25519.utils.randomSecretKey();
}

export function identityPublicKey(seed: Uint8Array): Uint8Array {
  return ed25519.getPublicKey(seed);
}

export function signDevice(seed: Uint8Array, userId: string, signatureKey: Uint8Array): Uint8Array {
  return ed25519.sign(deviceSignatureMessage(userId, signatureKey), seed);
}

/** Strict (RFC 8032, not ZIP-215) verification, as the server's `verify_strict`. */
export function verifyDevice(
  identityKey: Uint8Array,
  userId: string,
  signatureKey: Uint8Array,
  signature: Uint8Array,
): boolean {
  try {
    return ed25519.verify(signature, deviceSignatureMessage(userId, signatureKey), identityKey, { zip215: false });
  } catch {
    return false;
  }
}

export function identityKeyOf(core: Core): Uint8Array {
  return identityPublicKey(fromBase64(core.profile.identitySeed, "identity seed"));
}

export function signerOf(core: Core): SignatureKeyPair {
  const { deviceSignatureKey, deviceSigningKey } = core.profile;
  if (deviceSignatureKey === undefined || deviceSigningKey === undefined) {
    throw clientError("invalid_state", "this profile has no device key");
  }
  return {
    publicKey: fromBase64(deviceSignatureKey, "device signature key"),
    signKey: fromBase64(deviceSigningKey, "device signing key"),
  };
}

export function ownIdentity(core: Core): string {
  return credentialIdentity(core.profile.userId, deviceIdOf(core));
}

/** Publishes the identity key, registers this device vouched for by it, and uploads
 *  KeyPackages (a batch and a last-resort one). */
export async function setUpDevice(core: Core, deviceName: string): Promise<void> {
  const seed = fromBase64(core.profile.identitySeed, "identity seed");
  await core.api.request("PUT", "/api/v1/keys/identity", {
    body: { json: { public_key: toBase64(identityPublicKey(seed)) } },
  });
  const cs = await ciphersuite();
  const signer = await cs.signature.keygen();
  // The private key is saved before the server knows the public one.
  core.profile.deviceSignatureKey = toBase64(signer.publicKey);
  core.profile.deviceSigningKey = toBase64(signer.signKey);
  await saveProfile(core);
  const device = await core.api.json<IdView>("POST", "/api/v1/devices", {
    body: {
      json: {
        name: deviceName,
        signature_key: toBase64(signer.publicKey),
        identity_signature: toBase64(signDevice(seed, core.profile.userId, signer.publicKey)),
      },
    },
  });
  core.profile.deviceId = device.id;
  await saveProfile(core);
  await uploadKeyPackages(core, KEY_PACKAGE_BATCH, true);
}

/** Makes `count` KeyPackages (and a last-resort one if asked), stores their private keys,
 *  then uploads them. */
export async function uploadKeyPackages(core: Core, count: number, lastResort: boolean): Promise<KeyPackageStatus> {
  const identity = ownIdentity(core);
  const signer = signerOf(core);
  const packages: string[] = [];
  for (let i = 0; i < count; i++) {
    const made = await newKeyPackage(identity, signer, false);
    await core.storage.saveKeyPackage(made.ref, stored(made, false));
    packages.push(encodeKeyPackage(made.keyPackage));
  }
  let last: string | null = null;
  if (lastResort) {
    const made = await newKeyPackage(identity, signer, true);
    await core.storage.saveKeyPackage(made.ref, stored(made, true));
    last = encodeKeyPackage(made.keyPackage);
  }
  return core.api.json<KeyPackageStatus>("POST", `/api/v1/devices/${deviceIdOf(core)}/key-packages`, {
    body: { json: { key_packages: packages, last_resort: last } },
  });
}

function stored(made: Awaited<ReturnType<typeof newKeyPackage>>, lastResort: boolean) {
  return {
    keyPackage: encodeKeyPackage(made.keyPackage),
    initPrivateKey: toBase64(made.privateKeys.initPrivateKey),
    hpkePrivateKey: toBase64(made.privateKeys.hpkePrivateKey),
    lastResort,
  };
}

/** Uploads KeyPackages if the server's stock of this device's is low; returns how many. */
export async function topUpKeyPackages(core: Core): Promise<number> {
  const status = await core.api.json<KeyPackageStatus>("GET", `/api/v1/devices/${deviceIdOf(core)}/key-packages`);
  if (!status.low && status.has_last_resort) return 0;
  const count = status.low ? KEY_PACKAGE_BATCH : 0;
  await uploadKeyPackages(core, count, !status.has_last_resort);
  return count + (status.has_last_resort ? 0 : 1);
}

export interface VerifiedDevices {
  identityKey: Uint8Array;
  /** Device id → signature key, for the devices the identity key signed. */
  devices: Map<string, Uint8Array>;
}

/** A user's identity key and the devices it vouches for. Devices without a valid signature
 *  are left out: the client checks what the server claims to have checked. */
export async function verifiedDevices(core: Core, userId: string): Promise<VerifiedDevices> {
  const keys = await core.api.json<UserKeys>("GET", `/api/v1/users/${encodeURIComponent(userId)}/keys`);
  if (!keys.identity_key) {
    throw clientError("not_vouched", `user ${userId} has no identity key`);
  }
  const identityKey = fromBase64(keys.identity_key, "identity key");
  if (identityKey.length !== 32) throw clientError("not_vouched", "an identity key is not 32 bytes");
  const devices = new Map<string, Uint8Array>();
  for (const device of keys.devices) {
    let key: Uint8Array;
    let signature: Uint8Array;
    try {
      key = fromBase64(device.signature_key, "signature key");
      signature = fromBase64(device.identity_signature, "identity signature");
    } catch {
      continue;
    }
    if (verifyDevice(identityKey, userId, key, signature)) devices.set(device.id, key);
  }
  return { identityKey, devices };
}

/** Whether `signatureKey` is the key of device `deviceId` vouched for in `verified`. */
export function isVouched(verified: VerifiedDevices, deviceId: string, signatureKey: Uint8Array): boolean {
  const key = verified.devices.get(deviceId);
  return key !== undefined && bytesEqual(key, signatureKey);
}

/** This user's devices. */
export function devices(core: Core): Promise<DeviceView[]> {
  return core.api.json<DeviceView[]>("GET", "/api/v1/devices");
}
