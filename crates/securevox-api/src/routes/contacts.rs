//! Contacts (U2): find people by username, add and remove contacts, block and unblock.
//! Presence is shown only among contacts (and people one shared a call with); a block, in
//! either direction, stops messages in new conversations, calls, KeyPackage claims and
//! presence between the two.

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiQuery, AuthUser, IdPath};
use crate::routes::keys::active_user;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use securevox_domain::clock;
use securevox_store::{ContactRecord, ContactState, UserRecord};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(search))
        .routes(routes!(list))
        .routes(routes!(add, remove))
        .routes(routes!(block, unblock))
}

/// 403 `blocked` when either user has blocked the other.
pub(crate) async fn ensure_not_blocked(state: &AppState, a: &str, b: &str) -> Result<(), ApiError> {
    if state.store.blocked_between(a, b).await? {
        Err(ApiError::forbidden("blocked", "one of you has blocked the other"))
    } else {
        Ok(())
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserCard {
    pub id: String,
    pub username: String,
    pub display_name: Option<String>,
}

impl From<UserRecord> for UserCard {
    fn from(u: UserRecord) -> Self {
        Self { id: u.id, username: u.username, display_name: u.display_name }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// The start of a username, at least 2 characters.
    pub q: String,
    /// 1–50, default 20.
    pub limit: Option<u32>,
}

/// `GET /api/v1/users/search?q=` — users whose username starts with `q`.
#[utoipa::path(get, path = "/api/v1/users/search", tag = "contacts", security(("bearer" = [])),
    params(SearchQuery),
    responses(
        (status = 200, body = [UserCard]),
        (status = 400, description = "`query_too_short`", body = ErrorBody),
    ))]
async fn search(
    State(state): State<AppState>,
    caller: AuthUser,
    ApiQuery(query): ApiQuery<SearchQuery>,
) -> ApiResult<Json<Vec<UserCard>>> {
    let prefix = query.q.trim().to_lowercase();
    if prefix.chars().count() < 2 || prefix.chars().count() > 64 {
        return Err(ApiError::bad_request("query_too_short", "search with 2–64 characters"));
    }
    let limit = query.limit.unwrap_or(20).clamp(1, 50);
    let users = state.store.search_users(&prefix, limit).await?;
    Ok(Json(users.into_iter().filter(|u| u.id != caller.user.id).map(Into::into).collect()))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContactView {
    pub user: UserCard,
    /// `contact` or `blocked`.
    pub state: &'static str,
    pub since: String,
}

impl From<ContactRecord> for ContactView {
    fn from(c: ContactRecord) -> Self {
        Self { user: c.user.into(), state: c.state.as_str(), since: clock::rfc3339(c.since) }
    }
}

/// `GET /api/v1/contacts` — the caller's contacts and blocked users.
#[utoipa::path(get, path = "/api/v1/contacts", tag = "contacts", security(("bearer" = [])),
    responses((status = 200, body = [ContactView])))]
async fn list(
    State(state): State<AppState>,
    caller: AuthUser,
) -> ApiResult<Json<Vec<ContactView>>> {
    let contacts = state.store.contacts_of(&caller.user.id).await?;
    Ok(Json(contacts.into_iter().map(Into::into).collect()))
}

async fn other_user(state: &AppState, caller: &AuthUser, id: &str) -> Result<(), ApiError> {
    if id == caller.user.id {
        return Err(ApiError::bad_request("self", "that is you"));
    }
    active_user(state, id).await.map(|_| ())
}

/// `PUT /api/v1/contacts/{id}` — add a user to your contacts (replaces a block).
#[utoipa::path(put, path = "/api/v1/contacts/{id}", tag = "contacts", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 204),
        (status = 400, description = "`self`", body = ErrorBody),
        (status = 403, description = "`blocked`: they have blocked you", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
async fn add(
    State(state): State<AppState>,
    caller: AuthUser,
    IdPath(id): IdPath,
) -> ApiResult<StatusCode> {
    other_user(&state, &caller, &id).await?;
    // Unblocking by adding is the caller's own choice; being blocked by them is not.
    if state.store.remove_contact(&caller.user.id, &id, ContactState::Blocked).await? {
        tracing::debug!(user = %caller.user.id, "unblocked by adding as a contact");
    }
    ensure_not_blocked(&state, &caller.user.id, &id).await?;
    state.store.set_contact(&caller.user.id, &id, ContactState::Contact, clock::now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/v1/contacts/{id}` — remove a contact.
#[utoipa::path(delete, path = "/api/v1/contacts/{id}", tag = "contacts", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 204),
        (status = 404, description = "`not_found`: not a contact of yours", body = ErrorBody),
    ))]
async fn remove(
    State(state): State<AppState>,
    caller: AuthUser,
    IdPath(id): IdPath,
) -> ApiResult<StatusCode> {
    if state.store.remove_contact(&caller.user.id, &id, ContactState::Contact).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("contact"))
    }
}

/// `PUT /api/v1/contacts/{id}/block` — block a user: no new conversations, calls, KeyPackage
/// claims or presence between you.
#[utoipa::path(put, path = "/api/v1/contacts/{id}/block", tag = "contacts",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 204),
        (status = 400, description = "`self`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
async fn block(
    State(state): State<AppState>,
    caller: AuthUser,
    IdPath(id): IdPath,
) -> ApiResult<StatusCode> {
    other_user(&state, &caller, &id).await?;
    state.store.set_contact(&caller.user.id, &id, ContactState::Blocked, clock::now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/v1/contacts/{id}/block` — unblock.
#[utoipa::path(delete, path = "/api/v1/contacts/{id}/block", tag = "contacts",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 204),
        (status = 404, description = "`not_found`: not blocked by you", body = ErrorBody),
    ))]
async fn unblock(
    State(state): State<AppState>,
    caller: AuthUser,
    IdPath(id): IdPath,
) -> ApiResult<StatusCode> {
    if state.store.remove_contact(&caller.user.id, &id, ContactState::Blocked).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("block"))
    }
}
