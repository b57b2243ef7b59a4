//! The live connection: Socket.IO (protocol 5, Engine.IO 4) over a WebSocket, as much of it as
//! a SecureVox device needs — connect to the `/` namespace with `auth: {token, deviceId}`,
//! receive events, answer the server's pings. Reconnecting is the caller's choice (see
//! [`crate::Client::listen`]), and a reconnected device syncs from its cursor, so nothing is
//! lost while it was away.
//!
//! (The Socket.IO client crates of the field pull in OpenSSL through `native-tls` and a second
//! HTTP stack; the subset spoken here is small and tested against the real server.)

use crate::error::{Error, Result};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A connected, authenticated socket of one device.
pub struct Live {
    socket: Socket,
    /// What the server said on connecting (`authenticated`'s payload comes as an event).
    pub session: Value,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live").field("session", &self.session).finish_non_exhaustive()
    }
}

/// One event from the server: its name and its first argument.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub name: String,
    pub data: Value,
}

fn ws_error(e: &tokio_tungstenite::tungstenite::Error) -> Error {
    Error::other(format!("live connection: {e}"))
}

/// `http(s)://host[:port]` → the Socket.IO WebSocket URL on it.
fn socket_url(server: &str) -> Result<String> {
    let base = server.trim_end_matches('/');
    let ws = if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        return Err(Error::other(format!("not an http(s) URL: {server}")));
    };
    Ok(format!("{ws}/socket.io/?EIO=4&transport=websocket"))
}

impl Live {
    /// Connects to `server` as the holder of `token`, speaking for chat device `device_id`.
    /// A refused connection (bad token, not your device) is an error with the server's code.
    pub async fn connect(server: &str, token: &str, device_id: Option<&str>) -> Result<Self> {
        let (mut socket, _) = tokio_tungstenite::connect_async(socket_url(server)?)
            .await
            .map_err(|e| ws_error(&e))?;
        // Engine.IO's open packet ("0{…}"), then the namespace connect with the auth payload.
        match next_text(&mut socket).await? {
            Some(open) if open.starts_with('0') => {}
            other => return Err(Error::other(format!("unexpected Engine.IO opening: {other:?}"))),
        }
        let auth = json!({ "token": token, "deviceId": device_id });
        socket.send(Frame::text(format!("40{auth}"))).await.map_err(|e| ws_error(&e))?;
        let mut live = Self { socket, session: Value::Null };
        loop {
            let Some(packet) = next_text(&mut live.socket).await? else {
                return Err(Error::other("the server closed the live connection"));
            };
            if packet == "2" {
                live.pong().await?;
            } else if let Some(body) = packet.strip_prefix("40") {
                live.session = serde_json::from_str(body).unwrap_or(Value::Null);
                return Ok(live);
            } else if let Some(body) = packet.strip_prefix("44") {
                // connect_error: {"message": "<code>: <text>"}
                let message: Value = serde_json::from_str(body).unwrap_or(Value::Null);
                let text = message["message"].as_str().unwrap_or(body).to_owned();
                let code = text.split(':').next().unwrap_or("refused").trim().to_owned();
                return Err(Error::Api { status: 401, code, message: text, details: None });
            }
        }
    }

    async fn pong(&mut self) -> Result<()> {
        self.socket.send(Frame::text("3")).await.map_err(|e| ws_error(&e))
    }

    /// The next event, answering pings on the way; `None` when the connection ends.
    pub async fn next_event(&mut self) -> Result<Option<Event>> {
        loop {
            let Some(packet) = next_text(&mut self.socket).await? else { return Ok(None) };
            if packet == "2" {
                self.pong().await?;
                continue;
            }
            if packet.starts_with('1') || packet.starts_with("41") {
                return Ok(None); // Engine.IO close, or the server disconnected the socket
            }
            if let Some(body) = packet.strip_prefix("42") {
                let Ok(Value::Array(mut parts)) = serde_json::from_str::<Value>(body) else {
                    continue;
                };
                if parts.is_empty() {
                    continue;
                }
                let name = parts.remove(0);
                let data = if parts.is_empty() { Value::Null } else { parts.remove(0) };
                if let Value::String(name) = name {
                    return Ok(Some(Event { name, data }));
                }
            }
        }
    }

    /// Closes the connection.
    pub async fn close(mut self) {
        let _ = self.socket.send(Frame::text("41")).await;
        let _ = self.socket.close(None).await;
    }
}

async fn next_text(socket: &mut Socket) -> Result<Option<String>> {
    while let Some(frame) = socket.next().await {
        match frame.map_err(|e| ws_error(&e))? {
            Frame::Text(text) => return Ok(Some(text.as_str().to_owned())),
            Frame::Close(_) => return Ok(None),
            _ => {}
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::socket_url;

    #[test]
    fn socket_urls() {
        assert_eq!(
            socket_url("https://chat.example.org/").unwrap(),
            "wss://chat.example.org/socket.io/?EIO=4&transport=websocket"
        );
        assert_eq!(
            socket_url("http://127.0.0.1:8080").unwrap(),
            "ws://127.0.0.1:8080/socket.io/?EIO=4&transport=websocket"
        );
        assert!(socket_url("ftp://x").is_err());
    }
}
