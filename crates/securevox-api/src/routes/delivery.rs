//! The Delivery Service (C3): Commits (one per epoch), application messages, and every
//! device's inbox. What a device sends is an MLS message the server cannot read; it checks the
//! public header — the group is this conversation, the epoch is the group's, the content type
//! is what the endpoint takes — orders it, stores it and tells the recipients' devices over
//! Socket.IO (`inbox`, a hint without content) that there is something to sync.

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, DeviceCaller, IdPath};
use crate::routes::conversations::membership;
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
use securevox_store::{
    Delivered, DeliveryError, InboxBody, NewCommit, NewGroupMessage, NewWelcome,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeSet;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Bytes of one MLS message at most (attachments travel as blobs, not in messages).
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(commit))
        .routes(routes!(message))
        .routes(routes!(inbox))
        .routes(routes!(ack))
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

/// Tells the users of the devices that got something that their inbox has news.
async fn notify(state: &AppState, id: &str, delivered: &Delivered) {
    let hint = json!({ "conversationId": id, "seq": delivered.seq });
    for user in &delivered.users {
        state.realtime.emit_to_user(user, "inbox", &hint).await;
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
    in_group(&state, &id, &device.id).await?;
    let (bytes, header) = inspect(&id, &body.commit)?;
    if header.content_type != securevox_mls::ContentType::Commit {
        return Err(ApiError::bad_request("wrong_content_type", "this endpoint takes Commits"));
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
            return Err(ApiError::bad_request(
                "unknown_device",
                "a removed device is not in the group",
            ));
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
            now: clock::now(),
        })
        .await
        .map_err(delivery_error)?;
    notify(&state, &id, &delivered).await;
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
    let (conversation, _) = membership(&state, &id, &caller.user.id).await?;
    in_group(&state, &id, &device.id).await?;
    if conversation.kind == ConversationKind::Direct {
        for (other, _) in conversation.members.iter().filter(|(u, _)| *u != caller.user.id) {
            crate::routes::contacts::ensure_not_blocked(&state, &caller.user.id, other).await?;
        }
    }
    let (bytes, header) = inspect(&id, &body.message)?;
    let content_type = match header.content_type {
        securevox_mls::ContentType::Application => ContentType::Application,
        securevox_mls::ContentType::Proposal => ContentType::Proposal,
        securevox_mls::ContentType::Commit => {
            return Err(ApiError::bad_request("wrong_content_type", "send Commits to /commits"))
        }
    };
    let epoch = current_epoch(&header, conversation.epoch)?;
    let delivered = state
        .store
        .post_group_message(&NewGroupMessage {
            conversation_id: &id,
            epoch,
            content_type,
            sender_device: &device.id,
            data: &bytes,
            now: clock::now(),
        })
        .await
        .map_err(delivery_error)?;
    notify(&state, &id, &delivered).await;
    Ok((StatusCode::CREATED, Json(Accepted { seq: delivered.seq, epoch })))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct InboxQuery {
    /// The `id` of the last item handled (0 or absent: from the start).
    pub after: Option<i64>,
    /// 1–500, default 100.
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InboxItemView {
    /// The cursor.
    pub id: i64,
    pub conversation_id: String,
    /// `message` or `welcome`.
    pub kind: &'static str,
    /// For messages: the group's order, epoch, content type and sending device.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epoch: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<ContentType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sender_device: Option<String>,
    /// The `MLSMessage` (message or Welcome), base64.
    pub data: String,
    pub created_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InboxPage {
    pub items: Vec<InboxItemView>,
    /// Pass as `after` for the next page (the last item's id, or `after` when empty).
    pub next_after: i64,
    /// More items are waiting.
    pub more: bool,
}

/// `GET /api/v1/devices/{id}/inbox?after=&limit=` — what the device has to process, in order.
#[utoipa::path(get, path = "/api/v1/devices/{id}/inbox", tag = "chat", security(("bearer" = [])),
    params(("id" = String, Path, description = "Device id (one of yours)"), InboxQuery),
    responses(
        (status = 200, body = InboxPage),
        (status = 404, description = "`not_found`: no such device of yours", body = ErrorBody),
    ))]
async fn inbox(
    State(state): State<AppState>,
    caller: crate::extract::AuthUser,
    IdPath(device_id): IdPath,
    ApiQuery(query): ApiQuery<InboxQuery>,
) -> ApiResult<Json<InboxPage>> {
    let device = crate::routes::keys::own_device(&state, &caller, &device_id).await?;
    let after = query.after.unwrap_or(0).max(0);
    let limit = query.limit.unwrap_or(100).clamp(1, 500);
    let mut items = state.store.inbox(&device.id, after, limit + 1).await?;
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    let next_after = items.last().map_or(after, |i| i.id);
    let _ = state.store.touch_device(&device.id, clock::now()).await;
    let items = items
        .into_iter()
        .map(|item| {
            let mut view = InboxItemView {
                id: item.id,
                conversation_id: item.conversation_id,
                kind: "welcome",
                seq: None,
                epoch: None,
                content_type: None,
                sender_device: None,
                data: String::new(),
                created_at: clock::rfc3339(item.created_at),
            };
            let data = match item.body {
                InboxBody::Message { seq, epoch, content_type, sender_device, data } => {
                    view.kind = "message";
                    view.seq = Some(seq);
                    view.epoch = Some(epoch);
                    view.content_type = Some(content_type);
                    view.sender_device = sender_device;
                    data
                }
                InboxBody::Welcome { data } => data,
            };
            view.data = B64.encode(data);
            view
        })
        .collect();
    Ok(Json(InboxPage { items, next_after, more }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AckRequest {
    /// Every item up to this id has been processed.
    pub up_to: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AckView {
    pub acknowledged: u64,
}

/// `POST /api/v1/devices/{id}/inbox/ack` — the device has processed its items up to `up_to`;
/// they are deleted after the retention window.
#[utoipa::path(post, path = "/api/v1/devices/{id}/inbox/ack", tag = "chat",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Device id (one of yours)")),
    request_body = AckRequest,
    responses(
        (status = 200, body = AckView),
        (status = 404, description = "`not_found`: no such device of yours", body = ErrorBody),
    ))]
async fn ack(
    State(state): State<AppState>,
    caller: crate::extract::AuthUser,
    IdPath(device_id): IdPath,
    ApiJson(body): ApiJson<AckRequest>,
) -> ApiResult<Json<AckView>> {
    let device = crate::routes::keys::own_device(&state, &caller, &device_id).await?;
    let acknowledged = state.store.ack_inbox(&device.id, body.up_to, clock::now()).await?;
    Ok(Json(AckView { acknowledged }))
}
