//! One socket's session: who it is, which call it is in, and the order of its requests.
//!
//! Every event reaches [`Inbound::call`] synchronously, in arrival order. Requests that need
//! no await (relays, mute) run right there when nothing is queued; any other request marks the
//! connection busy and runs on a task that then drains what arrived meanwhile, one by one. So a
//! client's events are handled in the order it sent them, and the hot relay path costs no task.

use crate::calls::handle::CallHandle;
use crate::calls::room::Command;
use crate::calls::signaling;
use crate::error::ApiError;
use crate::realtime::identity::Identity;
use crate::realtime::presence::PresenceUpdate;
use crate::realtime::requests::{self, Request};
use crate::realtime::{device_room, user_room, ErrorPayload};
use crate::state::AppState;
use serde::Serialize;
use serde_json::{json, Value};
use socketioxide::adapter::LocalAdapter;
use socketioxide::extract::{AckSender, SocketRef};
use socketioxide::handler::{FromMessageParts, MessageHandler, Value as PacketValue};
use socketioxide::socket::Socket;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::task::AbortHandle;

/// Requests one socket may have waiting; more get `overloaded` (a client that floods).
const MAX_QUEUED: usize = 1024;

#[derive(Default)]
pub struct Connection {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    identity: Option<Identity>,
    call: Option<Arc<CallHandle>>,
    busy: bool,
    queue: VecDeque<(Request<'static>, AckSender)>,
    /// The task that disconnects the socket if it does not authenticate in time.
    auth_timer: Option<AbortHandle>,
}

#[derive(Serialize)]
struct Ok_ {
    ok: bool,
}

const OK: Ok_ = Ok_ { ok: true };

impl Connection {
    /// Sets a new socket up: its event handler, its disconnect handler, its session.
    pub fn open(state: &AppState, socket: &SocketRef) -> Arc<Self> {
        let connection = Arc::new(Self::default());
        socket.extensions.insert(connection.clone());
        socket.on_fallback(Inbound { connection: connection.clone(), state: state.clone() });
        let (closing, closing_state) = (connection.clone(), state.clone());
        socket.on_disconnect(move |socket: SocketRef| async move {
            closing.closed(&closing_state, &socket).await;
        });
        state.metrics.realtime.sockets.inc();
        connection
    }

    pub fn of(socket: &SocketRef) -> Option<Arc<Self>> {
        socket.extensions.get::<Arc<Self>>()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What an inline request needs: who is asking and the call they are in.
    fn context(&self) -> Option<(Arc<str>, Option<Arc<CallHandle>>)> {
        Self::context_of(&self.lock())
    }

    fn context_of(inner: &Inner) -> Option<(Arc<str>, Option<Arc<CallHandle>>)> {
        inner.identity.as_ref().map(|i| (i.user_id.clone(), inner.call.clone()))
    }

    pub fn is_authenticated(&self) -> bool {
        self.lock().identity.is_some()
    }

    pub fn identity(&self) -> Option<Identity> {
        self.lock().identity.clone()
    }

    pub fn call(&self) -> Option<Arc<CallHandle>> {
        self.lock().call.clone()
    }

    pub fn set_call(&self, call: Option<Arc<CallHandle>>) {
        self.lock().call = call;
    }

    pub fn take_call(&self) -> Option<Arc<CallHandle>> {
        self.lock().call.take()
    }

    /// Arms the authentication deadline: `timer` is stopped once the socket authenticates
    /// (a socket that authenticates at once then leaves no sleeping task behind).
    pub fn await_authentication(&self, timer: AbortHandle) {
        self.lock().auth_timer = Some(timer);
    }

    /// Makes the socket `identity`'s: joins its user and session rooms and counts it present.
    pub fn admit(&self, state: &AppState, socket: &SocketRef, identity: Identity) {
        socket.join(user_room(&identity.user_id));
        if let Some(session) = &identity.session_id {
            socket.join(format!("session:{session}"));
        }
        if let Some(device) = &identity.device_id {
            socket.join(device_room(device));
        }
        let came_online = state.realtime.presence.connected(&identity.user_id);
        state
            .live
            .connected_users
            .store(state.realtime.presence.connected_users(), Ordering::Relaxed);
        let timer = {
            let mut inner = self.lock();
            inner.identity = Some(identity);
            inner.auth_timer.take()
        };
        if let Some(timer) = timer {
            timer.abort();
        }
        if let Some(update) = came_online {
            let state = state.clone();
            tokio::spawn(async move { announce(&state, update).await });
        }
    }

    /// Tells a freshly authenticated socket who it is and which contacts are around.
    pub async fn greet(&self, state: &AppState, socket: &SocketRef) -> Value {
        let Some(identity) = self.identity() else { return Value::Null };
        let hello = hello(&identity);
        let _ = socket.emit("authenticated", &hello);
        match state.store.presence_audience(&identity.user_id).await {
            Ok(contacts) => {
                for contact in contacts {
                    if let Some(update) = state.realtime.presence.status(&contact) {
                        let _ = socket.emit("presence", &update);
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "loading contacts for presence failed"),
        }
        // A device that connects while a call for its user is ringing rings too.
        for call in state.calls.list().iter().filter(|c| c.is_ringing(&identity.user_id)) {
            let _ = socket.emit("incoming_call", &crate::calls::incoming_call(state, call));
        }
        hello
    }

    pub fn send_error(&self, socket: &SocketRef, e: &ApiError) {
        let _ = socket.emit("error", &ErrorPayload { code: e.code, message: &e.message });
    }

    fn fail(&self, state: &AppState, socket: &SocketRef, ack: AckSender, e: &ApiError) {
        state.metrics.realtime.signaling_error(e.code);
        self.send_error(socket, e);
        let body =
            json!({ "ok": false, "error": ErrorPayload { code: e.code, message: &e.message } });
        let _ = ack.send(&body);
    }

    fn submit(
        self: &Arc<Self>,
        state: &AppState,
        socket: SocketRef,
        request: Request<'_>,
        ack: AckSender,
    ) {
        let mut inner = self.lock();
        if inner.busy {
            if inner.queue.len() >= MAX_QUEUED {
                drop(inner);
                let e = ApiError::unavailable(
                    "overloaded",
                    "too many requests in flight on this connection",
                );
                return self.fail(state, &socket, ack, &e);
            }
            inner.queue.push_back((request.into_owned(), ack));
            return;
        }
        if request.is_inline() {
            let context = Self::context_of(&inner);
            drop(inner);
            return self.inline(state, &socket, context, &request, ack);
        }
        inner.busy = true;
        drop(inner);
        let request = request.into_owned();
        let (connection, state) = (self.clone(), state.clone());
        tokio::spawn(async move { connection.drain(state, socket, request, ack).await });
    }

    /// Runs `first`, then whatever queued up behind it, in order.
    async fn drain(
        self: Arc<Self>,
        state: AppState,
        socket: SocketRef,
        first: Request<'static>,
        ack: AckSender,
    ) {
        let mut next = Some((first, ack));
        while let Some((request, ack)) = next.take() {
            if request.is_inline() {
                let context = self.context();
                self.inline(&state, &socket, context, &request, ack);
            } else {
                match self.run(&state, &socket, request).await {
                    Ok(value) => {
                        let _ = ack.send(&with_ok(value));
                    }
                    Err(e) => self.fail(&state, &socket, ack, &e),
                }
            }
            let mut inner = self.lock();
            next = inner.queue.pop_front();
            if next.is_none() {
                inner.busy = false;
            }
        }
    }

    fn inline(
        &self,
        state: &AppState,
        socket: &SocketRef,
        context: Option<(Arc<str>, Option<Arc<CallHandle>>)>,
        request: &Request<'_>,
        ack: AckSender,
    ) {
        let Some((user_id, call)) = context else {
            return self.fail(state, socket, ack, &unauthenticated());
        };
        let result = match request {
            Request::Relay(relay) => {
                signaling::relay(state, call, &user_id, socket, relay).map(|()| None)
            }
            Request::Mute { video, muted } => {
                signaling::mute(call, &user_id, socket, *video, *muted).map(Some)
            }
            _ => Ok(None),
        };
        match result {
            Ok(None) => {
                let _ = ack.send(&OK);
            }
            Ok(Some(value)) => {
                let _ = ack.send(&with_ok(value));
            }
            Err(e) => self.fail(state, socket, ack, &e),
        }
    }

    async fn run(
        &self,
        state: &AppState,
        socket: &SocketRef,
        request: Request<'_>,
    ) -> Result<Value, ApiError> {
        if let Request::Authenticate { token, device_id } = request {
            return self.authenticate(state, socket, &token, device_id.as_deref()).await;
        }
        let identity = self.identity().ok_or_else(unauthenticated)?;
        match request {
            Request::JoinCall { session_id } => {
                let session_id =
                    session_id.or_else(|| identity.call_scope.as_deref().map(str::to_owned));
                let session_id = session_id
                    .ok_or_else(|| ApiError::bad_request("bad_request", "sessionId is required"))?;
                signaling::enter(state, self, socket, &identity, &session_id, false).await
            }
            Request::CallAccept { session_id } => {
                signaling::enter(state, self, socket, &identity, &session_id, true).await
            }
            Request::LeaveCall { session_id } => {
                signaling::leave(state, self, socket, &identity, session_id.as_deref()).await
            }
            Request::CallStart { invitees, media } => {
                signaling::start(state, self, socket, &identity, invitees, media).await
            }
            Request::CallDecline { session_id } => {
                signaling::respond(state, &identity, &session_id, |user, reply| Command::Decline {
                    user,
                    reply,
                })
                .await
            }
            Request::CallCancel { session_id } => {
                signaling::respond(state, &identity, &session_id, |user, reply| Command::Cancel {
                    user,
                    reply,
                })
                .await
            }
            Request::CallConnected { session_id } => {
                signaling::respond(state, &identity, &session_id, |user, reply| {
                    Command::Connected { user, reply }
                })
                .await
            }
            Request::SetPresence { away } => {
                if let Some(update) = state.realtime.presence.set_away(&identity.user_id, away) {
                    announce(state, update).await;
                }
                Ok(json!({ "status": if away { "away" } else { "online" } }))
            }
            Request::Authenticate { .. } | Request::Relay(_) | Request::Mute { .. } => {
                Ok(Value::Null)
            }
        }
    }

    async fn authenticate(
        &self,
        state: &AppState,
        socket: &SocketRef,
        token: &str,
        device_id: Option<&str>,
    ) -> Result<Value, ApiError> {
        let identity = Identity::from_token(state, token, device_id).await?;
        if let Some(current) = self.identity() {
            if current.user_id != identity.user_id {
                return Err(ApiError::conflict(
                    "already_authenticated",
                    "this connection belongs to another user; open a new one",
                ));
            }
            let hello = hello(&current);
            let _ = socket.emit("authenticated", &hello);
            return Ok(hello);
        }
        self.admit(state, socket, identity);
        Ok(self.greet(state, socket).await)
    }

    /// The socket went: presence, and a dropped participant gets the grace period.
    async fn closed(&self, state: &AppState, socket: &SocketRef) {
        state.metrics.realtime.sockets.dec();
        let (identity, call) = {
            let mut inner = self.lock();
            inner.queue.clear();
            if let Some(timer) = inner.auth_timer.take() {
                timer.abort();
            }
            (inner.identity.take(), inner.call.take())
        };
        let Some(identity) = identity else { return };
        if let Some(call) = call {
            let _ = call
                .send(Command::SocketGone { user: identity.user_id.clone(), socket: socket.id });
        }
        let went_offline = state.realtime.presence.disconnected(&identity.user_id);
        state
            .live
            .connected_users
            .store(state.realtime.presence.connected_users(), Ordering::Relaxed);
        if let Some(update) = went_offline {
            announce(state, update).await;
        }
    }
}

/// What `authenticated` tells a socket: its user, its call (per-call token) and its device.
fn hello(identity: &Identity) -> Value {
    json!({
        "userId": &*identity.user_id,
        "sessionId": identity.call_scope.as_deref(),
        "deviceId": identity.device_id.as_deref(),
    })
}

fn unauthenticated() -> ApiError {
    ApiError::unauthorized("unauthenticated", "authenticate first: send authenticate {token}")
}

fn with_ok(value: Value) -> Value {
    match value {
        Value::Object(mut map) => {
            map.insert("ok".into(), Value::Bool(true));
            Value::Object(map)
        }
        _ => json!({ "ok": true }),
    }
}

/// Sends a presence change to the user's contacts who are connected.
async fn announce(state: &AppState, update: PresenceUpdate) {
    let contacts = match state.store.presence_audience(&update.user_id).await {
        Ok(contacts) => contacts,
        // The server is stopping (its sockets close after the database): nobody to tell.
        Err(_) if state.store.is_closed() => return,
        Err(e) => return tracing::warn!(error = %e, "loading contacts for presence failed"),
    };
    for contact in contacts {
        if state.realtime.presence.status(&contact).is_some() {
            state.realtime.emit_to_user(&contact, "presence", &update).await;
        }
    }
}

/// The socket's one event handler: parses each event as it arrives and hands it on in order.
struct Inbound {
    connection: Arc<Connection>,
    state: AppState,
}

/// Marker for [`MessageHandler`]'s extractor tuple: this handler extracts by itself.
pub struct Raw;

impl MessageHandler<LocalAdapter, Raw> for Inbound {
    fn call(
        &self,
        socket: Arc<Socket<LocalAdapter>>,
        mut packet: PacketValue,
        ack_id: Option<i64>,
    ) {
        super::coalesce::note_event();
        let Ok(ack) = AckSender::from_message_parts(&socket, &mut packet, &ack_id);
        let socket = SocketRef::from(socket);
        let parsed = match &packet {
            PacketValue::Str(text, attachments) => {
                let has_binary = attachments.as_ref().is_some_and(|a| !a.is_empty());
                requests::parse(text.as_str(), has_binary)
            }
            PacketValue::Bytes(_) => {
                Err(ApiError::bad_request("bad_request", "binary packets are not accepted"))
            }
        };
        match parsed {
            Ok(request) => self.connection.submit(&self.state, socket, request, ack),
            Err(e) => self.connection.fail(&self.state, &socket, ack, &e),
        }
    }
}
