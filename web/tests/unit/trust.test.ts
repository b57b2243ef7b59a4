import { describe, expect, it } from "vitest";
import { Api } from "../../src/core/api.js";
import type { Core } from "../../src/core/core.js";
import { toBase64 } from "../../src/core/encoding.js";
import { identityPublicKey, signDevice } from "../../src/core/keys.js";
import { safetyNumber } from "../../src/core/safety.js";
import { MemoryStorage } from "../../src/core/storage.js";
import { acceptKeys, checkKeys, safetyNumberOf } from "../../src/core/trust.js";

const BOB = "b0b00000-0000-4000-8000-000000000002";
const seed = (n: number) => new Uint8Array(32).fill(n);

/** What the key directory publishes for bob: an identity and devices (id → signature key),
 *  each signed by `signer` (his identity, unless a forgery is wanted). */
interface Published {
  identity: Uint8Array;
  devices: { id: string; key: Uint8Array; signer?: Uint8Array }[];
}

/** Alice's device, reading bob's keys from `published()` through a fake server. */
function aliceWith(published: () => Published): Core {
  const fetch: typeof globalThis.fetch = () => {
    const p = published();
    const body = {
      user_id: BOB,
      identity_key: toBase64(identityPublicKey(p.identity)),
      devices: p.devices.map((d) => ({
        id: d.id,
        signature_key: toBase64(d.key),
        identity_signature: toBase64(signDevice(d.signer ?? p.identity, BOB, d.key)),
      })),
    };
    return Promise.resolve(new Response(JSON.stringify(body), { status: 200 }));
  };
  const api = new Api("http://server.test", { accessToken: "a", refreshToken: "r", sessionId: "s" }, { fetch });
  const profile = {
    server: "http://server.test",
    userId: "a11ce000-0000-4000-8000-000000000001",
    username: "alice",
    accessToken: "a",
    refreshToken: "r",
    sessionId: "s",
    identitySeed: toBase64(seed(1)),
    inboxCursor: 0,
  };
  return { api, storage: new MemoryStorage(), profile };
}

describe("key changes (trust on first use)", () => {
  it("records the first look, then reports added devices and a new identity until accepted", async () => {
    const phone = { id: "d-phone", key: identityPublicKey(seed(10)) };
    let published: Published = { identity: seed(2), devices: [phone] };
    const alice = aliceWith(() => published);

    expect(await checkKeys(alice, BOB)).toBeUndefined();
    expect(alice.profile.knownKeys?.[BOB]?.devices).toEqual(["d-phone"]);
    expect(await checkKeys(alice, BOB)).toBeUndefined();

    // A linked laptop: same identity, one device more.
    const laptop = { id: "d-laptop", key: identityPublicKey(seed(11)) };
    published = { identity: seed(2), devices: [phone, laptop] };
    const added = await checkKeys(alice, BOB);
    expect(added).toMatchObject({ userId: BOB, identityChanged: false, addedDevices: ["d-laptop"] });
    // Not accepted yet: still reported.
    expect(await checkKeys(alice, BOB)).toMatchObject({ addedDevices: ["d-laptop"] });
    await acceptKeys(alice, added ?? expect.fail("a change"));
    expect(await checkKeys(alice, BOB)).toBeUndefined();
    expect(await alice.storage.loadProfile()).toMatchObject({ knownKeys: { [BOB]: { devices: ["d-laptop", "d-phone"] } } });

    // A device removed is no reason to warn.
    published = { identity: seed(2), devices: [laptop] };
    expect(await checkKeys(alice, BOB)).toBeUndefined();

    // A new identity: the safety number shown is the new key's.
    published = { identity: seed(3), devices: [laptop] };
    const renewed = await checkKeys(alice, BOB);
    expect(renewed).toMatchObject({ identityChanged: true, addedDevices: ["d-laptop"] });
    const expected = safetyNumber(identityPublicKey(seed(1)), alice.profile.userId, identityPublicKey(seed(3)), BOB);
    expect(safetyNumberOf(alice, renewed ?? expect.fail("a change"))).toBe(expected);
    // Whatever the server publishes later, accepting records the key that was shown.
    published = { identity: seed(4), devices: [laptop] };
    await acceptKeys(alice, renewed ?? expect.fail("a change"));
    expect(alice.profile.knownKeys?.[BOB]?.identityKey).toBe(toBase64(identityPublicKey(seed(3))));
    expect(await checkKeys(alice, BOB)).toMatchObject({ identityChanged: true });
  });

  it("does not count a device the identity did not sign", async () => {
    const phone = { id: "d-phone", key: identityPublicKey(seed(10)) };
    let published: Published = { identity: seed(2), devices: [phone] };
    const alice = aliceWith(() => published);
    await checkKeys(alice, BOB);
    published = { identity: seed(2), devices: [phone, { id: "d-forged", key: identityPublicKey(seed(12)), signer: seed(9) }] };
    expect(await checkKeys(alice, BOB)).toBeUndefined();
  });
});
