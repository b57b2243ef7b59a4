// Calls in the app: starting one from a conversation, the incoming-call screen on every device
// of the callee, the call in progress (a `Call` from the core over the app's own socket), its
// end, and the call history. Test switch: `?relay=1` in the URL or `localStorage
// "securevox.relayOnly" = "1"` forces relayed (TURN) media.

import { effect, signal } from "@preact/signals";
import type { Socket } from "socket.io-client";
import { Call, rtcConfiguration, type Media, type PeerLike, type SignalingSocket } from "../core/calls.js";
import { callHistory, loadSeenCalls, seenCalls, type HistoryItem } from "./calllog.js";
import { currentClient, fail, liveSocket, me, nameOf } from "./store.js";

export { callHistory, clock, type HistoryItem } from "./calllog.js";

/** The participant limit per call (the caller included). */
export const CALL_LIMIT = 4;

export interface Incoming {
  sessionId: string;
  callerId: string;
  callerName: string;
  media: Media;
  invitees: string[];
}

export const incoming = signal<Incoming | undefined>(undefined);
export const activeCall = signal<Call | undefined>(undefined);
/** Bumped on every change of the active call (the `Call` itself is mutable). */
export const callVersion = signal(0);
/** The local media of the active call (for the preview and device switching). */
export const localStream = signal<MediaStream | undefined>(undefined);
/** Why the last call ended, shown until dismissed or another call starts. */
export const endedReason = signal<string | undefined>(undefined);
/** Whether this side started the active call (hanging up before an answer cancels it). */
let startedHere = false;
let answered = false;

function relayOnly(): boolean {
  return new URLSearchParams(location.search).get("relay") === "1" || localStorage.getItem("securevox.relayOnly") === "1";
}

function socket(): Socket {
  const s = liveSocket.value;
  if (s === undefined) throw new Error("not connected");
  return s;
}

async function iceConfig(): Promise<RTCConfiguration> {
  // Without TURN credentials a call can still connect directly (host candidates).
  const credentials = await currentClient()
    .api.json<{ ice_servers?: RTCIceServer[] }>("GET", "/api/v1/turn/credentials")
    .catch(() => ({ ice_servers: [] }));
  return rtcConfiguration(credentials, relayOnly());
}

async function media(kind: Media): Promise<MediaStream> {
  return navigator.mediaDevices.getUserMedia({ audio: true, video: kind === "video" });
}

function begin(sessionId: string, kind: Media, stream: MediaStream, rtcConfig: RTCConfiguration): Call {
  const self = me.value;
  if (self === undefined) throw new Error("not logged in");
  const call = new Call({
    sessionId,
    userId: self.id,
    media: kind,
    socket: socket() as unknown as SignalingSocket,
    localStream: stream,
    rtcConfig,
    createPeer: (config) => new RTCPeerConnection(config) as unknown as PeerLike,
    stillLive: async () => {
      await refreshCallHistory();
      return callHistory.value.find((c) => c.session_id === sessionId)?.state !== "ended";
    },
    onChange: (c) => {
      callVersion.value++;
      if (c.participants.size > 0) answered = true;
      if (c.ended !== undefined && activeCall.value === c) {
        endedReason.value = c.ended;
        activeCall.value = undefined;
        localStream.value = undefined;
        void refreshCallHistory().catch(() => undefined);
      }
    },
  });
  endedReason.value = undefined;
  localStream.value = stream;
  activeCall.value = call;
  return call;
}

/** Starts a call with `invitees` (user ids, not this user). */
export async function startCall(invitees: string[], kind: Media): Promise<void> {
  if (activeCall.value !== undefined) throw new Error("already in a call");
  if (invitees.length === 0 || invitees.length >= CALL_LIMIT) throw new Error(`a call has 2 to ${String(CALL_LIMIT)} participants`);
  const [stream, rtcConfig] = await Promise.all([media(kind), iceConfig()]);
  let started: { session_id: string };
  try {
    started = await currentClient().api.json<{ session_id: string }>("POST", "/api/v1/calls", { body: { json: { invitees, media: kind } } });
  } catch (e) {
    for (const t of stream.getTracks()) t.stop();
    throw e;
  }
  startedHere = true;
  answered = false;
  beginOrRelease(stream, () => begin(started.session_id, kind, stream, rtcConfig)).join();
}

export async function acceptCall(): Promise<void> {
  const ringing = incoming.value;
  if (ringing === undefined) return;
  incoming.value = undefined;
  activeCall.value?.hangUp();
  const [stream, rtcConfig] = await Promise.all([media(ringing.media), iceConfig()]);
  startedHere = false;
  answered = true;
  beginOrRelease(stream, () => begin(ringing.sessionId, ringing.media, stream, rtcConfig)).accept();
}

/** `start()`, stopping the camera and microphone if it fails (logged out meanwhile). */
function beginOrRelease(stream: MediaStream, start: () => Call): Call {
  try {
    return start();
  } catch (e) {
    for (const t of stream.getTracks()) t.stop();
    throw e;
  }
}

export function declineCall(): void {
  const ringing = incoming.value;
  if (ringing === undefined) return;
  incoming.value = undefined;
  socket().emit("call_decline", { sessionId: ringing.sessionId });
}

export function hangUp(): void {
  const call = activeCall.value;
  if (call === undefined) return;
  // Nobody answered yet: cancel the call for everyone; else leave it.
  call.hangUp(startedHere && !answered);
}

export function toggleMute(kind: Media): void {
  const call = activeCall.value;
  if (call === undefined) return;
  call.setMuted(kind, !(kind === "audio" ? call.audioMuted : call.videoMuted));
}

/** Sends another camera or microphone (`deviceId` from `enumerateDevices`). */
export async function switchDevice(kind: "audioinput" | "videoinput", deviceId: string): Promise<void> {
  const call = activeCall.value;
  const stream = localStream.value;
  if (call === undefined || stream === undefined) return;
  const next = await navigator.mediaDevices.getUserMedia(kind === "audioinput" ? { audio: { deviceId: { exact: deviceId } } } : { video: { deviceId: { exact: deviceId } } });
  const track = kind === "audioinput" ? next.getAudioTracks()[0] : next.getVideoTracks()[0];
  const release = () => { for (const t of next.getTracks()) t.stop(); };
  // The call may have ended while the device opened: the camera must not stay on.
  if (track === undefined || activeCall.value !== call || call.ended !== undefined) {
    release();
    return;
  }
  track.enabled = !(kind === "audioinput" ? call.audioMuted : call.videoMuted);
  try {
    await call.replaceTrack(track);
  } catch (e) {
    release();
    throw e;
  }
  for (const old of kind === "audioinput" ? stream.getAudioTracks() : stream.getVideoTracks()) {
    stream.removeTrack(old);
    old.stop();
  }
  stream.addTrack(track);
  // A new stream object, so that the preview picks the track up.
  localStream.value = new MediaStream(stream.getTracks());
  callVersion.value++;
}

export async function refreshCallHistory(): Promise<void> {
  const page = await currentClient().api.json<{ calls: HistoryItem[] }>("GET", "/api/v1/calls?limit=30");
  callHistory.value = page.calls;
}

export function reasonText(reason: string): string {
  const texts: Record<string, string> = {
    completed: "Call ended",
    left: "You left the call",
    cancelled: "Call cancelled",
    declined: "Call declined",
    timeout: "No answer",
    abandoned: "Call ended: everyone left",
    idle: "Call ended: idle",
    server_stopped: "Call ended: the server stopped",
    connection_lost: "Call ended while you were disconnected",
  };
  return texts[reason] ?? `Call ended (${reason})`;
}

// The call events that are not about the active call's media: ringing, and its end.
effect(() => {
  const s = liveSocket.value;
  if (s === undefined) {
    // Logged out: nothing of this user's calls stays for the next one.
    incoming.value = undefined;
    activeCall.peek()?.hangUp();
    activeCall.value = undefined;
    endedReason.value = undefined;
    callHistory.value = [];
    seenCalls.value = new Map();
    return;
  }
  const ring = (e: { sessionId: string; callerId: string; callerName?: string; media: Media; invitees?: string[] }) => {
    if (activeCall.value?.sessionId === e.sessionId) return;
    incoming.value = { sessionId: e.sessionId, callerId: e.callerId, callerName: e.callerName ?? nameOf(e.callerId), media: e.media, invitees: e.invitees ?? [] };
  };
  const stop = (e: { sessionId: string }) => {
    if (incoming.value?.sessionId === e.sessionId) incoming.value = undefined;
  };
  const ended = (e: { sessionId: string; reason: string }) => {
    if (incoming.value?.sessionId === e.sessionId) {
      incoming.value = undefined;
      endedReason.value = e.reason === "timeout" || e.reason === "cancelled" ? "missed" : e.reason;
    }
    void refreshCallHistory().catch(() => undefined);
  };
  const accepted = () => {
    answered = true;
  };
  const handlers: [string, Parameters<Socket["on"]>[1]][] = [
    ["incoming_call", ring],
    ["call_answered_elsewhere", stop],
    ["call_missed", stop],
    ["call_declined", stop],
    ["call_ended", ended],
    ["call_accepted", accepted],
  ];
  for (const [event, handler] of handlers) s.on(event, handler);
  const self = me.peek();
  if (self !== undefined) loadSeenCalls(self.id);
  void refreshCallHistory().catch(fail);
  return () => {
    for (const [event, handler] of handlers) s.off(event, handler);
  };
});

// The hidden hook of the end-to-end tests: the call's state and its peers' stats.
declare global {
  interface Window {
    __securevox?: unknown;
  }
}
window.__securevox = {
  call: () => {
    const c = activeCall.value;
    if (c === undefined) return { active: false, ended: endedReason.value, incoming: incoming.value?.sessionId };
    return {
      active: true,
      sessionId: c.sessionId,
      audioMuted: c.audioMuted,
      videoMuted: c.videoMuted,
      connectedAt: c.connectedAt,
      reconnecting: c.reconnecting,
      rejoins: c.rejoins,
      errors: [...c.errors],
      participants: [...c.participants.values()].map((p) => ({ userId: p.userId, state: p.state, audioMuted: p.audioMuted, videoMuted: p.videoMuted, hasStream: p.stream !== undefined })),
    };
  },
  /** `switchDevice` (the fake camera is the only one, so the UI offers no choice). */
  switchDevice: (kind: "audioinput" | "videoinput", deviceId: string) => switchDevice(kind, deviceId),
  /** Drops the live connection as a network loss would (the engine.io transport closes, the
   *  server sees the socket go) and keeps it down for `ms` before Socket.IO reconnects. */
  dropConnection: (ms: number) => {
    const s = liveSocket.value;
    if (s === undefined) return;
    s.io.reconnection(false);
    s.io.engine.close();
    setTimeout(() => {
      s.io.reconnection(true);
      s.connect();
    }, ms);
  },
  stats: async () => {
    const c = activeCall.value;
    if (c === undefined) return [];
    const out: Record<string, unknown>[] = [];
    for (const [userId, report] of await c.stats()) {
      const entry: Record<string, unknown> = { userId, framesDecoded: 0, audioPacketsReceived: 0, videoBytesReceived: 0 };
      let pairId: string | undefined;
      report.forEach((stat: Record<string, unknown>) => {
        if (stat.type === "inbound-rtp" && stat.kind === "video") {
          entry.framesDecoded = stat.framesDecoded;
          entry.videoBytesReceived = stat.bytesReceived;
        }
        if (stat.type === "inbound-rtp" && stat.kind === "audio") entry.audioPacketsReceived = stat.packetsReceived;
        if (stat.type === "transport" && typeof stat.selectedCandidatePairId === "string") pairId = stat.selectedCandidatePairId;
      });
      if (pairId !== undefined) {
        const pair = report.get(pairId) as Record<string, unknown> | undefined;
        const local = report.get(String(pair?.localCandidateId)) as Record<string, unknown> | undefined;
        const remote = report.get(String(pair?.remoteCandidateId)) as Record<string, unknown> | undefined;
        entry.localType = local?.candidateType;
        entry.relayProtocol = local?.relayProtocol;
        entry.remoteType = remote?.candidateType;
      }
      out.push(entry);
    }
    return out;
  },
};
