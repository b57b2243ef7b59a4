//! Who is on the other end of a socket: a user with an access token (any of their calls), or a
//! user with a per-call token (that one call only).

use crate::error::ApiError;
use crate::extract::AuthUser;
use crate::state::AppState;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct Identity {
    pub user_id: Arc<str>,
    pub display_name: Arc<str>,
    /// The device session of an access token; `None` for a call token.
    pub session_id: Option<String>,
    /// The only call a per-call token lets this socket join.
    pub call_scope: Option<Arc<str>>,
    /// The chat device this socket speaks for (an access token's user's own device): it gets
    /// that device's inbox items pushed whole.
    pub device_id: Option<Arc<str>>,
}

impl Identity {
    /// Resolves a per-call token, or else an access token, to its identity; `device_id` (with
    /// an access token only) must be one of the user's chat devices.
    pub async fn from_token(
        state: &AppState,
        token: &str,
        device_id: Option<&str>,
    ) -> Result<Self, ApiError> {
        let Ok(claims) = state.tokens.verify_call(token) else {
            let caller = AuthUser::from_token(state, token).await?;
            let device_id = match device_id {
                Some(id) => Some(crate::routes::keys::own_device(state, &caller, id).await?.id),
                None => None,
            };
            let name = caller.user.display_name.unwrap_or(caller.user.username);
            return Ok(Self {
                user_id: caller.user.id.into(),
                display_name: name.into(),
                session_id: Some(caller.session_id),
                call_scope: None,
                device_id: device_id.map(Into::into),
            });
        };
        if device_id.is_some() {
            return Err(ApiError::bad_request(
                "bad_request",
                "a per-call token does not speak for a chat device",
            ));
        }
        let user = state.store.user(&claims.sub).await?;
        let Some(user) = user.filter(|u| !u.is_disabled()) else {
            state.metrics.auth_failure("account_disabled");
            return Err(ApiError::unauthorized("account_disabled", "this account is disabled"));
        };
        Ok(Self {
            user_id: user.id.into(),
            display_name: user.display_name.unwrap_or(user.username).into(),
            session_id: None,
            call_scope: Some(claims.sid.into()),
            device_id: None,
        })
    }
}
