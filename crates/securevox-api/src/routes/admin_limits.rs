//! Admin: the capacity limits in force, changed at run time.

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{AdminUser, ApiJson};
use crate::runtime_settings::{self, Source};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use securevox_domain::Limits;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_limits, put_limits, reset_limits))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LimitsSetting {
    pub limits: Limits,
    /// `config` until an admin changes them, then `database`.
    pub source: Source,
}

/// `GET /api/v1/admin/limits` — the capacity limits in force (0 = unlimited).
#[utoipa::path(get, path = "/api/v1/admin/limits", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = LimitsSetting), (status = 403, body = ErrorBody)))]
async fn get_limits(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> ApiResult<Json<LimitsSetting>> {
    let (limits, source) = runtime_settings::limits(&state.store, &state.config).await?;
    Ok(Json(LimitsSetting { limits, source }))
}

/// `PUT /api/v1/admin/limits` — change limits now; fields left out keep their current value.
#[utoipa::path(put, path = "/api/v1/admin/limits", tag = "admin", security(("bearer" = [])),
    request_body = Limits,
    responses((status = 200, body = LimitsSetting), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn put_limits(
    State(state): State<AppState>,
    _admin: AdminUser,
    ApiJson(patch): ApiJson<serde_json::Map<String, serde_json::Value>>,
) -> ApiResult<Json<LimitsSetting>> {
    let (current, _) = runtime_settings::limits(&state.store, &state.config).await?;
    let limits = merge_limits(current, patch)?;
    runtime_settings::set_limits(&state.store, &limits).await?;
    tracing::info!(?limits, "capacity limits changed");
    Ok(Json(LimitsSetting { limits, source: Source::Database }))
}

fn merge_limits(
    current: Limits,
    patch: serde_json::Map<String, serde_json::Value>,
) -> ApiResult<Limits> {
    let mut merged = match serde_json::to_value(current) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    merged.extend(patch);
    serde_json::from_value(serde_json::Value::Object(merged)).map_err(|e| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", format!("limits: {e}"))
    })
}

/// `DELETE /api/v1/admin/limits` — forget changed limits; the configured ones apply again.
#[utoipa::path(delete, path = "/api/v1/admin/limits", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = LimitsSetting), (status = 403, body = ErrorBody)))]
async fn reset_limits(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> ApiResult<Json<LimitsSetting>> {
    runtime_settings::reset_limits(&state.store).await?;
    Ok(Json(LimitsSetting { limits: state.config.limits, source: Source::Config }))
}
