//! SecureVox client: one device of a user, talking to a SecureVox server over its HTTP API,
//! with end-to-end encryption by MLS (openmls) as described in `docs/E2EE.md`.
//!
//! ```no_run
//! # async fn demo() -> securevox_client::Result<()> {
//! use securevox_client::Client;
//! let dir = std::path::Path::new("/tmp/alice");
//! let mut alice = Client::register("http://127.0.0.1:8080", dir, "alice", "password1", None).await?;
//! let id = alice.create_group("team", &["bob"]).await?;
//! alice.send_text(&id, "hello").await?;
//! for message in alice.sync().await?.messages {
//!     println!("{message:?}");
//! }
//! # Ok(()) }
//! ```
//!
//! State lives in a profile directory (see [`store`]); reopen it with [`Client::open`].
//! [`Client::listen`] keeps a device connected (its own Socket.IO connection, [`live`]) and
//! applies what the server pushes as it comes — what a bot runs.

mod api;
mod client;
mod error;
pub mod live;
pub mod safety;
pub mod store;

pub use client::{
    device_signature_message, Client, Content, Device, FetchedFile, LinkRequest, Message,
    PendingLink, ReceiptStatus, SyncReport, TimelineEntry, Update, User, CIPHERSUITE,
    KEY_PACKAGE_BATCH,
};
pub use error::{Error, Result};
pub use store::Profile;
