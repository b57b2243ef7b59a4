//! Client → server events, parsed and checked at the edge. A packet's JSON text is read
//! directly (`["event", {…}]`), in one pass for the relayed events, and SDP / ICE bodies are
//! kept as raw JSON borrowed from the packet, so what is relayed is exactly what was sent, once
//! checked, and the hot path copies nothing.

use crate::error::ApiError;
use crate::realtime::presence::Status;
use crate::realtime::signal_body::{CandidateIn, SdpIn, Text};
use securevox_domain::call::{check_candidate, check_sdp, Media, SdpKind};
use serde::de::{self, DeserializeSeed, IgnoredAny, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;

/// A parsed client event. Only a relay borrows from the packet; [`Request::into_owned`] makes
/// one that can wait in a queue. `LeaveCall`'s `session_id` names the call to leave from a
/// socket in no call (see `calls::signaling::leave`).
#[derive(Debug)]
pub enum Request<'a> {
    Authenticate { token: String, device_id: Option<String> },
    JoinCall { session_id: Option<String> },
    LeaveCall { session_id: Option<String> },
    Relay(Relay<'a>),
    Mute { video: bool, muted: Option<bool> },
    CallStart { invitees: Vec<String>, media: Media },
    CallAccept { session_id: String },
    CallDecline { session_id: String },
    CallCancel { session_id: String },
    CallConnected { session_id: String },
    SetPresence { away: bool },
}

impl Request<'_> {
    /// Requests that complete without waiting on anything (no database, no call room reply)
    /// and so run inline, in the order they arrived.
    pub fn is_inline(&self) -> bool {
        matches!(self, Self::Relay(_) | Self::Mute { .. })
    }

    pub fn into_owned(self) -> Request<'static> {
        match self {
            Self::Relay(relay) => Request::Relay(relay.into_owned()),
            Self::Authenticate { token, device_id } => Request::Authenticate { token, device_id },
            Self::JoinCall { session_id } => Request::JoinCall { session_id },
            Self::LeaveCall { session_id } => Request::LeaveCall { session_id },
            Self::Mute { video, muted } => Request::Mute { video, muted },
            Self::CallStart { invitees, media } => Request::CallStart { invitees, media },
            Self::CallAccept { session_id } => Request::CallAccept { session_id },
            Self::CallDecline { session_id } => Request::CallDecline { session_id },
            Self::CallCancel { session_id } => Request::CallCancel { session_id },
            Self::CallConnected { session_id } => Request::CallConnected { session_id },
            Self::SetPresence { away } => Request::SetPresence { away },
        }
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

    fn of(event: &str) -> Option<Self> {
        match event {
            "offer" => Some(Self::Offer),
            "answer" => Some(Self::Answer),
            "ice_candidate" => Some(Self::IceCandidate),
            _ => None,
        }
    }
}

/// An `offer`, `answer` or `ice_candidate` to relay to one participant.
#[derive(Debug)]
pub struct Relay<'a> {
    pub kind: SignalKind,
    pub session_id: Option<Cow<'a, str>>,
    pub target_user_id: Cow<'a, str>,
    /// The `sdp` or `candidate` value, as sent.
    pub body: Cow<'a, RawValue>,
    pub sdp_mid: Option<Cow<'a, RawValue>>,
    pub sdp_m_line_index: Option<Cow<'a, RawValue>>,
}

impl Relay<'_> {
    pub fn into_owned(self) -> Relay<'static> {
        let owned = |raw: Cow<'_, RawValue>| Cow::Owned(raw.into_owned());
        Relay {
            kind: self.kind,
            session_id: self.session_id.map(|s| Cow::Owned(s.into_owned())),
            target_user_id: Cow::Owned(self.target_user_id.into_owned()),
            body: owned(self.body),
            sdp_mid: self.sdp_mid.map(owned),
            sdp_m_line_index: self.sdp_m_line_index.map(owned),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RelayIn<'a> {
    #[serde(borrow)]
    session_id: Option<Text<'a>>,
    #[serde(borrow)]
    target_user_id: Text<'a>,
    #[serde(default, borrow, deserialize_with = "present")]
    sdp: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    candidate: Option<&'a RawValue>,
    #[serde(borrow)]
    sdp_mid: Option<&'a RawValue>,
    #[serde(rename = "sdpMLineIndex", borrow)]
    sdp_m_line_index: Option<&'a RawValue>,
}

/// A field that is there, even as `null` (`Option` alone would read `null` as missing).
fn present<'de: 'a, 'a, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<&'a RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
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

/// Parses a Socket.IO event packet's JSON (`["name", data?, …]`; further arguments are
/// ignored). `has_binary`: the packet came with binary attachments, which signaling never
/// needs.
pub fn parse(packet: &str, has_binary: bool) -> Result<Request<'_>, ApiError> {
    let mut stage = Stage::Packet;
    let read = PacketVisitor { has_binary, stage: &mut stage };
    let mut de = serde_json::Deserializer::from_str(packet);
    match read.deserialize(&mut de).and_then(|parsed| de.end().map(|()| parsed)) {
        Ok(Parsed::Relay(kind, input)) => relay(kind, input),
        Ok(Parsed::Other(event, data)) => request(&event, data.map_or("null", RawValue::get)),
        Ok(Parsed::Refused(e)) => Err(e),
        Err(e) => Err(match stage {
            Stage::Packet => bad_request("the packet is not a JSON array"),
            Stage::Event => bad_request("the event has no name"),
            Stage::Data => invalid_payload(&e),
        }),
    }
}

/// How far [`PacketVisitor`] got, to name what was wrong when reading fails.
enum Stage {
    Packet,
    Event,
    Data,
}

enum Parsed<'a> {
    Relay(SignalKind, RelayIn<'a>),
    Other(Cow<'a, str>, Option<&'a RawValue>),
    Refused(ApiError),
}

/// Reads the event name, then the relay's data straight from the packet (other events keep
/// theirs raw, to be read by [`request`]), and skips any further arguments.
struct PacketVisitor<'s> {
    has_binary: bool,
    stage: &'s mut Stage,
}

impl<'de> DeserializeSeed<'de> for PacketVisitor<'_> {
    type Value = Parsed<'de>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for PacketVisitor<'_> {
    type Value = Parsed<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Socket.IO event: [name, data?]")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        *self.stage = Stage::Event;
        let event = seq
            .next_element::<Text<'de>>()?
            .ok_or_else(|| de::Error::custom("the event has no name"))?
            .0;
        *self.stage = Stage::Data;
        let parsed = if self.has_binary {
            Parsed::Refused(bad_request("binary attachments are not accepted by signaling events"))
        } else if let Some(kind) = SignalKind::of(&event) {
            match seq.next_element::<RelayIn<'de>>()? {
                Some(input) => Parsed::Relay(kind, input),
                None => Parsed::Refused(
                    decode::<RelayIn>("null")
                        .err()
                        .unwrap_or_else(|| bad_request("invalid payload: the event has no data")),
                ),
            }
        } else {
            Parsed::Other(event, seq.next_element::<&'de RawValue>()?)
        };
        *self.stage = Stage::Packet;
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(parsed)
    }
}

fn request<'a>(event: &str, data: &'a str) -> Result<Request<'a>, ApiError> {
    if let Some(kind) = SignalKind::of(event) {
        return relay(kind, decode(data)?);
    }
    Ok(match event {
        "authenticate" => {
            let TokenIn { token, device_id } = decode(data)?;
            Request::Authenticate { token, device_id }
        }
        "join_call" => Request::JoinCall {
            session_id: optional::<OptionalSessionIn>(data)?.and_then(|s| s.session_id),
        },
        "leave_call" => Request::LeaveCall {
            session_id: optional::<OptionalSessionIn>(data)?.and_then(|s| s.session_id),
        },
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

fn relay(kind: SignalKind, input: RelayIn<'_>) -> Result<Request<'_>, ApiError> {
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
    Ok(Request::Relay(Relay {
        kind,
        session_id: input.session_id.map(|s| s.0),
        target_user_id: input.target_user_id.0,
        body: Cow::Borrowed(body),
        sdp_mid: input.sdp_mid.map(Cow::Borrowed),
        sdp_m_line_index: input.sdp_m_line_index.map(Cow::Borrowed),
    }))
}

fn invalid_signal(e: &securevox_domain::call::SignalError) -> ApiError {
    ApiError::bad_request("invalid_signal", e.to_string())
}

fn bad_request(message: &str) -> ApiError {
    ApiError::bad_request("bad_request", message)
}

fn decode<'a, T: Deserialize<'a>>(data: &'a str) -> Result<T, ApiError> {
    serde_json::from_str(data).map_err(|e| invalid_payload(&e))
}

fn invalid_payload(e: &serde_json::Error) -> ApiError {
    let detail = e.to_string();
    // serde's message names the field and the expected type; the position is noise.
    let detail = detail.split(" at line").next().unwrap_or_default();
    bad_request(&format!("invalid payload: {detail}"))
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

    fn ok(packet: &str) -> Request<'_> {
        parse(packet, false).unwrap_or_else(|e| panic!("{packet}: {e}"))
    }

    fn err(packet: &str) -> &'static str {
        parse(packet, false).map(|_| ()).map_err(|e| e.code).expect_err(packet)
    }

    fn message(packet: &str) -> String {
        parse(packet, false).map(|_| ()).map_err(|e| e.message).expect_err(packet)
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
        assert!(matches!(ok(r#"["leave_call"]"#), Request::LeaveCall { session_id: None }));
        assert!(matches!(
            ok(r#"["leave_call",{"sessionId":"c"}]"#),
            Request::LeaveCall { session_id: Some(s) } if s == "c"
        ));
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
        assert_eq!(e.code, "bad_request");
        assert!(e.message.contains("binary"), "{}", e.message);
    }

    #[test]
    fn names_what_is_wrong() {
        assert_eq!(message("not json"), "the packet is not a JSON array");
        assert_eq!(message(r#"{"a":1}"#), "the packet is not a JSON array");
        assert_eq!(
            message(r#"["ice_candidate",{"targetUserId":"u"}] x"#),
            "the packet is not a JSON array"
        );
        assert_eq!(message(r#"["offer",{"targetUserId":"u"},"#), "the packet is not a JSON array");
        assert_eq!(message("[]"), "the event has no name");
        assert_eq!(message("[5]"), "the event has no name");
        for packet in [r#"["offer"]"#, r#"["offer",null]"#] {
            assert!(message(packet).starts_with("invalid payload: invalid type: null"), "{packet}");
        }
        assert_eq!(
            message(r#"["ice_candidate",{"candidate":null}]"#),
            "invalid payload: missing field `targetUserId`"
        );
        assert_eq!(
            message(r#"["ice_candidate",{"targetUserId":5,"candidate":null}]"#),
            "invalid payload: invalid type: integer `5`, expected a string"
        );
        assert_eq!(message(r#"["authenticate",{}]"#), "invalid payload: missing field `token`");
    }

    #[test]
    fn relays_borrow_from_the_packet() {
        let packet = r#"["ice_candidate",{"sessionId":"c","targetUserId":"u","candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host","src":[1,{"x":"]"}]}},"extra",{}]"#;
        let Request::Relay(relay) = ok(packet) else { panic!() };
        assert!(matches!(relay.target_user_id, Cow::Borrowed("u")));
        assert!(matches!(relay.session_id, Some(Cow::Borrowed("c"))));
        assert!(matches!(relay.body, Cow::Borrowed(_)));
        assert!(relay.body.get().ends_with(r#""src":[1,{"x":"]"}]}"#), "{}", relay.body.get());
        // Escaped ids are decoded; a queued relay owns its data.
        let packet = format!(r#"["answer",{{"targetUserId":"\u0075","sdp":"{SDP}"}}]"#);
        let Request::Relay(relay) = ok(&packet) else { panic!() };
        assert_eq!(relay.target_user_id, "u");
        let owned: Relay<'static> = relay.into_owned();
        let sdp = format!("\"{SDP}\"");
        assert_eq!((owned.kind, owned.body.get()), (SignalKind::Answer, sdp.as_str()));
    }
}
