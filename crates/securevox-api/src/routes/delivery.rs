//! The Delivery Service (C3): Commits (one per epoch), application messages, and every
//! device's inbox. What a device sends is an MLS message the server cannot read; it checks the
//! public header — the group is this conversation, the epoch is the group's, the content type
//! is what the endpoint takes — orders it, stores it and pushes it to the recipients' devices
//! (see [`crate::routes::inbox`]).

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, DeviceCaller, IdPath};
use crate::routes::conversations::membership;
use crate::routes::inbox;
use crate::routes::keys::decode;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use securevox_domain::clock;
use securevox_domain::delivery::{ContentType, ConversationKind, MemberRole};
use securevox_mls::{InspectError, MessageHeader};
use securevox_store::{DeliveryError, InboxBody, NewCommit, NewGroupMessage, NewWelcome};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeSet;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Bytes of one MLS message at most (attachments travel as blobs, not in messages).
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(commit)).routes(routes!(message)).routes(routes!(ephemeral))
}

fn mls_error(what: &str, e: &InspectError) -> ApiError {
    ApiError::bad_request("invalid_mls_message", format!("{what}: {e}"))
}

fn stale(current: i64) -> ApiError {
    ApiError::conflict("stale_epoch", format!("the group is at epoch {current}: sync, then retry"))
        .with_details(json!({ "current_epoch": current }))
}

/// The message's epoch if it is the group's current one, else 409 `stale_epoch`. (The store
/// checks again atomically; this answers early without a write.)
fn current_epoch(header: &MessageHeader, current: i64) -> Result<i64, ApiError> {
    match i64::try_from(header.epoch) {
        Ok(epoch) if epoch == current => Ok(epoch),
        _ => Err(stale(current)),
    }
}

fn delivery_error(e: DeliveryError) -> ApiError {
    match e {
        DeliveryError::NotFound => ApiError::not_found("conversation"),
        DeliveryError::StaleEpoch { current } => stale(current),
        DeliveryError::Store(e) => e.into(),
    }
}

/// Decodes and inspects an MLS message for conversation `id`; checks its group and size.
fn inspect(id: &str, text: &str) -> Result<(Vec<u8>, MessageHeader), ApiError> {
    let bytes = decode("message", text)?;
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "message_too_large",
            format!("an MLS message is at most {MAX_MESSAGE_BYTES} bytes"),
        ));
    }
    let header = securevox_mls::inspect_message(&bytes).map_err(|e| mls_error("message", &e))?;
    if header.group_id != id.as_bytes() {
        return Err(ApiError::bad_request(
            "wrong_group",
            "the message belongs to another MLS group than this conversation",
        ));
    }
    Ok((bytes, header))
}

/// The caller's device must be in the group to speak in it.
async fn in_group(state: &AppState, id: &str, device_id: &str) -> Result<(), ApiError> {
    if state.store.conversation_devices(id).await?.iter().any(|d| d == device_id) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "device_not_in_group",
            "this device is not a member of the conversation's group",
        ))
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommitRequest {
    /// The Commit (`MLSMessage`, base64), made at the group's current epoch.
    pub commit: String,
    /// The Welcome for the devices it adds (their KeyPackages claimed before).
    pub welcome: Option<String>,
    /// The GroupInfo after the Commit, for external joins.
    pub group_info: Option<String>,
    /// Devices the Commit removes: they get this Commit and nothing after it.
    #[serde(default)]
    pub removed_devices: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    /// The message's place in the group's order.
    pub seq: i64,
    /// The group's epoch now.
    pub epoch: i64,
}

/// `POST /api/v1/conversations/{id}/commits` — the one Commit of the group's current epoch.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/commits", tag = "chat",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Conversation id"),
           ("X-Device-Id" = String, Header, description = "The sending device, in the group")),
    request_body = CommitRequest,
    responses(
        (status = 200, body = Accepted),
        (status = 400, description = "`invalid_mls_message`, `wrong_group`, `wrong_content_type`, `unknown_key_package`, `direct_conversation` (adding a third user)", body = ErrorBody),
        (status = 403, description = "`device_not_in_group`, `admins_only`: adding or removing other users", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`stale_epoch` (details.current_epoch): another Commit won this epoch", body = ErrorBody),
    ))]
async fn commit(
    State(state): State<AppState>,
    DeviceCaller { caller, device }: DeviceCaller,
    IdPath(id): IdPath,
    ApiJson(body): ApiJson<CommitRequest>,
) -> ApiResult<Json<Accepted>> {
    let (conversation, role) = membership(&state, &id, &caller.user.id).await?;
    let (bytes, header) = inspect(&id, &body.commit)?;
    if header.content_type != securevox_mls::ContentType::Commit {
        return Err(ApiError::bad_request("wrong_content_type", "this endpoint takes Commits"));
    }
    // A member's new device joins by external Commit (from the GroupInfo); any other Commit
    // comes from a device in the group.
    let joining = header.new_member_commit;
    if !joining {
        in_group(&state, &id, &device.id).await?;
    } else if body.welcome.is_some() {
        return Err(ApiError::bad_request(
            "invalid_external_commit",
            "an external Commit adds only its sender",
        ));
    }
    let epoch = current_epoch(&header, conversation.epoch)?;
    let members: BTreeSet<&str> = conversation.members.iter().map(|(u, _)| u.as_str()).collect();
    let admins_only =
        || ApiError::forbidden("admins_only", "only admins add or remove other users");
    // The devices the Welcome adds, found by the KeyPackages it names.
    let mut welcomed = Vec::new();
    let welcome = body.welcome.as_deref().map(|w| decode("welcome", w)).transpose()?;
    if let Some(welcome) = &welcome {
        let info = securevox_mls::inspect_welcome(welcome).map_err(|e| mls_error("welcome", &e))?;
        for reference in &info.new_member_refs {
            let (device_id, user_id) =
                state.store.key_package_device(reference).await?.ok_or_else(|| {
                    ApiError::bad_request(
                        "unknown_key_package",
                        "the Welcome names a KeyPackage this server did not hand out",
                    )
                })?;
            if !members.contains(user_id.as_str()) {
                if conversation.kind == ConversationKind::Direct {
                    return Err(ApiError::bad_request(
                        "direct_conversation",
                        "a direct conversation stays between its two users; start a group",
                    ));
                }
                if role != MemberRole::Admin {
                    return Err(admins_only());
                }
            }
            welcomed.push((device_id, user_id));
        }
    }
    let devices = state.store.conversation_devices(&id).await?;
    for removed in &body.removed_devices {
        if !devices.contains(removed) {
            // Gone from the conversation already (deleted, or its user left): any member's
            // Commit may remove its leaf from the MLS group, and nothing is routed to it.
            continue;
        }
        let owner = state.store.device(removed).await?.map(|d| d.user_id);
        if owner.as_deref() != Some(caller.user.id.as_str()) && role != MemberRole::Admin {
            return Err(admins_only());
        }
    }
    let group_info = body.group_info.as_deref().map(|g| decode("group_info", g)).transpose()?;
    if let Some(info) = &group_info {
        let header =
            securevox_mls::inspect_group_info(info).map_err(|e| mls_error("group_info", &e))?;
        if header.group_id != id.as_bytes() || header.epoch != u64::try_from(epoch + 1).unwrap_or(0)
        {
            return Err(ApiError::bad_request(
                "wrong_group_info",
                "the GroupInfo must be this group's, at the epoch after the Commit",
            ));
        }
    }
    let now = clock::now();
    let delivered = state
        .store
        .accept_commit(&NewCommit {
            conversation_id: &id,
            epoch,
            sender_device: &device.id,
            data: &bytes,
            group_info: group_info.as_deref(),
            welcome: welcome.as_deref().map(|data| NewWelcome { data, devices: &welcomed }),
            removed_devices: &body.removed_devices,
            joining_user: joining.then_some(caller.user.id.as_str()),
            now,
        })
        .await
        .map_err(delivery_error)?;
    let message = InboxBody::Message {
        seq: delivered.seq,
        epoch,
        content_type: ContentType::Commit,
        sender_device: Some(device.id.clone()),
        data: bytes,
    };
    let welcome = welcome.map(|data| InboxBody::Welcome { data });
    inbox::push(&state, &id, &delivered, &message, welcome.as_ref(), now).await;
    Ok(Json(Accepted { seq: delivered.seq, epoch: epoch + 1 }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageRequest {
    /// An application message or proposal (`MLSMessage`, base64) at the group's current epoch.
    pub message: String,
}

/// `POST /api/v1/conversations/{id}/messages` — an application message (or proposal) to the
/// group.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/messages", tag = "chat",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Conversation id"),
           ("X-Device-Id" = String, Header, description = "The sending device, in the group")),
    request_body = MessageRequest,
    responses(
        (status = 201, body = Accepted),
        (status = 400, description = "`invalid_mls_message`, `wrong_group`, `wrong_content_type` (Commits go to /commits)", body = ErrorBody),
        (status = 403, description = "`device_not_in_group`; `blocked` (a direct conversation across a block)", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`stale_epoch`: process the group's new Commit, then re-encrypt", body = ErrorBody),
        (status = 413, description = "`message_too_large`", body = ErrorBody),
    ))]
async fn message(
    State(state): State<AppState>,
    DeviceCaller { caller, device }: DeviceCaller,
    IdPath(id): IdPath,
    ApiJson(body): ApiJson<MessageRequest>,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    let (bytes, content_type, epoch) =
        speak(&state, &caller.user.id, &device.id, &id, &body.message).await?;
    let now = clock::now();
    let delivered = state
        .store
        .post_group_message(&NewGroupMessage {
            conversation_id: &id,
            epoch,
            content_type,
            sender_device: &device.id,
            data: &bytes,
            now,
        })
        .await
        .map_err(delivery_error)?;
    let message = InboxBody::Message {
        seq: delivered.seq,
        epoch,
        content_type,
        sender_device: Some(device.id.clone()),
        data: bytes,
    };
    inbox::push(&state, &id, &delivered, &message, None, now).await;
    Ok((StatusCode::CREATED, Json(Accepted { seq: delivered.seq, epoch })))
}

/// Checks that `device` of `user` may speak in conversation `id` and that `message` is an
/// application message or proposal of the group at its current epoch; returns its bytes,
/// content type and epoch.
async fn speak(
    state: &AppState,
    user: &str,
    device: &str,
    id: &str,
    message: &str,
) -> Result<(Vec<u8>, ContentType, i64), ApiError> {
    let (conversation, _) = membership(state, id, user).await?;
    in_group(state, id, device).await?;
    if conversation.kind == ConversationKind::Direct {
        for (other, _) in conversation.members.iter().filter(|(u, _)| u != user) {
            crate::routes::contacts::ensure_not_blocked(state, user, other).await?;
        }
    }
    let (bytes, header) = inspect(id, message)?;
    let content_type = match header.content_type {
        securevox_mls::ContentType::Application => ContentType::Application,
        securevox_mls::ContentType::Proposal => ContentType::Proposal,
        securevox_mls::ContentType::Commit => {
            return Err(ApiError::bad_request("wrong_content_type", "send Commits to /commits"))
        }
    };
    let epoch = current_epoch(&header, conversation.epoch)?;
    Ok((bytes, content_type, epoch))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Relayed {
    /// Devices of the group with a connected socket that names them (they got it).
    pub devices: usize,
}

/// `POST /api/v1/conversations/{id}/ephemeral` — an application message for the group's
/// connected devices only (typing indicators): relayed over Socket.IO as `ephemeral
/// {conversationId, senderDevice, message}`, never stored; offline devices never see it.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/ephemeral", tag = "chat",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Conversation id"),
           ("X-Device-Id" = String, Header, description = "The sending device, in the group")),
    request_body = MessageRequest,
    responses(
        (status = 202, body = Relayed),
        (status = 400, description = "`invalid_mls_message`, `wrong_group`, `wrong_content_type`", body = ErrorBody),
        (status = 403, description = "`device_not_in_group`, `blocked`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`stale_epoch`", body = ErrorBody),
        (status = 413, description = "`message_too_large`", body = ErrorBody),
    ))]
async fn ephemeral(
    State(state): State<AppState>,
    DeviceCaller { caller, device }: DeviceCaller,
    IdPath(id): IdPath,
    ApiJson(body): ApiJson<MessageRequest>,
) -> ApiResult<(StatusCode, Json<Relayed>)> {
    let (bytes, content_type, _) =
        speak(&state, &caller.user.id, &device.id, &id, &body.message).await?;
    if content_type != ContentType::Application {
        return Err(ApiError::bad_request(
            "wrong_content_type",
            "only application messages are ephemeral",
        ));
    }
    let event =
        json!({ "conversationId": id, "senderDevice": device.id, "message": B64.encode(&bytes) });
    let mut devices = 0;
    for other in state.store.conversation_devices(&id).await?.iter().filter(|d| **d != device.id) {
        if state
            .realtime
            .emit_to_room(&crate::realtime::device_room(other), "ephemeral", &event)
            .await
        {
            devices += 1;
        }
    }
    Ok((StatusCode::ACCEPTED, Json(Relayed { devices })))
}
