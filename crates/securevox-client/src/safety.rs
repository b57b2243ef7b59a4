//! Safety numbers: a 60-digit number two users compare out of band (in person, on a call) to
//! check that the server handed each of them the other's real identity key.
//!
//! Derivation (modelled on Signal's numeric fingerprint, version 0):
//!
//! 1. For each side, with `key` the 32-byte Ed25519 identity public key and `id` the user id
//!    (UTF-8):
//!    `h = SHA-512(0x00 0x00 || key || id)`, then 5200 times `h = SHA-512(h || key)`.
//! 2. The first 30 bytes of `h` are read as six 5-byte big-endian numbers; each, modulo
//!    100 000, gives 5 decimal digits (zero-padded): 30 digits per side.
//! 3. The two 30-digit strings are sorted and concatenated, so both users see the same 60
//!    digits. Displayed as 12 groups of 5.
//!
//! The number depends only on the users' identity keys and ids, so adding a device does not
//! change it; replacing an identity key (a reinstall) does.

use sha2::{Digest as _, Sha512};
use std::fmt::Write as _;

const VERSION: [u8; 2] = [0, 0];
const ITERATIONS: usize = 5200;

/// The 30 digits of one side.
pub fn fingerprint(identity_key: &[u8], user_id: &str) -> String {
    let mut hash = Sha512::new()
        .chain_update(VERSION)
        .chain_update(identity_key)
        .chain_update(user_id.as_bytes())
        .finalize();
    for _ in 0..ITERATIONS {
        hash = Sha512::new().chain_update(hash).chain_update(identity_key).finalize();
    }
    let mut digits = String::with_capacity(30);
    for chunk in hash[..30].chunks(5) {
        let n = chunk.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        let _ = write!(digits, "{:05}", n % 100_000);
    }
    digits
}

/// The 60-digit safety number of two users (the same whichever side computes it).
pub fn safety_number(key_a: &[u8], user_a: &str, key_b: &[u8], user_b: &str) -> String {
    let mut sides = [fingerprint(key_a, user_a), fingerprint(key_b, user_b)];
    sides.sort();
    sides.concat()
}

/// `digits` in groups of five, separated by spaces.
pub fn display(digits: &str) -> String {
    digits
        .as_bytes()
        .chunks(5)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The 16-digit code both devices show while one is linked to the other's identity:
/// `SHA-256("SecureVox link code v1" 0x00 || signature_key || transfer_key)`, its first 8
/// bytes read big-endian, modulo 10^16, zero-padded. The user compares it (or types the new
/// device's into the approving one), so a server that swapped the new device's keys for its
/// own would have to find keys with the same code: about 2^53 tries, while the request lives.
pub fn link_code(signature_key: &[u8], transfer_key: &[u8]) -> String {
    let hash = sha2::Sha256::new()
        .chain_update(b"SecureVox link code v1\0")
        .chain_update(signature_key)
        .chain_update(transfer_key)
        .finalize();
    let n = hash[..8].iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    format!("{:016}", n % 10_000_000_000_000_000)
}

/// `code` with everything but its digits dropped (for codes typed with spaces).
pub fn digits_of(code: &str) -> String {
    code.chars().filter(char::is_ascii_digit).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symmetric_and_sixty_digits() {
        let a = safety_number(&[1; 32], "alice", &[2; 32], "bob");
        let b = safety_number(&[2; 32], "bob", &[1; 32], "alice");
        assert_eq!(a, b);
        assert_eq!(a.len(), 60);
        assert!(a.bytes().all(|c| c.is_ascii_digit()));
        assert_ne!(a, safety_number(&[3; 32], "bob", &[1; 32], "alice"), "a new key changes it");
        assert_eq!(display(&a).split(' ').count(), 12);
    }

    #[test]
    fn link_codes_are_sixteen_digits_and_bind_both_keys() {
        let code = link_code(&[1; 32], &[2; 32]);
        assert_eq!(code.len(), 16);
        assert!(code.bytes().all(|c| c.is_ascii_digit()));
        assert_ne!(code, link_code(&[1; 32], &[3; 32]));
        assert_ne!(code, link_code(&[4; 32], &[2; 32]));
        assert_eq!(digits_of(&display(&code)), code);
    }
}
