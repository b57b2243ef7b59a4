//! Passwords: the length policy and argon2id hashing.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use std::fmt;
use std::sync::OnceLock;

/// A password that meets the length policy. Its `Debug` never shows the text.
#[derive(Clone)]
pub struct Password(String);

/// Upper bound so a megabyte "password" cannot be used to burn CPU in the hasher.
pub const MAX_PASSWORD_BYTES: usize = 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    #[error("password must be at least {0} characters")]
    TooShort(usize),
    #[error("password must be at most {MAX_PASSWORD_BYTES} bytes")]
    TooLong,
}

impl Password {
    /// Checks the policy: at least `min_chars` characters, at most [`MAX_PASSWORD_BYTES`] bytes.
    pub fn new(raw: &str, min_chars: usize) -> Result<Self, PasswordError> {
        if raw.len() > MAX_PASSWORD_BYTES {
            return Err(PasswordError::TooLong);
        }
        if raw.chars().count() < min_chars {
            return Err(PasswordError::TooShort(min_chars));
        }
        Ok(Self(raw.to_owned()))
    }

    /// Wraps a password typed at login: no policy (it may predate a stricter one), only the cap.
    pub fn for_login(raw: &str) -> Result<Self, PasswordError> {
        Self::new(raw, 0)
    }

    /// Hashes with argon2id and a fresh random salt (PHC string). CPU-heavy: call off the
    /// async executor.
    pub fn hash(&self) -> PasswordHash {
        let salt = SaltString::generate(&mut OsRng);
        let phc = Argon2::default()
            .hash_password(self.0.as_bytes(), &salt)
            .map(|h| h.to_string())
            // Only fails on invalid parameters, and the defaults are valid.
            .unwrap_or_default();
        PasswordHash(phc)
    }

    /// Checks this password against a stored hash. A malformed stored hash never matches.
    pub fn verify(&self, stored: &PasswordHash) -> bool {
        argon2::PasswordHash::new(&stored.0).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(self.0.as_bytes(), &parsed)
                .is_ok()
        })
    }

    /// Spends the same time as a real check, for logins with an unknown username, so response
    /// time does not reveal which usernames exist.
    pub fn verify_against_nothing(&self) {
        static DUMMY: OnceLock<PasswordHash> = OnceLock::new();
        let dummy = DUMMY.get_or_init(|| Password("not a real password".into()).hash());
        let _ = self.verify(dummy);
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// A stored argon2id hash in PHC string form.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    pub fn from_stored(phc: String) -> Self {
        Self(phc)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_with_argon2id_and_verifies() {
        let pw = Password::new("correct horse", 8).unwrap();
        let hash = pw.hash();
        assert!(hash.as_str().starts_with("$argon2id$"));
        assert!(pw.verify(&hash));
        assert!(!Password::for_login("wrong horse").unwrap().verify(&hash));
        assert_ne!(hash, pw.hash(), "each hash gets its own salt");
    }

    #[test]
    fn enforces_length_policy() {
        assert_eq!(
            Password::new("short", 8).unwrap_err(),
            PasswordError::TooShort(8)
        );
        assert_eq!(
            Password::new(&"x".repeat(2000), 8).unwrap_err(),
            PasswordError::TooLong
        );
        assert!(
            Password::new("ünïcödé!", 8).is_ok(),
            "counts characters, not bytes"
        );
    }

    #[test]
    fn malformed_stored_hash_never_matches_and_debug_redacts() {
        let pw = Password::for_login("anything").unwrap();
        assert!(!pw.verify(&PasswordHash::from_stored("garbage".into())));
        assert_eq!(format!("{pw:?}"), "Password(<redacted>)");
    }
}
