//! The caller's device, for requests a device makes as an MLS member (creating a group,
//! sending Commits and messages, reading its inbox): named by the `X-Device-Id` header and
//! checked to be one of the authenticated user's devices.

use crate::error::ApiError;
use crate::extract::AuthUser;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use securevox_store::DeviceRecord;

pub const DEVICE_HEADER: &str = "x-device-id";

#[derive(Debug, Clone)]
pub struct DeviceCaller {
    pub caller: AuthUser,
    pub device: DeviceRecord,
}

impl FromRequestParts<AppState> for DeviceCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = AuthUser::from_request_parts(parts, state).await?;
        let id = parts
            .headers
            .get(DEVICE_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| uuid::Uuid::parse_str(v.trim()).ok())
            .ok_or_else(|| {
                ApiError::bad_request(
                    "device_required",
                    "name your device (one of yours) in the X-Device-Id header",
                )
            })?
            .hyphenated()
            .to_string();
        let device = state
            .store
            .device(&id)
            .await?
            .filter(|d| d.user_id == caller.user.id)
            .ok_or_else(|| ApiError::not_found("device"))?;
        Ok(Self { caller, device })
    }
}
