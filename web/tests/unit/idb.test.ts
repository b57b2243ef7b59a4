// The IndexedDB storage, on fake-indexeddb (an in-memory IndexedDB for Node).
import { IDBFactory } from "fake-indexeddb";
import { describe, expect, it } from "vitest";
import { IndexedDbStorage } from "../../src/core/idb.js";
import type { Message, Profile } from "../../src/core/index.js";

const profile: Profile = {
  server: "http://server.test",
  userId: "u1",
  username: "alice",
  accessToken: "a",
  refreshToken: "r",
  sessionId: "s",
  deviceId: "d1",
  identitySeed: "c2VlZA==",
  inboxCursor: 7,
};

const message = (conversationId: string, seq: number): Message => ({
  conversationId,
  seq,
  senderUserId: "u1",
  senderDeviceId: "d1",
  outgoing: true,
  time: "2026-11-23T10:00:00Z",
  content: { type: "text", body: `#${seq}` },
});

describe("IndexedDbStorage", () => {
  it("keeps the profile, groups, KeyPackages and history across reopening", async () => {
    const factory = new IDBFactory();
    const first = await IndexedDbStorage.open("test", factory);
    expect(await first.loadProfile()).toBeUndefined();
    await first.saveProfile(profile);
    await first.saveGroup("c1", new Uint8Array([1, 2, 3]));
    await first.saveGroup("c2", new Uint8Array([4]));
    await first.deleteGroup("c2");
    await first.saveKeyPackage("ref", { keyPackage: "kp", initPrivateKey: "i", hpkePrivateKey: "h", lastResort: false });
    for (const [c, seq] of [["c1", 1], ["c2", 1], ["c1", 2]] as const) await first.appendMessage(message(c, seq));
    first.close();

    const again = await IndexedDbStorage.open("test", factory);
    expect(await again.loadProfile()).toEqual(profile);
    expect(await again.loadGroup("c1")).toEqual(new Uint8Array([1, 2, 3]));
    expect(await again.loadGroup("c2")).toBeUndefined();
    expect(await again.groupIds()).toEqual(["c1"]);
    expect(await again.loadKeyPackage("ref")).toMatchObject({ keyPackage: "kp", lastResort: false });
    await again.deleteKeyPackage("ref");
    expect(await again.loadKeyPackage("ref")).toBeUndefined();
    expect((await again.messages("c1")).map((m) => m.seq)).toEqual([1, 2]);
    expect((await again.messages()).map((m) => `${m.conversationId}#${m.seq ?? 0}`)).toEqual(["c1#1", "c2#1", "c1#2"]);

    await again.forget();
    const empty = await IndexedDbStorage.open("test", factory);
    expect(await empty.loadProfile()).toBeUndefined();
    expect(await empty.messages()).toEqual([]);
    empty.close();
  });
});
