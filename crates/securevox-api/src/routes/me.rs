//! The caller's own account: profile, device sessions, password.

use crate::accounts;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, AuthUser, ClientIp, IdPath};
use crate::rate_limit::Limit;
use crate::routes::views::UserView;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use securevox_domain::clock;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_me, update_me))
        .routes(routes!(list_sessions))
        .routes(routes!(revoke_session))
        .routes(routes!(change_password))
}

/// `GET /api/v1/me` — the caller's account.
#[utoipa::path(get, path = "/api/v1/me", tag = "me", security(("bearer" = [])),
    responses((status = 200, body = UserView), (status = 401, body = ErrorBody)))]
async fn get_me(caller: AuthUser) -> Json<UserView> {
    Json(caller.user.into())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMeRequest {
    /// New display name; empty or null clears it.
    pub display_name: Option<String>,
}

/// `PATCH /api/v1/me` — change the caller's display name.
#[utoipa::path(patch, path = "/api/v1/me", tag = "me", security(("bearer" = [])),
    request_body = UpdateMeRequest,
    responses((status = 200, body = UserView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn update_me(
    State(state): State<AppState>,
    caller: AuthUser,
    ApiJson(req): ApiJson<UpdateMeRequest>,
) -> ApiResult<Json<UserView>> {
    let name = accounts::parse_display_name(req.display_name.as_deref())?;
    state.store.set_display_name(&caller.user.id, name.as_deref()).await?;
    let user =
        state.store.user(&caller.user.id).await?.ok_or_else(|| ApiError::not_found("user"))?;
    Ok(Json(user.into()))
}

/// One logged-in device.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    pub id: String,
    pub device_name: Option<String>,
    pub created_at: String,
    pub last_used_at: String,
    pub expires_at: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// True for the session making this request.
    pub current: bool,
}

/// `GET /api/v1/me/sessions` — the caller's live sessions, most recently used first.
#[utoipa::path(get, path = "/api/v1/me/sessions", tag = "me", security(("bearer" = [])),
    responses((status = 200, body = Vec<SessionView>), (status = 401, body = ErrorBody)))]
async fn list_sessions(
    State(state): State<AppState>,
    caller: AuthUser,
) -> ApiResult<Json<Vec<SessionView>>> {
    let sessions = state.store.list_sessions(&caller.user.id).await?;
    Ok(Json(
        sessions
            .into_iter()
            .map(|s| SessionView {
                current: s.id == caller.session_id,
                id: s.id,
                device_name: s.device_name,
                created_at: clock::rfc3339(s.created_at),
                last_used_at: clock::rfc3339(s.last_used_at),
                expires_at: clock::rfc3339(s.expires_at),
                ip: s.ip,
                user_agent: s.user_agent,
            })
            .collect(),
    ))
}

/// `DELETE /api/v1/me/sessions/{id}` — log one of the caller's devices out, at once.
#[utoipa::path(delete, path = "/api/v1/me/sessions/{id}", tag = "me", security(("bearer" = [])),
    params(("id" = String, Path, description = "Session id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn revoke_session(
    State(state): State<AppState>,
    caller: AuthUser,
    IdPath(id): IdPath,
) -> ApiResult<StatusCode> {
    if state.store.revoke_session(&caller.user.id, &id).await? {
        state.realtime.disconnect_session(&id).await;
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("session"))
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    pub new_password: String,
}

/// `POST /api/v1/me/password` — change the password; every other session is logged out.
#[utoipa::path(post, path = "/api/v1/me/password", tag = "me", security(("bearer" = [])),
    request_body = ChangePasswordRequest,
    responses(
        (status = 204, description = "Changed"),
        (status = 400, description = "`invalid_password` (new one too short)", body = ErrorBody),
        (status = 403, description = "`invalid_credentials` (current one wrong)", body = ErrorBody),
    ))]
async fn change_password(
    State(state): State<AppState>,
    caller: AuthUser,
    ip: ClientIp,
    ApiJson(req): ApiJson<ChangePasswordRequest>,
) -> ApiResult<StatusCode> {
    // Each attempt costs a full password hash and guesses the current password: limit it
    // like a login, or a stolen token would allow unlimited guessing.
    state.rate_limit(Limit::Login, ip.0)?;
    accounts::change_password(
        &state,
        &caller.user.id,
        &caller.session_id,
        &req.current_password,
        &req.new_password,
    )
    .await?;
    state.realtime.disconnect_user_except(&caller.user.id, &caller.session_id).await;
    Ok(StatusCode::NO_CONTENT)
}
