//! Passwords: the length policy and argon2id hashing.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, ParamsString, Salt, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
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

/// Reusable argon2 working memory (19 MiB with the default parameters). Hashing with a fresh
/// allocation each time fragments the allocator's heap under a stream of logins; reusing one
/// buffer per worker keeps the server's memory flat.
#[derive(Default)]
pub struct HashMemory(Vec<Block>);

impl HashMemory {
    fn blocks(&mut self, m_cost: u32) -> &mut [Block] {
        let needed = m_cost as usize;
        if self.0.len() < needed {
            self.0.resize(needed, Block::default());
        }
        &mut self.0[..needed]
    }
}

/// Runs argon2 with the given parameters, salt and output length into `memory`.
fn compute(
    argon: &Argon2<'_>,
    m_cost: u32,
    password: &[u8],
    salt: Salt<'_>,
    output_len: usize,
    memory: &mut HashMemory,
) -> argon2::password_hash::Result<Output> {
    let mut salt_buf = [0u8; 64];
    let salt = salt.decode_b64(&mut salt_buf)?;
    Output::init_with(output_len, |out| {
        argon
            .hash_password_into_with_memory(password, salt, out, memory.blocks(m_cost))
            .map_err(Into::into)
    })
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

    /// Hashes with argon2id (default parameters) and a fresh random salt, as a PHC string.
    /// CPU-heavy: call off the async executor.
    pub fn hash(&self) -> PasswordHash {
        self.hash_with(&mut HashMemory::default())
    }

    /// [`Password::hash`] reusing `memory`.
    pub fn hash_with(&self, memory: &mut HashMemory) -> PasswordHash {
        let params = Params::default();
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let salt = SaltString::generate(&mut OsRng);
        let phc = compute(
            &argon,
            params.m_cost(),
            self.0.as_bytes(),
            salt.as_salt(),
            Params::DEFAULT_OUTPUT_LEN,
            memory,
        )
        .and_then(|output| {
            Ok(argon2::PasswordHash {
                algorithm: Algorithm::Argon2id.ident(),
                version: Some(Version::V0x13.into()),
                params: ParamsString::try_from(&params)?,
                salt: Some(salt.as_salt()),
                hash: Some(output),
            }
            .to_string())
        });
        // Only fails on invalid parameters, and the defaults are valid.
        PasswordHash(phc.unwrap_or_default())
    }

    /// Checks this password against a stored hash. A malformed stored hash never matches.
    pub fn verify(&self, stored: &PasswordHash) -> bool {
        self.verify_with(stored, &mut HashMemory::default())
    }

    /// [`Password::verify`] reusing `memory`. Honours the parameters stored in the hash, so
    /// hashes made with other settings keep verifying.
    pub fn verify_with(&self, stored: &PasswordHash, memory: &mut HashMemory) -> bool {
        let Ok(phc) = argon2::PasswordHash::new(&stored.0) else {
            return false;
        };
        let (Some(salt), Some(expected)) = (phc.salt, phc.hash) else {
            return false;
        };
        let Ok(algorithm) = Algorithm::try_from(phc.algorithm) else {
            return false;
        };
        let Ok(version) = phc.version.map_or(Ok(Version::default()), Version::try_from) else {
            return false;
        };
        let Ok(params) = Params::try_from(&phc) else {
            return false;
        };
        let argon = Argon2::new(algorithm, version, params.clone());
        // `Output` equality is constant-time.
        compute(&argon, params.m_cost(), self.0.as_bytes(), salt, expected.len(), memory)
            .is_ok_and(|computed| computed == expected)
    }

    /// Spends the same time as a real check, for logins with an unknown username, so response
    /// time does not reveal which usernames exist.
    pub fn verify_against_nothing(&self, memory: &mut HashMemory) {
        static DUMMY: OnceLock<PasswordHash> = OnceLock::new();
        let dummy = DUMMY.get_or_init(|| Password("not a real password".into()).hash());
        let _ = self.verify_with(dummy, memory);
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
        assert_eq!(Password::new("short", 8).unwrap_err(), PasswordError::TooShort(8));
        assert_eq!(Password::new(&"x".repeat(2000), 8).unwrap_err(), PasswordError::TooLong);
        assert!(Password::new("ünïcödé!", 8).is_ok(), "counts characters, not bytes");
    }

    #[test]
    fn reused_memory_gives_standard_hashes_that_argon2_itself_verifies() {
        use argon2::password_hash::PasswordVerifier;
        let mut memory = HashMemory::default();
        let pw = Password::new("correct horse", 8).unwrap();
        let hash = pw.hash_with(&mut memory);
        let again = pw.hash_with(&mut memory);
        let parsed = argon2::PasswordHash::new(hash.as_str()).unwrap();
        assert!(Argon2::default().verify_password(b"correct horse", &parsed).is_ok());
        assert!(Argon2::default().verify_password(b"wrong horse", &parsed).is_err());
        assert!(pw.verify_with(&again, &mut memory));

        // A hash made by the crate's own API, with other parameters, verifies here too.
        let params = Params::new(8 * 1024, 3, 1, None).unwrap();
        let other = argon2::PasswordHasher::hash_password(
            &Argon2::new(Algorithm::Argon2id, Version::V0x13, params),
            b"correct horse",
            &SaltString::generate(&mut OsRng),
        )
        .unwrap()
        .to_string();
        assert!(pw.verify_with(&PasswordHash::from_stored(other.clone()), &mut memory));
        let wrong = Password::for_login("correct horsE").unwrap();
        assert!(!wrong.verify_with(&PasswordHash::from_stored(other), &mut memory));
    }

    #[test]
    fn malformed_stored_hash_never_matches_and_debug_redacts() {
        let pw = Password::for_login("anything").unwrap();
        assert!(!pw.verify(&PasswordHash::from_stored("garbage".into())));
        assert_eq!(format!("{pw:?}"), "Password(<redacted>)");
    }
}
