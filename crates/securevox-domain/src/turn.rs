//! TURN REST credentials (the scheme of coturn's `use-auth-secret`): a username that carries
//! its own expiry and a password derived from it with a secret shared with the TURN server, so
//! any TURN server holding the secret can check them without asking us.
//!
//! `username = "<unix expiry>:<user>"`, `password = base64(HMAC-SHA1(secret, username))`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use std::fmt;

/// A credential lifetime the scheme allows: 60 s to 24 h.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TurnTtl(u64);

impl TurnTtl {
    pub const MIN_S: u64 = 60;
    pub const MAX_S: u64 = 86_400;

    pub fn seconds(self) -> u64 {
        self.0
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("ttl must be between {} and {} seconds", TurnTtl::MIN_S, TurnTtl::MAX_S)]
pub struct TurnTtlError;

impl TryFrom<u64> for TurnTtl {
    type Error = TurnTtlError;

    fn try_from(seconds: u64) -> Result<Self, Self::Error> {
        if (Self::MIN_S..=Self::MAX_S).contains(&seconds) {
            Ok(Self(seconds))
        } else {
            Err(TurnTtlError)
        }
    }
}

/// Who the credentials are for: 1–128 printable characters, no `:` (the scheme's separator)
/// and no spaces.
#[derive(Clone, PartialEq, Eq)]
pub struct TurnUser(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("username must be 1 to 128 printable characters without ':' or spaces")]
pub struct TurnUserError;

impl TryFrom<&str> for TurnUser {
    type Error = TurnUserError;

    fn try_from(raw: &str) -> Result<Self, Self::Error> {
        let ok = (1..=128).contains(&raw.chars().count())
            && !raw.chars().any(|c| c == ':' || c.is_whitespace() || c.is_control());
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(TurnUserError)
        }
    }
}

impl fmt::Debug for TurnUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TurnUser({:?})", self.0)
    }
}

/// A minted pair. `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct TurnCredentials {
    pub username: String,
    pub password: String,
    pub ttl: u64,
    /// Unix seconds.
    pub expires_at: i64,
}

impl fmt::Debug for TurnCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TurnCredentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("ttl", &self.ttl)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Mints credentials for `user` valid for `ttl` from `now` (Unix seconds).
pub fn mint(secret: &[u8], user: &TurnUser, ttl: TurnTtl, now: i64) -> TurnCredentials {
    let expires_at = now.saturating_add(i64::try_from(ttl.0).unwrap_or(i64::MAX));
    let username = format!("{expires_at}:{}", user.0);
    TurnCredentials { password: password_for(secret, &username), username, ttl: ttl.0, expires_at }
}

/// The password a TURN server expects for `username` under `secret`.
pub fn password_for(secret: &[u8], username: &str) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha1>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(username.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_turn_rest_scheme() {
        // Computed independently: python3 -c "import hmac,hashlib,base64;
        // print(base64.b64encode(hmac.new(b'north',b'1700000600:alice',hashlib.sha1).digest()))" (the
        // expected value below is that program's output)
        let creds = mint(
            b"north",
            &TurnUser::try_from("alice").unwrap(),
            TurnTtl::try_from(600).unwrap(),
            1_700_000_000,
        );
        assert_eq!(creds.username, "1700000600:alice");
        assert_eq!(creds.expires_at, 1_700_000_600);
        assert_eq!(creds.password, "gthUwOpcRoLI0MMCziCEBOWYnpo=");
        assert!(!format!("{creds:?}").contains(&creds.password));
    }

    #[test]
    fn ttl_and_user_are_validated() {
        assert_eq!(TurnTtl::try_from(59), Err(TurnTtlError));
        assert_eq!(TurnTtl::try_from(86_401), Err(TurnTtlError));
        assert_eq!(TurnTtl::try_from(60).map(TurnTtl::seconds), Ok(60));
        assert_eq!(TurnTtl::try_from(86_400).map(TurnTtl::seconds), Ok(86_400));
        for bad in ["", "a:b", "two words", "nul\0", &"x".repeat(129)] {
            assert_eq!(TurnUser::try_from(bad), Err(TurnUserError), "{bad:?}");
        }
        assert!(TurnUser::try_from("0194f1c2-7d3a-7c4e-9a10-3f2b1c0d9e8f").is_ok());
    }
}
