// Calls in the chats: matched to the conversation with the same members, their text for either
// side, missed calls counted until seen, and calls merged with messages by time.
import { describe, expect, it } from "vitest";
import type { ConversationView } from "../../src/core/index.js";
import { callsByConversation, callText, interleave, isMissed, unseenMissed, type HistoryItem } from "../../src/app/calllog.js";

function call(over: Partial<HistoryItem>): HistoryItem {
  return {
    session_id: "c1",
    caller_id: "alice",
    direction: "incoming",
    media: "video",
    members: ["alice", "bob"],
    state: "ended",
    outcome: "missed",
    duration_s: 0,
    created_at: "2026-01-01T10:00:00Z",
    answered_at: null,
    ended_at: "2026-01-01T10:00:45Z",
    ...over,
  };
}

const conversation = (id: string, kind: "direct" | "group", members: string[]): ConversationView => ({
  id,
  kind,
  members: members.map((user_id) => ({ user_id, role: "member" })),
});

describe("call log", () => {
  it("reads like a chat app for the callee and the caller", () => {
    expect(callText(call({}))).toBe("Missed video call");
    expect(callText(call({ media: "audio" }))).toBe("Missed audio call");
    expect(callText(call({ direction: "outgoing", outcome: "missed" }))).toBe("Video call · No answer");
    expect(callText(call({ direction: "outgoing", outcome: "cancelled", media: "audio" }))).toBe("Audio call · No answer");
    expect(callText(call({ direction: "outgoing", outcome: "declined" }))).toBe("Video call · Declined");
    expect(callText(call({ outcome: "completed", duration_s: 65 }))).toBe("Incoming video call · 1:05");
    expect(callText(call({ direction: "outgoing", outcome: "completed", duration_s: 3 }))).toBe("Outgoing video call · 0:03");
    expect(callText(call({ outcome: null, state: "connected" }))).toBe("Video call in progress");
    expect(isMissed(call({}))).toBe(true);
    expect(isMissed(call({ direction: "outgoing" }))).toBe(false);
  });

  it("goes to the conversation with exactly its members, a 1:1 first", () => {
    const conversations = [
      conversation("team", "group", ["alice", "bob", "carol"]),
      conversation("pair-group", "group", ["bob", "alice"]),
      conversation("direct", "direct", ["alice", "bob"]),
    ];
    const calls = [
      call({ session_id: "new", created_at: "2026-01-01T10:05:00Z", members: ["alice", "bob", "carol"] }),
      call({ session_id: "same-second-b", created_at: "2026-01-01T10:01:00Z" }),
      call({ session_id: "same-second-a", created_at: "2026-01-01T10:01:00Z" }),
      call({ session_id: "stranger", members: ["alice", "dave"] }),
    ];
    const by = callsByConversation(calls, conversations);
    expect(by.get("team")?.map((c) => c.session_id)).toEqual(["new"]);
    // Oldest first; the same second keeps the server's order.
    expect(by.get("direct")?.map((c) => c.session_id)).toEqual(["same-second-a", "same-second-b"]);
    expect(by.has("pair-group")).toBe(false);
  });

  it("counts missed calls after the last one seen", () => {
    const calls = [
      call({ session_id: "a", created_at: "2026-01-01T10:00:00Z" }),
      call({ session_id: "b", created_at: "2026-01-01T10:01:00Z", outcome: "completed" }),
      call({ session_id: "c", created_at: "2026-01-01T10:02:00Z" }),
    ];
    expect(unseenMissed(calls, undefined).map((c) => c.session_id)).toEqual(["a", "c"]);
    expect(unseenMissed(calls, "2026-01-01T10:00:00Z").map((c) => c.session_id)).toEqual(["c"]);
    expect(unseenMissed(calls, "2026-01-01T10:02:00Z")).toEqual([]);
  });

  it("merges calls with messages by time", () => {
    const messages = [{ time: "2026-01-01T10:00:30Z", n: 1 }, { time: "2026-01-01T10:03:00Z", n: 2 }];
    const calls = [call({ session_id: "x", created_at: "2026-01-01T10:01:00Z" }), call({ session_id: "y", created_at: "2026-01-01T10:04:00Z" })];
    const merged = interleave(messages, calls).map((e) => ("session_id" in e ? e.session_id : e.n));
    expect(merged).toEqual([1, "x", 2, "y"]);
  });
});
