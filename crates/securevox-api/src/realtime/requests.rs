//! Client → server events, parsed and checked at the edge. A packet's JSON text is read
//! directly (`["event", {…}]`), and SDP / ICE bodies are kept as raw JSON, so what is relayed is
//! exactly what was sent, once checked.

use crate::error::ApiError;
use crate::realtime::presence::Status;
use crate::realtime::signal_body::{CandidateIn, SdpIn};
use securevox_domain::call::{check_candidate, check_sdp, Media, SdpKind};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

/// A parsed client event.
#[derive(Debug)]
pub enum Request {
    Authenticate { token: String, device_id: Option<String> },
    JoinCall { session_id: Option<String> },
    LeaveCall,
    Relay(Relay),
    Mute { video: bool, muted: Option<bool> },
    CallStart { invitees: Vec<String>, media: Media },
    CallAccept { session_id: String },
    CallDecline { session_id: String },
    CallCancel { session_id: String },
    CallConnected { session_id: String },
    SetPresence { away: bool },
}

impl Request {
    /// Requests that complete without waiting on anything (no database, no call room reply)
    /// and so run inline, in the order they arrived.
    pub fn is_inline(&self) -> bool {
        matches!(self, Self::Relay(_) | Self::Mute { .. })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalKind {
    Offer,
    Answer,
    IceCandidate,
}

impl SignalKind {
    pub fn event(self) -> &'static str {
        match self {
            Self::Offer => "offer",
            Self::Answer => "answer",
            Self::IceCandidate => "ice_candidate",
        }
    }
}

/// An `offer`, `answer` or `ice_candidate` to relay to one participant.
#[derive(Debug)]
pub struct Relay {
    pub kind: SignalKind,
    pub session_id: Option<String>,
    pub target_user_id: String,
    /// The `sdp` or `candidate` value, as sent.
    pub body: Box<RawValue>,
    pub sdp_mid: Option<Box<RawValue>>,
    pub sdp_m_line_index: Option<Box<RawValue>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RelayIn {
    session_id: Option<String>,
    target_user_id: String,
    #[serde(default, deserialize_with = "present")]
    sdp: Option<Box<RawValue>>,
    #[serde(default, deserialize_with = "present")]
    candidate: Option<Box<RawValue>>,
    sdp_mid: Option<Box<RawValue>>,
    #[serde(rename = "sdpMLineIndex")]
    sdp_m_line_index: Option<Box<RawValue>>,
}

/// A field that is there, even as `null` (`Option` alone would read `null` as missing).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Box<RawValue>>, D::Error> {
    Box::<RawValue>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenIn {
    token: String,
    device_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SessionIn {
    session_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OptionalSessionIn {
    session_id: Option<String>,
}

#[derive(Deserialize)]
struct MuteIn {
    muted: Option<bool>,
}

#[derive(Deserialize)]
struct CallStartIn {
    invitees: Vec<String>,
    #[serde(default = "default_media")]
    media: Media,
}

fn default_media() -> Media {
    Media::Audio
}

#[derive(Deserialize)]
struct PresenceIn {
    status: Status,
}

/// Parses a Socket.IO event packet's JSON (`["name", data?]`). `has_binary`: the packet came
/// with binary attachments, which signaling never needs.
pub fn parse(packet: &str, has_binary: bool) -> Result<(String, Request), (String, ApiError)> {
    let args: Vec<&RawValue> = serde_json::from_str(packet)
        .map_err(|_| (String::new(), bad_request("the packet is not a JSON array")))?;
    let event: Cow<str> = args
        .first()
        .and_then(|a| serde_json::from_str(a.get()).ok())
        .ok_or_else(|| (String::new(), bad_request("the event has no name")))?;
    let event = event.into_owned();
    if has_binary {
        let e = bad_request("binary attachments are not accepted by signaling events");
        return Err((event, e));
    }
    let data = args.get(1).map_or("null", |a| a.get());
    match request(&event, data) {
        Ok(r) => Ok((event, r)),
        Err(e) => Err((event, e)),
    }
}

fn request(event: &str, data: &str) -> Result<Request, ApiError> {
    Ok(match event {
        "authenticate" => {
            let TokenIn { token, device_id } = decode(data)?;
            Request::Authenticate { token, device_id }
        }
        "join_call" => Request::JoinCall {
            session_id: optional::<OptionalSessionIn>(data)?.and_then(|s| s.session_id),
        },
        "leave_call" => Request::LeaveCall,
        "offer" => Request::Relay(relay(SignalKind::Offer, data)?),
        "answer" => Request::Relay(relay(SignalKind::Answer, data)?),
        "ice_candidate" => Request::Relay(relay(SignalKind::IceCandidate, data)?),
        "mute_audio" | "mute_video" => Request::Mute {
            video: event == "mute_video",
            muted: optional::<MuteIn>(data)?.and_then(|m| m.muted),
        },
        "call_start" => {
            let start = decode::<CallStartIn>(data)?;
            Request::CallStart { invitees: start.invitees, media: start.media }
        }
        "call_accept" => Request::CallAccept { session_id: decode::<SessionIn>(data)?.session_id },
        "call_decline" => {
            Request::CallDecline { session_id: decode::<SessionIn>(data)?.session_id }
        }
        "call_cancel" => Request::CallCancel { session_id: decode::<SessionIn>(data)?.session_id },
        "call_connected" => {
            Request::CallConnected { session_id: decode::<SessionIn>(data)?.session_id }
        }
        "set_presence" => match decode::<PresenceIn>(data)?.status {
            Status::Online => Request::SetPresence { away: false },
            Status::Away => Request::SetPresence { away: true },
            Status::Offline => {
                return Err(bad_request("status must be online or away; disconnect to go offline"))
            }
        },
        _ => {
            return Err(ApiError::bad_request(
                "unknown_event",
                format!("no event named {:?}", event.chars().take(64).collect::<String>()),
            ))
        }
    })
}

fn relay(kind: SignalKind, data: &str) -> Result<Relay, ApiError> {
    let input = decode::<RelayIn>(data)?;
    let body = match kind {
        SignalKind::Offer | SignalKind::Answer => {
            let sdp = input.sdp.ok_or_else(|| bad_request("sdp is required"))?;
            let expected = if kind == SignalKind::Offer { SdpKind::Offer } else { SdpKind::Answer };
            let parsed: SdpIn = serde_json::from_str(sdp.get()).map_err(|_| {
                bad_request("sdp must be the SDP text or {type, sdp} (RTCSessionDescriptionInit)")
            })?;
            let (kind, text) = match &parsed {
                SdpIn::Text(text) => (None, text),
                SdpIn::Description { kind, sdp } => (kind.as_deref(), sdp),
            };
            check_sdp(expected, kind, text).map_err(|e| invalid_signal(&e))?;
            sdp
        }
        SignalKind::IceCandidate => {
            let candidate = input.candidate.ok_or_else(|| bad_request("candidate is required"))?;
            let parsed: CandidateIn = serde_json::from_str(candidate.get()).map_err(|_| {
                bad_request("candidate must be a candidate line, {candidate, sdpMid, sdpMLineIndex} or null")
            })?;
            match &parsed {
                CandidateIn::Text(line) => check_candidate(Some(line), None, None),
                CandidateIn::Init { candidate, sdp_mid, m_line_index } => {
                    check_candidate(candidate.as_deref(), sdp_mid.as_deref(), *m_line_index)
                }
                CandidateIn::Null => Ok(()),
            }
            .map_err(|e| invalid_signal(&e))?;
            candidate
        }
    };
    Ok(Relay {
        kind,
        session_id: input.session_id,
        target_user_id: input.target_user_id,
        body,
        sdp_mid: input.sdp_mid,
        sdp_m_line_index: input.sdp_m_line_index,
    })
}

fn invalid_signal(e: &securevox_domain::call::SignalError) -> ApiError {
    ApiError::bad_request("invalid_signal", e.to_string())
}

fn bad_request(message: &str) -> ApiError {
    ApiError::bad_request("bad_request", message)
}

fn decode<'a, T: Deserialize<'a>>(data: &'a str) -> Result<T, ApiError> {
    serde_json::from_str(data).map_err(|e| {
        let detail = e.to_string();
        // serde's message names the field and the expected type; the position is noise.
        let detail = detail.split(" at line").next().unwrap_or_default();
        bad_request(&format!("invalid payload: {detail}"))
    })
}

/// Like [`decode`], for events whose payload may be left out.
fn optional<'a, T: Deserialize<'a>>(data: &'a str) -> Result<Option<T>, ApiError> {
    if data == "null" {
        Ok(None)
    } else {
        decode(data).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SDP: &str = "v=0\\r\\no=- 1 2 IN IP4 127.0.0.1\\r\\ns=-\\r\\nt=0 0\\r\\n";

    fn ok(packet: &str) -> Request {
        parse(packet, false).map_or_else(|(_, e)| panic!("{packet}: {e}"), |(_, r)| r)
    }

    fn err(packet: &str) -> &'static str {
        parse(packet, false).map(|_| ()).map_err(|(_, e)| e.code).expect_err(packet)
    }

    #[test]
    fn parses_seed_events() {
        assert!(
            matches!(ok(r#"["authenticate",{"token":"t"}]"#), Request::Authenticate { token, device_id: None } if token == "t")
        );
        assert!(
            matches!(ok(r#"["join_call",{"sessionId":"c"}]"#), Request::JoinCall { session_id: Some(s) } if s == "c")
        );
        assert!(matches!(ok(r#"["join_call"]"#), Request::JoinCall { session_id: None }));
        assert!(matches!(ok(r#"["leave_call"]"#), Request::LeaveCall));
        assert!(matches!(
            ok(r#"["mute_video",{"muted":true}]"#),
            Request::Mute { video: true, muted: Some(true) }
        ));
        assert!(matches!(ok(r#"["mute_audio"]"#), Request::Mute { video: false, muted: None }));
        let packet = format!(
            r#"["offer",{{"sessionId":"c","targetUserId":"u","sdp":{{"type":"offer","sdp":"{SDP}"}}}}]"#
        );
        let Request::Relay(relay) = ok(&packet) else { panic!() };
        assert_eq!(relay.kind, SignalKind::Offer);
        assert!(relay.body.get().starts_with(r#"{"type":"offer""#), "relayed as sent");
        let packet = format!(r#"["answer",{{"targetUserId":"u","sdp":"{SDP}"}}]"#);
        assert!(matches!(ok(&packet), Request::Relay(Relay { kind: SignalKind::Answer, .. })));
        let ice = r#"["ice_candidate",{"sessionId":"c","targetUserId":"u","candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0}}]"#;
        assert!(matches!(ok(ice), Request::Relay(Relay { kind: SignalKind::IceCandidate, .. })));
        // The benchmark's candidates are plain objects without a candidate line.
        assert!(matches!(
            ok(r#"["ice_candidate",{"targetUserId":"u","candidate":{"src":1,"seq":2,"ts":3.5}}]"#),
            Request::Relay(_)
        ));
        assert!(matches!(
            ok(r#"["ice_candidate",{"targetUserId":"u","candidate":null}]"#),
            Request::Relay(_)
        ));
        assert!(matches!(
            ok(r#"["call_start",{"invitees":["a"],"media":"video"}]"#),
            Request::CallStart { media: Media::Video, .. }
        ));
        assert!(matches!(
            ok(r#"["set_presence",{"status":"away"}]"#),
            Request::SetPresence { away: true }
        ));
    }

    #[test]
    fn refuses_bad_input_with_codes() {
        assert_eq!(err("not json"), "bad_request");
        assert_eq!(err("[]"), "bad_request");
        assert_eq!(err(r#"["nope",{}]"#), "unknown_event");
        assert_eq!(err(r#"["authenticate"]"#), "bad_request");
        assert_eq!(err(r#"["authenticate",{"token":5}]"#), "bad_request");
        assert_eq!(err(r#"["offer",{"targetUserId":"u"}]"#), "bad_request");
        assert_eq!(err(r#"["offer",{"targetUserId":"u","sdp":"hello"}]"#), "invalid_signal");
        let packet =
            format!(r#"["answer",{{"targetUserId":"u","sdp":{{"type":"offer","sdp":"{SDP}"}}}}]"#);
        assert_eq!(err(&packet), "invalid_signal");
        assert_eq!(
            err(r#"["ice_candidate",{"targetUserId":"u","candidate":"x"}]"#),
            "invalid_signal"
        );
        assert_eq!(err(r#"["ice_candidate",{"targetUserId":"u","candidate":5}]"#), "bad_request");
        assert_eq!(err(r#"["set_presence",{"status":"offline"}]"#), "bad_request");
        let e = parse(r#"["offer",{"_placeholder":true,"num":0}]"#, true).map(|_| ()).unwrap_err();
        assert_eq!((e.0.as_str(), e.1.code), ("offer", "bad_request"));
    }
}
