//! KeyPackages (C3): each device keeps a stock of them on the server, and whoever adds the
//! device to a conversation claims one — never the same one twice, except the device's
//! last-resort KeyPackage when it has no other left. Every upload is inspected: our
//! ciphersuite, a valid self-signature, and the credential and signature key of the device it
//! is uploaded for.

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, AuthUser, IdPath, DEVICE_HEADER};
use crate::routes::keys::{active_user, decode, own_device};
use crate::state::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use securevox_domain::clock;
use securevox_domain::delivery::{self, KEY_PACKAGES_LOW, KEY_PACKAGES_MAX};
use securevox_store::NewKeyPackage;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(upload_key_packages, key_package_status))
        .routes(routes!(claim_key_packages))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyPackageUpload {
    /// MLS KeyPackages (`MLSMessage` with wire format `mls_key_package`, base64), each naming
    /// this device (credential identity `<user id>:<device id>`, its signature key).
    #[serde(default)]
    pub key_packages: Vec<String>,
    /// A last-resort KeyPackage (with the `last_resort` extension), replacing the previous one.
    pub last_resort: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyPackageStatus {
    /// Unclaimed KeyPackages left (the last-resort one not counted).
    pub available: u64,
    pub has_last_resort: bool,
    /// Below this many, upload more.
    pub low_watermark: u64,
    /// At most this many are kept per device.
    pub max: u64,
    /// `available < low_watermark`: time to top up.
    pub low: bool,
}

async fn status(state: &AppState, device_id: &str) -> Result<KeyPackageStatus, ApiError> {
    let count = state.store.key_package_count(device_id, clock::now()).await?;
    Ok(KeyPackageStatus {
        available: count.available,
        has_last_resort: count.has_last_resort,
        low_watermark: KEY_PACKAGES_LOW,
        max: KEY_PACKAGES_MAX,
        low: count.available < KEY_PACKAGES_LOW,
    })
}

/// `POST /api/v1/devices/{id}/key-packages` — upload a batch of the device's KeyPackages.
#[utoipa::path(post, path = "/api/v1/devices/{id}/key-packages", tag = "keys",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Device id (one of yours)")),
    request_body = KeyPackageUpload,
    responses(
        (status = 200, body = KeyPackageStatus),
        (status = 400, description = "`invalid_key_package` (with the index and the reason), `invalid_encoding`, `too_many_key_packages`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such device of yours", body = ErrorBody),
    ))]
async fn upload_key_packages(
    State(state): State<AppState>,
    caller: AuthUser,
    IdPath(device_id): IdPath,
    ApiJson(body): ApiJson<KeyPackageUpload>,
) -> ApiResult<Json<KeyPackageStatus>> {
    let device = own_device(&state, &caller, &device_id).await?;
    let before = state.store.key_package_count(&device.id, clock::now()).await?;
    if before.available + body.key_packages.len() as u64 > KEY_PACKAGES_MAX {
        return Err(ApiError::bad_request(
            "too_many_key_packages",
            format!(
                "a device keeps at most {KEY_PACKAGES_MAX} KeyPackages; {} are stored",
                before.available
            ),
        ));
    }
    let identity = delivery::credential_identity(&caller.user.id, &device.id);
    let now = clock::now();
    let uploads = body.key_packages.iter().map(|p| (p, false));
    let mut packages = Vec::new();
    for (index, (text, last_resort)) in
        uploads.chain(body.last_resort.iter().map(|p| (p, true))).enumerate()
    {
        let data = decode("key_packages", text)?;
        let invalid = |reason: String| {
            ApiError::bad_request("invalid_key_package", format!("KeyPackage {index}: {reason}"))
                .with_details(serde_json::json!({ "index": index }))
        };
        let info = securevox_mls::inspect_key_package(&data, u64::try_from(now).unwrap_or(0))
            .map_err(|e| invalid(e.to_string()))?;
        if info.identity != identity.as_bytes() {
            return Err(invalid(format!("its credential must be {identity:?}")));
        }
        if info.signature_key != device.signature_key {
            return Err(invalid("it is not signed with this device's signature key".into()));
        }
        if info.last_resort != last_resort {
            return Err(invalid(if last_resort {
                "the last-resort KeyPackage needs the last_resort extension".into()
            } else {
                "a last-resort KeyPackage goes in `last_resort`".into()
            }));
        }
        packages.push(NewKeyPackage {
            reference: info.reference,
            data,
            last_resort,
            not_after: i64::try_from(info.not_after).unwrap_or(i64::MAX),
        });
    }
    state.store.add_key_packages(&device.id, &packages, now).await?;
    Ok(Json(status(&state, &device.id).await?))
}

/// `GET /api/v1/devices/{id}/key-packages` — how many KeyPackages the device has left.
#[utoipa::path(get, path = "/api/v1/devices/{id}/key-packages", tag = "keys",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Device id (one of yours)")),
    responses(
        (status = 200, body = KeyPackageStatus),
        (status = 404, description = "`not_found`: no such device of yours", body = ErrorBody),
    ))]
async fn key_package_status(
    State(state): State<AppState>,
    caller: AuthUser,
    IdPath(device_id): IdPath,
) -> ApiResult<Json<KeyPackageStatus>> {
    let device = own_device(&state, &caller, &device_id).await?;
    Ok(Json(status(&state, &device.id).await?))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClaimedKeyPackageView {
    pub device_id: String,
    /// Base64 `MLSMessage` (KeyPackage).
    pub key_package: String,
    /// The device's last-resort KeyPackage: it had no other left (it may be handed out again).
    pub last_resort: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClaimedKeyPackages {
    pub user_id: String,
    /// One per device that has a KeyPackage; devices without any are left out.
    pub key_packages: Vec<ClaimedKeyPackageView>,
}

/// `POST /api/v1/users/{id}/key-packages/claim` — take one KeyPackage of each of a user's
/// devices, to add them to a conversation. Each is handed out once. A user claiming their
/// own (to bring their other devices into a new conversation) names the asking device in
/// `X-Device-Id`, which is left out.
#[utoipa::path(post, path = "/api/v1/users/{id}/key-packages/claim", tag = "keys",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "User id"),
           ("X-Device-Id" = Option<String>, Header,
            description = "The asking device: left out when claiming your own")),
    responses(
        (status = 200, body = ClaimedKeyPackages),
        (status = 403, description = "`blocked`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
async fn claim_key_packages(
    State(state): State<AppState>,
    caller: AuthUser,
    IdPath(user_id): IdPath,
    headers: HeaderMap,
) -> ApiResult<Json<ClaimedKeyPackages>> {
    active_user(&state, &user_id).await?;
    crate::routes::contacts::ensure_not_blocked(&state, &caller.user.id, &user_id).await?;
    let asking = headers
        .get(DEVICE_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| uuid::Uuid::parse_str(v.trim()).ok())
        .map(|id| id.hyphenated().to_string());
    let except = asking.as_deref().filter(|_| user_id == caller.user.id);
    let claimed =
        state.store.claim_key_packages(&user_id, &caller.user.id, except, clock::now()).await?;
    let key_packages = claimed
        .into_iter()
        .map(|c| ClaimedKeyPackageView {
            device_id: c.device_id,
            key_package: B64.encode(&c.data),
            last_resort: c.last_resort,
        })
        .collect();
    Ok(Json(ClaimedKeyPackages { user_id, key_packages }))
}
