//! ConnectionBind (RFC 6062 §5.4): the first request on a client's new TCP connection, naming
//! a waiting peer data connection by its CONNECTION-ID. Authenticated with the credentials of
//! the allocation's user, it turns the connection from TURN messages into the raw bytes of
//! that peer (`listeners` hands it to `tcp_relay::splice`).
//!
//! The request does not reach the protocol server, which knows only the peer connections it
//! made itself; its nonce is not checked (the message integrity is, and a CONNECTION-ID is
//! bound once), so a client without one is sent a fresh nonce to sign with.

use crate::credentials;
use crate::engine::Engine;
use crate::gate::{signed_error, unix_now, Verdict};
use crate::stats::bump;
use crate::tcp_relay::Bound;
use std::net::SocketAddr;
use turn_server_proto::types::attribute::ConnectionId;
use turn_server_proto::types::stun::attribute::{ErrorCode, Nonce, Realm, Username};
use turn_server_proto::types::stun::message::{
    LongTermKeyCredentials, Message, MessageIntegrityCredentials, MessageWriteVec,
};
use turn_server_proto::types::stun::prelude::{MessageWrite, MessageWriteExt};

impl Engine {
    /// A ConnectionBind request from `from` on listener `idx`.
    pub(crate) fn connection_bind(
        &mut self,
        idx: usize,
        from: SocketAddr,
        msg: &Message<'_>,
    ) -> Verdict {
        if self.listeners[idx].udp.is_some() {
            if !self.may_answer_stranger(idx, from) {
                return Verdict::Drop;
            }
            return Verdict::Reply(unsigned_error(
                msg,
                ErrorCode::BAD_REQUEST,
                "Bad Request: ConnectionBind needs TCP",
            ));
        }
        if self.client_relays.contains_key(&(idx, from)) {
            return Verdict::Reply(unsigned_error(
                msg,
                ErrorCode::BAD_REQUEST,
                "Bad Request: a control connection cannot be bound",
            ));
        }
        let Ok(username) = msg.attribute::<Username>() else {
            return Verdict::Reply(self.bind_challenge(msg));
        };
        let username = username.username().to_owned();
        let user = match credentials::check(&username, unix_now()) {
            Ok(user) => user,
            Err(error) => {
                bump(&self.stats.auth_failures);
                return Verdict::Reply(self.unauthorized(msg, error));
            }
        };
        let password = securevox_domain::turn::password_for(&self.settings.secret, &username);
        let key: MessageIntegrityCredentials =
            LongTermKeyCredentials::new(username, password, self.settings.realm.clone()).into();
        let Ok(algorithm) = msg.validate_integrity(&key) else {
            bump(&self.stats.auth_failures);
            return Verdict::Reply(self.bind_challenge(msg));
        };
        let refuse = |code: u16, reason: &str| {
            Verdict::Reply(signed_error(msg, code, reason, &key, algorithm))
        };
        let Ok(id) = msg.attribute::<ConnectionId>().map(|c| c.id()) else {
            return refuse(ErrorCode::BAD_REQUEST, "Bad Request: no CONNECTION-ID");
        };
        match self.peer_connections.waiting.get(&id) {
            Some(waiting) if waiting.listener == idx => {
                if waiting.user != user.user {
                    return refuse(ErrorCode::WRONG_CREDENTIALS, "Wrong Credentials");
                }
            }
            _ => return refuse(ErrorCode::BAD_REQUEST, "Bad Request: unknown CONNECTION-ID"),
        }
        if !self.peer_connections.bind(id, (idx, from)) {
            return refuse(ErrorCode::BAD_REQUEST, "Bad Request: unknown CONNECTION-ID");
        }
        let mut reply = Message::builder_success(msg, MessageWriteVec::with_capacity(64));
        let _ = reply.add_message_integrity(&key, algorithm);
        let _ = reply.add_fingerprint();
        self.send_to_client(idx, from, &reply.finish());
        // The answer is the last TURN message on this connection: its writer ends once it is
        // out, and the connection's task takes over the stream (`take_handover`).
        self.tcp.remove(&(idx, from));
        tracing::debug!(%from, id, "client data connection bound");
        Verdict::Drop
    }

    /// The peer data connection that the connection of `client` on listener `idx` has just
    /// bound, if it has.
    pub(crate) fn take_handover(&mut self, idx: usize, client: SocketAddr) -> Option<Bound> {
        self.peer_connections.handovers.remove(&(idx, client))
    }

    /// 401 with the realm and a nonce to sign the next ConnectionBind with.
    fn bind_challenge(&self, msg: &Message<'_>) -> Vec<u8> {
        let nonce = format!("{:016x}", rand::random::<u64>());
        let mut reply = Message::builder_error(msg, MessageWriteVec::with_capacity(128));
        if let Ok(code) = ErrorCode::new(ErrorCode::UNAUTHORIZED, "Unauthorized") {
            let _ = reply.add_attribute(&code);
        }
        if let Ok(realm) = Realm::new(&self.settings.realm) {
            let _ = reply.add_attribute(&realm);
        }
        if let Ok(nonce) = Nonce::new(&nonce) {
            let _ = reply.add_attribute(&nonce);
        }
        let _ = reply.add_fingerprint();
        reply.finish()
    }
}

fn unsigned_error(msg: &Message<'_>, code: u16, reason: &str) -> Vec<u8> {
    let mut reply = Message::builder_error(msg, MessageWriteVec::with_capacity(96));
    if let Ok(code) = ErrorCode::new(code, reason) {
        let _ = reply.add_attribute(&code);
    }
    let _ = reply.add_fingerprint();
    reply.finish()
}
