// Calls on screen: the call buttons of a conversation, the incoming-call screen, the call in
// progress (local and remote video or audio tiles, mute, device switching, hang up, duration),
// how the last call ended, and the call history; a call's line in its conversation.

import { useEffect, useRef, useState } from "preact/hooks";
import type { Media, Participant } from "../core/calls.js";
import {
  acceptCall,
  activeCall,
  CALL_LIMIT,
  callHistory,
  callVersion,
  clock,
  declineCall,
  endedReason,
  hangUp,
  incoming,
  localStream,
  reasonText,
  refreshCallHistory,
  startCall,
  switchDevice,
  toggleMute,
} from "./callstate.js";
import { callText, isMissed, markCallsSeen, type HistoryItem } from "./calllog.js";
import { attempt, me, nameOf, now } from "./store.js";

/** The audio and video call buttons of a conversation with `members` (user ids). */
export function CallButtons({ members }: { members: string[] }) {
  const others = members.filter((id) => id !== me.value?.id);
  const busy = activeCall.value !== undefined;
  const tooMany = others.length >= CALL_LIMIT;
  const title = tooMany ? `calls have at most ${String(CALL_LIMIT)} participants` : undefined;
  const start = (kind: Media) => void attempt(() => startCall(others, kind));
  return (
    <span class="row call-buttons">
      <button type="button" disabled={busy || tooMany || others.length === 0} title={title} onClick={() => { start("audio"); }} aria-label="Audio call">
        Call
      </button>
      <button type="button" disabled={busy || tooMany || others.length === 0} title={title} onClick={() => { start("video"); }} aria-label="Video call">
        Video
      </button>
    </span>
  );
}

/** The incoming call, the call in progress, or how the last one ended. */
export function CallOverlay() {
  const ringing = incoming.value;
  const call = activeCall.value;
  return (
    <>
      {call !== undefined && <InCall />}
      {ringing !== undefined && (
        <div class="call-ring" role="dialog" aria-label="Incoming call">
          <p class="big">
            <strong>{ringing.callerName}</strong>
          </p>
          <p class="muted">
            Incoming {ringing.media} call{ringing.invitees.length > 1 ? ` (group of ${String(ringing.invitees.length + 1)})` : ""}
          </p>
          <div class="row center-row">
            <button type="button" class="danger" onClick={() => { declineCall(); }}>
              Decline
            </button>
            <button type="button" class="primary" onClick={() => void attempt(acceptCall)}>
              Accept
            </button>
          </div>
        </div>
      )}
      {call === undefined && ringing === undefined && endedReason.value !== undefined && (
        <div class="call-ended row" role="status">
          <span class="grow">{endedReason.value === "missed" ? "Missed call" : reasonText(endedReason.value)}</span>
          <button type="button" class="ghost" aria-label="Dismiss" onClick={() => { endedReason.value = undefined; }}>
            ✕
          </button>
        </div>
      )}
    </>
  );
}

function Video({ stream, muted, label }: { stream: MediaStream | undefined; muted: boolean; label: string }) {
  const ref = useRef<HTMLVideoElement>(null);
  useEffect(() => {
    if (ref.current !== null && ref.current.srcObject !== (stream ?? null)) ref.current.srcObject = stream ?? null;
  }, [stream]);
  return <video ref={ref} autoplay playsInline muted={muted} aria-label={label} />;
}

function Tile(props: Participant & { video: boolean }) {
  const { video, ...participant } = props;
  const name = nameOf(participant.userId);
  return (
    <figure class="tile" data-user={name} data-state={participant.state} data-audio-muted={String(participant.audioMuted)} data-video-muted={String(participant.videoMuted)}>
      {video && !participant.videoMuted ? <Video stream={participant.stream} muted={false} label={`Video of ${name}`} /> : <div class="avatar">{name.slice(0, 1).toUpperCase()}</div>}
      {!video && participant.stream !== undefined && <Video stream={participant.stream} muted={false} label={`Audio of ${name}`} />}
      <figcaption>
        {name} {participant.audioMuted && <span class="muted-mark" title={`${name} is muted`}>· muted</span>}
        {participant.videoMuted && <span class="muted-mark"> · camera off</span>} {participant.state !== "connected" && <span class="muted small">{participant.state}</span>}
      </figcaption>
    </figure>
  );
}

function InCall() {
  const version = callVersion.value;
  const call = activeCall.value;
  const [devices, setDevices] = useState<MediaDeviceInfo[]>([]);
  useEffect(() => {
    void navigator.mediaDevices.enumerateDevices().then(setDevices, () => undefined);
  }, []);
  if (call === undefined) return null;
  const video = call.media === "video";
  const participants = [...call.participants.values()];
  const connected = call.connectedAt !== undefined;
  const choose = (kind: "audioinput" | "videoinput") => {
    const list = devices.filter((d) => d.kind === kind && d.deviceId !== "");
    if (list.length < 2) return null;
    return (
      <label class="device">
        <span class="sr-only">{kind === "audioinput" ? "Microphone" : "Camera"}</span>
        <select aria-label={kind === "audioinput" ? "Microphone" : "Camera"} onChange={(e) => void attempt(() => switchDevice(kind, e.currentTarget.value))}>
          {list.map((d, i) => (
            <option key={d.deviceId} value={d.deviceId}>
              {d.label === "" ? `${kind === "audioinput" ? "Microphone" : "Camera"} ${String(i + 1)}` : d.label}
            </option>
          ))}
        </select>
      </label>
    );
  };
  return (
    <section class="in-call" aria-label="Call" data-session={call.sessionId} data-version={version}>
      <header class="row">
        <h2 class="grow">{participants.length === 0 ? "Calling…" : participants.map((p) => nameOf(p.userId)).join(", ")}</h2>
        {call.reconnecting ? (
          <span class="reconnecting" role="status">
            Reconnecting…
          </span>
        ) : (
          <span class="duration" aria-label="Call duration">
            {connected ? clock(call.duration(now.value)) : "connecting…"}
          </span>
        )}
      </header>
      <div class="tiles">
        {participants.map((p) => (
          <Tile key={p.userId} {...p} video={video} />
        ))}
        <figure class="tile self">
          {video && !call.videoMuted ? <Video stream={localStream.value} muted={true} label="Your video" /> : <div class="avatar">{(me.value?.username ?? "?").slice(0, 1).toUpperCase()}</div>}
          <figcaption>you{call.audioMuted ? " · muted" : ""}</figcaption>
        </figure>
      </div>
      <div class="row controls">
        <button type="button" aria-pressed={call.audioMuted} onClick={() => { toggleMute("audio"); }}>
          {call.audioMuted ? "Unmute" : "Mute"}
        </button>
        {video && (
          <button type="button" aria-pressed={call.videoMuted} onClick={() => { toggleMute("video"); }}>
            {call.videoMuted ? "Camera on" : "Camera off"}
          </button>
        )}
        {choose("audioinput")}
        {video && choose("videoinput")}
        <button type="button" class="primary hangup" onClick={() => { hangUp(); }}>
          Hang up
        </button>
      </div>
    </section>
  );
}

/** Recent and missed calls. */
export function CallHistory() {
  useEffect(() => {
    void attempt(refreshCallHistory);
  }, []);
  const calls = callHistory.value;
  return (
    <section aria-label="Call history">
      <h2>Calls</h2>
      {calls.length === 0 && <p class="muted">No calls yet.</p>}
      <ul class="calls">
        {calls.map((c) => {
          const others = c.members.filter((id) => id !== me.value?.id);
          const missed = c.outcome === "missed";
          return (
            <li key={c.session_id} class={`call-entry ${missed ? "missed" : ""}`} data-outcome={c.outcome ?? c.state} data-direction={c.direction}>
              <span class="grow">
                {c.direction === "outgoing" ? "↗" : "↙"} {others.map(nameOf).join(", ")} <span class="small muted">({c.media})</span>
              </span>
              <span class="small muted">
                {missed ? "missed" : (c.outcome ?? c.state)}
                {c.duration_s > 0 ? ` · ${clock(c.duration_s)}` : ""} · {new Date(c.created_at).toLocaleString()}
              </span>
            </li>
          );
        })}
      </ul>
    </section>
  );
}

/** A call in its conversation's timeline ("Missed video call", "Video call · No answer", …);
 *  a missed call on screen counts as seen. */
export function CallLine({ call, conversationId }: { call: HistoryItem; conversationId: string }) {
  const missed = isMissed(call);
  const self = me.value?.id;
  // Seen when it is on screen: the tab visible (as read receipts are).
  useEffect(() => {
    if (!missed || self === undefined) return;
    const mark = () => {
      if (document.visibilityState === "visible") markCallsSeen(self, conversationId, call.created_at);
    };
    mark();
    document.addEventListener("visibilitychange", mark);
    return () => { document.removeEventListener("visibilitychange", mark); };
  }, [missed, self, conversationId, call.created_at]);
  return (
    <li class={`call-line center ${missed ? "missed" : "muted"}`} data-session={call.session_id} data-outcome={call.outcome ?? call.state} data-direction={call.direction}>
      <span class="call-line-text">
        <span aria-hidden="true">{call.media === "video" ? "📹" : "📞"}</span> {callText(call)}
      </span>{" "}
      <time class="small muted" dateTime={call.created_at}>
        {new Date(call.created_at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}
      </time>
    </li>
  );
}
