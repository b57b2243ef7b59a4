//! The live connection: Socket.IO v5 / Engine.IO v4 at `/socket.io/` (socketioxide).
//!
//! A socket authenticates with its access token in the handshake (`auth: {token}`) or, as the
//! seed's clients do, with an `authenticate {token}` event afterwards. Every socket of a user is
//! in the room `user:<id>` (ringing, presence, call endings reach all their devices) and in
//! `session:<id>` (revoking a session closes its sockets).
//!
//! socketioxide runs each event handler as its own task, which would reorder one client's
//! signaling. So one handler per socket (the fallback) takes every event synchronously, in the
//! order the connection delivered them, and [`connection::Connection`] keeps that order:
//! relays run inline, anything that awaits runs on a task that drains the socket's queue.

pub mod coalesce;
pub mod connection;
pub mod identity;
pub mod presence;
pub mod read_ahead;
pub mod requests;
mod signal_body;

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::Request;
use axum::http::header::SEC_WEBSOCKET_KEY;
use axum::http::{HeaderMap, HeaderValue, Uri};
use connection::Connection;
use identity::Identity;
use presence::PresenceTracker;
use serde::Serialize;
use socketioxide::extract::{SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::layer::SocketIoLayer;
use socketioxide::operators::BroadcastOperators;
use socketioxide::SocketIo;
use std::time::Duration;

/// Handles to the Socket.IO server, shared by HTTP handlers and call rooms.
pub struct Realtime {
    io: SocketIo,
    layer: SocketIoLayer,
    pub presence: PresenceTracker,
}

/// What an `error` event and a failed ack carry.
#[derive(Debug, Serialize)]
pub struct ErrorPayload<'a> {
    pub code: &'a str,
    pub message: &'a str,
}

impl Realtime {
    pub fn new(config: &crate::config::RealtimeConfig) -> Self {
        let (layer, io) = SocketIo::builder()
            .ping_interval(Duration::from_secs(config.ping_interval_s))
            .ping_timeout(Duration::from_secs(config.ping_timeout_s))
            .max_payload(config.max_payload_bytes)
            .max_buffer_size(1024)
            // Every idle connection keeps this buffer, so it is small: the connection reads
            // ahead (`read_ahead`), so a burst still costs one `recv`, and a bigger message
            // only a few more copies from what was read ahead.
            .ws_read_buffer_size(256)
            .build_layer();
        Self { io, layer, presence: PresenceTracker::default() }
    }

    pub fn layer(&self) -> SocketIoLayer {
        self.layer.clone()
    }

    /// Registers the `/` namespace. Its handlers hold the state, so [`Self::close`] must run at
    /// shutdown to let go of it.
    pub fn attach(&self, state: &AppState) {
        let admit_state = state.clone();
        let admit = move |socket: SocketRef, TryData(auth): TryData<HandshakeAuth>| {
            let state = admit_state.clone();
            async move { admit(state, socket, auth.ok()).await }
        };
        let greet_state = state.clone();
        let on_connect = move |socket: SocketRef| {
            let state = greet_state.clone();
            async move {
                if let Some(connection) = Connection::of(&socket) {
                    if connection.is_authenticated() {
                        connection.greet(&state, &socket).await;
                    }
                }
            }
        };
        self.io.ns("/", on_connect.with(admit));
    }

    /// Emits `event` to every connected device of `user_id`.
    pub async fn emit_to_user<T: Serialize + ?Sized>(&self, user_id: &str, event: &str, data: &T) {
        let Some(root) = self.root() else { return };
        if let Err(e) = root.to(user_room(user_id)).emit(event, data).await {
            tracing::debug!(error = %e, event, "emit to user failed");
        }
    }

    /// Emits `event` to every socket in room `name`; false when the room has none.
    pub async fn emit_to_room<T: Serialize + ?Sized>(
        &self,
        name: &str,
        event: &str,
        data: &T,
    ) -> bool {
        let Some(root) = self.root() else { return false };
        if root.clone().within(name.to_owned()).sockets().is_empty() {
            return false;
        }
        if let Err(e) = root.to(name.to_owned()).emit(event, data).await {
            tracing::debug!(error = %e, event, "emit to room failed");
        }
        true
    }

    /// Emits `event` to the sockets of `user_id` that are in none of `except` rooms.
    pub async fn emit_to_user_except<T: Serialize + ?Sized>(
        &self,
        user_id: &str,
        except: Vec<String>,
        event: &str,
        data: &T,
    ) {
        let Some(root) = self.root() else { return };
        if let Err(e) = root.to(user_room(user_id)).except(except).emit(event, data).await {
            tracing::debug!(error = %e, event, "emit to user failed");
        }
    }

    /// Closes every socket of a session (logout, revocation).
    pub async fn disconnect_session(&self, session_id: &str) {
        if let Some(root) = self.root() {
            let _ = root.within(format!("session:{session_id}")).disconnect().await;
        }
    }

    /// Closes every socket of a user except those of `keep_session` (password changed).
    pub async fn disconnect_user_except(&self, user_id: &str, keep_session: &str) {
        if let Some(root) = self.root() {
            let others = root.within(user_room(user_id)).except(format!("session:{keep_session}"));
            let _ = others.disconnect().await;
        }
    }

    /// Closes every socket of a user (account disabled or deleted).
    pub async fn disconnect_user(&self, user_id: &str) {
        if let Some(root) = self.root() {
            let _ = root.within(user_room(user_id)).disconnect().await;
        }
    }

    /// The `/` namespace; `None` before [`Self::attach`] and after [`Self::close`] (socketioxide's
    /// own shortcuts panic then).
    fn root(&self) -> Option<BroadcastOperators> {
        self.io.of("/")
    }

    /// Closes every socket and drops the namespace (and with it the handlers' state).
    pub async fn close(&self) {
        self.io.close().await;
        self.io.delete_ns("/");
    }
}

/// Engine.IO keeps each connection's upgrade request for the connection's lifetime. Its header
/// values and URI are slices of hyper's read buffer (16 KB), which would then stay allocated per
/// idle connection; copies of them let that buffer go. A WebSocket upgrade keeps only its
/// `Sec-WebSocket-Key`, which Engine.IO answers the upgrade from: nothing reads the other
/// headers later, and 10 000 idle connections would keep them all. (A polling request keeps its
/// headers: Engine.IO reads its `Content-Type`.)
pub async fn detach_upgrade_request(mut request: Request) -> Request {
    if request.uri().path().starts_with("/socket.io/") {
        let websocket = request
            .uri()
            .query()
            .is_some_and(|query| query.split('&').any(|pair| pair == "transport=websocket"));
        let copy = |value: &HeaderValue| {
            HeaderValue::from_bytes(value.as_bytes()).unwrap_or_else(|_| value.clone())
        };
        let headers: HeaderMap = if websocket {
            let key = request.headers().get(SEC_WEBSOCKET_KEY);
            key.map(|key| (SEC_WEBSOCKET_KEY, copy(key))).into_iter().collect()
        } else {
            request.headers().iter().map(|(name, value)| (name.clone(), copy(value))).collect()
        };
        *request.headers_mut() = headers;
        if let Ok(uri) = request.uri().to_string().parse::<Uri>() {
            *request.uri_mut() = uri;
        }
        // axum's router keeps a clone of the original URI (a slice of the same buffer) here.
        request.extensions_mut().remove::<axum::extract::OriginalUri>();
    }
    request
}

pub fn user_room(user_id: &str) -> String {
    format!("user:{user_id}")
}

/// The device room: sockets that speak for one chat device.
pub fn device_room(device_id: &str) -> String {
    format!("device:{device_id}")
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct HandshakeAuth {
    token: Option<String>,
    device_id: Option<String>,
}

/// Connect middleware: runs before the client learns it is connected, so the event handler is
/// in place before its first event can arrive. A token in the handshake must be valid.
async fn admit(
    state: AppState,
    socket: SocketRef,
    auth: Option<HandshakeAuth>,
) -> Result<(), String> {
    let (token, device_id) = auth.map_or((None, None), |a| (a.token, a.device_id));
    let identity = match token {
        Some(token) => Some(
            Identity::from_token(&state, &token, device_id.as_deref())
                .await
                .map_err(|e| refusal(&e))?,
        ),
        None => None,
    };
    let connection = Connection::open(&state, &socket);
    if let Some(identity) = identity {
        connection.admit(&state, &socket, identity);
    } else {
        let (socket, waiting) = (socket.clone(), connection.clone());
        let timeout = Duration::from_secs(state.config.realtime.auth_timeout_s);
        let timer = tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            if !waiting.is_authenticated() && socket.connected() {
                waiting.send_error(
                    &socket,
                    &ApiError::unauthorized("auth_timeout", "authenticate within the time limit"),
                );
                let _ = socket.disconnect();
            }
        });
        // No event can come before this middleware returns, so the timer is known before any
        // `authenticate` can stop it.
        connection.await_authentication(timer.abort_handle());
    }
    Ok(())
}

/// The refusal text a client sees as `connect_error.message`: `<code>: <message>`.
fn refusal(e: &ApiError) -> String {
    format!("{}: {}", e.code, e.message)
}
