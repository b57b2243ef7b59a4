//! What the rest of the server holds of a live call: its fixed facts, a channel to its room
//! task, and the roster the room publishes. The relay path reads the roster directly — relaying
//! needs no decision from the room, only who is in it — so a relayed message never waits on the
//! room task.

use crate::calls::room::Command;
use crate::error::ApiError;
use securevox_domain::call::{CallState, Media};
use serde::Serialize;
use socketioxide::extract::SocketRef;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use tokio::sync::mpsc::UnboundedSender;

pub struct CallHandle {
    pub id: Arc<str>,
    pub caller_id: Arc<str>,
    pub caller_name: Arc<str>,
    pub media: Media,
    pub created_at: i64,
    /// The members: caller first, then the invitees.
    pub members: Vec<Arc<str>>,
    commands: UnboundedSender<Command>,
    state: AtomicU8,
    roster: RwLock<Vec<Participant>>,
    /// Invitees whose devices are ringing, so a device that connects meanwhile rings too.
    ringing: RwLock<Vec<Arc<str>>>,
}

/// A member who has joined the call's signaling room, with the socket they joined from.
#[derive(Clone)]
pub struct Participant {
    pub user_id: Arc<str>,
    pub socket: SocketRef,
    pub audio_muted: bool,
    pub video_muted: bool,
    pub joined_at: i64,
}

/// A participant as clients see it (`call_joined.participants`, stats).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantView {
    pub user_id: String,
    pub audio_muted: bool,
    pub video_muted: bool,
}

impl CallHandle {
    pub(crate) fn new(
        id: Arc<str>,
        caller_id: Arc<str>,
        caller_name: Arc<str>,
        members: Vec<Arc<str>>,
        media: Media,
        created_at: i64,
        commands: UnboundedSender<Command>,
    ) -> Self {
        let ringing = RwLock::new(members[1..].to_vec());
        Self {
            id,
            caller_id,
            caller_name,
            media,
            created_at,
            members,
            commands,
            state: AtomicU8::new(CallState::Pending as u8),
            roster: RwLock::new(Vec::new()),
            ringing,
        }
    }

    pub fn state(&self) -> CallState {
        CallState::ALL[usize::from(self.state.load(Ordering::Acquire))]
    }

    pub(crate) fn set_state(&self, state: CallState) {
        self.state.store(state as u8, Ordering::Release);
    }

    pub fn is_member(&self, user_id: &str) -> bool {
        self.members.iter().any(|m| &**m == user_id)
    }

    /// Sends a command to the room; fails once the call has ended and its room is gone.
    pub(crate) fn send(&self, command: Command) -> Result<(), ApiError> {
        self.commands.send(command).map_err(|_| call_ended())
    }

    pub(crate) fn roster(&self) -> RwLockReadGuard<'_, Vec<Participant>> {
        self.roster.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn roster_mut(&self) -> RwLockWriteGuard<'_, Vec<Participant>> {
        self.roster.write().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn is_ringing(&self, user_id: &str) -> bool {
        self.ringing.read().unwrap_or_else(PoisonError::into_inner).iter().any(|u| &**u == user_id)
    }

    /// Stops ringing `user_id` (`None`: everyone).
    pub(crate) fn stop_ringing(&self, user_id: Option<&str>) {
        let mut ringing = self.ringing.write().unwrap_or_else(PoisonError::into_inner);
        ringing.retain(|u| user_id.is_some_and(|id| &**u != id));
    }

    pub fn participants(&self) -> Vec<ParticipantView> {
        self.roster().iter().map(Participant::view).collect()
    }
}

impl Participant {
    pub fn view(&self) -> ParticipantView {
        ParticipantView {
            user_id: self.user_id.to_string(),
            audio_muted: self.audio_muted,
            video_muted: self.video_muted,
        }
    }
}

pub fn call_ended() -> ApiError {
    ApiError::conflict("invalid_state", "this call has ended")
}
