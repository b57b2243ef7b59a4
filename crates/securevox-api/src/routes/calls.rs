//! Calls over HTTP: start a call (rings the invitees' devices), the caller's call history, the
//! seed-compatible per-call tokens (K2) and live call statistics (K3).
//!
//! `/api/v1/…` speaks snake_case like the rest of v1; the seed's `/api/call/…` endpoints keep
//! their camelCase fields so old clients work unchanged.

use crate::calls::handle::ParticipantView;
use crate::calls::signaling;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{AdminUser, ApiJson, ApiQuery, AuthUser};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use securevox_domain::call::{self, CallRole, CallState, Media, Outcome};
use securevox_domain::clock;
use securevox_store::CallHistoryEntry;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start, history))
        .routes(routes!(call_token))
        .routes(routes!(stats))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRequest {
    /// User ids to ring (1–16; the per-call participant limit counts the caller too).
    pub invitees: Vec<String>,
    #[serde(default = "audio")]
    pub media: Media,
}

fn audio() -> Media {
    Media::Audio
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StartedCall {
    /// The call (signaling session) id: `join_call {sessionId}` with it.
    pub session_id: String,
    pub caller_id: String,
    pub invitees: Vec<String>,
    pub media: Media,
    pub state: CallState,
    /// RFC 3339.
    pub created_at: String,
    pub ring_timeout_s: u64,
}

/// `POST /api/v1/calls` — start a call and ring every connected device of every invitee.
#[utoipa::path(post, path = "/api/v1/calls", tag = "calls", security(("bearer" = [])),
    request_body = StartRequest,
    responses(
        (status = 201, body = StartedCall),
        (status = 400, description = "`invalid_invitees`, `too_many_participants`", body = ErrorBody),
        (status = 403, description = "`capacity_reached`: the concurrent-call limit", body = ErrorBody),
        (status = 404, description = "an invitee does not exist or is disabled", body = ErrorBody),
    ))]
async fn start(
    State(state): State<AppState>,
    caller: AuthUser,
    ApiJson(body): ApiJson<StartRequest>,
) -> ApiResult<(StatusCode, Json<StartedCall>)> {
    let name = caller.user.display_name.as_deref().unwrap_or(&caller.user.username);
    let call =
        crate::calls::start(&state, &caller.user.id, name, body.invitees, body.media).await?;
    Ok((
        StatusCode::CREATED,
        Json(StartedCall {
            session_id: call.id.to_string(),
            caller_id: call.caller_id.to_string(),
            invitees: call.members[1..].iter().map(ToString::to_string).collect(),
            media: call.media,
            state: call.state(),
            created_at: clock::rfc3339(call.created_at),
            ring_timeout_s: state.config.calls.ring_timeout_s,
        }),
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// A call id from a previous page (`next_before`): list calls older than it.
    pub before: Option<String>,
    /// 1–100, default 20.
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryPage {
    /// Newest first.
    pub calls: Vec<HistoryItem>,
    /// Pass as `before` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_before: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryItem {
    pub session_id: String,
    pub caller_id: String,
    /// `outgoing` (you called) or `incoming`.
    pub direction: &'static str,
    pub media: Media,
    /// Every member, caller first.
    pub members: Vec<String>,
    pub state: CallState,
    /// How it went for you; absent while the call is live.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// Seconds from the first answer to the end (0 if never answered or still live).
    pub duration_s: i64,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answered_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
}

impl From<CallHistoryEntry> for HistoryItem {
    fn from(e: CallHistoryEntry) -> Self {
        let outcome = e.end_reason.map(|reason| {
            call::outcome(reason, e.answered_at.is_some(), e.viewer_is_caller, e.viewer_response)
        });
        let duration_s = match (e.answered_at, e.ended_at) {
            (Some(start), Some(end)) => (end - start).max(0),
            _ => 0,
        };
        Self {
            session_id: e.id,
            caller_id: e.caller_id,
            direction: if e.viewer_is_caller { "outgoing" } else { "incoming" },
            media: e.media,
            members: e.members,
            state: e.state,
            outcome,
            duration_s,
            created_at: clock::rfc3339(e.created_at),
            answered_at: e.answered_at.map(clock::rfc3339),
            ended_at: e.ended_at.map(clock::rfc3339),
        }
    }
}

/// `GET /api/v1/calls` — the caller's calls, newest first, with outcome and duration.
#[utoipa::path(get, path = "/api/v1/calls", tag = "calls", security(("bearer" = [])),
    params(HistoryQuery),
    responses(
        (status = 200, body = HistoryPage),
        (status = 400, description = "`invalid_limit`", body = ErrorBody),
    ))]
async fn history(
    State(state): State<AppState>,
    caller: AuthUser,
    ApiQuery(query): ApiQuery<HistoryQuery>,
) -> ApiResult<Json<HistoryPage>> {
    let limit = query.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::bad_request("invalid_limit", "limit must be from 1 to 100"));
    }
    let entries = state.store.call_history(&caller.user.id, query.before.as_deref(), limit).await?;
    let next_before =
        (entries.len() == limit as usize).then(|| entries.last().map(|e| e.id.clone())).flatten();
    Ok(Json(HistoryPage {
        calls: entries.into_iter().map(HistoryItem::from).collect(),
        next_before,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CallTokenRequest {
    /// Must be the caller's own id.
    pub user_id: String,
    /// A live call the caller is a member of.
    pub session_id: String,
    pub role: CallRole,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CallToken {
    /// JWT for `authenticate {token}` / the handshake; it admits its holder to this call only.
    pub token: String,
    /// RFC 3339.
    pub expires_at: String,
}

/// `POST /api/call/token` — a per-call token (K2) for one of the caller's live calls.
#[utoipa::path(post, path = "/api/call/token", tag = "calls", security(("bearer" = [])),
    request_body = CallTokenRequest,
    responses(
        (status = 200, body = CallToken),
        (status = 403, description = "`forbidden` (another user's id or the caller role of someone else's call), `not_a_participant`", body = ErrorBody),
        (status = 404, description = "`call_not_found`: no live call with this id", body = ErrorBody),
    ))]
async fn call_token(
    State(state): State<AppState>,
    caller: AuthUser,
    ApiJson(body): ApiJson<CallTokenRequest>,
) -> ApiResult<Json<CallToken>> {
    if body.user_id != caller.user.id {
        return Err(ApiError::forbidden(
            "forbidden",
            "a call token can only be issued for yourself",
        ));
    }
    let call = state.calls.get(&body.session_id).ok_or_else(signaling::call_not_found)?;
    if !call.is_member(&caller.user.id) {
        return Err(crate::calls::room::not_a_participant());
    }
    let is_caller = *call.caller_id == *caller.user.id;
    if (body.role == CallRole::Caller) != is_caller {
        return Err(ApiError::forbidden(
            "forbidden",
            "the caller role belongs to the user who placed the call, and only to them",
        ));
    }
    let ttl = state.config.calls.token_ttl_s;
    let (token, exp) = state.tokens.issue_call(&caller.user.id, &call.id, body.role, ttl);
    Ok(Json(CallToken { token, expires_at: clock::rfc3339(exp) }))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CallStats {
    pub active_calls: Vec<ActiveCall>,
    pub total_active_calls: u64,
    /// Users with at least one connected device.
    pub connected_users: u64,
    /// Participants across all calls.
    pub participants: u64,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActiveCall {
    pub session_id: String,
    pub caller_id: String,
    pub participants: Vec<ParticipantView>,
    /// RFC 3339: when the call was placed.
    pub started_at: String,
    pub state: CallState,
    pub media: Media,
}

/// `GET /api/call/stats` — live calls and connected users (admins only).
#[utoipa::path(get, path = "/api/call/stats", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = CallStats), (status = 403, body = ErrorBody)))]
async fn stats(State(state): State<AppState>, _admin: AdminUser) -> Json<CallStats> {
    let calls = state.calls.list();
    let active_calls: Vec<ActiveCall> = calls
        .iter()
        .map(|c| ActiveCall {
            session_id: c.id.to_string(),
            caller_id: c.caller_id.to_string(),
            participants: c.participants(),
            started_at: clock::rfc3339(c.created_at),
            state: c.state(),
            media: c.media,
        })
        .collect();
    let participants = active_calls.iter().map(|c| c.participants.len() as u64).sum();
    Json(CallStats {
        total_active_calls: active_calls.len() as u64,
        active_calls,
        connected_users: state.realtime.presence.connected_users(),
        participants,
    })
}
