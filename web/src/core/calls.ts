// Calls: the signaling of docs/SOCKETIO.md ("Calls") driving one WebRTC peer connection per
// other participant (a mesh, until the SFU exists). Framework-free: the socket and the peer
// connections are passed in, so the logic runs in Vitest with fakes and in the browser with
// `RTCPeerConnection`.
//
// Who offers: a participant who joins sends an offer to everyone already in the call (the
// `participants` of its `call_joined`); those already in answer. The server orders joins, so
// for each pair exactly one side offers — no glare.

/** The part of a Socket.IO client this module uses. */
export interface SignalingSocket {
  emit(event: string, ...args: unknown[]): unknown;
  on(event: string, listener: (payload: never) => void): unknown;
  off(event: string, listener: (payload: never) => void): unknown;
}

/** The part of `RTCPeerConnection` this module uses. */
export interface PeerLike {
  addTrack(track: MediaStreamTrack, ...streams: MediaStream[]): unknown;
  getSenders(): { track: MediaStreamTrack | null; replaceTrack(track: MediaStreamTrack | null): Promise<void> }[];
  createOffer(): Promise<RTCSessionDescriptionInit>;
  createAnswer(): Promise<RTCSessionDescriptionInit>;
  setLocalDescription(description: RTCSessionDescriptionInit): Promise<void>;
  setRemoteDescription(description: RTCSessionDescriptionInit): Promise<void>;
  addIceCandidate(candidate: RTCIceCandidateInit | null): Promise<void>;
  close(): void;
  onicecandidate: ((event: { candidate: { toJSON(): RTCIceCandidateInit } | null }) => void) | null;
  ontrack: ((event: { streams: readonly MediaStream[] }) => void) | null;
  onconnectionstatechange: (() => void) | null;
  readonly connectionState: string;
  /** `RTCPeerConnection.getStats` (diagnostics; fakes may leave it out). */
  getStats?(): Promise<RTCStatsReport>;
}

export type Media = "audio" | "video";

export interface Participant {
  userId: string;
  audioMuted: boolean;
  videoMuted: boolean;
  /** What they send us, once it arrives. */
  stream: MediaStream | undefined;
  /** The peer connection's state (`new`, `connecting`, `connected`, `failed`, …). */
  state: string;
}

export interface CallOptions {
  sessionId: string;
  /** This user. */
  userId: string;
  media: Media;
  socket: SignalingSocket;
  /** What this side sends (from `getUserMedia`). */
  localStream: MediaStream | undefined;
  createPeer: (config: RTCConfiguration) => PeerLike;
  /** ICE servers (from `GET /api/v1/turn/credentials`) and policy (`relay` forces TURN). */
  rtcConfig: RTCConfiguration;
  /** Called after every change (participants, streams, mute, end). */
  onChange?: (call: Call) => void;
}

interface Joined {
  sessionId: string;
  participants: { userId: string; audioMuted?: boolean; videoMuted?: boolean }[];
}
interface Described {
  sessionId?: string;
  fromUserId: string;
  sdp: RTCSessionDescriptionInit | string;
}
interface Candidate {
  sessionId?: string;
  fromUserId: string;
  candidate: RTCIceCandidateInit | string | null;
  sdpMid?: string | null;
  sdpMLineIndex?: number | null;
}
interface Muted {
  sessionId?: string;
  userId: string;
  muted: boolean;
}
interface Left {
  sessionId?: string;
  userId: string;
}
interface Ended {
  sessionId: string;
  reason: string;
}

/** The server's events a call listens to, and their payloads. */
interface ServerEvents {
  call_joined: Joined;
  participant_joined: Left;
  offer: Described;
  answer: Described;
  ice_candidate: Candidate;
  mute_audio: Muted;
  mute_video: Muted;
  participant_left: Left;
  call_ended: Ended;
}

/** One call this device takes part in. */
export class Call {
  readonly sessionId: string;
  readonly userId: string;
  readonly media: Media;
  readonly participants = new Map<string, Participant>();
  audioMuted = false;
  videoMuted = false;
  /** Set when the call is over: the server's reason (`completed`, `declined`, …) or `left`. */
  ended: string | undefined;
  /** When media first flowed (ms since the epoch), for the call's duration. */
  connectedAt: number | undefined;
  /** Failures in handling signaling (also reported through `onChange`). */
  readonly errors: string[] = [];

  private readonly options: CallOptions;
  private readonly peers = new Map<string, PeerLike>();
  /** Candidates that came before their peer's remote description. */
  private readonly pending = new Map<string, (RTCIceCandidateInit | null)[]>();
  private readonly listeners: [string, (payload: never) => void][] = [];

  constructor(options: CallOptions) {
    this.options = options;
    this.sessionId = options.sessionId;
    this.userId = options.userId;
    this.media = options.media;
    const on = <K extends keyof ServerEvents>(event: K, handler: (payload: ServerEvents[K]) => Promise<void> | void) => {
      const listener = (payload: ServerEvents[K]) => {
        if (this.ended !== undefined) return;
        const sessionId = (payload as { sessionId?: string } | undefined)?.sessionId;
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
    else socket.emit("leave_call");
    this.finish("left");
  }

  /** Mutes or unmutes what this side sends, and tells the others. */
  setMuted(kind: Media, muted: boolean): void {
    const tracks = kind === "audio" ? this.options.localStream?.getAudioTracks() : this.options.localStream?.getVideoTracks();
    for (const track of tracks ?? []) track.enabled = !muted;
    if (kind === "audio") this.audioMuted = muted;
    else this.videoMuted = muted;
    this.options.socket.emit(kind === "audio" ? "mute_audio" : "mute_video", { muted });
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
    peer.onicecandidate = (event) => {
      this.options.socket.emit("ice_candidate", {
        sessionId: this.sessionId,
        targetUserId: userId,
        candidate: event.candidate === null ? null : event.candidate.toJSON(),
      });
    };
    peer.ontrack = (event) => {
      this.participant(userId).stream = event.streams[0];
      this.changed();
    };
    peer.onconnectionstatechange = () => {
      this.participant(userId).state = peer.connectionState;
      if (peer.connectionState === "connected" && this.connectedAt === undefined) {
        this.connectedAt = Date.now();
        this.options.socket.emit("call_connected", { sessionId: this.sessionId });
      }
      this.changed();
    };
    return peer;
  }

  private async joined(payload: Joined): Promise<void> {
    // Everyone already here gets an offer from us, the newcomer.
    for (const other of payload.participants) {
      if (other.userId === this.userId) continue;
      const participant = this.participant(other.userId);
      participant.audioMuted = other.audioMuted ?? false;
      participant.videoMuted = other.videoMuted ?? false;
      const peer = this.peer(other.userId);
      const offer = await peer.createOffer();
      await peer.setLocalDescription(offer);
      this.options.socket.emit("offer", { sessionId: this.sessionId, targetUserId: other.userId, sdp: offer });
    }
    this.changed();
  }

  private async offered(payload: Described): Promise<void> {
    this.participant(payload.fromUserId);
    const peer = this.peer(payload.fromUserId);
    await peer.setRemoteDescription(description(payload.sdp, "offer"));
    await this.flush(payload.fromUserId, peer);
    const answer = await peer.createAnswer();
    await peer.setLocalDescription(answer);
    this.options.socket.emit("answer", { sessionId: this.sessionId, targetUserId: payload.fromUserId, sdp: answer });
    this.changed();
  }

  private async answered(payload: Described): Promise<void> {
    const peer = this.peers.get(payload.fromUserId);
    if (peer === undefined) throw new Error(`an answer from ${payload.fromUserId}, who was sent no offer`);
    await peer.setRemoteDescription(description(payload.sdp, "answer"));
    await this.flush(payload.fromUserId, peer);
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

  /** Peers whose remote description is set (candidates can be added). */
  private readonly described = new Set<string>();

  private async flush(userId: string, peer: PeerLike): Promise<void> {
    this.described.add(userId);
    const queue = this.pending.get(userId) ?? [];
    this.pending.delete(userId);
    for (const candidate of queue) await peer.addIceCandidate(candidate);
  }

  private drop(userId: string): void {
    this.peers.get(userId)?.close();
    this.peers.delete(userId);
    this.described.delete(userId);
    this.pending.delete(userId);
    this.participants.delete(userId);
  }

  private finish(reason: string): void {
    if (this.ended !== undefined) return;
    this.ended = reason;
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

function description(sdp: RTCSessionDescriptionInit | string, type: "offer" | "answer"): RTCSessionDescriptionInit {
  return typeof sdp === "string" ? { type, sdp } : sdp;
}

function candidateOf(payload: Candidate): RTCIceCandidateInit | null {
  const c = payload.candidate;
  if (c === null) return null;
  if (typeof c === "string") return { candidate: c, sdpMid: payload.sdpMid ?? null, sdpMLineIndex: payload.sdpMLineIndex ?? null };
  return c;
}

/** `GET /api/v1/turn/credentials` → the `RTCConfiguration` for a call (`relay` forces TURN). */
export function rtcConfiguration(credentials: { ice_servers?: RTCIceServer[] }, relayOnly = false): RTCConfiguration {
  return { iceServers: credentials.ice_servers ?? [], iceTransportPolicy: relayOnly ? "relay" : "all" };
}
