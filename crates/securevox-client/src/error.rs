//! The client's error type.

/// Anything that can go wrong in the client.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server refused the request; `code` and `message` are its error body
    /// (`{"error":{"code","message"}}`).
    #[error("server refused ({status} {code}): {message}")]
    Api { status: u16, code: String, message: String, details: Option<serde_json::Value> },
    #[error("cannot reach the server: {0}")]
    Http(#[from] reqwest::Error),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("bad JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("MLS error: {0}")]
    Mls(String),
    /// The account already has an identity (another device holds it): link this device to
    /// it, or replace the identity.
    #[error(
        "this account already has devices: link this one from a device that is signed in, or \
         start a new identity (which signs the other devices out of chat)"
    )]
    LinkRequired,
    #[error("{0}")]
    Other(String),
}

impl Error {
    /// The server's error code, if this is a refusal by the server.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { code, .. } => Some(code),
            Self::LinkRequired => Some("link_required"),
            _ => None,
        }
    }

    pub(crate) fn other(message: impl Into<String>) -> Self {
        Self::Other(message.into())
    }
}

/// Wraps an openmls error (they all implement `Debug`, not all `Display` helpfully).
pub(crate) fn mls<E: std::fmt::Debug>(e: E) -> Error {
    Error::Mls(format!("{e:?}"))
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
