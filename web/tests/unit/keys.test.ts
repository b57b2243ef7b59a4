import { ed25519 } from "@noble/curves/ed25519.js";
import { describe, expect, it } from "vitest";
import { fromUtf8 } from "../../src/core/encoding.js";
import { deviceSignatureMessage, identityPublicKey, newIdentitySeed, signDevice, verifyDevice } from "../../src/core/keys.js";

describe("device signatures", () => {
  it("cover the context, the user id and the device key as the server expects", () => {
    const key = new Uint8Array(32).fill(7);
    const message = deviceSignatureMessage("user-1", key);
    expect(fromUtf8(message.subarray(0, 24))).toBe("SecureVox device key v1\0");
    expect(fromUtf8(message.subarray(24, 30))).toBe("user-1");
    expect(message[30]).toBe(0);
    expect(message.subarray(31)).toEqual(key);
    expect(message.length).toBe(24 + 6 + 1 + 32);
  });

  it("verify for the signed device only", () => {
    const seed = newIdentitySeed();
    const identity = identityPublicKey(seed);
    const device = ed25519.getPublicKey(ed25519.utils.randomSecretKey());
    const signature = signDevice(seed, "user-1", device);
    expect(verifyDevice(identity, "user-1", device, signature)).toBe(true);
    expect(verifyDevice(identity, "user-2", device, signature)).toBe(false);
    expect(verifyDevice(identity, "user-1", identity, signature)).toBe(false);
    expect(verifyDevice(identityPublicKey(newIdentitySeed()), "user-1", device, signature)).toBe(false);
    expect(verifyDevice(identity, "user-1", device, new Uint8Array(64))).toBe(false);
    expect(verifyDevice(identity, "user-1", device, new Uint8Array(3))).toBe(false);
  });
});
