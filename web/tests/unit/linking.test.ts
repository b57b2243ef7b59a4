// Device linking without a server: the link code (vectors the Rust client checks too, in
// crates/securevox-client/tests/web_linking.rs), the HPKE suite (RFC 9180's own test vector),
// the envelope's seal and open and its refusals, and an external join from a GroupInfo with
// the RFC 9420 `external_pub` encoding that openmls and mls.ts write.
import { sha256 } from "@noble/hashes/sha2.js";
import { createApplicationMessage, createGroup, emptyPskIndex, processPrivateMessage, processPublicMessage } from "ts-mls";
import { describe, expect, it } from "vitest";
import { fromUtf8, toBase64, utf8 } from "../../src/core/encoding.js";
import { envelopeSeed, joinFromGroupInfo, openEnvelope, sealEnvelope } from "../../src/core/linking.js";
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
