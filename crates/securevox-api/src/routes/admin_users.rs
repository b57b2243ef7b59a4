//! Admin: manage accounts.

use crate::accounts;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{AdminUser, ApiJson, ApiQuery, IdPath};
use crate::routes::views::UserView;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use securevox_domain::Role;
use securevox_store::AccountChange;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_users)).routes(routes!(update_user, delete_user))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct Page {
    /// At most this many (1–500, default 100).
    pub limit: Option<i64>,
    /// Skip this many.
    pub offset: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserList {
    pub users: Vec<UserView>,
    pub total: u64,
}

/// `GET /api/v1/admin/users` — every account, ordered by username.
#[utoipa::path(get, path = "/api/v1/admin/users", tag = "admin", security(("bearer" = [])),
    params(Page),
    responses((status = 200, body = UserList), (status = 403, description = "`forbidden`", body = ErrorBody)))]
async fn list_users(
    State(state): State<AppState>,
    _admin: AdminUser,
    ApiQuery(page): ApiQuery<Page>,
) -> ApiResult<Json<UserList>> {
    let limit = page.limit.unwrap_or(100).clamp(1, 500);
    let offset = page.offset.unwrap_or(0).max(0);
    let users = state.store.list_users(limit, offset).await?;
    let total = state.store.count_users().await?;
    Ok(Json(UserList { users: users.into_iter().map(UserView::from).collect(), total }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserRequest {
    /// Disable (every session ends at once) or enable the account.
    pub disabled: Option<bool>,
    pub role: Option<Role>,
}

/// `PATCH /api/v1/admin/users/{id}` — disable/enable an account or change its role.
#[utoipa::path(patch, path = "/api/v1/admin/users/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")), request_body = UpdateUserRequest,
    responses(
        (status = 200, body = UserView),
        (status = 403, description = "`forbidden`", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`last_admin`: the change would leave no enabled admin", body = ErrorBody),
    ))]
async fn update_user(
    State(state): State<AppState>,
    _admin: AdminUser,
    IdPath(id): IdPath,
    ApiJson(req): ApiJson<UpdateUserRequest>,
) -> ApiResult<Json<UserView>> {
    let changes: Vec<AccountChange> =
        [req.role.map(AccountChange::SetRole), req.disabled.map(AccountChange::SetDisabled)]
            .into_iter()
            .flatten()
            .collect();
    let user = accounts::change_account(&state.store, &id, &changes)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    if user.is_disabled() {
        state.realtime.disconnect_user(&id).await;
    }
    tracing::info!(user_id = %id, ?changes, "account changed by an admin");
    Ok(Json(user.into()))
}

/// `DELETE /api/v1/admin/users/{id}` — delete an account and its sessions.
#[utoipa::path(delete, path = "/api/v1/admin/users/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 204),
        (status = 403, description = "`forbidden`", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`last_admin`", body = ErrorBody),
    ))]
async fn delete_user(
    State(state): State<AppState>,
    _admin: AdminUser,
    IdPath(id): IdPath,
) -> ApiResult<StatusCode> {
    accounts::change_account(&state.store, &id, &[AccountChange::Delete]).await?;
    state.realtime.disconnect_user(&id).await;
    tracing::info!(user_id = %id, "user deleted");
    Ok(StatusCode::NO_CONTENT)
}
