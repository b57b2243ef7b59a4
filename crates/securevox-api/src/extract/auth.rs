//! The authenticated caller. Every request checks its access token *and* its session, so a
//! revoked session or a disabled account stops working at once, not when the token expires.

use crate::error::ApiError;
use crate::state::AppState;
use crate::tokens::TokenError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use securevox_domain::Role;
use securevox_store::UserRecord;

/// A caller with a valid access token for a live session of an enabled account.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub user: UserRecord,
    pub session_id: String,
}

impl AuthUser {
    /// Resolves an access token (from a header, a socket handshake …) to its caller.
    pub async fn from_token(state: &AppState, token: &str) -> Result<Self, ApiError> {
        let claims = state.tokens.verify(token).map_err(|e| match e {
            TokenError::Expired => {
                state.metrics.auth_failure("token_expired");
                ApiError::unauthorized("token_expired", "access token has expired; refresh it")
            }
            TokenError::Invalid => {
                state.metrics.auth_failure("invalid_token");
                ApiError::unauthorized("invalid_token", "access token is not valid")
            }
        })?;
        let auth = state.store.session_auth(&claims.sid).await?;
        let Some(auth) = auth.filter(|a| a.user.id == claims.sub) else {
            state.metrics.auth_failure("session_revoked");
            return Err(ApiError::unauthorized("session_revoked", "this session has ended"));
        };
        if auth.user.is_disabled() {
            state.metrics.auth_failure("account_disabled");
            return Err(ApiError::unauthorized("account_disabled", "this account is disabled"));
        }
        if !auth.session_live {
            state.metrics.auth_failure("session_revoked");
            return Err(ApiError::unauthorized("session_revoked", "this session has ended"));
        }
        if let Some(at) = state.activity.mark(&auth.user.id) {
            state.store.touch_user_seen(&auth.user.id, at).await?;
        }
        Ok(Self { user: auth.user, session_id: auth.session_id })
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(token) = super::bearer_token(&parts.headers) else {
            return Err(ApiError::unauthorized(
                "missing_token",
                "send an access token as 'Authorization: Bearer <token>'",
            ));
        };
        Self::from_token(state, token).await
    }
}

/// An authenticated caller who is an admin; anyone else gets 403.
#[derive(Debug, Clone)]
pub struct AdminUser(pub AuthUser);

impl FromRequestParts<AppState> for AdminUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = AuthUser::from_request_parts(parts, state).await?;
        if caller.user.role == Role::Admin {
            Ok(Self(caller))
        } else {
            Err(ApiError::forbidden("forbidden", "this needs an admin account"))
        }
    }
}
