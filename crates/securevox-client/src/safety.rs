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
}
