//! The bodies that signaling relays, read for checking in one pass over their JSON: `sdp` of
//! `offer`/`answer` and `candidate` of `ice_candidate`, in the shapes browsers send and their
//! bare-string forms. Strings are borrowed from the packet where they hold no escapes.
//! (Written out rather than derived as untagged enums: serde buffers an untagged value into an
//! owned tree of strings and tries every variant in turn.)

use serde::de::{Deserializer, Error, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use std::borrow::Cow;
use std::fmt;

/// `RTCSessionDescriptionInit`, or the bare SDP text.
#[derive(Debug, PartialEq, Eq)]
pub enum SdpIn<'a> {
    Text(Cow<'a, str>),
    Description { kind: Option<Cow<'a, str>>, sdp: Cow<'a, str> },
}

/// `RTCIceCandidateInit`, the bare candidate line, or null (end of candidates).
#[derive(Debug, PartialEq, Eq)]
pub enum CandidateIn<'a> {
    Text(Cow<'a, str>),
    Init {
        candidate: Option<Cow<'a, str>>,
        sdp_mid: Option<Cow<'a, str>>,
        m_line_index: Option<u64>,
    },
    Null,
}

impl<'de> Deserialize<'de> for SdpIn<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SdpVisitor)
    }
}

impl<'de> Deserialize<'de> for CandidateIn<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(CandidateVisitor)
    }
}

/// A string value, borrowed when it can be.
pub(super) struct Text<'a>(pub(super) Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct TextVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for TextVisitor<'a> {
            type Value = Text<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        d.deserialize_str(TextVisitor(std::marker::PhantomData))
    }
}

/// The keys the checks read; any other is skipped.
enum Key {
    Type,
    Sdp,
    Candidate,
    SdpMid,
    MLineIndex,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: Error>(self, v: &str) -> Result<Key, E> {
                Ok(match v {
                    "type" => Key::Type,
                    "sdp" => Key::Sdp,
                    "candidate" => Key::Candidate,
                    "sdpMid" => Key::SdpMid,
                    "sdpMLineIndex" => Key::MLineIndex,
                    _ => Key::Other,
                })
            }
        }
        d.deserialize_identifier(KeyVisitor)
    }
}

fn text(value: Option<Text<'_>>) -> Option<Cow<'_, str>> {
    value.map(|t| t.0)
}

struct SdpVisitor;

impl<'de> Visitor<'de> for SdpVisitor {
    type Value = SdpIn<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("the SDP text or {type, sdp}")
    }
    fn visit_borrowed_str<E: Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(SdpIn::Text(Cow::Borrowed(v)))
    }
    fn visit_str<E: Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(SdpIn::Text(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E: Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(SdpIn::Text(Cow::Owned(v)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut kind, mut sdp) = (None, None);
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Type => kind = text(map.next_value()?),
                Key::Sdp => sdp = Some(map.next_value::<Text>()?.0),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let sdp = sdp.ok_or_else(|| A::Error::missing_field("sdp"))?;
        Ok(SdpIn::Description { kind, sdp })
    }
}

struct CandidateVisitor;

impl<'de> Visitor<'de> for CandidateVisitor {
    type Value = CandidateIn<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a candidate line, {candidate, sdpMid, sdpMLineIndex} or null")
    }
    fn visit_borrowed_str<E: Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(CandidateIn::Text(Cow::Borrowed(v)))
    }
    fn visit_str<E: Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(CandidateIn::Text(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E: Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(CandidateIn::Text(Cow::Owned(v)))
    }
    fn visit_unit<E: Error>(self) -> Result<Self::Value, E> {
        Ok(CandidateIn::Null)
    }
    fn visit_none<E: Error>(self) -> Result<Self::Value, E> {
        Ok(CandidateIn::Null)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut candidate, mut sdp_mid, mut m_line_index) = (None, None, None);
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Candidate => candidate = text(map.next_value()?),
                Key::SdpMid => sdp_mid = text(map.next_value()?),
                Key::MLineIndex => m_line_index = map.next_value()?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(CandidateIn::Init { candidate, sdp_mid, m_line_index })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(json: &str) -> Result<CandidateIn<'_>, serde_json::Error> {
        serde_json::from_str(json)
    }

    fn sdp(json: &str) -> Result<SdpIn<'_>, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn candidates_in_every_shape() {
        let line = "candidate:1 1 udp 1 127.0.0.1 5000 typ host";
        assert_eq!(candidate(&format!("\"{line}\"")).unwrap(), CandidateIn::Text(line.into()));
        assert!(
            matches!(
                candidate(&format!("\"{line}\"")).unwrap(),
                CandidateIn::Text(Cow::Borrowed(_))
            ),
            "no copy without escapes"
        );
        assert_eq!(candidate("null").unwrap(), CandidateIn::Null);
        let init = format!(
            r#"{{"candidate":"{line}","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"x"}}"#
        );
        assert_eq!(
            candidate(&init).unwrap(),
            CandidateIn::Init {
                candidate: Some(line.into()),
                sdp_mid: Some("0".into()),
                m_line_index: Some(0)
            }
        );
        assert_eq!(
            candidate(r#"{"candidate":null,"sdpMid":null,"src":{"nested":[1,2]},"ts":3.5}"#)
                .unwrap(),
            CandidateIn::Init { candidate: None, sdp_mid: None, m_line_index: None }
        );
        assert_eq!(
            candidate(r#""a\"b""#).unwrap(),
            CandidateIn::Text("a\"b".into()),
            "escapes decoded"
        );
        for bad in
            ["5", "true", "[]", r#"{"candidate":5}"#, r#"{"sdpMLineIndex":-1}"#, r#"{"sdpMid":[]}"#]
        {
            assert!(candidate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn descriptions_and_bare_sdp() {
        assert_eq!(sdp(r#""v=0\r\n""#).unwrap(), SdpIn::Text("v=0\r\n".into()));
        assert_eq!(
            sdp(r#"{"type":"offer","sdp":"v=0"}"#).unwrap(),
            SdpIn::Description { kind: Some("offer".into()), sdp: "v=0".into() }
        );
        assert_eq!(
            sdp(r#"{"sdp":"v=0","extra":{}}"#).unwrap(),
            SdpIn::Description { kind: None, sdp: "v=0".into() }
        );
        for bad in
            ["null", "1", "[]", r#"{"type":"offer"}"#, r#"{"sdp":1}"#, r#"{"type":2,"sdp":"v=0"}"#]
        {
            assert!(sdp(bad).is_err(), "{bad}");
        }
    }
}
