//! Free-text names people give themselves and their devices: shown to others, so bounded and
//! free of control characters (which also keeps NUL bytes away from the database).

use std::fmt;
use std::marker::PhantomData;

/// Longest name accepted, in characters.
pub const MAX_NAME_CHARS: usize = 64;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("must be at most {MAX_NAME_CHARS} printable characters")]
pub struct NameError;

fn parse(raw: &str) -> Result<Option<String>, NameError> {
    let name = raw.trim();
    if name.is_empty() {
        return Ok(None);
    }
    if name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(NameError);
    }
    Ok(Some(name.to_owned()))
}

/// A trimmed, bounded, printable name; `K` says what it names.
#[derive(Clone, PartialEq, Eq)]
pub struct Name<K>(String, PhantomData<K>);

/// Marker: how a user is shown to others ("Alice A."), next to their username.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OfUser {}

/// Marker: the name of a device session ("Alice's phone"), shown in the session list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OfDevice {}

pub type DisplayName = Name<OfUser>;
pub type DeviceName = Name<OfDevice>;

impl<K> Name<K> {
    /// Parses optional input: blank means "no name"; otherwise it must be valid.
    pub fn parse_optional(raw: Option<&str>) -> Result<Option<Self>, NameError> {
        Ok(match raw {
            Some(raw) => parse(raw)?.map(|name| Self(name, PhantomData)),
            None => None,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl<K> fmt::Debug for Name<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Name({:?})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_bounded_and_printable() {
        assert_eq!(DisplayName::parse_optional(None), Ok(None));
        assert_eq!(DisplayName::parse_optional(Some("   ")), Ok(None));
        let name = DisplayName::parse_optional(Some("  Alice A. ")).unwrap().unwrap();
        assert_eq!(name.as_str(), "Alice A.");
        assert!(DeviceName::parse_optional(Some("Zoë's phone 📱")).unwrap().is_some());
        assert_eq!(DeviceName::parse_optional(Some("nul\0byte")), Err(NameError));
        assert_eq!(DeviceName::parse_optional(Some("bell\u{7}")), Err(NameError));
        assert_eq!(DisplayName::parse_optional(Some(&"x".repeat(65))), Err(NameError));
        assert!(DisplayName::parse_optional(Some(&"é".repeat(64))).unwrap().is_some());
    }
}
