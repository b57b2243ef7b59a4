// A KeyPackage handed out by the server is used only if the user's identity key vouches for
// its device and signature key: a server that slips in a device of its own is caught.
import { describe, expect, it } from "vitest";
import { Api } from "../../src/core/api.js";
import type { Core } from "../../src/core/core.js";
import { toBase64 } from "../../src/core/encoding.js";
import { claimKeyPackages } from "../../src/core/groups.js";
import { identityPublicKey, newIdentitySeed, signDevice } from "../../src/core/keys.js";
import { ciphersuite, encodeKeyPackage, newKeyPackage } from "../../src/core/mls.js";
import { MemoryStorage } from "../../src/core/storage.js";

const USER = "u2";

interface Directory {
  identitySeed: Uint8Array;
  devices: { id: string; key: Uint8Array; signedBy?: Uint8Array }[];
  claims: { device: string; keyPackage: string }[];
}

/** A Core whose server is `directory`, answering the two requests a claim makes. */
function coreWith(directory: Directory): Core {
  const fake: typeof fetch = (input, init) => {
    const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
    const path = new URL(url).pathname;
    const json = (value: unknown) => Promise.resolve(new Response(JSON.stringify(value), { status: 200 }));
    if (path === `/api/v1/users/${USER}/keys` && init?.method === "GET") {
      return json({
        identity_key: toBase64(identityPublicKey(directory.identitySeed)),
        devices: directory.devices.map((d) => ({
          id: d.id,
          signature_key: toBase64(d.key),
          identity_signature: toBase64(signDevice(d.signedBy ?? directory.identitySeed, USER, d.key)),
        })),
      });
    }
    if (path === `/api/v1/users/${USER}/key-packages/claim` && init?.method === "POST") {
      return json({
        key_packages: directory.claims.map((c) => ({ device_id: c.device, key_package: c.keyPackage, last_resort: false })),
      });
    }
    return Promise.resolve(new Response(JSON.stringify({ error: { code: "not_found", message: path } }), { status: 404 }));
  };
  return {
    api: new Api("http://server.test", { accessToken: "a", refreshToken: "r", sessionId: "s" }, { fetch: fake }),
    storage: new MemoryStorage(),
    profile: { server: "http://server.test", userId: "u1", deviceId: "d1", username: "me", accessToken: "a", refreshToken: "r", sessionId: "s", identitySeed: "", inboxCursor: 0 },
  };
}

describe("claiming KeyPackages", () => {
  it("accepts a KeyPackage of a vouched device and refuses any other", async () => {
    const cs = await ciphersuite();
    const identitySeed = newIdentitySeed();
    const device = await cs.signature.keygen();
    const intruder = await cs.signature.keygen();
    const good = encodeKeyPackage((await newKeyPackage(`${USER}:d2`, device, false)).keyPackage);

    const ok = coreWith({ identitySeed, devices: [{ id: "d2", key: device.publicKey }], claims: [{ device: "d2", keyPackage: good }] });
    expect(await claimKeyPackages(ok, [USER])).toHaveLength(1);

    // The server hands out a KeyPackage made with another key than the vouched device's.
    const swapped = encodeKeyPackage((await newKeyPackage(`${USER}:d2`, intruder, false)).keyPackage);
    const cases: Directory[] = [
      { identitySeed, devices: [{ id: "d2", key: device.publicKey }], claims: [{ device: "d2", keyPackage: swapped }] },
      // A device signed by some other identity key.
      {
        identitySeed,
        devices: [{ id: "d2", key: device.publicKey, signedBy: newIdentitySeed() }],
        claims: [{ device: "d2", keyPackage: good }],
      },
      // A KeyPackage whose credential names another device than the one it is handed out for.
      {
        identitySeed,
        devices: [
          { id: "d2", key: device.publicKey },
          { id: "d3", key: device.publicKey },
        ],
        claims: [{ device: "d3", keyPackage: good }],
      },
    ];
    for (const directory of cases) {
      await expect(claimKeyPackages(coreWith(directory), [USER])).rejects.toMatchObject({ code: "not_vouched" });
    }
    await expect(claimKeyPackages(coreWith({ identitySeed, devices: [], claims: [] }), [USER])).rejects.toMatchObject({
      code: "no_key_packages",
    });
  });
});
