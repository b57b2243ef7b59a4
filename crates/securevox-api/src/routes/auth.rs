//! Registration, login, token refresh and logout.

use crate::accounts::{self, ClientContext, Registration};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, AuthUser, ClientIp};
use crate::rate_limit::Limit;
use crate::routes::views::AuthResponse;
use crate::state::AppState;
use axum::extract::State;
use axum::http::header::USER_AGENT;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
}

fn context(ip: ClientIp, headers: &HeaderMap, device_name: Option<String>) -> ClientContext {
    ClientContext {
        ip: Some(ip.0.to_string()),
        user_agent: headers.get(USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_owned),
        device_name: device_name.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()),
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// 3–32 characters: letters, digits, `_`, `.`, `-`; unique ignoring case.
    pub username: String,
    /// At least `auth.min_password_length` characters (8 by default).
    pub password: String,
    pub display_name: Option<String>,
    /// Needed when registration is in `invite` mode (except for the very first account).
    pub invite_code: Option<String>,
    /// Name of the device this first session is for.
    pub device_name: Option<String>,
}

/// `POST /api/v1/auth/register` — create an account (the first one becomes admin) and a session.
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", request_body = RegisterRequest,
    responses(
        (status = 201, description = "Account created", body = AuthResponse),
        (status = 400, description = "Invalid username, password or display name", body = ErrorBody),
        (status = 403, description = "`invalid_invite`, `registration_closed` or `capacity_reached`", body = ErrorBody),
        (status = 409, description = "`username_taken`", body = ErrorBody),
        (status = 429, description = "`rate_limited`", body = ErrorBody),
    ))]
async fn register(
    State(state): State<AppState>,
    ip: ClientIp,
    headers: HeaderMap,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> ApiResult<(StatusCode, Json<AuthResponse>)> {
    state.rate_limit(Limit::Register, ip.0)?;
    let input = Registration {
        username: req.username,
        password: req.password,
        display_name: req.display_name,
        invite_code: req.invite_code,
    };
    let (user, tokens) =
        accounts::register(&state, input, context(ip, &headers, req.device_name)).await?;
    Ok((StatusCode::CREATED, Json(AuthResponse::new(user, tokens))))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
    /// Shown in the session list, e.g. "Alice's phone".
    pub device_name: Option<String>,
}

/// `POST /api/v1/auth/login` — open a session with a username and password.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in", body = AuthResponse),
        (status = 401, description = "`invalid_credentials`", body = ErrorBody),
        (status = 403, description = "`account_disabled`", body = ErrorBody),
        (status = 429, description = "`rate_limited`", body = ErrorBody),
    ))]
async fn login(
    State(state): State<AppState>,
    ip: ClientIp,
    headers: HeaderMap,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<Json<AuthResponse>> {
    state.rate_limit(Limit::Login, ip.0)?;
    let ctx = context(ip, &headers, req.device_name);
    let (user, tokens) = accounts::login(&state, &req.username, &req.password, ctx).await?;
    Ok(Json(AuthResponse::new(user, tokens)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// `POST /api/v1/auth/refresh` — swap a refresh token for new tokens (the old one stops working).
///
/// Each refresh token works once. Presenting a spent one ends the whole session
/// (`refresh_token_reused`), because it means the token was copied; so a client must refresh
/// at most once at a time per session (e.g. one refresh shared by all tabs) and keep the new
/// token before retrying.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses(
        (status = 200, description = "New tokens", body = AuthResponse),
        (status = 401, description = "`invalid_refresh_token`, `refresh_token_reused` or `account_disabled`", body = ErrorBody),
    ))]
async fn refresh(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> ApiResult<Json<AuthResponse>> {
    // Only the general API limit applies: a refresh token is 256 random bits, so there is
    // nothing to guess, and many devices behind one NAT refresh routinely.
    let (user, tokens) = accounts::refresh(&state, &req.refresh_token).await?;
    Ok(Json(AuthResponse::new(user, tokens)))
}

/// `POST /api/v1/auth/logout` — end the caller's session; its tokens stop working at once.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 204, description = "Logged out"),
        (status = 401, description = "Not authenticated", body = ErrorBody),
    ))]
async fn logout(State(state): State<AppState>, caller: AuthUser) -> ApiResult<StatusCode> {
    state.store.revoke_session(&caller.user.id, &caller.session_id).await?;
    state.realtime.disconnect_session(&caller.session_id).await;
    Ok(StatusCode::NO_CONTENT)
}
