// Device linking without a server: the link code (vectors the Rust client checks too, in
// crates/securevox-client/tests/web_linking.rs), the HPKE suite (RFC 9180's own test vector),
// the envelope's seal and open and its refusals, an external join from a GroupInfo with the
// RFC 9420 `external_pub` encoding that openmls and mls.ts write, and the new device's
// request against a fake server: cancelled while a look is under way, a bad signature, a
// set-up that fails after the device is saved.
import { sha256 } from "@noble/hashes/sha2.js";
import { getEventListeners } from "node:events";
import { createApplicationMessage, createGroup, emptyPskIndex, processPrivateMessage, processPublicMessage } from "ts-mls";
import { describe, expect, it } from "vitest";
import { Client } from "../../src/core/client.js";
import { fromBase64, fromUtf8, toBase64, utf8 } from "../../src/core/encoding.js";
import { envelopeSeed, openEnvelope, sealEnvelope, seedPlaintext } from "../../src/core/envelope.js";
import { joinFromGroupInfo } from "../../src/core/joining.js";
import { identityPublicKey, newIdentitySeed, signDevice } from "../../src/core/keys.js";
import { MemoryStorage } from "../../src/core/storage.js";
import { ciphersuite, clientConfig, decodeMessage, encodeMessage, groupInfoFor, newKeyPackage } from "../../src/core/mls.js";
import { digitsOf, linkCode } from "../../src/core/safety.js";

const hex = (s: string) => Uint8Array.from((s.match(/../g) ?? []).map((b) => parseInt(b, 16)));

async function transferKeys() {
  const hpke = (await ciphersuite()).hpke;
  const pair = await hpke.generateKeyPair();
  return { privateKey: pair.privateKey, publicKey: await hpke.exportPublicKey(pair.publicKey) };
}

describe("the link code", () => {
  it("is the Rust client's, digit for digit (zero-padded to 16)", () => {
    // Asserted for `safety::link_code` in crates/securevox-client/tests/web_linking.rs.
    const signatureKey = sha256(utf8("signature key"));
    const transferKey = sha256(utf8("transfer key"));
    expect(linkCode(signatureKey, transferKey)).toBe("4578854807991817");
    expect(linkCode(transferKey, signatureKey)).toBe("0238535201210749");
    // And the older vectors of web_interop.rs.
    expect(linkCode(new Uint8Array(32).fill(1), new Uint8Array(32).fill(2))).toBe("9591062198749573");
  });

  it("is read back from what a person types", () => {
    expect(digitsOf("4578 8548-0799 1817")).toBe("4578854807991817");
  });
});

describe("the link envelope", () => {
  it("uses RFC 9180's DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM (test vector A.1.1)", async () => {
    const hpke = (await ciphersuite()).hpke;
    const skRm = await hpke.importPrivateKey(hex("4612c550263fc8ad58375df3f557aac531d26850903e55a9f23f21d8534e8ac8"));
    const enc = hex("37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431");
    const ct = hex("f938558b5d72f1a23810b4be2ab4f84331acc02fc97babc53a52ae8218a355a96d8770ac83d07bea87e13c512a");
    const info = hex("4f6465206f6e2061204772656369616e2055726e");
    const pt = await hpke.open(skRm, enc, ct, info, utf8("Count-0"));
    expect(fromUtf8(pt)).toBe("Beauty is truth, truth beauty");
  });

  it("seals to the transfer key and opens with its private half, for that link only", async () => {
    const keys = await transferKeys();
    const seed = new Uint8Array(32).map((_, i) => i);
    const plaintext = utf8(JSON.stringify({ identity_key: toBase64(seed) }));
    const sealed = await sealEnvelope(keys.publicKey, "link-1", plaintext);
    expect(sealed.length).toBe(32 + plaintext.length + 16);
    expect(envelopeSeed(await openEnvelope(keys.privateKey, "link-1", sealed))).toEqual(seed);
    // Another request's id (the AAD), another key, a flipped bit, a stub: all refused.
    await expect(openEnvelope(keys.privateKey, "link-2", sealed)).rejects.toMatchObject({ code: "bad_envelope" });
    const other = await transferKeys();
    await expect(openEnvelope(other.privateKey, "link-1", sealed)).rejects.toMatchObject({ code: "bad_envelope" });
    const flipped = sealed.slice();
    flipped[40] = (flipped[40] ?? 0) ^ 1;
    await expect(openEnvelope(keys.privateKey, "link-1", flipped)).rejects.toThrow(/does not open/);
    await expect(openEnvelope(keys.privateKey, "link-1", sealed.subarray(0, 32))).rejects.toThrow(/no envelope/);
  });

  it("must hold a 32-byte identity seed", () => {
    for (const text of ["not json", "{}", '{"identity_key": 5}', `{"identity_key": "${toBase64(new Uint8Array(31))}"}`]) {
      expect(() => envelopeSeed(utf8(text))).toThrow(/no identity key/);
    }
  });
});

describe("an external join", () => {
  it("reads the RFC 9420 external_pub of a published GroupInfo, and the group goes on", async () => {
    const cs = await ciphersuite();
    const aliceKey = await cs.signature.keygen();
    const alice = await newKeyPackage("u1:d1", aliceKey, false);
    let aliceState = await createGroup(utf8("conv-1"), alice.keyPackage, alice.privateKeys, [], cs, clientConfig);
    // What the server keeps and hands out: the GroupInfo as bytes, external_pub as opaque<V>.
    const published = encodeMessage({ version: "mls10", wireformat: "mls_group_info", groupInfo: await groupInfoFor(aliceState) });
    const message = decodeMessage(published, "GroupInfo");
    if (message.wireformat !== "mls_group_info") throw new Error("not a GroupInfo");
    const externalPub = message.groupInfo.extensions.find((e) => e.extensionType === "external_pub");
    expect(externalPub?.extensionData.length).toBe(33);
    expect(externalPub?.extensionData[0]).toBe(32);

    const linked = await newKeyPackage("u1:d2", await cs.signature.keygen(), false);
    const joined = await joinFromGroupInfo(message.groupInfo, linked.keyPackage, linked.privateKeys);
    const processed = await processPublicMessage(aliceState, joined.publicMessage, emptyPskIndex, cs);
    aliceState = processed.newState;
    expect(aliceState.groupContext.epoch).toBe(1n);
    expect(joined.newState.groupContext.epoch).toBe(1n);

    const hello = await createApplicationMessage(joined.newState, utf8("from the linked device"), cs);
    const read = await processPrivateMessage(aliceState, hello.privateMessage, emptyPskIndex, cs);
    expect(read.kind).toBe("applicationMessage");
    if (read.kind === "applicationMessage") expect(fromUtf8(read.message)).toBe("from the linked device");
  });
});

// ----- the new device, against a fake server ---------------------------------------------------

const SERVER = "http://server.test";
const USER = "u1";
const LINK = "link-1";

type Call = { method: string; path: string; body: unknown };
type Route = (call: Call) => Response | Promise<Response>;

const json = (status: number, value: unknown) => new Response(JSON.stringify(value), { status });
const refused = (status: number, code: string) => json(status, { error: { code, message: code } });

/** A fake server with the account `u1` (identity `seed`) and link request `link-1`; `routes`
 *  answer first (by "METHOD /path"), then the defaults below. */
function fakeServer(seed: Uint8Array, routes: Record<string, Route> = {}) {
  const calls: Call[] = [];
  const keys: { signature?: string; transfer?: string } = {};
  const linkView = (state: string) => ({
    id: LINK,
    state,
    name: "browser",
    signature_key: keys.signature,
    transfer_key: keys.transfer,
    created_at: "2025-01-01T00:00:00Z",
    expires_at: "2025-01-01T00:10:00Z",
  });
  /** The request as approved by a device holding `by` (the account's seed unless given). */
  const approved = async (by = seed) => {
    const signatureKey = fromBase64(keys.signature ?? "");
    const envelope = await sealEnvelope(fromBase64(keys.transfer ?? ""), LINK, seedPlaintext(toBase64(seed)));
    return json(200, {
      ...linkView("approved"),
      device: {
        id: "d2",
        name: "browser",
        signature_key: keys.signature,
        identity_signature: toBase64(signDevice(by, USER, signatureKey)),
        created_at: "2025-01-01T00:00:01Z",
      },
      envelope: toBase64(envelope),
    });
  };
  const defaults: Record<string, Route> = {
    "POST /api/v1/auth/login": () =>
      json(200, { access_token: "a", refresh_token: "r", session_id: "s", token_type: "Bearer", expires_in: 900, user: { id: USER, username: "alice" } }),
    "POST /api/v1/auth/logout": () => new Response(null, { status: 204 }),
    "POST /api/v1/devices/links": (call) => {
      const body = call.body as { signature_key: string; transfer_key: string };
      keys.signature = body.signature_key;
      keys.transfer = body.transfer_key;
      return json(201, linkView("pending"));
    },
    [`GET /api/v1/devices/links/${LINK}`]: () => json(200, linkView("pending")),
    [`DELETE /api/v1/devices/links/${LINK}`]: () => new Response(null, { status: 204 }),
    [`GET /api/v1/users/${USER}/keys`]: () => json(200, { identity_key: toBase64(identityPublicKey(seed)), devices: [] }),
    "POST /api/v1/devices/d2/key-packages": () => json(200, { count: 21, low: false, has_last_resort: true }),
    "GET /api/v1/conversations": () => json(200, []),
  };
  const fetch: typeof globalThis.fetch = async (input, init) => {
    const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
    const call = { method: init?.method ?? "GET", path: new URL(url).pathname, body: typeof init?.body === "string" ? (JSON.parse(init.body) as unknown) : undefined };
    calls.push(call);
    const route = routes[`${call.method} ${call.path}`] ?? defaults[`${call.method} ${call.path}`];
    if (route === undefined) throw new Error(`unexpected ${call.method} ${call.path}`);
    return route(call);
  };
  const asked = (method: string, path: string) => calls.some((c) => c.method === method && c.path === path);
  return { fetch, calls, asked, approved, linkView };
}

/** A promise and its resolve, for an answer held back until the test releases it. */
function deferred<T>() {
  let resolve: (value: T) => void = () => undefined;
  const promise = new Promise<T>((r) => { resolve = r; });
  return { promise, resolve };
}

async function request(server: ReturnType<typeof fakeServer>, storage = new MemoryStorage()) {
  return { storage, pending: await Client.requestLink(SERVER, "alice", "pw", { storage, fetch: server.fetch }) };
}

describe("a new device's link request", () => {
  it("ignores an approval that arrives after Cancel: no profile saved, the session ended", async () => {
    const seed = newIdentitySeed();
    const looking = deferred<undefined>();
    const answer = deferred<Response>();
    const server = fakeServer(seed, {
      [`GET /api/v1/devices/links/${LINK}`]: () => {
        looking.resolve(undefined);
        return answer.promise;
      },
    });
    const { storage, pending } = await request(server);
    const poll = pending.poll();
    await looking.promise; // the look is under way
    const cancel = pending.cancel();
    answer.resolve(await server.approved());
    await expect(poll).rejects.toMatchObject({ code: "link_cancelled" });
    expect(await cancel).toBe(true);
    expect(await storage.loadProfile()).toBeUndefined();
    expect(server.asked("GET", `/api/v1/users/${USER}/keys`)).toBe(false);
    expect(server.asked("DELETE", `/api/v1/devices/links/${LINK}`)).toBe(true);
    expect(server.asked("POST", "/api/v1/auth/logout")).toBe(true);
    await expect(pending.poll()).rejects.toMatchObject({ code: "link_cancelled" });
  });

  it("ignores an approval that arrives after its signal aborted", async () => {
    const seed = newIdentitySeed();
    const stop = new AbortController();
    const server = fakeServer(seed, {
      [`GET /api/v1/devices/links/${LINK}`]: async () => {
        stop.abort();
        return server.approved();
      },
    });
    const { storage, pending } = await request(server);
    await expect(pending.wait({ signal: stop.signal })).rejects.toMatchObject({ code: "link_cancelled" });
    expect(await storage.loadProfile()).toBeUndefined();
    expect(await pending.cancel()).toBe(true);
  });

  it("leaves no abort listener behind between two looks", async () => {
    let looks = 0;
    const server = fakeServer(newIdentitySeed(), {
      [`GET /api/v1/devices/links/${LINK}`]: () => (++looks < 4 ? json(200, server.linkView("pending")) : json(200, server.linkView("rejected"))),
    });
    const { pending } = await request(server);
    const stop = new AbortController();
    await expect(pending.wait({ signal: stop.signal, intervalMs: 1 })).rejects.toMatchObject({ code: "link_rejected" });
    expect(looks).toBe(4);
    expect(getEventListeners(stop.signal, "abort")).toHaveLength(0);
  });

  it("refuses an approval whose device key the envelope's identity did not sign", async () => {
    const seed = newIdentitySeed();
    const server = fakeServer(seed, { [`GET /api/v1/devices/links/${LINK}`]: () => server.approved(newIdentitySeed()) });
    const { storage, pending } = await request(server);
    await expect(pending.poll()).rejects.toMatchObject({ code: "bad_envelope" });
    expect(await storage.loadProfile()).toBeUndefined();
    // Not linked: Cancel still ends the session.
    expect(await pending.cancel()).toBe(true);
    expect(server.asked("POST", "/api/v1/auth/logout")).toBe(true);
  });

  it("is linked even when the set-up after saving the device fails; Cancel then does nothing", async () => {
    const seed = newIdentitySeed();
    const server = fakeServer(seed, {
      [`GET /api/v1/devices/links/${LINK}`]: () => server.approved(),
      "POST /api/v1/devices/d2/key-packages": () => refused(500, "internal_error"),
    });
    const { storage, pending } = await request(server);
    const failures: unknown[] = [];
    const approvals: string[] = [];
    const client = await pending.wait({ onApproved: () => approvals.push("approved"), onSetupFailed: (e) => failures.push(e) });
    expect(approvals).toEqual(["approved"]);
    expect(client.deviceId).toBe("d2");
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatchObject({ status: 500 });
    const profile = await storage.loadProfile();
    expect(profile?.deviceId).toBe("d2");
    expect(profile?.identitySeed).toBe(toBase64(seed));
    expect(await pending.cancel()).toBe(false);
    expect(server.asked("POST", "/api/v1/auth/logout")).toBe(false);
  });

  it("ends the session it opened when the server refuses the request", async () => {
    const server = fakeServer(newIdentitySeed(), { "POST /api/v1/devices/links": () => refused(409, "no_identity_key") });
    await expect(request(server)).rejects.toMatchObject({ code: "no_identity_key" });
    expect(server.calls.map((c) => `${c.method} ${c.path}`)).toEqual([
      "POST /api/v1/auth/login",
      "POST /api/v1/devices/links",
      "POST /api/v1/auth/logout",
    ]);
  });
});
