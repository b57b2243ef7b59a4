//! Conversations (C1, C3): each is one MLS group, made by its creator's device at epoch 0 with
//! the conversation id's bytes as its group id. The server knows members as user ids with a
//! role (admins add and remove members) and which devices are in the group; it never sees what
//! is said.

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, AuthUser, DeviceCaller, IdPath};
use crate::routes::contacts::ensure_not_blocked;
use crate::routes::keys::active_user;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use securevox_domain::clock;
use securevox_domain::delivery::{ConversationKind, MemberRole};
use securevox_store::{ConversationRecord, NewConversation, UserRecord};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Members of a group at most (the creator included).
pub const MAX_MEMBERS: usize = 256;
/// Characters of a conversation name at most.
const MAX_NAME: usize = 128;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(show, update))
        .routes(routes!(group_info))
        .routes(routes!(leave))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateConversation {
    pub kind: ConversationKind,
    /// Visible to the server; leave it out and keep the name inside the group to hide it.
    pub name: Option<String>,
    /// The other members' user ids (exactly one for `direct`).
    pub members: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MemberView {
    pub user_id: String,
    pub role: MemberRole,
    /// The member's username and display name (so clients can name people who are not
    /// their contacts); absent for an account deleted since.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationView {
    pub id: String,
    /// The MLS group id, base64: the UTF-8 bytes of `id`.
    pub group_id: String,
    pub kind: ConversationKind,
    pub name: Option<String>,
    /// The epoch of the group's last accepted Commit.
    pub epoch: i64,
    /// The sequence number the next message of the group will get.
    pub next_seq: i64,
    pub members: Vec<MemberView>,
    /// The devices in the MLS group (where its messages go).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub devices: Option<Vec<String>>,
    pub created_at: String,
    pub updated_at: String,
}

impl ConversationView {
    fn new(
        c: ConversationRecord,
        devices: Option<Vec<String>>,
        users: &HashMap<String, UserRecord>,
    ) -> Self {
        Self {
            group_id: B64.encode(c.id.as_bytes()),
            kind: c.kind,
            name: c.name,
            epoch: c.epoch,
            next_seq: c.next_seq,
            members: c
                .members
                .into_iter()
                .map(|(user_id, role)| {
                    let user = users.get(&user_id);
                    MemberView {
                        username: user.map(|u| u.username.clone()),
                        display_name: user.and_then(|u| u.display_name.clone()),
                        user_id,
                        role,
                    }
                })
                .collect(),
            devices,
            created_at: clock::rfc3339(c.created_at),
            updated_at: clock::rfc3339(c.updated_at),
            id: c.id,
        }
    }
}

/// `conversation` as the API shows it, its members named.
async fn view(
    state: &AppState,
    conversation: ConversationRecord,
    devices: Option<Vec<String>>,
) -> Result<ConversationView, ApiError> {
    let ids: Vec<String> = conversation.members.iter().map(|(u, _)| u.clone()).collect();
    let users = state.store.users_by_id(&ids).await?;
    Ok(ConversationView::new(conversation, devices, &users))
}

/// The conversation `id` if `user_id` is a member (404 otherwise: a stranger learns nothing).
pub(crate) async fn membership(
    state: &AppState,
    id: &str,
    user_id: &str,
) -> Result<(ConversationRecord, MemberRole), ApiError> {
    let conversation =
        state.store.conversation(id).await?.ok_or_else(|| ApiError::not_found("conversation"))?;
    let role = conversation
        .members
        .iter()
        .find(|(member, _)| member == user_id)
        .map(|(_, role)| *role)
        .ok_or_else(|| ApiError::not_found("conversation"))?;
    Ok((conversation, role))
}

/// `POST /api/v1/conversations` — create a conversation; the calling device is the group's
/// first member (epoch 0) and adds the others' devices with its first Commit.
#[utoipa::path(post, path = "/api/v1/conversations", tag = "chat",
    security(("bearer" = [])),
    params(("X-Device-Id" = String, Header, description = "One of your devices")),
    request_body = CreateConversation,
    responses(
        (status = 201, body = ConversationView),
        (status = 400, description = "`invalid_members`, `invalid_name`, `device_required`", body = ErrorBody),
        (status = 403, description = "`blocked`: you and a member have blocked one another", body = ErrorBody),
        (status = 404, description = "a member does not exist or is disabled", body = ErrorBody),
    ))]
async fn create(
    State(state): State<AppState>,
    DeviceCaller { caller, device }: DeviceCaller,
    ApiJson(body): ApiJson<CreateConversation>,
) -> ApiResult<(StatusCode, Json<ConversationView>)> {
    let mut members = body.members;
    members.sort();
    members.dedup();
    let invalid = |message: &str| ApiError::bad_request("invalid_members", message);
    if members.contains(&caller.user.id) {
        return Err(invalid("list the other members; you are a member already"));
    }
    match body.kind {
        ConversationKind::Direct if members.len() != 1 => {
            return Err(invalid("a direct conversation has exactly one other member"));
        }
        ConversationKind::Group if members.len() + 1 > MAX_MEMBERS => {
            return Err(invalid(&format!("a group has at most {MAX_MEMBERS} members")));
        }
        _ => {}
    }
    for member in &members {
        active_user(&state, member).await?;
        ensure_not_blocked(&state, &caller.user.id, member).await?;
    }
    let name = checked_name(body.name)?;
    let id = uuid::Uuid::new_v4().to_string();
    state
        .store
        .create_conversation(&NewConversation {
            id: &id,
            kind: body.kind,
            name: name.as_deref(),
            creator: &caller.user.id,
            creator_device: &device.id,
            members: &members,
            now: clock::now(),
        })
        .await?;
    let (conversation, _) = membership(&state, &id, &caller.user.id).await?;
    let devices = state.store.conversation_devices(&id).await?;
    Ok((StatusCode::CREATED, Json(view(&state, conversation, Some(devices)).await?)))
}

/// `GET /api/v1/conversations` — the caller's conversations, most recently active first.
#[utoipa::path(get, path = "/api/v1/conversations", tag = "chat", security(("bearer" = [])),
    responses((status = 200, body = [ConversationView])))]
async fn list(
    State(state): State<AppState>,
    caller: AuthUser,
) -> ApiResult<Json<Vec<ConversationView>>> {
    let mut conversations = Vec::new();
    for id in state.store.conversation_ids_of(&caller.user.id).await? {
        if let Some(conversation) = state.store.conversation(&id).await? {
            conversations.push(conversation);
        }
    }
    let mut ids: Vec<String> =
        conversations.iter().flat_map(|c| c.members.iter().map(|(u, _)| u.clone())).collect();
    ids.sort();
    ids.dedup();
    let users = state.store.users_by_id(&ids).await?;
    Ok(Json(conversations.into_iter().map(|c| ConversationView::new(c, None, &users)).collect()))
}

/// `GET /api/v1/conversations/{id}` — one conversation with its devices.
#[utoipa::path(get, path = "/api/v1/conversations/{id}", tag = "chat", security(("bearer" = [])),
    params(("id" = String, Path, description = "Conversation id")),
    responses(
        (status = 200, body = ConversationView),
        (status = 404, description = "`not_found`: no such conversation of yours", body = ErrorBody),
    ))]
async fn show(
    State(state): State<AppState>,
    caller: AuthUser,
    IdPath(id): IdPath,
) -> ApiResult<Json<ConversationView>> {
    let (conversation, _) = membership(&state, &id, &caller.user.id).await?;
    let devices = state.store.conversation_devices(&id).await?;
    Ok(Json(view(&state, conversation, Some(devices)).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleChange {
    pub user_id: String,
    pub role: MemberRole,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateConversation {
    /// A new name (empty: none).
    pub name: Option<String>,
    /// Members whose role changes.
    #[serde(default)]
    pub roles: Vec<RoleChange>,
}

fn checked_name(name: Option<String>) -> Result<Option<String>, ApiError> {
    let name = name.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
    if name
        .as_ref()
        .is_some_and(|n| n.chars().count() > MAX_NAME || n.chars().any(char::is_control))
    {
        return Err(ApiError::bad_request(
            "invalid_name",
            format!("a conversation name is 1–{MAX_NAME} printable characters"),
        ));
    }
    Ok(name)
}

/// `PATCH /api/v1/conversations/{id}` — rename a group or change members' roles (admins).
#[utoipa::path(patch, path = "/api/v1/conversations/{id}", tag = "chat", security(("bearer" = [])),
    params(("id" = String, Path, description = "Conversation id")),
    request_body = UpdateConversation,
    responses(
        (status = 200, body = ConversationView),
        (status = 400, description = "`invalid_name`, `not_a_member`", body = ErrorBody),
        (status = 403, description = "`admins_only`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such conversation of yours", body = ErrorBody),
        (status = 409, description = "`last_admin`: a group keeps at least one admin", body = ErrorBody),
    ))]
async fn update(
    State(state): State<AppState>,
    caller: AuthUser,
    IdPath(id): IdPath,
    ApiJson(body): ApiJson<UpdateConversation>,
) -> ApiResult<Json<ConversationView>> {
    let (conversation, role) = membership(&state, &id, &caller.user.id).await?;
    if role != MemberRole::Admin {
        return Err(ApiError::forbidden("admins_only", "only admins rename or change roles"));
    }
    let mut roles: std::collections::HashMap<&str, MemberRole> =
        conversation.members.iter().map(|(u, r)| (u.as_str(), *r)).collect();
    for change in &body.roles {
        let Some(current) = roles.get_mut(change.user_id.as_str()) else {
            return Err(ApiError::bad_request("not_a_member", "roles are for members"));
        };
        *current = change.role;
    }
    if !roles.values().any(|r| *r == MemberRole::Admin) {
        return Err(ApiError::conflict("last_admin", "a conversation keeps at least one admin"));
    }
    if body.name.is_some() {
        let name = checked_name(body.name)?;
        state.store.rename_conversation(&id, name.as_deref(), clock::now()).await?;
    }
    for change in &body.roles {
        state.store.set_member_role(&id, &change.user_id, change.role).await?;
    }
    let (conversation, _) = membership(&state, &id, &caller.user.id).await?;
    let devices = state.store.conversation_devices(&id).await?;
    Ok(Json(view(&state, conversation, Some(devices)).await?))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GroupInfoView {
    /// The group's GroupInfo (`MLSMessage`, base64) as of its last Commit that carried one.
    pub group_info: String,
}

/// `GET /api/v1/conversations/{id}/group-info` — for a member's new device to join by
/// external Commit.
#[utoipa::path(get, path = "/api/v1/conversations/{id}/group-info", tag = "chat",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Conversation id")),
    responses(
        (status = 200, body = GroupInfoView),
        (status = 404, description = "`not_found`: no such conversation of yours, or no GroupInfo yet", body = ErrorBody),
    ))]
async fn group_info(
    State(state): State<AppState>,
    caller: AuthUser,
    IdPath(id): IdPath,
) -> ApiResult<Json<GroupInfoView>> {
    membership(&state, &id, &caller.user.id).await?;
    let info =
        state.store.group_info(&id).await?.ok_or_else(|| ApiError::not_found("group_info"))?;
    Ok(Json(GroupInfoView { group_info: B64.encode(info) }))
}

/// `DELETE /api/v1/conversations/{id}/members/me` — leave: the server stops delivering the
/// group's messages to your devices. (A remaining member's next Commit removes your leaves.)
#[utoipa::path(delete, path = "/api/v1/conversations/{id}/members/me", tag = "chat",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Conversation id")),
    responses(
        (status = 204),
        (status = 404, description = "`not_found`: no such conversation of yours", body = ErrorBody),
    ))]
async fn leave(
    State(state): State<AppState>,
    caller: AuthUser,
    IdPath(id): IdPath,
) -> ApiResult<StatusCode> {
    membership(&state, &id, &caller.user.id).await?;
    state.store.remove_member(&id, &caller.user.id).await?;
    Ok(StatusCode::NO_CONTENT)
}
