//! Every device's inbox (C3): what it has to process, in order, read with a cursor and
//! acknowledged; and the live push of new items to the device's connected sockets.
//!
//! A socket that names its device (`auth: {token, deviceId}`) gets each new item of that
//! device whole as `inbox {conversationId, seq, item}`, with `item.prev`, the device's item
//! before it: a client whose cursor is at `prev` (or past it) applies the item and moves its
//! cursor; otherwise it syncs. Other sockets of the user get the hint `inbox {conversationId,
//! seq}` and sync.

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, IdPath};
use crate::realtime::device_room;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use securevox_domain::clock;
use securevox_domain::delivery::ContentType;
use securevox_store::{Delivered, InboxBody, InboxItem};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(inbox)).routes(routes!(ack))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct InboxQuery {
    /// The `id` of the last item handled (0 or absent: from the start).
    pub after: Option<i64>,
    /// 1–500, default 100.
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InboxItemView {
    /// The cursor.
    pub id: i64,
    /// Pushed items only: the device's item before this one (absent: none is stored).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prev: Option<i64>,
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

impl InboxItemView {
    fn new(id: i64, conversation_id: String, created_at: i64, body: &InboxBody) -> Self {
        let mut view = Self {
            id,
            prev: None,
            conversation_id,
            kind: "welcome",
            seq: None,
            epoch: None,
            content_type: None,
            sender_device: None,
            data: String::new(),
            created_at: clock::rfc3339(created_at),
        };
        match body {
            InboxBody::Message { seq, epoch, content_type, sender_device, data } => {
                view.kind = "message";
                view.seq = Some(*seq);
                view.epoch = Some(*epoch);
                view.content_type = Some(*content_type);
                view.sender_device.clone_from(sender_device);
                view.data = B64.encode(data);
            }
            InboxBody::Welcome { data } => view.data = B64.encode(data),
        }
        view
    }
}

impl From<InboxItem> for InboxItemView {
    fn from(item: InboxItem) -> Self {
        Self::new(item.id, item.conversation_id, item.created_at, &item.body)
    }
}

/// Pushes what `delivered` queued: each item whole to its device's sockets, a hint to the
/// users' other sockets. `message` is the group message every `Queued` that is not a Welcome
/// points at; `welcome` the Welcome.
pub async fn push(
    state: &AppState,
    conversation_id: &str,
    delivered: &Delivered,
    message: &InboxBody,
    welcome: Option<&InboxBody>,
    created_at: i64,
) {
    let hint = json!({ "conversationId": conversation_id, "seq": delivered.seq });
    let mut devices_of: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for queued in &delivered.queued {
        let body = if queued.welcome { welcome.unwrap_or(message) } else { message };
        let mut item =
            InboxItemView::new(queued.item_id, conversation_id.to_owned(), created_at, body);
        item.prev = queued.prev;
        let event =
            json!({ "conversationId": conversation_id, "seq": delivered.seq, "item": item });
        state.realtime.emit_to_room(&device_room(&queued.device_id), "inbox", &event).await;
        devices_of.entry(&queued.user_id).or_default().push(device_room(&queued.device_id));
    }
    for (user, device_rooms) in devices_of {
        state.realtime.emit_to_user_except(user, device_rooms, "inbox", &hint).await;
    }
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
    Ok(Json(InboxPage { items: items.into_iter().map(Into::into).collect(), next_after, more }))
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
