//! Admin: invite codes for a private server.

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{AdminUser, ApiJson, ClientScheme, IdPath};
use crate::state::AppState;
use axum::extract::State;
use axum::http::header::HOST;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use securevox_domain::{clock, SecretToken};
use securevox_store::{InviteRecord, NewInvite};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_invite, list_invites)).routes(routes!(revoke_invite))
}

/// Longest invite lifetime: one year.
const MAX_EXPIRES_IN: u64 = 365 * 24 * 3600;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInviteRequest {
    /// How many accounts the code can create; 0 = unlimited. Default 1.
    #[serde(default = "one")]
    pub max_uses: u32,
    /// Seconds until the code expires; default 7 days, at most a year.
    #[serde(default = "week")]
    pub expires_in: u64,
}

fn one() -> u32 {
    1
}

fn week() -> u64 {
    7 * 24 * 3600
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InviteView {
    pub id: String,
    /// First characters of the code.
    pub code_hint: String,
    pub created_by: Option<String>,
    pub max_uses: i64,
    pub uses: i64,
    pub expires_at: Option<String>,
    pub created_at: String,
    pub revoked: bool,
    /// Still accepted: not revoked, not expired, not used up.
    pub usable: bool,
}

impl From<InviteRecord> for InviteView {
    fn from(r: InviteRecord) -> Self {
        let now = clock::now();
        let usable = r.revoked_at.is_none()
            && r.expires_at.is_none_or(|e| e > now)
            && (r.max_uses == 0 || r.uses < r.max_uses);
        Self {
            usable,
            revoked: r.revoked_at.is_some(),
            expires_at: r.expires_at.map(clock::rfc3339),
            created_at: clock::rfc3339(r.created_at),
            id: r.id,
            code_hint: r.code_hint,
            created_by: r.created_by,
            max_uses: r.max_uses,
            uses: r.uses,
        }
    }
}

/// The new code; shown only once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedInvite {
    pub code: String,
    /// A link to the registration page with the code filled in.
    pub url: String,
    pub invite: InviteView,
}

/// `POST /api/v1/admin/invites` — create an invite code (the code is shown only in this answer).
#[utoipa::path(post, path = "/api/v1/admin/invites", tag = "admin", security(("bearer" = [])),
    request_body = CreateInviteRequest,
    responses(
        (status = 201, body = CreatedInvite),
        (status = 400, description = "`invalid_expiry`", body = ErrorBody),
        (status = 403, description = "`forbidden`", body = ErrorBody),
    ))]
async fn create_invite(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    scheme: ClientScheme,
    headers: HeaderMap,
    ApiJson(req): ApiJson<CreateInviteRequest>,
) -> ApiResult<(StatusCode, Json<CreatedInvite>)> {
    if !(60..=MAX_EXPIRES_IN).contains(&req.expires_in) {
        return Err(ApiError::bad_request(
            "invalid_expiry",
            format!("expires_in must be between 60 and {MAX_EXPIRES_IN} seconds"),
        ));
    }
    let code = SecretToken::generate_code();
    let record = state
        .store
        .create_invite(&NewInvite {
            id: uuid::Uuid::now_v7().to_string(),
            code_digest: code.digest(),
            code_hint: code.hint(),
            created_by: admin.user.id,
            max_uses: i64::from(req.max_uses),
            expires_at: Some(clock::now() + req.expires_in as i64),
        })
        .await?;
    let url =
        format!("{}/register?invite={}", public_base(&state, scheme, &headers), code.expose());
    let invite = CreatedInvite { code: code.expose().to_owned(), url, invite: record.into() };
    Ok((StatusCode::CREATED, Json(invite)))
}

/// The configured public URL, else the scheme and host this request came in on.
fn public_base(state: &AppState, scheme: ClientScheme, headers: &HeaderMap) -> String {
    if !state.config.public_url.is_empty() {
        return state.config.public_url.trim_end_matches('/').to_owned();
    }
    let host = headers.get(HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    format!("{}://{host}", scheme.0)
}

/// `GET /api/v1/admin/invites` — every invite, newest first.
#[utoipa::path(get, path = "/api/v1/admin/invites", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = Vec<InviteView>), (status = 403, body = ErrorBody)))]
async fn list_invites(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> ApiResult<Json<Vec<InviteView>>> {
    let invites = state.store.list_invites().await?;
    Ok(Json(invites.into_iter().map(InviteView::from).collect()))
}

/// `DELETE /api/v1/admin/invites/{id}` — revoke an invite code.
#[utoipa::path(delete, path = "/api/v1/admin/invites/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "Invite id")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn revoke_invite(
    State(state): State<AppState>,
    _admin: AdminUser,
    IdPath(id): IdPath,
) -> ApiResult<StatusCode> {
    if state.store.revoke_invite(&id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("invite"))
    }
}
