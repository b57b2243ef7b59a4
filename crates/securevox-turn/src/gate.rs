//! What every STUN message from a client passes before the protocol server sees it: the REST
//! credential check with expiry, the allocation quotas, and the peer policy. The protocol crate
//! has none of these hooks, so the gate answers refusals itself, signed with the same
//! long-term key the client used (RFC 8489 §9.2.4: a client drops unsigned errors other than
//! 400 and 401).

use crate::credentials::{self, CredentialError};
use crate::engine::Engine;
use crate::fastpath::Grant;
use crate::stats::bump;
use std::net::SocketAddr;
use turn_server_proto::api::TurnServerApi;
use turn_server_proto::types::attribute::{ChannelNumber, EvenPort, XorPeerAddress};
use turn_server_proto::types::message::{
    ALLOCATE, CHANNEL_BIND, CONNECT, CONNECTION_BIND, CREATE_PERMISSION, SEND,
};
use turn_server_proto::types::stun::attribute::{ErrorCode, Realm, Username, XorMappedAddress};
use turn_server_proto::types::stun::message::{
    IntegrityAlgorithm, LongTermKeyCredentials, Message, MessageClass, MessageIntegrityCredentials,
    MessageWriteVec, BINDING,
};
use turn_server_proto::types::stun::prelude::{
    Attribute, AttributeFromRaw, AttributeStaticType, MessageWrite, MessageWriteExt,
};

pub(crate) enum Verdict {
    /// Hand the message to the protocol server.
    Pass,
    /// Nothing to pass on: discarded (an indication that may not be relayed), or handled and
    /// answered here, now or later.
    Drop,
    /// Answer the client with these bytes instead.
    Reply(Vec<u8>),
}

impl Engine {
    pub(crate) fn gate(&mut self, idx: usize, from: SocketAddr, data: &[u8]) -> Verdict {
        let Ok(msg) = Message::from_bytes(data) else { return Verdict::Pass };
        let method = msg.method();
        if method == BINDING && msg.has_class(MessageClass::Request) {
            // Answered here: turn-server-proto 0.7.3 addresses its Binding response to the
            // listening socket instead of the client.
            if !self.may_answer_stranger(idx, from) {
                return Verdict::Drop;
            }
            bump(&self.stats.stun_bindings);
            return Verdict::Reply(binding_response(&msg, from));
        }
        if method == CONNECTION_BIND && msg.has_class(MessageClass::Request) {
            return self.connection_bind(idx, from, &msg);
        }
        if msg.has_class(MessageClass::Indication) {
            if method == SEND && self.refused_peer(&msg).is_some() {
                bump(&self.stats.refused_peers);
                return Verdict::Drop;
            }
            return Verdict::Pass;
        }
        if !msg.has_class(MessageClass::Request) {
            return Verdict::Pass;
        }
        // Without a username this is the first request of a client: the protocol server
        // challenges it with a realm and nonce.
        let Ok(username) = msg.attribute::<Username>() else {
            return self.challenge(idx, from);
        };
        let username = username.username().to_owned();
        let user = match credentials::check(&username, unix_now()) {
            Ok(user) => user,
            Err(error) => {
                bump(&self.stats.auth_failures);
                tracing::debug!(%from, username, %error, "TURN credentials refused");
                if !self.may_answer_stranger(idx, from) {
                    return Verdict::Drop;
                }
                return Verdict::Reply(self.unauthorized(&msg, error));
            }
        };
        let password = securevox_domain::turn::password_for(&self.settings.secret, &username);
        let key: MessageIntegrityCredentials = LongTermKeyCredentials::new(
            username.clone(),
            password.clone(),
            self.settings.realm.clone(),
        )
        .into();
        let Ok(algorithm) = msg.validate_integrity(&key) else {
            // Wrong password (or realm): the protocol server answers 401 as for any stranger.
            bump(&self.stats.auth_failures);
            return self.challenge(idx, from);
        };
        let listener = &mut self.listeners[idx];
        if listener.known_users.insert(username.clone()) {
            listener.server.add_user(username, password);
        }
        let refuse = |code: u16, reason: &str| {
            Verdict::Reply(signed_error(&msg, code, reason, &key, algorithm))
        };
        if method == ALLOCATE {
            if self.has_allocation(idx, from) {
                // RFC 8656 §7.2: the 5-tuple is in use. turn-server-proto would check the
                // username first and answer 441 to another user — which clients treat as
                // fatal, where 437 makes them retry from a new address (as with coturn).
                return refuse(ErrorCode::ALLOCATION_MISMATCH, "Allocation Mismatch");
            }
            // REQUESTED-TRANSPORT is the protocol server's: UDP, or TCP over a TCP or TLS
            // connection (400 over UDP, RFC 6062 §5.1); anything else gets 442.
            let quota = self.settings.user_quota;
            if quota > 0 && self.per_user.get(&user.user).copied().unwrap_or(0) >= quota {
                bump(&self.stats.quota_refusals);
                return refuse(ErrorCode::ALLOCATION_QUOTA_REACHED, "Allocation Quota Reached");
            }
            let total = self.settings.total_quota;
            if total > 0 && self.allocations() >= total {
                bump(&self.stats.quota_refusals);
                return refuse(ErrorCode::INSUFFICIENT_CAPACITY, "Insufficient Capacity");
            }
            let even = msg.attribute::<EvenPort>().is_ok();
            self.pending_users.insert((idx, from), (user.user, even));
        } else if method == CREATE_PERMISSION || method == CHANNEL_BIND {
            if let Err((code, reason)) = self.permit(idx, from, &msg, data) {
                return refuse(code, reason);
            }
        } else if method == CONNECT {
            return self.connect(idx, from, &msg, &key, algorithm);
        }
        Verdict::Pass
    }

    /// Checks the peers of a CreatePermission or ChannelBind request, and remembers what it
    /// will grant if the protocol server accepts it; the refusal otherwise.
    fn permit(
        &mut self,
        idx: usize,
        from: SocketAddr,
        msg: &Message<'_>,
        data: &[u8],
    ) -> Result<(), (u16, &'static str)> {
        if let Some(peer) = self.refused_peer(msg) {
            bump(&self.stats.refused_peers);
            tracing::debug!(%from, %peer, "TURN peer refused by policy");
            return Err((ErrorCode::FORBIDDEN, "Forbidden: peer address not allowed"));
        }
        let peers = peer_addresses(msg);
        let grant = if msg.method() == CHANNEL_BIND {
            let Some(peer) = peers.first().copied() else { return Ok(()) };
            if self.is_tcp_allocation(idx, from, peer) {
                return Err((
                    ErrorCode::BAD_REQUEST,
                    "Bad Request: no channels on a TCP allocation",
                ));
            }
            let Ok(number) = msg.attribute::<ChannelNumber>().map(|c| c.channel()) else {
                return Ok(());
            };
            Grant::Channel(number, peer)
        } else {
            Grant::Permissions(peers.iter().map(SocketAddr::ip).collect())
        };
        self.expect_grant(idx, from, data, grant);
        Ok(())
    }

    /// A request the protocol server will answer with a 401 challenge: passed on within the
    /// strangers' rate limit.
    fn challenge(&mut self, idx: usize, from: SocketAddr) -> Verdict {
        if self.may_answer_stranger(idx, from) {
            Verdict::Pass
        } else {
            Verdict::Drop
        }
    }

    /// Whether an answer to an unauthenticated request may go to `from`: always over TCP
    /// (its handshake proved the address), within the rate limit over UDP.
    pub(crate) fn may_answer_stranger(&mut self, idx: usize, from: SocketAddr) -> bool {
        if self.listeners[idx].udp.is_none()
            || self.strangers.allow(from.ip(), std::time::Instant::now())
        {
            return true;
        }
        bump(&self.stats.strangers_dropped);
        false
    }

    /// The first XOR-PEER-ADDRESS of `msg` the policy refuses.
    fn refused_peer(&self, msg: &Message<'_>) -> Option<SocketAddr> {
        peer_addresses(msg).into_iter().find(|addr| self.policy.check(addr.ip()).is_err())
    }

    pub(crate) fn unauthorized(&self, msg: &Message<'_>, error: CredentialError) -> Vec<u8> {
        let reason = match error {
            CredentialError::Expired => "Unauthorized: credentials expired",
            CredentialError::Malformed => "Unauthorized: not a TURN REST username",
        };
        let mut reply = Message::builder_error(msg, MessageWriteVec::with_capacity(128));
        if let Ok(code) = ErrorCode::new(ErrorCode::UNAUTHORIZED, reason) {
            let _ = reply.add_attribute(&code);
        }
        if let Ok(realm) = Realm::new(&self.settings.realm) {
            let _ = reply.add_attribute(&realm);
        }
        let _ = reply.add_fingerprint();
        reply.finish()
    }
}

/// Every XOR-PEER-ADDRESS of `msg` (CreatePermission may carry several).
pub(crate) fn peer_addresses(msg: &Message<'_>) -> Vec<SocketAddr> {
    let transaction = msg.transaction_id();
    msg.iter_attributes()
        .filter(|(_, raw)| raw.get_type() == XorPeerAddress::TYPE)
        .filter_map(|(_, raw)| XorPeerAddress::from_raw_ref(&raw).ok())
        .map(|attr| attr.addr(transaction))
        .collect()
}

/// A Binding success response: the client's reflexive address (RFC 8489 §7.3.1).
fn binding_response(msg: &Message<'_>, from: SocketAddr) -> Vec<u8> {
    let mut reply = Message::builder_success(msg, MessageWriteVec::with_capacity(64));
    let _ = reply.add_attribute(&XorMappedAddress::new(from, msg.transaction_id()));
    let _ = reply.add_fingerprint();
    reply.finish()
}

pub(crate) fn signed_error(
    msg: &Message<'_>,
    code: u16,
    reason: &str,
    key: &MessageIntegrityCredentials,
    algorithm: IntegrityAlgorithm,
) -> Vec<u8> {
    let mut reply = Message::builder_error(msg, MessageWriteVec::with_capacity(160));
    if let Ok(code) = ErrorCode::new(code, reason) {
        let _ = reply.add_attribute(&code);
    }
    let _ = reply.add_message_integrity(key, algorithm);
    let _ = reply.add_fingerprint();
    reply.finish()
}

pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
