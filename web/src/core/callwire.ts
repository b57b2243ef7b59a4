// What `calls.ts` speaks and drives: the server's call events and their payloads
// (docs/SOCKETIO.md, "Calls"), the parts of a Socket.IO client and of `RTCPeerConnection` it
// uses (so that Vitest can pass fakes), and the pure helpers on SDP and ICE payloads.
import type { Call } from "./calls.js";

/** The part of a Socket.IO client a call uses. */
export interface SignalingSocket {
  emit(event: string, ...args: unknown[]): unknown;
  on(event: string, listener: (payload: never) => void): unknown;
  off(event: string, listener: (payload: never) => void): unknown;
  /** Whether the connection is up now (Socket.IO's `socket.connected`; fakes may leave it out). */
  readonly connected?: boolean;
}

/** The part of `RTCPeerConnection` a call uses. */
export interface PeerLike {
  addTrack(track: MediaStreamTrack, ...streams: MediaStream[]): unknown;
  getSenders(): { track: MediaStreamTrack | null; replaceTrack(track: MediaStreamTrack | null): Promise<void> }[];
  createOffer(options?: RTCOfferOptions): Promise<RTCSessionDescriptionInit>;
  createAnswer(): Promise<RTCSessionDescriptionInit>;
  setLocalDescription(description: RTCSessionDescriptionInit): Promise<void>;
  setRemoteDescription(description: RTCSessionDescriptionInit): Promise<void>;
  addIceCandidate(candidate: RTCIceCandidateInit | null): Promise<void>;
  close(): void;
  onicecandidate: ((event: { candidate: { toJSON(): RTCIceCandidateInit } | null }) => void) | null;
  ontrack: ((event: { streams: readonly MediaStream[] }) => void) | null;
  onconnectionstatechange: (() => void) | null;
  readonly connectionState: string;
  /** `stable`, `have-local-offer`, … (fakes may leave it out: always `stable` then). */
  readonly signalingState?: string;
  readonly localDescription?: RTCSessionDescriptionInit | null;
  readonly remoteDescription?: RTCSessionDescriptionInit | null;
  /** `RTCPeerConnection.getStats` (diagnostics; fakes may leave it out). */
  getStats?(): Promise<RTCStatsReport>;
}

export type Media = "audio" | "video";

/** Another participant of a call, as this side sees them. */
export interface Participant {
  userId: string;
  audioMuted: boolean;
  videoMuted: boolean;
  /** What they send us, once it arrives. */
  stream: MediaStream | undefined;
  /** The peer connection's state (`new`, `connecting`, `connected`, `failed`, …). */
  state: string;
}

export interface Joined {
  sessionId: string;
  participants: { userId: string; audioMuted?: boolean; videoMuted?: boolean }[];
}
export interface Described {
  sessionId?: string;
  fromUserId: string;
  sdp: RTCSessionDescriptionInit | string;
}
export interface Candidate {
  sessionId?: string;
  fromUserId: string;
  candidate: RTCIceCandidateInit | string | null;
  sdpMid?: string | null;
  sdpMLineIndex?: number | null;
}
export interface Muted {
  sessionId?: string;
  userId: string;
  muted: boolean;
}
export interface Left {
  sessionId?: string;
  userId: string;
}
export interface Ended {
  sessionId: string;
  reason: string;
}
/** An event's acknowledgement (docs/SOCKETIO.md, "Acks and errors"). */
export interface Ack {
  ok: boolean;
  error?: { code: string; message?: string };
}

/** The server's events a call listens to, and their payloads; `connect` and `disconnect` are
 *  the Socket.IO client's own. */
export interface ServerEvents {
  call_joined: Joined;
  participant_joined: Left;
  offer: Described;
  answer: Described;
  ice_candidate: Candidate;
  mute_audio: Muted;
  mute_video: Muted;
  participant_left: Left;
  call_ended: Ended;
  connect: undefined;
  disconnect: string;
}

export function description(sdp: RTCSessionDescriptionInit | string, type: "offer" | "answer"): RTCSessionDescriptionInit {
  return typeof sdp === "string" ? { type, sdp } : sdp;
}

export function candidateOf(payload: Candidate): RTCIceCandidateInit | null {
  const c = payload.candidate;
  if (c === null) return null;
  if (typeof c === "string") return { candidate: c, sdpMid: payload.sdpMid ?? null, sdpMLineIndex: payload.sdpMLineIndex ?? null };
  return c;
}

/** The first DTLS fingerprint of an SDP. Another one than before means the other side made a
 *  new peer connection, which an established DTLS transport cannot follow. */
export function fingerprint(sdp: string | undefined): string | undefined {
  return /^a=fingerprint:(.+)$/m.exec(sdp ?? "")?.[1]?.trim();
}

/** `GET /api/v1/turn/credentials` → the `RTCConfiguration` for a call (`relay` forces TURN). */
export function rtcConfiguration(credentials: { ice_servers?: RTCIceServer[] }, relayOnly = false): RTCConfiguration {
  return { iceServers: credentials.ice_servers ?? [], iceTransportPolicy: relayOnly ? "relay" : "all" };
}

/** What a `Call` (calls.ts) is made with. */
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
  /** Asked before rejoining: false when the call ended while the socket was down (e.g. from
   *  `GET /api/v1/calls`), so that the call ends here without a refused `join_call`. */
  stillLive?: () => Promise<boolean>;
}
