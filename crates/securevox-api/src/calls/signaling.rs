//! What sockets ask of calls: start, accept, decline, cancel, join, leave, relay, mute. Relay
//! and mute run inline on the socket's receive path (no await); the rest ask the call's room.

use crate::calls::handle::{call_ended, CallHandle};
use crate::calls::room::{not_a_participant, Command};
use crate::error::ApiError;
use crate::realtime::connection::Connection;
use crate::realtime::identity::Identity;
use crate::realtime::requests::{Relay, SignalKind};
use crate::state::AppState;
use securevox_domain::call::{CallState, Media};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use socketioxide::extract::SocketRef;
use std::sync::Arc;
use tokio::sync::oneshot;

pub fn call_not_found() -> ApiError {
    ApiError::new(axum::http::StatusCode::NOT_FOUND, "call_not_found", "no live call with this id")
}

/// The live call `session_id`, if this identity may act on it.
fn live_call(
    state: &AppState,
    identity: &Identity,
    session_id: &str,
) -> Result<Arc<CallHandle>, ApiError> {
    if identity.call_scope.as_deref().is_some_and(|scope| scope != session_id) {
        return Err(ApiError::forbidden("forbidden", "this call token is for another call"));
    }
    let call = state.calls.get(session_id).ok_or_else(call_not_found)?;
    if !call.is_member(&identity.user_id) {
        return Err(not_a_participant());
    }
    Ok(call)
}

async fn ask(
    call: &CallHandle,
    make: impl FnOnce(oneshot::Sender<Result<Value, ApiError>>) -> Command,
) -> Result<Value, ApiError> {
    let (reply, answer) = oneshot::channel();
    call.send(make(reply))?;
    answer.await.map_err(|_| call_ended())?
}

/// `call_start {invitees, media}`: starts a call and joins it from this socket.
pub async fn start(
    state: &AppState,
    connection: &Connection,
    socket: &SocketRef,
    identity: &Identity,
    invitees: Vec<String>,
    media: Media,
) -> Result<Value, ApiError> {
    if identity.call_scope.is_some() {
        return Err(ApiError::forbidden("forbidden", "a call token cannot start calls"));
    }
    let call =
        crate::calls::start(state, &identity.user_id, &identity.display_name, invitees, media)
            .await?;
    let started = json!({ "sessionId": &*call.id, "invitees": &call.members[1..], "media": media });
    let _ = socket.emit("call_started", &started);
    enter(state, connection, socket, identity, &call.id, false).await
}

/// `join_call {sessionId}` (`accept: false`) and `call_accept {sessionId}` (`accept: true`).
pub async fn enter(
    state: &AppState,
    connection: &Connection,
    socket: &SocketRef,
    identity: &Identity,
    session_id: &str,
    accept: bool,
) -> Result<Value, ApiError> {
    let call = live_call(state, identity, session_id)?;
    if let Some(current) = connection.call().filter(|c| c.id != call.id) {
        let _ = current.send(Command::Leave {
            user: identity.user_id.clone(),
            socket: socket.id,
            reason: "switched",
            reply: None,
        });
    }
    let user = identity.user_id.clone();
    let joined =
        ask(&call, |reply| Command::Join { user, socket: socket.clone(), accept, reply }).await?;
    if !socket.connected() {
        // The socket went while the room was answering: its disconnect handler saw no call.
        let _ =
            call.send(Command::SocketGone { user: identity.user_id.clone(), socket: socket.id });
        return Err(call_ended());
    }
    // The room has sent `call_joined`; this socket's next events wait until the call is set.
    connection.set_call(Some(call));
    Ok(joined)
}

/// `leave_call`: leaves the call this socket is in; or, from a socket in no call, the call
/// `session_id` whose socket of this user dropped (a client that hangs up while it reconnects:
/// it need not wait out the grace period in the others' call).
pub async fn leave(
    state: &AppState,
    connection: &Connection,
    socket: &SocketRef,
    identity: &Identity,
    session_id: Option<&str>,
) -> Result<Value, ApiError> {
    let Some(call) = connection.take_call() else {
        let Some(session_id) = session_id else { return Ok(json!({ "left": false })) };
        let call = live_call(state, identity, session_id)?;
        let user = identity.user_id.clone();
        return ask(&call, |reply| Command::LeaveDropped { user, reply }).await;
    };
    let user = identity.user_id.clone();
    let socket = socket.id;
    ask(&call, |reply| Command::Leave { user, socket, reason: "left", reply: Some(reply) })
        .await
        .or_else(|_| Ok(json!({ "sessionId": &*call.id, "left": false })))
}

/// `call_decline`, `call_cancel`, `call_connected`: a question for the call's room.
pub async fn respond(
    state: &AppState,
    identity: &Identity,
    session_id: &str,
    make: impl FnOnce(Arc<str>, oneshot::Sender<Result<Value, ApiError>>) -> Command,
) -> Result<Value, ApiError> {
    let call = live_call(state, identity, session_id)?;
    let user = identity.user_id.clone();
    ask(&call, |reply| make(user, reply)).await
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Relayed<'a> {
    session_id: &'a str,
    from_user_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sdp: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    candidate: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sdp_mid: Option<&'a RawValue>,
    #[serde(rename = "sdpMLineIndex", skip_serializing_if = "Option::is_none")]
    sdp_m_line_index: Option<&'a RawValue>,
}

/// `offer`, `answer`, `ice_candidate`: to the target's socket in the same call only, with the
/// sender's id added as `fromUserId`.
pub fn relay(
    state: &AppState,
    call: Option<Arc<CallHandle>>,
    user_id: &str,
    socket: &SocketRef,
    relay: &Relay<'_>,
) -> Result<(), ApiError> {
    let call = call
        .filter(|c| relay.session_id.as_deref().is_none_or(|s| s == &*c.id))
        .ok_or_else(not_a_participant)?;
    let call_state = call.state();
    if call_state == CallState::Ended {
        return Err(call_ended());
    }
    {
        let roster = call.roster();
        if !roster.iter().any(|p| p.socket.id == socket.id && &*p.user_id == user_id) {
            return Err(not_a_participant());
        }
        // Offers and answers move the call on (`pending → offered → answered`). The room
        // decides on its own state, not on this snapshot, which may lag behind its queue (an
        // answer can come before the room has taken in the offer); and it hears of it before
        // the target does, so a `call_connected` that the relay leads to comes after.
        let moves = relay.kind != SignalKind::IceCandidate
            && !matches!(call_state, CallState::Answered | CallState::Connected);
        if moves {
            let _ = call.send(Command::Signalled(relay.kind));
        }
        let target =
            roster.iter().find(|p| *p.user_id == *relay.target_user_id).ok_or_else(|| {
                ApiError::new(
                    axum::http::StatusCode::NOT_FOUND,
                    "target_not_found",
                    "the target user is not in this call",
                )
            })?;
        let body = Some(&*relay.body);
        let (sdp, candidate) =
            if relay.kind == SignalKind::IceCandidate { (None, body) } else { (body, None) };
        let out = Relayed {
            session_id: &call.id,
            from_user_id: user_id,
            sdp,
            candidate,
            sdp_mid: relay.sdp_mid.as_deref(),
            sdp_m_line_index: relay.sdp_m_line_index.as_deref(),
        };
        target.socket.emit(relay.kind.event(), &out).map_err(|_| {
            ApiError::unavailable(
                "target_unreachable",
                "the target's connection is not accepting messages",
            )
        })?;
    }
    let metrics = &state.metrics.realtime;
    match relay.kind {
        SignalKind::Offer => metrics.relayed_offer.inc(),
        SignalKind::Answer => metrics.relayed_answer.inc(),
        SignalKind::IceCandidate => metrics.relayed_ice.inc(),
    };
    Ok(())
}

/// `mute_audio` / `mute_video {muted?}` (no `muted`: toggle), broadcast to the others.
pub fn mute(
    call: Option<Arc<CallHandle>>,
    user_id: &str,
    socket: &SocketRef,
    video: bool,
    muted: Option<bool>,
) -> Result<Value, ApiError> {
    let call = call.filter(|c| c.state() != CallState::Ended).ok_or_else(not_a_participant)?;
    let mut roster = call.roster_mut();
    let me = roster
        .iter_mut()
        .find(|p| p.socket.id == socket.id && &*p.user_id == user_id)
        .ok_or_else(not_a_participant)?;
    let flag = if video { &mut me.video_muted } else { &mut me.audio_muted };
    *flag = muted.unwrap_or(!*flag);
    let now = *flag;
    let event = if video { "mute_video" } else { "mute_audio" };
    let payload = json!({ "sessionId": &*call.id, "userId": user_id, "muted": now });
    for p in roster.iter().filter(|p| p.socket.id != socket.id) {
        let _ = p.socket.emit(event, &payload);
    }
    let field = if video { "videoMuted" } else { "audioMuted" };
    Ok(json!({ "sessionId": &*call.id, field: now }))
}
