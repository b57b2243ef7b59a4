//! Usernames: what people type to log in and to find each other.

use std::fmt;

/// A valid username: 3–32 characters of ASCII letters, digits, `_`, `.` or `-`, starting with a
/// letter or digit. The case is kept for display; uniqueness is case-insensitive (see [`Username::key`]).
#[derive(Clone, PartialEq, Eq)]
pub struct Username(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UsernameError {
    #[error("username must be between {min} and {max} characters")]
    Length { min: usize, max: usize },
    #[error("username may contain only letters a-z, digits, '_', '.' and '-', and must start with a letter or digit")]
    Charset,
}

impl Username {
    pub const MIN_LEN: usize = 3;
    pub const MAX_LEN: usize = 32;

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The case-folded form that must be unique across the server.
    pub fn key(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

impl TryFrom<&str> for Username {
    type Error = UsernameError;

    fn try_from(raw: &str) -> Result<Self, Self::Error> {
        let len = raw.chars().count();
        if !(Self::MIN_LEN..=Self::MAX_LEN).contains(&len) {
            return Err(UsernameError::Length { min: Self::MIN_LEN, max: Self::MAX_LEN });
        }
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
        let starts_well = raw.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
        if !starts_well || !raw.chars().all(allowed) {
            return Err(UsernameError::Charset);
        }
        Ok(Self(raw.to_owned()))
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Username({:?})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names_and_folds_case_for_uniqueness() {
        let name = Username::try_from("Alice_01").unwrap();
        assert_eq!(name.as_str(), "Alice_01");
        assert_eq!(name.key(), "alice_01");
    }

    #[test]
    fn rejects_bad_length_and_characters() {
        assert!(matches!(Username::try_from("ab"), Err(UsernameError::Length { .. })));
        assert!(matches!(Username::try_from(&*"a".repeat(33)), Err(UsernameError::Length { .. })));
        assert_eq!(Username::try_from("_alice"), Err(UsernameError::Charset));
        assert_eq!(Username::try_from("al ice"), Err(UsernameError::Charset));
        assert_eq!(Username::try_from("alïce"), Err(UsernameError::Charset));
        assert_eq!(Username::try_from("a'; DROP"), Err(UsernameError::Charset));
    }
}
