//! Calls: the session state machine (K4), what a finished call means to each of its members
//! (history outcomes), and the checks on the signaling payloads the server relays.

use serde::{Deserialize, Serialize};

/// What a call carries. Video calls also carry audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Media {
    Audio,
    Video,
}

impl Media {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Audio => "audio",
            Self::Video => "video",
        }
    }

    pub fn from_stored(text: &str) -> Self {
        if text == "video" {
            Self::Video
        } else {
            Self::Audio
        }
    }
}

/// The state of a call session (K4).
///
/// `pending`: created and ringing; `offered`: an SDP offer has been relayed; `answered`: an SDP
/// answer came back; `connected`: a participant reported media flowing; `ended`: final.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum CallState {
    Pending,
    Offered,
    Answered,
    Connected,
    Ended,
}

impl CallState {
    pub const ALL: [Self; 5] =
        [Self::Pending, Self::Offered, Self::Answered, Self::Connected, Self::Ended];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Offered => "offered",
            Self::Answered => "answered",
            Self::Connected => "connected",
            Self::Ended => "ended",
        }
    }

    pub fn from_stored(text: &str) -> Self {
        Self::ALL.into_iter().find(|s| s.as_str() == text).unwrap_or(Self::Ended)
    }

    /// Whether the machine may move from `self` to `next`. States only move forward, one step
    /// at a time, and any live state may end.
    pub fn can_become(self, next: Self) -> bool {
        use CallState::{Answered, Connected, Ended, Offered, Pending};
        matches!(
            (self, next),
            (Pending, Offered | Ended)
                | (Offered, Answered | Ended)
                | (Answered, Connected | Ended)
                | (Connected, Ended)
        )
    }

    pub fn is_live(self) -> bool {
        self != Self::Ended
    }
}

/// Why a call ended. Stored; together with who answered it gives each member's [`Outcome`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// Everyone left after the call was answered.
    Completed,
    /// The caller cancelled before anyone answered.
    Cancelled,
    /// Every invitee declined.
    Declined,
    /// Nobody answered before the ringing timed out.
    Timeout,
    /// Everyone left before anyone answered.
    Abandoned,
    /// Nothing happened for the idle limit (K6: 1 h).
    Idle,
    /// The server stopped or restarted while the call was live.
    ServerStopped,
}

impl EndReason {
    const ALL: [Self; 7] = [
        Self::Completed,
        Self::Cancelled,
        Self::Declined,
        Self::Timeout,
        Self::Abandoned,
        Self::Idle,
        Self::ServerStopped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
            Self::Declined => "declined",
            Self::Timeout => "timeout",
            Self::Abandoned => "abandoned",
            Self::Idle => "idle",
            Self::ServerStopped => "server_stopped",
        }
    }

    pub fn from_stored(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

/// A member's answer to the ringing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    Accepted,
    Declined,
}

impl Response {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Declined => "declined",
        }
    }

    pub fn from_stored(text: &str) -> Option<Self> {
        match text {
            "accepted" => Some(Self::Accepted),
            "declined" => Some(Self::Declined),
            _ => None,
        }
    }
}

/// How a finished call went, as one member sees it in their history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Completed,
    Missed,
    Declined,
    Cancelled,
    Failed,
}

/// The outcome of a call that ended for `reason`, seen by a member who is the caller or an
/// invitee with `response`. `answered` says whether any invitee accepted.
pub fn outcome(
    reason: EndReason,
    answered: bool,
    viewer_is_caller: bool,
    response: Option<Response>,
) -> Outcome {
    if matches!(reason, EndReason::ServerStopped) && !answered {
        return Outcome::Failed;
    }
    if viewer_is_caller {
        return match reason {
            _ if answered => Outcome::Completed,
            EndReason::Cancelled | EndReason::Abandoned => Outcome::Cancelled,
            EndReason::Declined => Outcome::Declined,
            EndReason::Timeout | EndReason::Idle => Outcome::Missed,
            EndReason::Completed | EndReason::ServerStopped => Outcome::Failed,
        };
    }
    match response {
        Some(Response::Accepted) => Outcome::Completed,
        Some(Response::Declined) => Outcome::Declined,
        // The caller gave up before this invitee picked up: still a call they missed.
        None => Outcome::Missed,
    }
}

/// The role a per-call token grants (K2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CallRole {
    Caller,
    Callee,
    Participant,
}

/// Largest SDP the server relays, bytes. Browser offers for audio+video are 3–12 KB.
pub const MAX_SDP_BYTES: usize = 64 * 1024;
/// Largest ICE candidate line the server relays, bytes.
pub const MAX_CANDIDATE_BYTES: usize = 1024;
const MAX_SDP_MID_BYTES: usize = 64;
const MAX_M_LINE_INDEX: u64 = 1024;

/// Which SDP an event must carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SdpKind {
    Offer,
    Answer,
}

impl SdpKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Offer => "offer",
            Self::Answer => "answer",
        }
    }
}

/// Why a signaling payload is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignalError {
    #[error("sdp is larger than {MAX_SDP_BYTES} bytes")]
    SdpTooLarge,
    #[error("sdp is not a session description (it must start with \"v=0\" and have one <letter>=<value> per line)")]
    SdpMalformed,
    #[error("sdp type is {found:?} but this event carries an {expected}")]
    SdpWrongType { expected: &'static str, found: String },
    #[error("candidate is larger than {MAX_CANDIDATE_BYTES} bytes")]
    CandidateTooLarge,
    #[error("candidate must be empty (end of candidates) or a \"candidate:\" line")]
    CandidateMalformed,
    #[error("sdpMid must be at most {MAX_SDP_MID_BYTES} printable characters")]
    SdpMidMalformed,
    #[error("sdpMLineIndex must be at most {MAX_M_LINE_INDEX}")]
    MLineIndexOutOfRange,
}

/// Checks an SDP body, and its `type` when the sender gave one (`RTCSessionDescriptionInit`).
pub fn check_sdp(expected: SdpKind, kind: Option<&str>, sdp: &str) -> Result<(), SignalError> {
    if let Some(found) = kind {
        if found != expected.as_str() {
            return Err(SignalError::SdpWrongType {
                expected: expected.as_str(),
                found: found.chars().take(32).collect(),
            });
        }
    }
    if sdp.len() > MAX_SDP_BYTES {
        return Err(SignalError::SdpTooLarge);
    }
    let mut lines = sdp.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    if lines.next() != Some("v=0") {
        return Err(SignalError::SdpMalformed);
    }
    let well_formed = lines.filter(|l| !l.is_empty()).all(|line| {
        let bytes = line.as_bytes();
        bytes.len() >= 2
            && bytes[0].is_ascii_lowercase()
            && bytes[1] == b'='
            && !bytes.iter().any(|&b| b < 0x20 && b != b'\t')
    });
    if well_formed {
        Ok(())
    } else {
        Err(SignalError::SdpMalformed)
    }
}

/// Checks the fields of an ICE candidate (`RTCIceCandidateInit`) that are present. An empty
/// candidate string is the end-of-candidates marker.
pub fn check_candidate(
    candidate: Option<&str>,
    sdp_mid: Option<&str>,
    m_line_index: Option<u64>,
) -> Result<(), SignalError> {
    if let Some(line) = candidate {
        if line.len() > MAX_CANDIDATE_BYTES {
            return Err(SignalError::CandidateTooLarge);
        }
        let line = line.strip_prefix("a=").unwrap_or(line);
        let printable = line.bytes().all(|b| (0x20..0x7f).contains(&b));
        let well_formed = line.is_empty() || (line.starts_with("candidate:") && printable);
        if !well_formed {
            return Err(SignalError::CandidateMalformed);
        }
    }
    if let Some(mid) = sdp_mid {
        if mid.len() > MAX_SDP_MID_BYTES || !mid.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return Err(SignalError::SdpMidMalformed);
        }
    }
    if m_line_index.is_some_and(|i| i > MAX_M_LINE_INDEX) {
        return Err(SignalError::MLineIndexOutOfRange);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_move_forward_one_step_and_may_always_end() {
        use CallState::*;
        for from in CallState::ALL {
            for to in CallState::ALL {
                let allowed = from.can_become(to);
                let expected = from != Ended && (to == Ended || (to as u8) == (from as u8) + 1);
                assert_eq!(allowed, expected, "{from:?} -> {to:?}");
            }
        }
        assert!(!Ended.can_become(Pending));
        assert!(!Pending.can_become(Answered));
        assert!(!Connected.can_become(Offered));
    }

    #[test]
    fn stored_forms_round_trip() {
        for s in CallState::ALL {
            assert_eq!(CallState::from_stored(s.as_str()), s);
        }
        for r in EndReason::ALL {
            assert_eq!(EndReason::from_stored(r.as_str()), Some(r));
        }
        assert_eq!(EndReason::from_stored("nonsense"), None);
    }

    #[test]
    fn outcomes_per_member() {
        use EndReason as R;
        use Outcome as O;
        // Answered and finished: completed for the caller and whoever accepted, missed for an
        // invitee who never picked up (group call), declined for one who declined.
        assert_eq!(outcome(R::Completed, true, true, None), O::Completed);
        assert_eq!(outcome(R::Completed, true, false, Some(Response::Accepted)), O::Completed);
        assert_eq!(outcome(R::Completed, true, false, None), O::Missed);
        assert_eq!(outcome(R::Completed, true, false, Some(Response::Declined)), O::Declined);
        // Not answered.
        assert_eq!(outcome(R::Cancelled, false, true, None), O::Cancelled);
        assert_eq!(outcome(R::Cancelled, false, false, None), O::Missed);
        assert_eq!(outcome(R::Timeout, false, true, None), O::Missed);
        assert_eq!(outcome(R::Timeout, false, false, None), O::Missed);
        assert_eq!(outcome(R::Declined, false, true, None), O::Declined);
        assert_eq!(outcome(R::Declined, false, false, Some(Response::Declined)), O::Declined);
        assert_eq!(outcome(R::ServerStopped, false, true, None), O::Failed);
        assert_eq!(outcome(R::ServerStopped, true, true, None), O::Completed);
    }

    const OFFER: &str = "v=0\r\no=- 46117 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n";

    #[test]
    fn sdp_checks() {
        assert_eq!(check_sdp(SdpKind::Offer, Some("offer"), OFFER), Ok(()));
        assert_eq!(check_sdp(SdpKind::Answer, None, OFFER), Ok(()));
        assert!(matches!(
            check_sdp(SdpKind::Answer, Some("offer"), OFFER),
            Err(SignalError::SdpWrongType { .. })
        ));
        assert_eq!(check_sdp(SdpKind::Offer, None, "hello"), Err(SignalError::SdpMalformed));
        assert_eq!(
            check_sdp(SdpKind::Offer, None, "v=0\nbad line"),
            Err(SignalError::SdpMalformed)
        );
        assert_eq!(
            check_sdp(SdpKind::Offer, None, "v=0\na=x\u{1}y"),
            Err(SignalError::SdpMalformed)
        );
        let huge = format!("v=0\n{}", "a=x\n".repeat(MAX_SDP_BYTES / 4));
        assert_eq!(check_sdp(SdpKind::Offer, None, &huge), Err(SignalError::SdpTooLarge));
    }

    #[test]
    fn candidate_checks() {
        let line = "candidate:842163049 1 udp 1677729535 127.0.0.1 50000 typ host generation 0";
        assert_eq!(check_candidate(Some(line), Some("0"), Some(0)), Ok(()));
        assert_eq!(check_candidate(Some(""), None, None), Ok(()));
        assert_eq!(check_candidate(None, None, None), Ok(()));
        assert_eq!(
            check_candidate(Some("rm -rf /"), None, None),
            Err(SignalError::CandidateMalformed)
        );
        assert_eq!(
            check_candidate(Some("candidate:1\n2"), None, None),
            Err(SignalError::CandidateMalformed)
        );
        let long = format!("candidate:{}", "1".repeat(MAX_CANDIDATE_BYTES));
        assert_eq!(check_candidate(Some(&long), None, None), Err(SignalError::CandidateTooLarge));
        assert_eq!(check_candidate(None, Some("\u{7}"), None), Err(SignalError::SdpMidMalformed));
        assert_eq!(check_candidate(None, None, Some(5000)), Err(SignalError::MLineIndexOutOfRange));
    }
}
