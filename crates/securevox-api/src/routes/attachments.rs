//! Encrypted attachments (C2): a member uploads an opaque blob to a conversation — the file
//! encrypted on the device with a fresh key that travels inside an MLS message — and members
//! of that conversation download it. The server stores no file name or MIME type, and deletes
//! the blob after the retention window (`retention.messages_days`).

use crate::blobs::Blobs;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{AuthUser, IdPath};
use crate::routes::conversations::membership;
use crate::state::AppState;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use securevox_domain::clock;
use securevox_domain::secret_token::sha256_hex;
use securevox_store::AttachmentRecord;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(upload)).routes(routes!(download)).routes(routes!(limits))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttachmentLimits {
    /// The largest encrypted blob the server accepts, in bytes (the plaintext may be 16 bytes
    /// less: AES-GCM's tag).
    pub max_bytes: u64,
}

/// `GET /api/v1/attachments/limits` — what an upload may weigh, so that a client refuses a
/// file that is too large before sending it.
#[utoipa::path(get, path = "/api/v1/attachments/limits", tag = "chat", security(("bearer" = [])),
    responses((status = 200, body = AttachmentLimits)))]
async fn limits(State(state): State<AppState>, _caller: AuthUser) -> Json<AttachmentLimits> {
    Json(AttachmentLimits { max_bytes: state.config.attachments.max_bytes })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttachmentView {
    pub id: String,
    pub conversation_id: String,
    pub size: i64,
    /// Hex SHA-256 of the encrypted bytes (clients also check their own digest).
    pub sha256: String,
    pub created_at: String,
}

impl From<AttachmentRecord> for AttachmentView {
    fn from(a: AttachmentRecord) -> Self {
        Self {
            id: a.id,
            conversation_id: a.conversation_id,
            size: a.size,
            sha256: a.sha256,
            created_at: clock::rfc3339(a.created_at),
        }
    }
}

/// `POST /api/v1/conversations/{id}/attachments` — upload an encrypted blob
/// (`application/octet-stream`, at most `attachments.max_bytes`).
#[utoipa::path(post, path = "/api/v1/conversations/{id}/attachments", tag = "chat",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Conversation id")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses(
        (status = 201, body = AttachmentView),
        (status = 400, description = "`empty_attachment`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such conversation of yours", body = ErrorBody),
        (status = 413, description = "`attachment_too_large`", body = ErrorBody),
    ))]
async fn upload(
    State(state): State<AppState>,
    caller: AuthUser,
    IdPath(id): IdPath,
    body: Body,
) -> ApiResult<(StatusCode, Json<AttachmentView>)> {
    membership(&state, &id, &caller.user.id).await?;
    let max = state.config.attachments.max_bytes;
    let bytes: Bytes = axum::body::to_bytes(body, usize::try_from(max).unwrap_or(usize::MAX))
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "attachment_too_large",
                format!("an attachment is at most {max} bytes"),
            )
        })?;
    if bytes.is_empty() {
        return Err(ApiError::bad_request("empty_attachment", "the attachment has no bytes"));
    }
    let record = AttachmentRecord {
        id: uuid::Uuid::new_v4().to_string(),
        conversation_id: id,
        uploader_id: Some(caller.user.id.clone()),
        size: bytes.len() as i64,
        sha256: sha256_hex(&bytes),
        created_at: clock::now(),
    };
    Blobs::at(&state.config.data_dir)
        .put(&record.id, &bytes)
        .await
        .map_err(|e| ApiError::internal(&format!("storing an attachment: {e}")))?;
    state.store.add_attachment(&record).await?;
    Ok((StatusCode::CREATED, Json(record.into())))
}

/// `GET /api/v1/attachments/{id}` — the encrypted bytes, for members of the conversation it
/// was posted to.
#[utoipa::path(get, path = "/api/v1/attachments/{id}", tag = "chat", security(("bearer" = [])),
    params(("id" = String, Path, description = "Attachment id")),
    responses(
        (status = 200, content_type = "application/octet-stream", body = Vec<u8>),
        (status = 404, description = "`not_found`: no such attachment in a conversation of yours", body = ErrorBody),
    ))]
async fn download(
    State(state): State<AppState>,
    caller: AuthUser,
    IdPath(id): IdPath,
) -> ApiResult<Response> {
    let record =
        state.store.attachment(&id).await?.ok_or_else(|| ApiError::not_found("attachment"))?;
    membership(&state, &record.conversation_id, &caller.user.id)
        .await
        .map_err(|_| ApiError::not_found("attachment"))?;
    let bytes = Blobs::at(&state.config.data_dir)
        .get(&id)
        .await
        .map_err(|e| ApiError::internal(&format!("reading an attachment: {e}")))?
        .ok_or_else(|| ApiError::not_found("attachment"))?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::HeaderName::from_static("x-content-sha256"), record.sha256),
        ],
        bytes,
    )
        .into_response())
}
