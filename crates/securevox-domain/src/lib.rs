//! SecureVox domain: the types and rules every other crate agrees on.
//!
//! Owns validation of user input (`Username`, `Password`), roles and the registration policy,
//! password hashing, opaque secret tokens, the capacity profile (limits and levels), and the
//! call session state machine with its signaling checks.
//! It must not depend on HTTP (axum), storage (sqlx) or the real-time layer: those crates
//! depend on this one, never the other way round.

pub mod call;
pub mod capacity;
pub mod clock;
pub mod delivery;
pub mod password;
pub mod profile;
pub mod registration;
pub mod role;
pub mod secret_token;
pub mod turn;
pub mod username;

pub use capacity::{CapacityReport, Level, Limits, ResourceUsage, Usage};
pub use password::{HashMemory, Password, PasswordError, PasswordHash};
pub use profile::{DeviceName, DisplayName, NameError};
pub use registration::RegistrationMode;
pub use role::Role;
pub use secret_token::SecretToken;
pub use username::{Username, UsernameError};
