// Calls: the signaling of docs/SOCKETIO.md ("Calls") driving one WebRTC peer connection per
// other participant (a mesh, until the SFU exists). Framework-free: the socket and the peer
// connections are passed in, so the logic runs in Vitest with fakes and in the browser with
// `RTCPeerConnection`.
//
// Who offers: a participant who joins sends an offer to everyone already in the call (the
// `participants` of its `call_joined`); those already in answer. The server orders joins, so
// for each pair exactly one side offers.
//
// Resuming: when the socket drops, the server keeps the participant for its grace period. On
// reconnecting the call sends `join_call` again and offers an ICE restart to everyone listed,
// so media recovers on the same peer connections. If the call ended meanwhile, the join is
// refused and the call ends here too. Two offers crossing (both sides rejoined) are settled as
// in "perfect negotiation": the side with the smaller user id yields. An offer or answer with
// another DTLS fingerprint comes from a new peer connection (the other side was dropped and
// joined again): ours is replaced by a new one as well.

import {
  candidateOf,
  description,
  fingerprint,
  type Ack,
  type CallOptions,
  type Described,
  type Candidate,
  type Joined,
  type Media,
  type Participant,
  type PeerLike,
  type ServerEvents,
} from "./callwire.js";

export { rtcConfiguration, type CallOptions, type Media, type Participant, type PeerLike, type SignalingSocket } from "./callwire.js";

/** One call this device takes part in. */
export class Call {
  readonly sessionId: string;
  readonly userId: string;
  readonly media: Media;
  readonly participants = new Map<string, Participant>();
  audioMuted = false;
  videoMuted = false;
  /** Set when the call is over: the server's reason (`completed`, `declined`, …), `left`, or
   *  `connection_lost` (the server no longer had the call when the socket came back). */
  ended: string | undefined;
  /** When media first flowed (ms since the epoch), for the call's duration. */
  connectedAt: number | undefined;
  /** The socket dropped; the call rejoins when it is back (media may still flow meanwhile). */
  reconnecting = false;
  /** How many times the call rejoined after the socket came back. */
  rejoins = 0;
  /** Failures in handling signaling (also reported through `onChange`). */
  readonly errors: string[] = [];

  private readonly options: CallOptions;
  private readonly peers = new Map<string, PeerLike>();
  /** Candidates that came before their peer's remote description. */
  private readonly pending = new Map<string, (RTCIceCandidateInit | null)[]>();
  /** Peers whose remote description is set (candidates can be added). */
  private readonly described = new Set<string>();
  private readonly listeners: [string, (payload: never) => void][] = [];
  /** A rejoin is asking whether the call still lives. */
  private checkingLive = false;
  /** A `join_call` after a reconnection is on its way: its `call_joined` restarts ICE. */
  private rejoining = false;
  /** Mutes changed while the socket was down, to tell the others once it is back. */
  private readonly unsentMutes = new Set<Media>();

  constructor(options: CallOptions) {
    this.options = options;
    this.sessionId = options.sessionId;
    this.userId = options.userId;
    this.media = options.media;
    const on = <K extends keyof ServerEvents>(event: K, handler: (payload: ServerEvents[K]) => Promise<void> | void) => {
      const listener = (payload: ServerEvents[K]) => {
        if (this.ended !== undefined) return;
        // What the server sent may be anything (a `null` too), whatever the type says.
        const raw: unknown = payload;
        const sessionId = typeof raw === "object" && raw !== null ? (raw as { sessionId?: string }).sessionId : undefined;
        if (sessionId !== undefined && sessionId !== this.sessionId) return;
        Promise.resolve(handler(payload)).catch((e: unknown) => {
          this.fail(`${event}: ${e instanceof Error ? e.message : String(e)}`);
        });
      };
      options.socket.on(event, listener);
      this.listeners.push([event, listener]);
    };
    on("call_joined", (p) => this.joined(p));
    on("participant_joined", (p) => {
      this.participant(p.userId);
      this.changed();
    });
    on("offer", (p) => this.offered(p));
    on("answer", (p) => this.answered(p));
    on("ice_candidate", (p) => this.candidate(p));
    on("mute_audio", (p) => {
      this.participant(p.userId).audioMuted = p.muted;
      this.changed();
    });
    on("mute_video", (p) => {
      this.participant(p.userId).videoMuted = p.muted;
      this.changed();
    });
    on("participant_left", (p) => {
      this.drop(p.userId);
      this.changed();
    });
    on("call_ended", (p) => {
      this.finish(p.reason);
    });
    on("disconnect", () => {
      this.reconnecting = true;
      this.changed();
    });
    on("connect", () => {
      if (this.reconnecting) return this.rejoin();
    });
  }

  /** Enters the call's signaling room (the caller after `POST /api/v1/calls`, or anyone
   *  rejoining); an invitee uses `accept` instead. */
  join(): void {
    this.options.socket.emit("join_call", { sessionId: this.sessionId });
  }

  /** Accepts an incoming call (and joins it from this socket). */
  accept(): void {
    this.options.socket.emit("call_accept", { sessionId: this.sessionId });
  }

  decline(): void {
    if (this.ended !== undefined) return;
    this.options.socket.emit("call_decline", { sessionId: this.sessionId });
    this.finish("declined");
  }

  /** Hangs up: cancels a call nobody answered yet if this side started it, else leaves. */
  hangUp(cancel = false): void {
    if (this.ended !== undefined) return;
    const socket = this.options.socket;
    if (cancel) socket.emit("call_cancel", { sessionId: this.sessionId });
    // With the id: sent after a reconnect (socket.io buffers it), from a socket in no call.
    else socket.emit("leave_call", { sessionId: this.sessionId });
    this.finish("left");
  }

  /** Mutes or unmutes what this side sends, and tells the others. */
  setMuted(kind: Media, muted: boolean): void {
    const tracks = kind === "audio" ? this.options.localStream?.getAudioTracks() : this.options.localStream?.getVideoTracks();
    for (const track of tracks ?? []) track.enabled = !muted;
    if (kind === "audio") this.audioMuted = muted;
    else this.videoMuted = muted;
    if (!this.send(kind === "audio" ? "mute_audio" : "mute_video", { muted })) this.unsentMutes.add(kind);
    this.changed();
  }

  /** Sends `track` instead of the current one of its kind (another camera or microphone). */
  async replaceTrack(track: MediaStreamTrack): Promise<void> {
    for (const peer of this.peers.values()) {
      for (const sender of peer.getSenders()) {
        if (sender.track?.kind === track.kind) await sender.replaceTrack(track);
      }
    }
  }

  /** Each peer connection's `getStats()` by user id (diagnostics and tests). */
  async stats(): Promise<Map<string, RTCStatsReport>> {
    const out = new Map<string, RTCStatsReport>();
    for (const [userId, peer] of this.peers) {
      if (peer.getStats !== undefined) out.set(userId, await peer.getStats());
    }
    return out;
  }

  /** Seconds since media first flowed (0 before). */
  duration(now = Date.now()): number {
    return this.connectedAt === undefined ? 0 : Math.floor((now - this.connectedAt) / 1000);
  }

  /** Emits a relay unless the socket is down (Socket.IO would buffer it and send it before our
   *  `join_call`, and the server would refuse it); false when not sent. */
  private send(event: string, payload: object): boolean {
    if (this.options.socket.connected === false) return false;
    this.options.socket.emit(event, payload);
    return true;
  }

  private async rejoin(): Promise<void> {
    // A socket flapping while the last rejoin asks the server: that one rejoins for both.
    if (this.checkingLive) return;
    this.rejoins++;
    this.checkingLive = true;
    const live = await (this.options.stillLive?.() ?? Promise.resolve(true)).catch(() => true);
    this.checkingLive = false;
    if (this.ended !== undefined || this.options.socket.connected === false) return;
    if (!live) {
      this.finish("connection_lost");
      return;
    }
    this.rejoining = true;
    this.options.socket.emit("join_call", { sessionId: this.sessionId }, (ack: Ack | undefined) => {
      // The call ended while we were away.
      if (ack?.ok === false) this.finish("connection_lost");
    });
  }

  private participant(userId: string): Participant {
    let participant = this.participants.get(userId);
    if (participant === undefined) {
      participant = { userId, audioMuted: false, videoMuted: false, stream: undefined, state: "new" };
      this.participants.set(userId, participant);
    }
    return participant;
  }

  private peer(userId: string): PeerLike {
    const existing = this.peers.get(userId);
    if (existing !== undefined) return existing;
    const peer = this.options.createPeer(this.options.rtcConfig);
    this.peers.set(userId, peer);
    for (const track of this.options.localStream?.getTracks() ?? []) {
      peer.addTrack(track, this.options.localStream as MediaStream);
    }
    // A replaced peer connection may still fire: only the current one speaks.
    const current = () => this.peers.get(userId) === peer;
    peer.onicecandidate = (event) => {
      if (!current()) return;
      this.send("ice_candidate", {
        sessionId: this.sessionId,
        targetUserId: userId,
        candidate: event.candidate === null ? null : event.candidate.toJSON(),
      });
    };
    peer.ontrack = (event) => {
      if (!current()) return;
      this.participant(userId).stream = event.streams[0];
      this.changed();
    };
    peer.onconnectionstatechange = () => {
      if (!current()) return;
      this.participant(userId).state = peer.connectionState;
      if (peer.connectionState === "connected" && this.connectedAt === undefined) {
        this.connectedAt = Date.now();
        this.send("call_connected", { sessionId: this.sessionId });
      }
      this.changed();
    };
    return peer;
  }

  /** Sends `userId` an offer (an ICE restart on an existing peer connection). */
  private async offer(userId: string, iceRestart: boolean): Promise<void> {
    const peer = this.peer(userId);
    const offer = await peer.createOffer(iceRestart ? { iceRestart: true } : undefined);
    await peer.setLocalDescription(offer);
    this.send("offer", { sessionId: this.sessionId, targetUserId: userId, sdp: offer });
  }

  private async joined(payload: Joined): Promise<void> {
    const rejoined = this.rejoining;
    this.rejoining = false;
    this.reconnecting = false;
    const others = payload.participants.filter((p) => p.userId !== this.userId);
    if (rejoined) {
      // Whoever left while we were away is gone; our mutes of that time are news.
      for (const userId of [...this.participants.keys()]) {
        if (!others.some((o) => o.userId === userId)) this.drop(userId);
      }
      for (const kind of this.unsentMutes) this.send(kind === "audio" ? "mute_audio" : "mute_video", { muted: kind === "audio" ? this.audioMuted : this.videoMuted });
      this.unsentMutes.clear();
    }
    this.changed();
    // Everyone already here gets an offer from us, the newcomer (or the one back).
    for (const other of others) {
      const participant = this.participant(other.userId);
      participant.audioMuted = other.audioMuted ?? false;
      participant.videoMuted = other.videoMuted ?? false;
      await this.offer(other.userId, this.peers.has(other.userId));
    }
    this.changed();
  }

  private async offered(payload: Described): Promise<void> {
    const from = payload.fromUserId;
    const offer = description(payload.sdp, "offer");
    this.participant(from);
    let peer = this.peers.get(from);
    if (peer !== undefined && this.described.has(from)) {
      const before = peer.remoteDescription?.sdp;
      // The same offer again (sent twice when offers crossed): already answered.
      if (before === offer.sdp && (peer.signalingState ?? "stable") === "stable") return;
      if (fingerprint(before) !== fingerprint(offer.sdp)) {
        this.replace(from);
        peer = undefined;
      }
    }
    peer ??= this.peer(from);
    if (peer.signalingState === "have-local-offer") {
      // Offers crossed: the greater user id keeps its own, and sends it again in case the
      // first went to a socket that had dropped; the other yields.
      if (this.userId > from) {
        if (peer.localDescription) this.send("offer", { sessionId: this.sessionId, targetUserId: from, sdp: peer.localDescription });
        return;
      }
      await peer.setLocalDescription({ type: "rollback" });
    }
    await peer.setRemoteDescription(offer);
    await this.flush(from, peer);
    const answer = await peer.createAnswer();
    await peer.setLocalDescription(answer);
    this.send("answer", { sessionId: this.sessionId, targetUserId: from, sdp: answer });
    this.changed();
  }

  private async answered(payload: Described): Promise<void> {
    const from = payload.fromUserId;
    const peer = this.peers.get(from);
    if (peer === undefined) throw new Error(`an answer from ${from}, who was sent no offer`);
    // An answer to an offer we rolled back (offers crossed) is stale.
    if (peer.signalingState === "stable") return;
    const answer = description(payload.sdp, "answer");
    const before = this.described.has(from) ? peer.remoteDescription?.sdp : undefined;
    if (before !== undefined && fingerprint(before) !== fingerprint(answer.sdp)) {
      // They answered from a new peer connection: start afresh here too.
      this.replace(from);
      await this.offer(from, false);
      return;
    }
    await peer.setRemoteDescription(answer);
    await this.flush(from, peer);
  }

  private async candidate(payload: Candidate): Promise<void> {
    const candidate = candidateOf(payload);
    const peer = this.peers.get(payload.fromUserId);
    if (peer === undefined || !this.described.has(payload.fromUserId)) {
      const queue = this.pending.get(payload.fromUserId) ?? [];
      queue.push(candidate);
      this.pending.set(payload.fromUserId, queue);
      return;
    }
    await peer.addIceCandidate(candidate);
  }

  private async flush(userId: string, peer: PeerLike): Promise<void> {
    this.described.add(userId);
    const queue = this.pending.get(userId) ?? [];
    this.pending.delete(userId);
    // One stale candidate (an old ufrag after a restart) must not stop the answer.
    for (const candidate of queue) {
      await peer.addIceCandidate(candidate).catch((e: unknown) => {
        this.errors.push(`ice_candidate from ${userId}: ${e instanceof Error ? e.message : String(e)}`);
      });
    }
  }

  /** Closes the peer connection with `userId` (a new one is made when next needed). */
  private replace(userId: string): void {
    this.peers.get(userId)?.close();
    this.peers.delete(userId);
    this.described.delete(userId);
    this.pending.delete(userId);
  }

  private drop(userId: string): void {
    this.replace(userId);
    this.participants.delete(userId);
  }

  private finish(reason: string): void {
    if (this.ended !== undefined) return;
    this.ended = reason;
    this.reconnecting = false;
    for (const userId of [...this.peers.keys()]) this.drop(userId);
    for (const [event, listener] of this.listeners) this.options.socket.off(event, listener);
    for (const track of this.options.localStream?.getTracks() ?? []) track.stop();
    this.changed();
  }

  private fail(message: string): void {
    this.errors.push(message);
    this.changed();
  }

  private changed(): void {
    this.options.onChange?.(this);
  }
}
