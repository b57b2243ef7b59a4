// ts-mls as the core drives it, without a server: KeyPackages of the device key, a group,
// a Welcome, messages both ways and a removal — every state going through MemoryStorage's
// bytes between steps, as it will through IndexedDB.
import {
  createApplicationMessage,
  createCommit,
  createGroup,
  emptyPskIndex,
  joinGroup,
  processPrivateMessage,
  type ClientState,
} from "ts-mls";
import { describe, expect, it } from "vitest";
import { fromUtf8, utf8 } from "../../src/core/encoding.js";
import {
  ciphersuite,
  clientConfig,
  decodeMessage,
  deserializeGroup,
  encodeKeyPackage,
  encodeMessage,
  keyPackageRef,
  LAST_RESORT_EXTENSION,
  members,
  newKeyPackage,
  readKeyPackage,
  serializeGroup,
} from "../../src/core/mls.js";
import { MemoryStorage } from "../../src/core/storage.js";

async function roundTrip(storage: MemoryStorage, id: string, state: ClientState): Promise<ClientState> {
  await storage.saveGroup(id, serializeGroup(state));
  const bytes = await storage.loadGroup(id);
  if (bytes === undefined) throw new Error("lost");
  return deserializeGroup(bytes);
}

describe("the MLS layer", () => {
  it("makes KeyPackages that carry the device key and decode back", async () => {
    const cs = await ciphersuite();
    const signer = await cs.signature.keygen();
    const made = await newKeyPackage("u1:d1", signer, false);
    const read = await readKeyPackage(encodeKeyPackage(made.keyPackage));
    expect(read.leafNode.signaturePublicKey).toEqual(signer.publicKey);
    expect(read.leafNode.credential).toEqual({ credentialType: "basic", identity: utf8("u1:d1") });
    expect(await keyPackageRef(read)).toBe(made.ref);
    const last = await newKeyPackage("u1:d1", signer, true);
    expect(last.keyPackage.extensions.map((e) => e.extensionType)).toEqual([LAST_RESORT_EXTENSION]);
    expect(last.keyPackage.leafNode.capabilities.extensions).toContain(LAST_RESORT_EXTENSION);
  });

  it("refuses a KeyPackage whose signature does not verify", async () => {
    const cs = await ciphersuite();
    const made = await newKeyPackage("u1:d1", await cs.signature.keygen(), false);
    const forged = { ...made.keyPackage, signature: made.keyPackage.signature.map((b, i) => (i === 0 ? b ^ 1 : b)) };
    await expect(readKeyPackage(encodeKeyPackage(forged))).rejects.toThrow(/signature/);
  });

  it("runs a group through serialized states", async () => {
    const cs = await ciphersuite();
    const storage = new MemoryStorage();
    const aliceKey = await cs.signature.keygen();
    const bobKey = await cs.signature.keygen();
    const aliceOwn = await newKeyPackage("alice:a", aliceKey, false);
    const bobKp = await newKeyPackage("bob:b", bobKey, false);
    let alice = await createGroup(utf8("conv-1"), aliceOwn.keyPackage, aliceOwn.privateKeys, [], cs, clientConfig);
    alice = await roundTrip(storage, "alice", alice);

    const commit = await createCommit(
      { state: alice, cipherSuite: cs },
      { extraProposals: [{ proposalType: "add", add: { keyPackage: bobKp.keyPackage } }], ratchetTreeExtension: true },
    );
    alice = await roundTrip(storage, "alice", commit.newState);
    if (commit.welcome === undefined) throw new Error("no Welcome");
    const welcome = decodeMessage(
      encodeMessage({ version: "mls10", wireformat: "mls_welcome", welcome: commit.welcome }),
      "welcome",
    );
    if (welcome.wireformat !== "mls_welcome") throw new Error("not a Welcome");
    let bob = await joinGroup(welcome.welcome, bobKp.keyPackage, bobKp.privateKeys, emptyPskIndex, cs, undefined, undefined, clientConfig);
    bob = await roundTrip(storage, "bob", bob);
    expect(members(bob).map((m) => m.identity)).toEqual(["alice:a", "bob:b"]);

    const sent = await createApplicationMessage(alice, utf8("hello"), cs);
    alice = await roundTrip(storage, "alice", sent.newState);
    const received = await processPrivateMessage(bob, sent.privateMessage, emptyPskIndex, cs);
    if (received.kind !== "applicationMessage") throw new Error("not an application message");
    bob = await roundTrip(storage, "bob", received.newState);
    expect(fromUtf8(received.message)).toBe("hello");

    const back = await createApplicationMessage(bob, utf8("hi back"), cs);
    bob = await roundTrip(storage, "bob", back.newState);
    const got = await processPrivateMessage(alice, back.privateMessage, emptyPskIndex, cs);
    if (got.kind !== "applicationMessage") throw new Error("not an application message");
    expect(fromUtf8(got.message)).toBe("hi back");
    alice = await roundTrip(storage, "alice", got.newState);

    const removal = await createCommit(
      { state: alice, cipherSuite: cs },
      { extraProposals: [{ proposalType: "remove", remove: { removed: 1 } }] },
    );
    alice = await roundTrip(storage, "alice", removal.newState);
    if (removal.commit.wireformat !== "mls_private_message") throw new Error("commits go as PrivateMessages");
    const removed = await processPrivateMessage(bob, removal.commit.privateMessage, emptyPskIndex, cs);
    bob = await roundTrip(storage, "bob", removed.newState);
    expect(bob.groupActiveState.kind).toBe("removedFromGroup");
    expect(members(alice).map((m) => m.identity)).toEqual(["alice:a"]);
  });
});
