//! The key directory of end-to-end encrypted chat (C3): a user's identity key, their devices
//! (each one MLS member with its own signature key, signed by the identity key) and the
//! devices' KeyPackages, which others claim to add the device to a conversation.
//!
//! Everything here is public key material. The server checks that it is what it claims —
//! a device's key signed by its user's identity key, a KeyPackage of our ciphersuite,
//! self-signed, naming the device it is uploaded for — so that a client cannot plant keys
//! for someone else; clients still verify every key themselves (safety numbers), since they
//! must not trust the server.

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, AuthUser, IdPath};
use crate::key_changes;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use securevox_domain::clock;
use securevox_domain::delivery;
use securevox_store::{DeviceError, DeviceRecord, NewDevice, UserRecord};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(put_identity_key))
        .routes(routes!(user_keys))
        .routes(routes!(register_device, my_devices))
        .routes(routes!(remove_device))
}

/// What a device's identity signature covers: this prefix, the user id, a zero byte, and the
/// device's MLS signature public key. (See docs/E2EE.md.)
pub const DEVICE_SIGNATURE_CONTEXT: &[u8] = b"SecureVox device key v1\0";

/// The bytes a user's identity key signs to vouch for one of their devices.
pub fn device_signature_message(user_id: &str, signature_key: &[u8]) -> Vec<u8> {
    let mut message = DEVICE_SIGNATURE_CONTEXT.to_vec();
    message.extend_from_slice(user_id.as_bytes());
    message.push(0);
    message.extend_from_slice(signature_key);
    message
}

pub(crate) fn decode(field: &'static str, text: &str) -> Result<Vec<u8>, ApiError> {
    B64.decode(text).map_err(|_| {
        ApiError::bad_request("invalid_encoding", format!("{field} must be standard base64"))
    })
}

/// User `id` if it exists and is not disabled, or 404.
pub(crate) async fn active_user(state: &AppState, id: &str) -> Result<UserRecord, ApiError> {
    state
        .store
        .user(id)
        .await?
        .filter(|u| !u.is_disabled())
        .ok_or_else(|| ApiError::not_found("user"))
}

pub(crate) fn ed25519_key(bytes: &[u8]) -> Result<ed25519_dalek::VerifyingKey, ApiError> {
    let array: &[u8; 32] = bytes
        .try_into()
        .map_err(|_| ApiError::bad_request("invalid_key", "an Ed25519 public key is 32 bytes"))?;
    ed25519_dalek::VerifyingKey::from_bytes(array)
        .map_err(|_| ApiError::bad_request("invalid_key", "not an Ed25519 public key"))
}

/// Checks `signature` (base64): the user's identity key's signature over the device key.
pub(crate) async fn verify_device_signature(
    state: &AppState,
    user_id: &str,
    signature_key: &[u8],
    signature: &str,
) -> Result<ed25519_dalek::Signature, ApiError> {
    let signature = decode("identity_signature", signature)?;
    let identity = state.store.identity_key(user_id).await?.ok_or_else(|| {
        ApiError::conflict("no_identity_key", "publish your identity key before adding devices")
    })?;
    let signature = ed25519_dalek::Signature::from_slice(&signature).map_err(|_| {
        ApiError::bad_request("invalid_signature", "an Ed25519 signature is 64 bytes")
    })?;
    ed25519_key(&identity)?
        .verify_strict(&device_signature_message(user_id, signature_key), &signature)
        .map_err(|_| {
            ApiError::forbidden(
                "bad_identity_signature",
                "the identity key did not sign this device key",
            )
        })?;
    Ok(signature)
}

pub(crate) fn device_error(e: DeviceError) -> ApiError {
    match e {
        DeviceError::SignatureKeyTaken => ApiError::conflict(
            "signature_key_taken",
            "another device already uses this signature key",
        ),
        DeviceError::Store(e) => e.into(),
    }
}

/// A device name as given: trimmed, 1–64 printable characters, or none.
pub(crate) fn device_name(name: Option<String>) -> Result<Option<String>, ApiError> {
    let name = name.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
    if name.as_ref().is_some_and(|n| n.chars().count() > 64 || n.chars().any(char::is_control)) {
        return Err(ApiError::bad_request(
            "invalid_name",
            "a device name is 1–64 printable characters",
        ));
    }
    Ok(name)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentityKeyRequest {
    /// The user's Ed25519 identity public key (32 bytes, base64).
    pub public_key: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IdentityKeyChange {
    /// True when a different key was replaced: every device it signed was removed, and
    /// contacts will see the safety number change.
    pub replaced: bool,
}

/// `PUT /api/v1/keys/identity` — publish (or replace) the caller's identity key.
#[utoipa::path(put, path = "/api/v1/keys/identity", tag = "keys", security(("bearer" = [])),
    request_body = IdentityKeyRequest,
    responses(
        (status = 200, body = IdentityKeyChange),
        (status = 400, description = "`invalid_encoding`, `invalid_key`", body = ErrorBody),
    ))]
async fn put_identity_key(
    State(state): State<AppState>,
    caller: AuthUser,
    ApiJson(body): ApiJson<IdentityKeyRequest>,
) -> ApiResult<Json<IdentityKeyChange>> {
    let key = decode("public_key", &body.public_key)?;
    ed25519_key(&key)?;
    let replaced = state.store.set_identity_key(&caller.user.id, &key, clock::now()).await?;
    if replaced {
        tracing::info!(user = %caller.user.id, "identity key replaced; the user's devices were removed");
        key_changes::announce(&state, &caller.user.id);
    }
    Ok(Json(IdentityKeyChange { replaced }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceView {
    pub id: String,
    pub user_id: String,
    pub name: Option<String>,
    /// The device's MLS signature public key (base64).
    pub signature_key: String,
    /// The user's identity key's Ed25519 signature over the device key (base64).
    pub identity_signature: String,
    /// The MLS credential identity the device's KeyPackages carry: `<user id>:<device id>`.
    pub credential_identity: String,
    pub created_at: String,
    pub last_seen_at: Option<String>,
}

impl From<DeviceRecord> for DeviceView {
    fn from(d: DeviceRecord) -> Self {
        Self {
            credential_identity: delivery::credential_identity(&d.user_id, &d.id),
            signature_key: B64.encode(&d.signature_key),
            identity_signature: B64.encode(&d.identity_signature),
            created_at: clock::rfc3339(d.created_at),
            last_seen_at: d.last_seen_at.map(clock::rfc3339),
            id: d.id,
            user_id: d.user_id,
            name: d.name,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserKeys {
    pub user_id: String,
    /// Base64; absent until the user has published one.
    pub identity_key: Option<String>,
    pub devices: Vec<DeviceView>,
}

/// `GET /api/v1/users/{id}/keys` — a user's identity key and devices, to verify and to add.
#[utoipa::path(get, path = "/api/v1/users/{id}/keys", tag = "keys", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, body = UserKeys),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
async fn user_keys(
    State(state): State<AppState>,
    _caller: AuthUser,
    IdPath(user_id): IdPath,
) -> ApiResult<Json<UserKeys>> {
    active_user(&state, &user_id).await?;
    let identity_key = state.store.identity_key(&user_id).await?.map(|k| B64.encode(k));
    let devices = state.store.devices_of(&user_id).await?.into_iter().map(Into::into).collect();
    Ok(Json(UserKeys { user_id, identity_key, devices }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceRequest {
    /// Shown in device lists ("Alice's laptop"); 1–64 characters.
    pub name: Option<String>,
    /// The device's MLS signature public key (Ed25519, 32 bytes, base64).
    pub signature_key: String,
    /// The identity key's signature over `device_signature_message(user id, signature key)`.
    pub identity_signature: String,
}

/// `POST /api/v1/devices` — register a device of the caller, vouched for by their identity key.
#[utoipa::path(post, path = "/api/v1/devices", tag = "keys", security(("bearer" = [])),
    request_body = DeviceRequest,
    responses(
        (status = 201, body = DeviceView),
        (status = 400, description = "`invalid_encoding`, `invalid_key`, `invalid_name`", body = ErrorBody),
        (status = 403, description = "`bad_identity_signature`: the identity key did not sign this device key", body = ErrorBody),
        (status = 409, description = "`no_identity_key`: publish one first; `signature_key_taken`", body = ErrorBody),
    ))]
async fn register_device(
    State(state): State<AppState>,
    caller: AuthUser,
    ApiJson(body): ApiJson<DeviceRequest>,
) -> ApiResult<(StatusCode, Json<DeviceView>)> {
    let name = device_name(body.name)?;
    let signature_key = decode("signature_key", &body.signature_key)?;
    ed25519_key(&signature_key)?;
    let signature =
        verify_device_signature(&state, &caller.user.id, &signature_key, &body.identity_signature)
            .await?;
    let id = uuid::Uuid::new_v4().to_string();
    let now = clock::now();
    state
        .store
        .add_device(&NewDevice {
            id: &id,
            user_id: &caller.user.id,
            name: name.as_deref(),
            signature_key: &signature_key,
            identity_signature: &signature.to_bytes(),
            created_at: now,
        })
        .await
        .map_err(device_error)?;
    let device = state.store.device(&id).await?.ok_or_else(|| ApiError::not_found("device"))?;
    key_changes::announce(&state, &caller.user.id);
    Ok((StatusCode::CREATED, Json(device.into())))
}

/// `GET /api/v1/devices` — the caller's devices.
#[utoipa::path(get, path = "/api/v1/devices", tag = "keys", security(("bearer" = [])),
    responses((status = 200, body = [DeviceView])))]
async fn my_devices(
    State(state): State<AppState>,
    caller: AuthUser,
) -> ApiResult<Json<Vec<DeviceView>>> {
    let devices = state.store.devices_of(&caller.user.id).await?;
    Ok(Json(devices.into_iter().map(Into::into).collect()))
}

/// `DELETE /api/v1/devices/{id}` — remove one of the caller's devices with its KeyPackages,
/// its inbox and its places in conversations.
#[utoipa::path(delete, path = "/api/v1/devices/{id}", tag = "keys", security(("bearer" = [])),
    params(("id" = String, Path, description = "Device id")),
    responses(
        (status = 204),
        (status = 404, description = "`not_found`: no such device of yours", body = ErrorBody),
    ))]
async fn remove_device(
    State(state): State<AppState>,
    caller: AuthUser,
    IdPath(device_id): IdPath,
) -> ApiResult<StatusCode> {
    if state.store.remove_device(&caller.user.id, &device_id).await? {
        key_changes::announce(&state, &caller.user.id);
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("device"))
    }
}

/// The caller's device `device_id`, or 404 (someone else's device is not shown to exist).
pub(crate) async fn own_device(
    state: &AppState,
    caller: &AuthUser,
    device_id: &str,
) -> Result<DeviceRecord, ApiError> {
    state
        .store
        .device(device_id)
        .await?
        .filter(|d| d.user_id == caller.user.id)
        .ok_or_else(|| ApiError::not_found("device"))
}
