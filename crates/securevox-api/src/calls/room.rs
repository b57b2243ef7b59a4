//! The room task: the one owner of a live call. It runs the state machine (K4), the ringing
//! (accept / decline / cancel / timeout), joins and leaves with a grace period for dropped
//! connections, the limits, and the durable record; everything else sends it [`Command`]s.

use crate::calls::handle::{CallHandle, Participant};
use crate::calls::CallDirectory;
use crate::error::ApiError;
use crate::realtime::requests::SignalKind;
use crate::realtime::user_room;
use crate::runtime_settings;
use crate::state::AppState;
use securevox_domain::call::{CallState, EndReason, Response};
use securevox_domain::{clock, Limits};
use serde_json::{json, Value};
use socketioxide::extract::SocketRef;
use socketioxide::socket::Sid;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::oneshot;

pub type Reply = oneshot::Sender<Result<Value, ApiError>>;

pub enum Command {
    /// Join the signaling room from `socket` (for an invitee this also accepts the call).
    /// `accept`: the client sent `call_accept`, which only invitees may.
    Join {
        user: Arc<str>,
        socket: SocketRef,
        accept: bool,
        reply: Reply,
    },
    Leave {
        user: Arc<str>,
        socket: Sid,
        reason: &'static str,
        reply: Option<Reply>,
    },
    /// `user`, whose socket dropped (in the grace period), leaves from another socket.
    LeaveDropped {
        user: Arc<str>,
        reply: Reply,
    },
    /// The socket a participant joined from disconnected: they have the grace period to return.
    SocketGone {
        user: Arc<str>,
        socket: Sid,
    },
    Decline {
        user: Arc<str>,
        reply: Reply,
    },
    Cancel {
        user: Arc<str>,
        reply: Reply,
    },
    /// A participant reports media flowing (`call_connected`).
    Connected {
        user: Arc<str>,
        reply: Reply,
    },
    /// An offer or answer was relayed (moves `pending → offered → answered`).
    Signalled(SignalKind),
    /// The server is stopping.
    Stop,
}

struct Invitee {
    user_id: Arc<str>,
    response: Option<Response>,
}

pub(crate) struct Room {
    handle: Arc<CallHandle>,
    state: AppState,
    directory: Arc<CallDirectory>,
    limits: Limits,
    invitees: Vec<Invitee>,
    /// Some invitee accepted.
    answered: bool,
    ring_deadline: Option<Instant>,
    /// Participants whose connection dropped, and when their grace period ends.
    grace: Vec<(Arc<str>, Instant)>,
    /// Since when the call has had fewer than two participants (K6 idle clean-up).
    lonely_since: Option<Instant>,
    ended: bool,
}

impl Room {
    pub(crate) fn new(
        handle: Arc<CallHandle>,
        state: AppState,
        directory: Arc<CallDirectory>,
        limits: Limits,
    ) -> Self {
        let invitees = handle.members[1..]
            .iter()
            .map(|id| Invitee { user_id: id.clone(), response: None })
            .collect();
        let now = Instant::now();
        let ring = Duration::from_secs(state.config.calls.ring_timeout_s);
        Self {
            handle,
            state,
            directory,
            limits,
            invitees,
            answered: false,
            ring_deadline: Some(now + ring),
            grace: Vec::new(),
            lonely_since: Some(now),
            ended: false,
        }
    }

    pub(crate) async fn run(mut self, mut commands: UnboundedReceiver<Command>) {
        while !self.ended {
            let deadline = self.next_deadline();
            tokio::select! {
                command = commands.recv() => match command {
                    Some(command) => self.handle(command).await,
                    None => self.end(EndReason::ServerStopped).await,
                },
                () = tokio::time::sleep_until(deadline.into()) => self.on_deadline().await,
            }
        }
        commands.close();
        while let Ok(command) = commands.try_recv() {
            let (Command::Join { reply, .. }
            | Command::Decline { reply, .. }
            | Command::Cancel { reply, .. }
            | Command::Connected { reply, .. }
            | Command::Leave { reply: Some(reply), .. }
            | Command::LeaveDropped { reply, .. }) = command
            else {
                continue;
            };
            let _ = reply.send(Err(crate::calls::handle::call_ended()));
        }
    }

    async fn handle(&mut self, command: Command) {
        match command {
            Command::Join { user, socket, accept, reply } => {
                let _ = reply.send(self.join(user, socket, accept).await);
            }
            Command::Leave { user, socket, reason, reply } => {
                let left = self.leave(&user, Some(socket), reason).await;
                if let Some(reply) = reply {
                    let _ = reply.send(Ok(json!({ "sessionId": &*self.handle.id, "left": left })));
                }
            }
            Command::LeaveDropped { user, reply } => {
                let dropped = self.grace.iter().any(|(u, _)| *u == user);
                self.grace.retain(|(u, _)| *u != user);
                let left = dropped && self.leave(&user, None, "left").await;
                let _ = reply.send(Ok(json!({ "sessionId": &*self.handle.id, "left": left })));
            }
            Command::SocketGone { user, socket } => self.socket_gone(user, socket).await,
            Command::Decline { user, reply } => {
                let _ = reply.send(self.decline(&user).await);
            }
            Command::Cancel { user, reply } => {
                let _ = reply.send(self.cancel(&user).await);
            }
            Command::Connected { user, reply } => {
                let _ = reply.send(self.connected(&user).await);
            }
            Command::Signalled(kind) => {
                // An answer also moves a call still `pending` (its offer was relayed outside
                // the room, e.g. before a rejoin); commands come in the order relays happened.
                let next = match (kind, self.handle.state()) {
                    (SignalKind::Offer, CallState::Pending) => CallState::Offered,
                    (SignalKind::Answer, CallState::Pending | CallState::Offered) => {
                        CallState::Answered
                    }
                    _ => return,
                };
                self.move_to(next).await;
            }
            Command::Stop => self.end(EndReason::ServerStopped).await,
        }
    }

    fn next_deadline(&self) -> Instant {
        let idle = Duration::from_secs(self.state.config.calls.idle_timeout_s);
        // Nothing due: look again after an idle period.
        let far = Instant::now() + idle;
        self.grace
            .iter()
            .map(|(_, at)| *at)
            .chain(self.ring_deadline)
            .chain(self.lonely_since.map(|since| since + idle))
            .fold(far, Instant::min)
    }

    async fn on_deadline(&mut self) {
        let now = Instant::now();
        if self.ring_deadline.is_some_and(|at| at <= now) {
            self.ring_deadline = None;
            self.handle.stop_ringing(None);
            if !self.answered {
                return self.end(EndReason::Timeout).await;
            }
            // Answered by someone: the invitees still ringing stop ringing.
            for invitee in self.invitees.iter().filter(|i| i.response.is_none()) {
                let payload = json!({ "sessionId": &*self.handle.id });
                self.state.realtime.emit_to_user(&invitee.user_id, "call_missed", &payload).await;
            }
        }
        let expired: Vec<Arc<str>> =
            self.grace.iter().filter(|(_, at)| *at <= now).map(|(u, _)| u.clone()).collect();
        for user in expired {
            self.grace.retain(|(u, _)| *u != user);
            self.leave(&user, None, "disconnected").await;
            if self.ended {
                return;
            }
        }
        let idle = Duration::from_secs(self.state.config.calls.idle_timeout_s);
        if self.lonely_since.is_some_and(|since| since + idle <= now) {
            self.end(EndReason::Idle).await;
        }
    }

    async fn join(
        &mut self,
        user: Arc<str>,
        socket: SocketRef,
        accept: bool,
    ) -> Result<Value, ApiError> {
        if !self.handle.is_member(&user) {
            return Err(not_a_participant());
        }
        let is_caller = user == self.handle.caller_id;
        if accept && is_caller {
            return Err(ApiError::forbidden(
                "forbidden",
                "the caller does not accept their own call",
            ));
        }
        // An admin may have changed the limits since the call started.
        if let Ok((limits, _)) =
            runtime_settings::limits(&self.state.store, &self.state.config).await
        {
            self.limits = limits;
        }
        let (joined, replaced) = {
            let mut roster = self.handle.roster_mut();
            if let Some(p) = roster.iter_mut().find(|p| p.user_id == user) {
                let old = std::mem::replace(&mut p.socket, socket.clone());
                (false, (old.id != socket.id).then_some(old))
            } else {
                let per_call = self.limits.max_participants_per_call;
                if per_call != 0 && roster.len() as u64 >= per_call {
                    return Err(ApiError::conflict(
                        "call_full",
                        format!("this call already has {per_call} participants"),
                    ));
                }
                let total = self.limits.max_call_participants_total;
                let live = &self.state.live.call_participants;
                if total != 0 && live.load(Ordering::Relaxed) >= total {
                    return Err(ApiError::forbidden(
                        "capacity_reached",
                        format!("the server has {total} call participants already"),
                    ));
                }
                live.fetch_add(1, Ordering::Relaxed);
                roster.push(Participant {
                    user_id: user.clone(),
                    socket: socket.clone(),
                    audio_muted: false,
                    video_muted: false,
                    joined_at: clock::now(),
                });
                (true, None)
            }
        };
        self.grace.retain(|(u, _)| *u != user);
        let id = self.handle.id.clone();
        if let Some(old) = replaced {
            let payload = json!({ "sessionId": &*id, "userId": &*user });
            let _ = old.emit("call_answered_elsewhere", &payload);
        }
        // The joiner hears `call_joined` before anything its joining sets off reaches it (an
        // offer from a caller told of the answer, for one).
        let welcome = json!({
            "sessionId": &*id,
            "userId": &*user,
            "callerId": &*self.handle.caller_id,
            "media": self.handle.media,
            "state": self.handle.state(),
            "participants": self.handle.participants(),
        });
        let _ = socket.emit("call_joined", &welcome);
        if !is_caller && self.response_of(&user).is_none() {
            self.accept(&user, &socket).await;
        }
        if joined {
            let payload = json!({ "sessionId": &*id, "userId": &*user });
            for p in self.handle.roster().iter().filter(|p| p.user_id != user) {
                let _ = p.socket.emit("participant_joined", &payload);
            }
            if let Err(e) = self.state.store.set_call_joined(&id, &user, clock::now()).await {
                tracing::error!(error = %e, call = %id, "recording a join failed");
            }
        }
        if self.handle.roster().len() >= 2 {
            self.lonely_since = None;
        }
        Ok(welcome)
    }

    fn response_of(&self, user: &str) -> Option<Response> {
        self.invitees.iter().find(|i| &*i.user_id == user).and_then(|i| i.response)
    }

    async fn accept(&mut self, user: &Arc<str>, socket: &SocketRef) {
        let Some(invitee) = self.invitees.iter_mut().find(|i| i.user_id == *user) else { return };
        invitee.response = Some(Response::Accepted);
        self.handle.stop_ringing(Some(user));
        let id = self.handle.id.clone();
        if !self.answered {
            self.answered = true;
            let setup = (clock::now() - self.handle.created_at).max(0) as f64;
            self.state.metrics.realtime.call_setup.observe(setup);
        }
        if self.invitees.iter().all(|i| i.response.is_some()) {
            self.ring_deadline = None;
        }
        let payload = json!({ "sessionId": &*id, "userId": &**user });
        // The user's other devices stop ringing; the caller learns who picked up.
        let _ = socket.to(user_room(user)).emit("call_answered_elsewhere", &payload).await;
        self.state.realtime.emit_to_user(&self.handle.caller_id, "call_accepted", &payload).await;
        if let Err(e) =
            self.state.store.set_call_response(&id, user, Response::Accepted, clock::now()).await
        {
            tracing::error!(error = %e, call = %id, "recording an answer failed");
        }
    }

    async fn decline(&mut self, user: &Arc<str>) -> Result<Value, ApiError> {
        if *user == self.handle.caller_id {
            return Err(ApiError::forbidden(
                "forbidden",
                "the caller cancels a call, not declines it",
            ));
        }
        let Some(invitee) = self.invitees.iter_mut().find(|i| i.user_id == *user) else {
            return Err(not_a_participant());
        };
        let id = self.handle.id.clone();
        match invitee.response {
            Some(Response::Accepted) => {
                return Err(invalid_state("you accepted this call; leave it instead"));
            }
            Some(Response::Declined) => return Ok(json!({ "sessionId": &*id })),
            None => invitee.response = Some(Response::Declined),
        }
        self.handle.stop_ringing(Some(user));
        if let Err(e) =
            self.state.store.set_call_response(&id, user, Response::Declined, clock::now()).await
        {
            tracing::error!(error = %e, call = %id, "recording a decline failed");
        }
        let payload = json!({ "sessionId": &*id, "userId": &**user });
        self.state.realtime.emit_to_user(&self.handle.caller_id, "call_declined", &payload).await;
        self.state.realtime.emit_to_user(user, "call_declined", &payload).await;
        let all_declined = self.invitees.iter().all(|i| i.response == Some(Response::Declined));
        if all_declined {
            self.end(EndReason::Declined).await;
        } else if self.invitees.iter().all(|i| i.response.is_some()) {
            self.ring_deadline = None;
        }
        Ok(json!({ "sessionId": &*id }))
    }

    async fn cancel(&mut self, user: &Arc<str>) -> Result<Value, ApiError> {
        if *user != self.handle.caller_id {
            return Err(ApiError::forbidden("forbidden", "only the caller can cancel a call"));
        }
        if self.answered {
            return Err(invalid_state("the call was answered; leave it instead"));
        }
        self.end(EndReason::Cancelled).await;
        Ok(json!({ "sessionId": &*self.handle.id }))
    }

    async fn connected(&mut self, user: &str) -> Result<Value, ApiError> {
        if !self.handle.roster().iter().any(|p| &*p.user_id == user) {
            return Err(not_a_participant());
        }
        match self.handle.state() {
            CallState::Answered => self.move_to(CallState::Connected).await,
            CallState::Connected => {}
            _ => return Err(invalid_state("the call has no answer yet")),
        }
        Ok(json!({ "sessionId": &*self.handle.id, "state": CallState::Connected }))
    }

    async fn socket_gone(&mut self, user: Arc<str>, socket: Sid) {
        let in_call =
            self.handle.roster().iter().any(|p| p.user_id == user && p.socket.id == socket);
        if !in_call {
            return;
        }
        let grace = Duration::from_secs(self.state.config.calls.rejoin_grace_s);
        if grace.is_zero() {
            self.leave(&user, Some(socket), "disconnected").await;
        } else {
            self.grace.retain(|(u, _)| *u != user);
            self.grace.push((user, Instant::now() + grace));
        }
    }

    /// Removes `user` (if `socket` is given, only when that is the socket they joined from).
    async fn leave(&mut self, user: &str, socket: Option<Sid>, reason: &'static str) -> bool {
        let remaining = {
            let mut roster = self.handle.roster_mut();
            let before = roster.len();
            roster.retain(|p| !(&*p.user_id == user && socket.is_none_or(|s| s == p.socket.id)));
            if roster.len() == before {
                return false;
            }
            roster.clone()
        };
        self.state.live.call_participants.fetch_sub(1, Ordering::Relaxed);
        let payload = json!({ "sessionId": &*self.handle.id, "userId": user, "reason": reason });
        for p in &remaining {
            let _ = p.socket.emit("participant_left", &payload);
        }
        if remaining.len() < 2 {
            self.lonely_since.get_or_insert_with(Instant::now);
        }
        let still_ringing =
            self.ring_deadline.is_some() && self.invitees.iter().any(|i| i.response.is_none());
        if remaining.is_empty() && !self.answered {
            self.end(EndReason::Abandoned).await;
        } else if self.answered && remaining.len() < 2 && !still_ringing {
            self.end(EndReason::Completed).await;
        }
        true
    }

    async fn move_to(&mut self, next: CallState) {
        let from = self.handle.state();
        if !from.can_become(next) {
            return;
        }
        self.handle.set_state(next);
        self.state.metrics.realtime.call_moved(Some(from.as_str()), Some(next.as_str()));
        if let Err(e) = self.state.store.set_call_state(&self.handle.id, next, clock::now()).await {
            tracing::error!(error = %e, call = %self.handle.id, "recording a call state failed");
        }
    }

    async fn end(&mut self, reason: EndReason) {
        if self.ended {
            return;
        }
        self.ended = true;
        self.handle.stop_ringing(None);
        let from = self.handle.state();
        self.handle.set_state(CallState::Ended);
        let metrics = &self.state.metrics.realtime;
        metrics.call_moved(Some(from.as_str()), None);
        metrics.call_ended(reason.as_str());
        let gone = std::mem::take(&mut *self.handle.roster_mut()).len() as u64;
        self.state.live.call_participants.fetch_sub(gone, Ordering::Relaxed);
        let id = self.handle.id.clone();
        if let Err(e) = self.state.store.end_call(&id, reason, None, clock::now()).await {
            tracing::error!(error = %e, call = %id, "recording the end of a call failed");
        }
        let payload = json!({ "sessionId": &*id, "reason": reason });
        for member in &self.handle.members {
            self.state.realtime.emit_to_user(member, "call_ended", &payload).await;
        }
        self.directory.remove(&id, &self.state);
        tracing::info!(call = %id, reason = reason.as_str(), "call ended");
    }
}

pub fn not_a_participant() -> ApiError {
    ApiError::forbidden("not_a_participant", "you are not a participant of this call")
}

pub fn invalid_state(message: &str) -> ApiError {
    ApiError::conflict("invalid_state", message)
}
