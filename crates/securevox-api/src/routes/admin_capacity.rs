//! Admin: the capacity report — usage against limits, disk and memory.

use crate::capacity;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::AdminUser;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use securevox_domain::CapacityReport;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_capacity))
}

/// `GET /api/v1/admin/capacity` — the capacity report: usage against limits, disk and memory.
#[utoipa::path(get, path = "/api/v1/admin/capacity", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = CapacityReport), (status = 403, body = ErrorBody)))]
async fn get_capacity(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> ApiResult<Json<CapacityReport>> {
    Ok(Json(capacity::report(&state.store, &state.config, Some(&state.live)).await?))
}
