// Safety numbers and link codes, digit for digit as crates/securevox-client/src/safety.rs.
//
// Safety number (Signal's numeric fingerprint, version 0): for each side, with `key` the
// 32-byte Ed25519 identity public key and `id` the user id (UTF-8),
//   h = SHA-512(0x00 0x00 || key || id), then 5200 times h = SHA-512(h || key);
// the first 30 bytes of h as six 5-byte big-endian numbers, each mod 100000 as 5 digits.
// The two 30-digit strings are sorted and concatenated: 60 digits, shown as 12 groups of 5.
//
// Link code: SHA-256("SecureVox link code v1" 0x00 || signature_key || transfer_key), its
// first 8 bytes big-endian mod 10^16, as 16 digits.

import { sha256, sha512 } from "@noble/hashes/sha2.js";
import { concatBytes, utf8 } from "./encoding.js";

const VERSION = new Uint8Array([0, 0]);
const ITERATIONS = 5200;
const LINK_CODE_CONTEXT = utf8("SecureVox link code v1\0");

function bigEndian(bytes: Uint8Array): bigint {
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  return n;
}

/** The 30 digits of one side. */
export function fingerprint(identityKey: Uint8Array, userId: string): string {
  let hash = sha512(concatBytes(VERSION, identityKey, utf8(userId)));
  for (let i = 0; i < ITERATIONS; i++) hash = sha512(concatBytes(hash, identityKey));
  let digits = "";
  for (let i = 0; i < 30; i += 5) {
    digits += (bigEndian(hash.subarray(i, i + 5)) % 100_000n).toString().padStart(5, "0");
  }
  return digits;
}

/** The 60-digit safety number of two users (the same whichever side computes it). */
export function safetyNumber(keyA: Uint8Array, userA: string, keyB: Uint8Array, userB: string): string {
  const sides = [fingerprint(keyA, userA), fingerprint(keyB, userB)].sort();
  return sides.join("");
}

/** `digits` in groups of five, separated by spaces. */
export function display(digits: string): string {
  return (digits.match(/.{1,5}/g) ?? []).join(" ");
}

/** The 16-digit code both devices show while a new device is linked. */
export function linkCode(signatureKey: Uint8Array, transferKey: Uint8Array): string {
  const hash = sha256(concatBytes(LINK_CODE_CONTEXT, signatureKey, transferKey));
  return (bigEndian(hash.subarray(0, 8)) % 10_000_000_000_000_000n).toString().padStart(16, "0");
}

/** `code` with everything but its digits dropped (for codes typed with spaces). */
export function digitsOf(code: string): string {
  return code.replace(/[^0-9]/g, "");
}
