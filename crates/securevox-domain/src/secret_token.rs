//! Opaque high-entropy secrets (refresh tokens, invite codes) and their stored digests.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::fmt;
use subtle::ConstantTimeEq;

/// A random secret handed to a client once. The server keeps only [`SecretToken::digest`]:
/// 256 random bits need no slow hash, and a database leak then reveals no usable token.
#[derive(Clone)]
pub struct SecretToken(String);

impl SecretToken {
    /// 32 random bytes, URL-safe base64 (43 characters).
    pub fn generate() -> Self {
        Self::with_bytes(32)
    }

    /// A shorter code people may paste by hand (invite codes): 16 random bytes, 22 characters.
    pub fn generate_code() -> Self {
        Self::with_bytes(16)
    }

    fn with_bytes(n: usize) -> Self {
        let mut bytes = vec![0u8; n];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Wraps a token a client sent back.
    pub fn from_client(text: &str) -> Self {
        Self(text.to_owned())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Hex SHA-256 of the token: what the database stores and looks up.
    pub fn digest(&self) -> String {
        sha256_hex(self.0.as_bytes())
    }

    /// The first characters, safe to show in listings so an admin can tell codes apart.
    pub fn hint(&self) -> String {
        self.0.chars().take(4).collect()
    }
}

/// Constant-time equality for secrets compared in memory (API keys, metrics tokens).
pub fn secrets_equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

impl fmt::Debug for SecretToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretToken(<redacted>)")
    }
}

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    Sha256::digest(bytes).iter().fold(String::with_capacity(64), |mut hex, b| {
        let _ = write!(hex, "{b:02x}");
        hex
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_digests_stable() {
        let a = SecretToken::generate();
        let b = SecretToken::generate();
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.expose().len(), 43);
        assert_eq!(SecretToken::generate_code().expose().len(), 22);
        assert_eq!(a.digest(), SecretToken::from_client(a.expose()).digest());
        assert_eq!(a.digest().len(), 64);
        assert!(!format!("{a:?}").contains(a.expose()));
    }

    #[test]
    fn secrets_compare_in_constant_time_semantics() {
        assert!(secrets_equal("abc", "abc"));
        assert!(!secrets_equal("abc", "abd"));
        assert!(!secrets_equal("abc", "abcd"));
    }
}
