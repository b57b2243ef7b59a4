//! Admin: server-wide policy — registration mode, capacity limits and the capacity report.

use crate::capacity;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{AdminUser, ApiJson};
use crate::runtime_settings::{self, Source};
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use securevox_domain::{CapacityReport, Limits, RegistrationMode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_registration, put_registration))
        .routes(routes!(get_limits, put_limits, reset_limits))
        .routes(routes!(get_capacity))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegistrationSetting {
    pub mode: RegistrationMode,
}

/// `GET /api/v1/admin/registration` — the registration mode in force.
#[utoipa::path(get, path = "/api/v1/admin/registration", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = RegistrationSetting), (status = 403, body = ErrorBody)))]
async fn get_registration(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> ApiResult<Json<RegistrationSetting>> {
    let mode = runtime_settings::registration_mode(&state.store, &state.config).await?;
    Ok(Json(RegistrationSetting { mode }))
}

/// `PUT /api/v1/admin/registration` — set the registration mode: `open`, `invite` or `closed`.
#[utoipa::path(put, path = "/api/v1/admin/registration", tag = "admin", security(("bearer" = [])),
    request_body = RegistrationSetting,
    responses((status = 200, body = RegistrationSetting), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn put_registration(
    State(state): State<AppState>,
    _admin: AdminUser,
    ApiJson(req): ApiJson<RegistrationSetting>,
) -> ApiResult<Json<RegistrationSetting>> {
    runtime_settings::set_registration_mode(&state.store, req.mode).await?;
    tracing::info!(mode = req.mode.as_str(), "registration mode changed");
    Ok(Json(req))
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
    Ok(Json(LimitsSetting {
        limits,
        source: Source::Database,
    }))
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
        crate::error::ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            format!("limits: {e}"),
        )
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
    Ok(Json(LimitsSetting {
        limits: state.config.limits,
        source: Source::Config,
    }))
}

/// `GET /api/v1/admin/capacity` — the capacity report: usage against limits, disk and memory.
#[utoipa::path(get, path = "/api/v1/admin/capacity", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = CapacityReport), (status = 403, body = ErrorBody)))]
async fn get_capacity(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> ApiResult<Json<CapacityReport>> {
    Ok(Json(
        capacity::report(&state.store, &state.config, Some(&state.live)).await?,
    ))
}
