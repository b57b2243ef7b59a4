// The link envelope (docs/E2EE.md, "Linking a device"): the approving device seals the
// identity seed to the new device's one-time transfer key with HPKE, bound to the link
// request's id; the new device opens it. As crates/securevox-client/src/client/linking.rs.

import type { PrivateKey } from "ts-mls";
import { concatBytes, fromBase64, fromUtf8, utf8 } from "./encoding.js";
import { clientError } from "./errors.js";
import { ciphersuite } from "./mls.js";

/** HPKE `info` of a link envelope; its `aad` is the link request's id. The suite is the
 *  MLS ciphersuite's: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM, base mode. */
const ENVELOPE_INFO = utf8("SecureVox device link v1");
/** The X25519 KEM output's length (and an X25519 public key's): an envelope is
 *  `kem_output || ciphertext`. */
export const KEM_OUTPUT_LEN = 32;

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

/** The plaintext of an envelope carrying identity seed `seed`. */
export function seedPlaintext(seed: string): Uint8Array {
  return utf8(JSON.stringify({ identity_key: seed }));
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
