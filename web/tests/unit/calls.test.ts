// The call signaling logic against a fake socket and fake peer connections: who offers, how
// answers and early ICE candidates are applied, mute, leaving, and the end of the call.
import { describe, expect, it } from "vitest";
import { Call, rtcConfiguration, type PeerLike, type SignalingSocket } from "../../src/core/calls.js";

class FakeSocket implements SignalingSocket {
  sent: [string, unknown][] = [];
  connected = true;
  /** The ack callbacks of emitted events, by event. */
  acks = new Map<string, (ack: unknown) => void>();
  private handlers = new Map<string, ((payload: never) => void)[]>();
  emit(event: string, ...args: unknown[]): void {
    this.sent.push([event, args[0]]);
    const ack = args[1];
    if (typeof ack === "function") this.acks.set(event, ack as (ack: unknown) => void);
  }
  on(event: string, listener: (payload: never) => void): void {
    this.handlers.set(event, [...(this.handlers.get(event) ?? []), listener]);
  }
  off(event: string, listener: (payload: never) => void): void {
    this.handlers.set(event, (this.handlers.get(event) ?? []).filter((l) => l !== listener));
  }
  listeners(): number {
    return [...this.handlers.values()].reduce((n, l) => n + l.length, 0);
  }
  /** Delivers a server event and lets its handlers run. */
  async deliver(event: string, payload: unknown): Promise<void> {
    for (const listener of this.handlers.get(event) ?? []) (listener as (p: unknown) => void)(payload);
    await new Promise((r) => setTimeout(r, 0));
  }
  events(name: string): unknown[] {
    return this.sent.filter(([event]) => event === name).map(([, payload]) => payload);
  }
}

class FakePeer implements PeerLike {
  log: string[] = [];
  closed = false;
  connectionState = "new";
  signalingState = "stable";
  localDescription: RTCSessionDescriptionInit | null = null;
  remoteDescription: RTCSessionDescriptionInit | null = null;
  offerOptions: (RTCOfferOptions | undefined)[] = [];
  /** The DTLS fingerprint its descriptions carry (another peer connection, another one). */
  static made = 0;
  readonly print = `AA:${String(++FakePeer.made)}`;
  onicecandidate: PeerLike["onicecandidate"] = null;
  ontrack: PeerLike["ontrack"] = null;
  onconnectionstatechange: PeerLike["onconnectionstatechange"] = null;
  constructor(readonly config: RTCConfiguration) {}
  addTrack(): void {
    this.log.push("track");
  }
  getSenders(): [] {
    return [];
  }
  createOffer(options?: RTCOfferOptions): Promise<RTCSessionDescriptionInit> {
    this.offerOptions.push(options);
    return Promise.resolve({ type: "offer", sdp: "v=0 offer" });
  }
  createAnswer(): Promise<RTCSessionDescriptionInit> {
    return Promise.resolve({ type: "answer", sdp: "v=0 answer" });
  }
  setLocalDescription(d: RTCSessionDescriptionInit): Promise<void> {
    this.log.push(`local ${d.type}`);
    if (d.type === "rollback") this.signalingState = "stable";
    else {
      this.localDescription = d;
      this.signalingState = d.type === "offer" ? "have-local-offer" : "stable";
    }
    return Promise.resolve();
  }
  setRemoteDescription(d: RTCSessionDescriptionInit): Promise<void> {
    this.log.push(`remote ${d.type}`);
    this.remoteDescription = d;
    this.signalingState = d.type === "offer" ? "have-remote-offer" : "stable";
    return Promise.resolve();
  }
  addIceCandidate(c: RTCIceCandidateInit | null): Promise<void> {
    this.log.push(`candidate ${c === null ? "end" : (c.candidate ?? "")}`);
    return Promise.resolve();
  }
  close(): void {
    this.closed = true;
  }
  connect(): void {
    this.connectionState = "connected";
    this.onconnectionstatechange?.();
  }
}

function setUp(userId: string, stillLive?: () => Promise<boolean>) {
  const socket = new FakeSocket();
  const peers: FakePeer[] = [];
  const call = new Call({
    sessionId: "s1",
    userId,
    media: "audio",
    socket,
    localStream: undefined,
    createPeer: (config) => {
      const peer = new FakePeer(config);
      peers.push(peer);
      return peer;
    },
    rtcConfig: rtcConfiguration({ ice_servers: [{ urls: ["turn:x"], username: "u", credential: "p" }] }, true),
    ...(stillLive === undefined ? {} : { stillLive }),
  });
  return { socket, peers, call };
}

describe("calls", () => {
  it("the newcomer offers to everyone already in the call", async () => {
    const { socket, peers, call } = setUp("carol");
    call.accept();
    expect(socket.events("call_accept")).toEqual([{ sessionId: "s1" }]);
    await socket.deliver("call_joined", {
      sessionId: "s1",
      participants: [{ userId: "alice" }, { userId: "bob", audioMuted: true }, { userId: "carol" }],
    });
    expect(peers).toHaveLength(2);
    expect(peers[0]?.config.iceTransportPolicy).toBe("relay");
    expect(socket.events("offer").map((o) => (o as { targetUserId: string }).targetUserId)).toEqual(["alice", "bob"]);
    expect(call.participants.get("bob")?.audioMuted).toBe(true);

    // Alice answers; a candidate that came first waits for the answer.
    await socket.deliver("ice_candidate", { sessionId: "s1", fromUserId: "alice", candidate: "candidate:1 1 udp" });
    expect(peers[0]?.log).not.toContain("candidate candidate:1 1 udp");
    await socket.deliver("answer", { sessionId: "s1", fromUserId: "alice", sdp: { type: "answer", sdp: "v=0" } });
    expect(peers[0]?.log).toEqual(["local offer", "remote answer", "candidate candidate:1 1 udp"]);
    await socket.deliver("ice_candidate", { sessionId: "s1", fromUserId: "alice", candidate: null });
    expect(peers[0]?.log.at(-1)).toBe("candidate end");

    // Media flows: the server hears it once; the duration counts from then.
    peers[0]?.connect();
    peers[1]?.connect();
    expect(socket.events("call_connected")).toHaveLength(1);
    expect(call.connectedAt).toBeDefined();
  });

  it("answers an offer, relays its own candidates, and follows mutes and departures", async () => {
    const { socket, peers, call } = setUp("alice");
    call.join();
    await socket.deliver("call_joined", { sessionId: "s1", participants: [{ userId: "alice" }] });
    expect(socket.events("offer")).toHaveLength(0);
    await socket.deliver("participant_joined", { sessionId: "s1", userId: "bob" });
    await socket.deliver("offer", { sessionId: "s1", fromUserId: "bob", sdp: "v=0 bob" });
    expect(peers[0]?.log).toEqual(["remote offer", "local answer"]);
    expect(socket.events("answer")).toEqual([{ sessionId: "s1", targetUserId: "bob", sdp: { type: "answer", sdp: "v=0 answer" } }]);
    peers[0]?.onicecandidate?.({ candidate: { toJSON: () => ({ candidate: "c", sdpMid: "0", sdpMLineIndex: 0 }) } });
    expect(socket.events("ice_candidate")).toEqual([
      { sessionId: "s1", targetUserId: "bob", candidate: { candidate: "c", sdpMid: "0", sdpMLineIndex: 0 } },
    ]);

    // Events of another call are not ours.
    await socket.deliver("mute_audio", { sessionId: "other", userId: "bob", muted: true });
    expect(call.participants.get("bob")?.audioMuted).toBe(false);
    await socket.deliver("mute_audio", { sessionId: "s1", userId: "bob", muted: true });
    expect(call.participants.get("bob")?.audioMuted).toBe(true);
    call.setMuted("video", true);
    expect(socket.events("mute_video")).toEqual([{ muted: true }]);

    await socket.deliver("participant_left", { sessionId: "s1", userId: "bob", reason: "left" });
    expect(peers[0]?.closed).toBe(true);
    expect(call.participants.size).toBe(0);

    await socket.deliver("call_ended", { sessionId: "s1", reason: "completed" });
    expect(call.ended).toBe("completed");
    expect(socket.listeners()).toBe(0);
  });

  it("an answer nobody asked for is an error, not a crash", async () => {
    const { socket, call } = setUp("alice");
    await socket.deliver("answer", { sessionId: "s1", fromUserId: "mallory", sdp: "v=0" });
    expect(call.errors).toHaveLength(1);
    expect(call.errors[0]).toContain("mallory");
  });

  it("hanging up leaves the call once and stops listening", () => {
    const { socket, call } = setUp("alice");
    call.hangUp();
    call.hangUp();
    expect(socket.events("leave_call")).toEqual([{ sessionId: "s1" }]);
    expect(call.ended).toBe("left");
    expect(socket.listeners()).toBe(0);
  });

  it("collects each peer's stats by user, for peers that have them", async () => {
    const { socket, peers, call } = setUp("carol");
    await socket.deliver("call_joined", { sessionId: "s1", participants: [{ userId: "alice" }, { userId: "bob" }] });
    const report = new Map([["in", { type: "inbound-rtp" }]]) as unknown as RTCStatsReport;
    (peers[0] as FakePeer & { getStats?: () => Promise<RTCStatsReport> }).getStats = () => Promise.resolve(report);
    const stats = await call.stats();
    expect([...stats.keys()]).toEqual(["alice"]);
    expect(stats.get("alice")).toBe(report);
  });

  it("rejoins when the socket is back, restarting ICE, and sends nothing while it is down", async () => {
    const { socket, peers, call } = setUp("bob");
    call.accept();
    await socket.deliver("call_joined", { sessionId: "s1", participants: [{ userId: "alice" }, { userId: "bob" }] });
    await socket.deliver("answer", { sessionId: "s1", fromUserId: "alice", sdp: sdp("answer", "AA:alice") });
    expect(peers[0]?.offerOptions).toEqual([undefined]);

    socket.connected = false;
    await socket.deliver("disconnect", "transport close");
    expect(call.reconnecting).toBe(true);
    const before = socket.sent.length;
    peers[0]?.onicecandidate?.({ candidate: { toJSON: () => ({ candidate: "late" }) } });
    call.setMuted("audio", true);
    expect(socket.sent.length).toBe(before);

    socket.connected = true;
    await socket.deliver("connect", undefined);
    expect(socket.events("join_call")).toEqual([{ sessionId: "s1" }]);
    await socket.deliver("call_joined", { sessionId: "s1", participants: [{ userId: "alice" }, { userId: "bob" }] });
    expect(call.reconnecting).toBe(false);
    expect(call.rejoins).toBe(1);
    // The same peer connection, with an ICE restart; the mute made offline is told now.
    expect(peers).toHaveLength(1);
    expect(peers[0]?.offerOptions).toEqual([undefined, { iceRestart: true }]);
    expect(socket.events("offer")).toHaveLength(2);
    expect(socket.events("mute_audio")).toEqual([{ muted: true }]);
    await socket.deliver("answer", { sessionId: "s1", fromUserId: "alice", sdp: sdp("answer", "AA:alice") });
    expect(peers[0]?.signalingState).toBe("stable");
    expect(call.errors).toEqual([]);
  });

  it("a rejoin the server refuses (the call ended meanwhile) ends the call", async () => {
    const { socket, call } = setUp("bob");
    call.accept();
    await socket.deliver("call_joined", { sessionId: "s1", participants: [{ userId: "alice" }, { userId: "bob" }] });
    await socket.deliver("disconnect", "ping timeout");
    await socket.deliver("connect", undefined);
    socket.acks.get("join_call")?.({ ok: false, error: { code: "call_not_found" } });
    expect(call.ended).toBe("connection_lost");
    expect(call.reconnecting).toBe(false);
    expect(socket.listeners()).toBe(0);
  });

  it("a call the server no longer has ends without a rejoin", async () => {
    const { socket, call } = setUp("bob", () => Promise.resolve(false));
    call.accept();
    await socket.deliver("call_joined", { sessionId: "s1", participants: [{ userId: "alice" }, { userId: "bob" }] });
    await socket.deliver("disconnect", "ping timeout");
    await socket.deliver("connect", undefined);
    expect(socket.events("join_call")).toEqual([]);
    expect(call.ended).toBe("connection_lost");
  });

  it("a rejoin drops whoever left meanwhile and offers to whoever came", async () => {
    const { socket, peers, call } = setUp("carol");
    await socket.deliver("call_joined", { sessionId: "s1", participants: [{ userId: "alice" }, { userId: "bob" }, { userId: "carol" }] });
    await socket.deliver("disconnect", "transport close");
    await socket.deliver("connect", undefined);
    await socket.deliver("call_joined", { sessionId: "s1", participants: [{ userId: "alice" }, { userId: "carol" }, { userId: "dave" }] });
    expect([...call.participants.keys()]).toEqual(["alice", "dave"]);
    expect(peers[1]?.closed).toBe(true);
    expect(peers.map((p) => p.offerOptions)).toEqual([[undefined, { iceRestart: true }], [undefined], [undefined]]);
  });

  it("an offer from a new peer connection (another fingerprint) gets a new one here", async () => {
    const { socket, peers } = setUp("alice");
    await socket.deliver("offer", { sessionId: "s1", fromUserId: "bob", sdp: sdp("offer", "AA:1") });
    // An ICE restart from the same peer connection: renegotiated in place.
    await socket.deliver("offer", { sessionId: "s1", fromUserId: "bob", sdp: sdp("offer", "AA:1", "restart") });
    expect(peers).toHaveLength(1);
    // The same offer twice: answered once.
    await socket.deliver("offer", { sessionId: "s1", fromUserId: "bob", sdp: sdp("offer", "AA:1", "restart") });
    expect(socket.events("answer")).toHaveLength(2);
    await socket.deliver("offer", { sessionId: "s1", fromUserId: "bob", sdp: sdp("offer", "BB:2") });
    expect(peers).toHaveLength(2);
    expect(peers[0]?.closed).toBe(true);
    expect(peers[1]?.log).toEqual(["remote offer", "local answer"]);
    expect(socket.events("answer")).toHaveLength(3);
  });

  it("an answer from a new peer connection makes us offer again from a new one", async () => {
    const { socket, peers, call } = setUp("carol");
    await socket.deliver("call_joined", { sessionId: "s1", participants: [{ userId: "alice" }] });
    await socket.deliver("answer", { sessionId: "s1", fromUserId: "alice", sdp: sdp("answer", "AA:1") });
    await socket.deliver("disconnect", "transport close");
    await socket.deliver("connect", undefined);
    await socket.deliver("call_joined", { sessionId: "s1", participants: [{ userId: "alice" }] });
    await socket.deliver("answer", { sessionId: "s1", fromUserId: "alice", sdp: sdp("answer", "CC:3") });
    expect(peers).toHaveLength(2);
    expect(peers[0]?.closed).toBe(true);
    expect(peers[1]?.offerOptions).toEqual([undefined]);
    expect(socket.events("offer")).toHaveLength(3);
    expect(call.errors).toEqual([]);
  });

  it("crossing offers: the smaller user id yields, the greater sends its offer again", async () => {
    const polite = setUp("alice");
    await polite.socket.deliver("call_joined", { sessionId: "s1", participants: [{ userId: "bob" }] });
    await polite.socket.deliver("offer", { sessionId: "s1", fromUserId: "bob", sdp: sdp("offer", "BB:1") });
    expect(polite.peers[0]?.log).toEqual(["local offer", "local rollback", "remote offer", "local answer"]);
    // The answer to the offer it rolled back is stale.
    await polite.socket.deliver("answer", { sessionId: "s1", fromUserId: "bob", sdp: sdp("answer", "BB:1") });
    expect(polite.call.errors).toEqual([]);

    const impolite = setUp("bob");
    await impolite.socket.deliver("call_joined", { sessionId: "s1", participants: [{ userId: "alice" }] });
    await impolite.socket.deliver("offer", { sessionId: "s1", fromUserId: "alice", sdp: sdp("offer", "AA:1") });
    expect(impolite.peers[0]?.log).toEqual(["local offer"]);
    expect(impolite.socket.events("offer")).toHaveLength(2);
  });
});

function sdp(type: "offer" | "answer", print: string, version = ""): RTCSessionDescriptionInit {
  return { type, sdp: `v=0 ${version}\na=fingerprint:sha-256 ${print}\n` };
}
