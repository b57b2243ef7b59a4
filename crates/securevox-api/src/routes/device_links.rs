//! Linking a new device to the user's identity, like Signal's "link a device": the new device
//! (logged in with the password, so it is the user's) asks with its MLS signature key and a
//! one-time HPKE transfer key; one of the user's devices that holds the identity key shows the
//! request, the user compares the code both screens derive from those two keys, and the
//! device approves — signing the new key with the identity key (the server checks that
//! signature and registers the device) and leaving an envelope, encrypted to the transfer key,
//! that the server hands to the new device unread (our clients put the identity key in it).
//! See docs/E2EE.md.

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, AuthUser, IdPath};
use crate::routes::keys::{decode, device_error, device_name, ed25519_key, DeviceView};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use securevox_domain::clock;
use securevox_store::{DeviceLinkRecord, LinkError, NewDevice, NewDeviceLink};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// How long a request waits for an answer.
pub const LINK_TTL_S: i64 = 600;
/// Unanswered requests a user may have at once.
pub const MAX_PENDING_LINKS: i64 = 5;
/// The envelope's size at most.
pub const MAX_ENVELOPE_BYTES: usize = 16 * 1024;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(request_link, pending_links))
        .routes(routes!(link_status, forget_link))
        .routes(routes!(approve_link))
        .routes(routes!(reject_link))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkRequest {
    /// The new device's name ("Alice's laptop"); 1–64 characters.
    pub name: Option<String>,
    /// The new device's MLS signature public key (Ed25519, 32 bytes, base64).
    pub signature_key: String,
    /// A one-time X25519 public key (32 bytes, base64) the approving device encrypts the
    /// envelope to.
    pub transfer_key: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LinkView {
    pub id: String,
    /// `pending`, `approved` or `rejected`.
    pub state: &'static str,
    pub name: Option<String>,
    pub signature_key: String,
    pub transfer_key: String,
    pub created_at: String,
    pub expires_at: String,
    /// Approved: the registered device.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceView>,
    /// Approved: the approving device's envelope for the new device (base64), if it left one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub envelope: Option<String>,
}

impl LinkView {
    fn new(link: DeviceLinkRecord, device: Option<DeviceView>) -> Self {
        Self {
            state: link.state.as_str(),
            signature_key: B64.encode(&link.signature_key),
            transfer_key: B64.encode(&link.transfer_key),
            created_at: clock::rfc3339(link.created_at),
            expires_at: clock::rfc3339(link.expires_at),
            envelope: link.envelope.map(|e| B64.encode(e)),
            device,
            id: link.id,
            name: link.name,
        }
    }
}

fn x25519_key(bytes: &[u8]) -> Result<(), ApiError> {
    if bytes.len() == 32 {
        Ok(())
    } else {
        Err(ApiError::bad_request("invalid_key", "an X25519 public key is 32 bytes"))
    }
}

/// `POST /api/v1/devices/links` — a new device asks to join the caller's identity.
#[utoipa::path(post, path = "/api/v1/devices/links", tag = "keys", security(("bearer" = [])),
    request_body = LinkRequest,
    responses(
        (status = 201, body = LinkView),
        (status = 400, description = "`invalid_encoding`, `invalid_key`, `invalid_name`", body = ErrorBody),
        (status = 409, description = "`no_identity_key`: nothing to link to; register a first device", body = ErrorBody),
        (status = 429, description = "`too_many_link_requests`: answer or wait out the pending ones", body = ErrorBody),
    ))]
async fn request_link(
    State(state): State<AppState>,
    caller: AuthUser,
    ApiJson(body): ApiJson<LinkRequest>,
) -> ApiResult<(StatusCode, Json<LinkView>)> {
    let name = device_name(body.name)?;
    let signature_key = decode("signature_key", &body.signature_key)?;
    ed25519_key(&signature_key)?;
    let transfer_key = decode("transfer_key", &body.transfer_key)?;
    x25519_key(&transfer_key)?;
    if state.store.identity_key(&caller.user.id).await?.is_none() {
        return Err(ApiError::conflict(
            "no_identity_key",
            "this account has no identity yet: set up this device as the first one",
        ));
    }
    let id = uuid::Uuid::new_v4().to_string();
    let now = clock::now();
    let link = NewDeviceLink {
        id: &id,
        user_id: &caller.user.id,
        name: name.as_deref(),
        signature_key: &signature_key,
        transfer_key: &transfer_key,
        created_at: now,
        expires_at: now + LINK_TTL_S,
    };
    if !state.store.create_device_link(&link, MAX_PENDING_LINKS).await? {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_link_requests",
            format!("at most {MAX_PENDING_LINKS} link requests wait at once"),
        ));
    }
    let link = state.store.device_link(&caller.user.id, &id, now).await?;
    let link = link.ok_or_else(|| ApiError::not_found("device_link"))?;
    let event = json!({ "id": id, "name": name });
    state.realtime.emit_to_user(&caller.user.id, "device_link_request", &event).await;
    Ok((StatusCode::CREATED, Json(LinkView::new(link, None))))
}

/// `GET /api/v1/devices/links` — the caller's requests waiting for an answer.
#[utoipa::path(get, path = "/api/v1/devices/links", tag = "keys", security(("bearer" = [])),
    responses((status = 200, body = [LinkView])))]
async fn pending_links(
    State(state): State<AppState>,
    caller: AuthUser,
) -> ApiResult<Json<Vec<LinkView>>> {
    let links = state.store.pending_device_links(&caller.user.id, clock::now()).await?;
    Ok(Json(links.into_iter().map(|l| LinkView::new(l, None)).collect()))
}

/// The caller's unexpired request `id`, or 404.
async fn own_link(state: &AppState, caller: &AuthUser, id: &str) -> ApiResult<DeviceLinkRecord> {
    state
        .store
        .device_link(&caller.user.id, id, clock::now())
        .await?
        .ok_or_else(|| ApiError::not_found("device_link"))
}

/// `GET /api/v1/devices/links/{id}` — where a request stands (the new device polls this, or
/// waits for `device_link_approved` over Socket.IO).
#[utoipa::path(get, path = "/api/v1/devices/links/{id}", tag = "keys", security(("bearer" = [])),
    params(("id" = String, Path, description = "Link request id")),
    responses(
        (status = 200, body = LinkView),
        (status = 404, description = "`not_found`: no such request of yours, or it expired", body = ErrorBody),
    ))]
async fn link_status(
    State(state): State<AppState>,
    caller: AuthUser,
    IdPath(id): IdPath,
) -> ApiResult<Json<LinkView>> {
    let link = own_link(&state, &caller, &id).await?;
    let device = match &link.device_id {
        Some(device) => state.store.device(device).await?.map(Into::into),
        None => None,
    };
    Ok(Json(LinkView::new(link, device)))
}

/// `DELETE /api/v1/devices/links/{id}` — forget a request (the new device has its answer, or
/// gave up); its envelope goes with it.
#[utoipa::path(delete, path = "/api/v1/devices/links/{id}", tag = "keys", security(("bearer" = [])),
    params(("id" = String, Path, description = "Link request id")),
    responses(
        (status = 204),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
async fn forget_link(
    State(state): State<AppState>,
    caller: AuthUser,
    IdPath(id): IdPath,
) -> ApiResult<StatusCode> {
    if state.store.delete_device_link(&caller.user.id, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("device_link"))
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveLink {
    /// The identity key's signature over the request's signature key, as for `POST
    /// /api/v1/devices`.
    pub identity_signature: String,
    /// Opaque bytes for the new device (base64, at most 16 KiB), encrypted to its transfer key.
    pub envelope: Option<String>,
}

/// `POST /api/v1/devices/links/{id}/approve` — register the requesting device, vouched for by
/// the identity key, and leave it the envelope.
#[utoipa::path(post, path = "/api/v1/devices/links/{id}/approve", tag = "keys",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Link request id")),
    request_body = ApproveLink,
    responses(
        (status = 201, body = DeviceView),
        (status = 400, description = "`invalid_encoding`, `invalid_signature`", body = ErrorBody),
        (status = 403, description = "`bad_identity_signature`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such pending request of yours (expired, or answered)", body = ErrorBody),
        (status = 409, description = "`signature_key_taken`", body = ErrorBody),
        (status = 413, description = "`envelope_too_large`", body = ErrorBody),
    ))]
async fn approve_link(
    State(state): State<AppState>,
    caller: AuthUser,
    IdPath(id): IdPath,
    ApiJson(body): ApiJson<ApproveLink>,
) -> ApiResult<(StatusCode, Json<DeviceView>)> {
    let link = own_link(&state, &caller, &id).await?;
    let envelope = body.envelope.as_deref().map(|e| decode("envelope", e)).transpose()?;
    if envelope.as_ref().is_some_and(|e| e.len() > MAX_ENVELOPE_BYTES) {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "envelope_too_large",
            format!("an envelope is at most {MAX_ENVELOPE_BYTES} bytes"),
        ));
    }
    let signature = crate::routes::keys::verify_device_signature(
        &state,
        &caller.user.id,
        &link.signature_key,
        &body.identity_signature,
    )
    .await?;
    let device_id = uuid::Uuid::new_v4().to_string();
    let device = NewDevice {
        id: &device_id,
        user_id: &caller.user.id,
        name: link.name.as_deref(),
        signature_key: &link.signature_key,
        identity_signature: &signature.to_bytes(),
        created_at: clock::now(),
    };
    state.store.approve_device_link(&id, &device, envelope.as_deref()).await.map_err(
        |e| match e {
            LinkError::NotPending => ApiError::not_found("device_link"),
            LinkError::Device(e) => device_error(e),
        },
    )?;
    let device =
        state.store.device(&device_id).await?.ok_or_else(|| ApiError::not_found("device"))?;
    let event = json!({ "id": id, "deviceId": device_id });
    state.realtime.emit_to_user(&caller.user.id, "device_link_approved", &event).await;
    crate::key_changes::announce(&state, &caller.user.id);
    Ok((StatusCode::CREATED, Json(device.into())))
}

/// `POST /api/v1/devices/links/{id}/reject` — refuse a request (a device the user does not
/// recognise, or a code that does not match).
#[utoipa::path(post, path = "/api/v1/devices/links/{id}/reject", tag = "keys",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Link request id")),
    responses(
        (status = 204),
        (status = 404, description = "`not_found`: no such pending request of yours", body = ErrorBody),
    ))]
async fn reject_link(
    State(state): State<AppState>,
    caller: AuthUser,
    IdPath(id): IdPath,
) -> ApiResult<StatusCode> {
    if !state.store.reject_device_link(&caller.user.id, &id, clock::now()).await? {
        return Err(ApiError::not_found("device_link"));
    }
    let event = json!({ "id": id });
    state.realtime.emit_to_user(&caller.user.id, "device_link_rejected", &event).await;
    Ok(StatusCode::NO_CONTENT)
}
