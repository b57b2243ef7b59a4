//! Response shapes shared by several routes.

use crate::accounts::IssuedTokens;
use securevox_domain::{clock, Role};
use securevox_store::UserRecord;
use serde::Serialize;
use utoipa::ToSchema;

/// A user as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: String,
    pub username: String,
    pub display_name: Option<String>,
    pub role: Role,
    pub disabled: bool,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339; absent if the user was never seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seen_at: Option<String>,
}

impl From<UserRecord> for UserView {
    fn from(u: UserRecord) -> Self {
        Self {
            disabled: u.is_disabled(),
            created_at: clock::rfc3339(u.created_at),
            last_seen_at: u.last_seen_at.map(clock::rfc3339),
            id: u.id,
            username: u.username,
            display_name: u.display_name,
            role: u.role,
        }
    }
}

/// Tokens for a session, and who it belongs to.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuthResponse {
    /// Short-lived JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// Opaque; exchange at `/api/v1/auth/refresh`. Each use replaces it.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    pub session_id: String,
    pub user: UserView,
}

impl AuthResponse {
    pub fn new(user: UserRecord, tokens: IssuedTokens) -> Self {
        Self {
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token.expose().to_owned(),
            token_type: "Bearer",
            expires_in: tokens.expires_in,
            session_id: tokens.session_id,
            user: user.into(),
        }
    }
}
