import { describe, expect, it } from "vitest";
import { fold, preview, typingNow, typingUpdate, undelivered } from "../../src/app/timeline.js";
import type { Content, Message } from "../../src/core/index.js";

const ME = "me";
const BOB = "bob";
const CAROL = "carol";

let clock = 0;
function msg(sender: string, seq: number | undefined, content: Content): Message {
  clock += 1;
  return {
    conversationId: "c",
    seq,
    senderUserId: sender,
    senderDeviceId: `${sender}-device`,
    outgoing: sender === ME,
    time: new Date(clock * 1000).toISOString(),
    content,
  };
}
const text = (sender: string, seq: number, body: string) => msg(sender, seq, { type: "text", body });

describe("the timeline fold", () => {
  it("shows texts, files and unknown types in order, mine and theirs", () => {
    const t = fold(
      [
        text(BOB, 1, "hi"),
        text(ME, 2, "hello"),
        msg(BOB, 3, { type: "file", attachment: "a", key: "k", nonce: "n", name: "cat.png", size: 3, sha256: "00" }),
        msg(BOB, 4, { type: "unknown", raw: '{"type":"poll"}' }),
      ],
      ME,
    );
    expect(t.entries.map((e) => [e.seq, e.kind, e.body, e.mine])).toEqual([
      [1, "text", "hi", false],
      [2, "text", "hello", true],
      [3, "file", "cat.png", false],
      [4, "unknown", '{"type":"poll"}', false],
    ]);
    expect(preview(t)).toBe('{"type":"poll"}');
  });

  it("applies edits and deletions by their sender only; a deleted message stays deleted", () => {
    const t = fold(
      [
        text(BOB, 1, "teh"),
        msg(BOB, 2, { type: "edit", target: 1, body: "the" }),
        msg(CAROL, 3, { type: "edit", target: 1, body: "forged" }),
        text(ME, 4, "mine"),
        msg(BOB, 5, { type: "delete", target: 4 }),
        msg(ME, 6, { type: "delete", target: 4 }),
        msg(ME, 7, { type: "edit", target: 4, body: "back from the dead" }),
      ],
      ME,
    );
    expect(t.entries.map((e) => [e.seq, e.body, e.edited, e.deleted])).toEqual([
      [1, "the", true, false],
      [4, "", false, true],
    ]);
    expect(preview(t)).toBe("message deleted");
  });

  it("keeps one reaction per user and emoji, and takes it back", () => {
    const t = fold(
      [
        text(BOB, 1, "news"),
        msg(ME, 2, { type: "reaction", target: 1, emoji: "👍", remove: false }),
        msg(CAROL, 3, { type: "reaction", target: 1, emoji: "👍", remove: false }),
        msg(ME, 4, { type: "reaction", target: 1, emoji: "👍", remove: false }),
        msg(CAROL, 5, { type: "reaction", target: 1, emoji: "❤️", remove: false }),
        msg(CAROL, 6, { type: "reaction", target: 1, emoji: "❤️", remove: true }),
      ],
      ME,
    );
    expect([...(t.entries[0]?.reactions ?? [])]).toEqual([["👍", [CAROL, ME]]]);
  });

  it("counts receipts: read implies delivered, own receipts for own messages are ignored", () => {
    const t = fold(
      [
        text(ME, 1, "one"),
        text(ME, 2, "two"),
        msg(BOB, 3, { type: "receipt", status: "delivered", targets: [1, 2] }),
        msg(CAROL, 4, { type: "receipt", status: "read", targets: [1] }),
        text(BOB, 5, "three"),
        msg(BOB, 6, { type: "receipt", status: "read", targets: [5] }),
      ],
      ME,
    );
    const [one, two, three] = t.entries;
    expect([...(one?.deliveredTo ?? [])].sort()).toEqual([BOB, CAROL]);
    expect([...(one?.readBy ?? [])]).toEqual([CAROL]);
    expect([...(two?.readBy ?? [])]).toEqual([]);
    expect([...(three?.readBy ?? [])]).toEqual([]);
  });

  it("counts the others' messages I have not read (my read receipts, from any device)", () => {
    const history = [text(BOB, 1, "a"), text(ME, 2, "b"), text(BOB, 3, "c"), text(CAROL, 4, "d")];
    expect(fold(history, ME)).toMatchObject({ unread: 3, unreadSeqs: [1, 3, 4] });
    const read = [...history, msg(ME, 5, { type: "receipt", status: "read", targets: [1, 3] })];
    expect(fold(read, ME)).toMatchObject({ unread: 1, unreadSeqs: [4] });
    // A delivered receipt does not make a message read; a deleted one is not unread.
    const later = [...read, msg(ME, 6, { type: "receipt", status: "delivered", targets: [4] }), msg(CAROL, 7, { type: "delete", target: 4 })];
    expect(fold(later, ME).unread).toBe(0);
  });

  it("hides blocked users' messages", () => {
    const t = fold([text(BOB, 1, "hi"), text(CAROL, 2, "spam")], ME, new Set([CAROL]));
    expect(t.entries.map((e) => e.body)).toEqual(["hi"]);
    expect(t.unread).toBe(1);
  });

  it("lists the others' messages not yet acknowledged as delivered or read", () => {
    const history = [text(BOB, 1, "a"), text(BOB, 2, "b"), text(ME, 3, "c"), msg(ME, 4, { type: "receipt", status: "delivered", targets: [1] })];
    expect(undelivered(history, ME)).toEqual([2]);
  });
});

describe("typing indicators", () => {
  it("expire unless renewed, and stop when told", () => {
    let t = typingUpdate(new Map(), BOB, true, 1000, 5000);
    t = typingUpdate(t, CAROL, true, 2000, 5000);
    expect(typingNow(t, 3000)).toEqual([BOB, CAROL]);
    expect(typingNow(t, 6500)).toEqual([CAROL]);
    t = typingUpdate(t, CAROL, false, 3000);
    expect(typingNow(t, 3000)).toEqual([BOB]);
  });
});
