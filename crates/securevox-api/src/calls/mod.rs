//! Calls: starting a call and ringing its invitees, the live calls of this server (the
//! directory), each call's room task, and the signaling requests sockets make of them.

pub mod handle;
pub mod room;
pub mod signaling;

use crate::error::ApiError;
use crate::runtime_settings;
use crate::state::AppState;
use handle::CallHandle;
use room::Room;
use securevox_domain::call::{CallState, EndReason, Media};
use securevox_domain::clock;
use securevox_store::NewCall;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};

/// Most people one call can invite (the per-call participant limit usually bites first).
pub const MAX_INVITEES: usize = 16;

/// The live calls of this server.
#[derive(Default)]
pub struct CallDirectory {
    inner: Mutex<Directory>,
}

#[derive(Default)]
struct Directory {
    calls: HashMap<Arc<str>, Arc<CallHandle>>,
    /// Calls being created: they count against the limit before they are listed.
    starting: u64,
}

impl CallDirectory {
    fn lock(&self) -> std::sync::MutexGuard<'_, Directory> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn get(&self, id: &str) -> Option<Arc<CallHandle>> {
        self.lock().calls.get(id).cloned()
    }

    /// The live calls, oldest first.
    pub fn list(&self) -> Vec<Arc<CallHandle>> {
        let mut calls: Vec<_> = self.lock().calls.values().cloned().collect();
        calls.sort_by(|a, b| a.created_at.cmp(&b.created_at).then_with(|| a.id.cmp(&b.id)));
        calls
    }

    pub fn len(&self) -> u64 {
        self.lock().calls.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.lock().calls.is_empty()
    }

    /// Takes a slot for a new call if fewer than `limit` (0 = no limit) are live or starting.
    fn reserve(&self, limit: u64) -> bool {
        let mut inner = self.lock();
        if limit != 0 && inner.calls.len() as u64 + inner.starting >= limit {
            return false;
        }
        inner.starting += 1;
        true
    }

    fn release(&self) {
        self.lock().starting -= 1;
    }

    fn insert(&self, call: Arc<CallHandle>, state: &AppState) {
        let mut inner = self.lock();
        inner.starting -= 1;
        inner.calls.insert(call.id.clone(), call);
        state.live.active_calls.store(inner.calls.len() as u64, Ordering::Relaxed);
    }

    pub(crate) fn remove(&self, id: &str, state: &AppState) {
        let mut inner = self.lock();
        inner.calls.remove(id);
        state.live.active_calls.store(inner.calls.len() as u64, Ordering::Relaxed);
    }

    /// Ends every live call (server shutdown) and records the rest as stopped.
    pub async fn stop_all(&self, state: &AppState) {
        for call in self.list() {
            let _ = call.send(room::Command::Stop);
        }
        // Give the rooms a moment to tell their members and record the end themselves.
        for _ in 0..100 {
            if self.is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        // Calls whose room did not get to it (and any left by a crash) end here.
        if let Err(e) = state.store.end_live_calls(EndReason::ServerStopped, clock::now()).await {
            tracing::error!(error = %e, "ending live calls at shutdown failed");
        }
    }
}

/// `incoming_call`: what an invitee's devices show while ringing.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IncomingCall<'a> {
    pub session_id: &'a str,
    pub caller_id: &'a str,
    pub caller_name: &'a str,
    pub media: Media,
    pub invitees: &'a [Arc<str>],
    pub ring_timeout_s: u64,
}

/// Starts a call from `caller` to `invitees` and rings every device of every invitee.
pub async fn start(
    state: &AppState,
    caller_id: &str,
    caller_name: &str,
    invitees: Vec<String>,
    media: Media,
) -> Result<Arc<CallHandle>, ApiError> {
    let invitees = check_invitees(caller_id, invitees)?;
    let (limits, _) = runtime_settings::limits(&state.store, &state.config).await?;
    let per_call = limits.max_participants_per_call;
    if per_call != 0 && invitees.len() as u64 + 1 > per_call {
        return Err(ApiError::bad_request(
            "too_many_participants",
            format!("a call has at most {per_call} participants, the caller included"),
        ));
    }
    for id in &invitees {
        let user = state.store.user(id).await?;
        if user.is_none_or(|u| u.is_disabled()) {
            return Err(
                ApiError::not_found("invitee").with_details(serde_json::json!({ "userId": id }))
            );
        }
        crate::routes::contacts::ensure_not_blocked(state, caller_id, id).await?;
    }
    let directory = state.calls.clone();
    if !directory.reserve(limits.max_concurrent_calls) {
        return Err(ApiError::forbidden(
            "capacity_reached",
            format!("the server has {} calls in progress, its limit", limits.max_concurrent_calls),
        ));
    }
    let id = uuid::Uuid::now_v7().to_string();
    let created_at = clock::now();
    let new = NewCall { id: &id, caller_id, media, invitees: &invitees, created_at };
    if let Err(e) = state.store.create_call(&new).await {
        directory.release();
        return Err(e.into());
    }
    let members: Vec<Arc<str>> = std::iter::once(caller_id)
        .chain(invitees.iter().map(String::as_str))
        .map(Arc::from)
        .collect();
    let (commands, inbox) = tokio::sync::mpsc::unbounded_channel();
    let handle = Arc::new(CallHandle::new(
        id.into(),
        caller_id.into(),
        caller_name.into(),
        members,
        media,
        created_at,
        commands,
    ));
    let room = Room::new(handle.clone(), state.clone(), directory.clone(), limits);
    directory.insert(handle.clone(), state);
    state.metrics.realtime.call_moved(None, Some(CallState::Pending.as_str()));
    tokio::spawn(room.run(inbox));
    ring(state, &handle).await;
    tracing::info!(call = %handle.id, invitees = invitees.len(), "call started");
    Ok(handle)
}

/// Rings every connected device of `call`'s invitees.
async fn ring(state: &AppState, call: &CallHandle) {
    let payload = incoming_call(state, call);
    for invitee in &call.members[1..] {
        state.realtime.emit_to_user(invitee, "incoming_call", &payload).await;
    }
}

pub fn incoming_call<'a>(state: &AppState, call: &'a CallHandle) -> IncomingCall<'a> {
    IncomingCall {
        session_id: &call.id,
        caller_id: &call.caller_id,
        caller_name: &call.caller_name,
        media: call.media,
        invitees: &call.members[1..],
        ring_timeout_s: state.config.calls.ring_timeout_s,
    }
}

fn check_invitees(caller_id: &str, invitees: Vec<String>) -> Result<Vec<String>, ApiError> {
    let mut unique: Vec<String> = Vec::with_capacity(invitees.len());
    for id in invitees {
        if id.is_empty() || id.len() > 64 {
            return Err(ApiError::bad_request("invalid_invitees", "invitees must be user ids"));
        }
        if id == caller_id {
            return Err(ApiError::bad_request("invalid_invitees", "you cannot call yourself"));
        }
        if !unique.contains(&id) {
            unique.push(id);
        }
    }
    if unique.is_empty() {
        return Err(ApiError::bad_request("invalid_invitees", "invite at least one user"));
    }
    if unique.len() > MAX_INVITEES {
        return Err(ApiError::bad_request(
            "too_many_participants",
            format!("a call invites at most {MAX_INVITEES} users"),
        ));
    }
    Ok(unique)
}
