//! Admin: who may create an account (`open`, `invite`, `closed`).

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{AdminUser, ApiJson};
use crate::runtime_settings;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use securevox_domain::RegistrationMode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_registration, put_registration))
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
