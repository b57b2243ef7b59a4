//! The peer data connections of TCP allocations (RFC 6062), which turn-server-proto 0.7.3
//! leaves to its user (and whose own attempt at them times every Connect out at once, and
//! sends ConnectionAttempt as a request, which clients ignore).
//!
//! A Connect request opens one from the relayed address (active); a peer with a permission
//! that connects to the relayed address gets one announced in a ConnectionAttempt indication
//! (passive). Either waits, under its CONNECTION-ID, up to [`BIND_WITHIN`] for the client's
//! ConnectionBind on a new connection (`connection_bind`), which is then spliced to it
//! (`tcp_relay::splice`) until either side closes or the allocation goes.

use crate::engine::{lock, Engine};
use crate::gate::{peer_addresses, signed_error, Verdict};
use crate::stats::bump;
use crate::tcp_relay::{self, Bound, Caps};
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::AbortHandle;
use turn_server_proto::types::attribute::{ConnectionId, XorPeerAddress};
use turn_server_proto::types::message::{CONNECT, CONNECTION_ATTEMPT};
use turn_server_proto::types::stun::attribute::ErrorCode;
use turn_server_proto::types::stun::message::{
    IntegrityAlgorithm, Message, MessageClass, MessageIntegrityCredentials, MessageType,
    MessageWriteVec, TransactionId,
};
use turn_server_proto::types::stun::prelude::{MessageWrite, MessageWriteExt};

/// How long a peer data connection waits for its ConnectionBind (RFC 6062 §5.2, §5.3).
pub(crate) const BIND_WITHIN: Duration = Duration::from_secs(30);
/// Peer connections of one allocation at once, connecting, waiting or bound.
const PER_ALLOCATION: usize = 64;
/// Peer connections in all.
const IN_TOTAL: usize = 4096;

#[derive(Default)]
pub(crate) struct PeerConnections {
    /// TCP relays by advertised address.
    relays: HashMap<SocketAddr, TcpRelay>,
    /// Connects in flight, by relayed and peer address.
    connecting: HashMap<(SocketAddr, SocketAddr), Connecting>,
    /// Connections waiting for their ConnectionBind, by CONNECTION-ID.
    pub(crate) waiting: HashMap<u32, Waiting>,
    /// Bound connections, by CONNECTION-ID; dropping one stops its splice.
    spliced: HashMap<u32, Spliced>,
    /// Bound connections that their client data connection takes over next, by listener and
    /// client address.
    pub(crate) handovers: HashMap<(usize, SocketAddr), Bound>,
}

struct TcpRelay {
    /// The address the relay is bound at (the advertised one may be a NAT's).
    local: SocketAddr,
    caps: Arc<Caps>,
}

/// A Connect request waiting for its connection: what its answer needs.
struct Connecting {
    listener: usize,
    client: SocketAddr,
    transaction: TransactionId,
    key: MessageIntegrityCredentials,
    algorithm: IntegrityAlgorithm,
    task: AbortHandle,
}

pub(crate) struct Waiting {
    pub(crate) relayed: SocketAddr,
    peer: SocketAddr,
    stream: TcpStream,
    /// The listener of the allocation's control connection: the ConnectionBind comes there.
    pub(crate) listener: usize,
    /// The allocation's user: the ConnectionBind must be theirs.
    pub(crate) user: String,
    expires: Instant,
}

struct Spliced {
    relayed: SocketAddr,
    peer: SocketAddr,
    /// Dropping it stops the splice.
    _stop: oneshot::Sender<()>,
}

impl PeerConnections {
    fn count(&self) -> usize {
        self.connecting.len() + self.waiting.len() + self.spliced.len()
    }

    fn count_for(&self, relayed: SocketAddr) -> usize {
        self.connecting.keys().filter(|(r, _)| *r == relayed).count()
            + self.waiting.values().filter(|w| w.relayed == relayed).count()
            + self.spliced.values().filter(|s| s.relayed == relayed).count()
    }

    fn has_room(&self, relayed: SocketAddr) -> bool {
        self.count() < IN_TOTAL && self.count_for(relayed) < PER_ALLOCATION
    }

    /// Whether `relayed` has a connection with `peer`, in any state (RFC 6062 §5.2: 446).
    fn connected(&self, relayed: SocketAddr, peer: SocketAddr) -> bool {
        self.connecting.contains_key(&(relayed, peer))
            || self.waiting.values().any(|w| w.relayed == relayed && w.peer == peer)
            || self.spliced.values().any(|s| s.relayed == relayed && s.peer == peer)
    }

    /// A fresh CONNECTION-ID: random, so that one cannot be guessed from another.
    fn new_id(&self) -> u32 {
        loop {
            let id = rand::random::<u32>();
            if !self.waiting.contains_key(&id) && !self.spliced.contains_key(&id) {
                return id;
            }
        }
    }

    /// Moves a waiting connection to the spliced ones and leaves it for the client data
    /// connection of `handover` to take; false if no connection waits under `id`.
    pub(crate) fn bind(&mut self, id: u32, handover: (usize, SocketAddr)) -> bool {
        let Some(waiting) = self.waiting.remove(&id) else { return false };
        let Some(relay) = self.relays.get(&waiting.relayed) else { return false };
        let (stop, stopped) = oneshot::channel();
        let bound = Bound { id, peer: waiting.stream, caps: relay.caps.clone(), stop: stopped };
        self.handovers.insert(handover, bound);
        let spliced = Spliced { relayed: waiting.relayed, peer: waiting.peer, _stop: stop };
        self.spliced.insert(id, spliced);
        true
    }
}

impl Engine {
    /// Binds a TCP relay on `ip` and starts accepting peers on it: its advertised address, no
    /// UDP socket, and the accepting task.
    pub(crate) fn bind_tcp_relay(
        &mut self,
        ip: IpAddr,
    ) -> io::Result<(SocketAddr, Option<std::net::UdpSocket>, AbortHandle)> {
        let listener = tcp_relay::listen(ip, &self.settings.relay_ports, self.port_taken(ip))?;
        let local = listener.local_addr()?;
        let advertised = self.settings.advertised(local);
        let task = tokio::spawn(tcp_relay::accept(self.me.clone(), listener, advertised));
        let caps = Arc::new(Caps::new(self.settings.max_bps));
        self.peer_connections.relays.insert(advertised, TcpRelay { local, caps });
        Ok((advertised, None, task.abort_handle()))
    }

    /// Closes a TCP relay's connections: in flight, waiting and bound.
    pub(crate) fn close_tcp_relay(&mut self, relayed: SocketAddr) {
        let connections = &mut self.peer_connections;
        connections.relays.remove(&relayed);
        connections.connecting.retain(|(r, _), c| {
            if *r == relayed {
                c.task.abort();
            }
            *r != relayed
        });
        connections.waiting.retain(|_, w| w.relayed != relayed);
        connections.spliced.retain(|_, s| s.relayed != relayed);
        self.publish_peer_connections();
    }

    /// Whether the client's allocation for peers of `peer`'s family is a TCP one.
    pub(crate) fn is_tcp_allocation(
        &self,
        idx: usize,
        client: SocketAddr,
        peer: SocketAddr,
    ) -> bool {
        self.client_relays.get(&(idx, client)).is_some_and(|relays| {
            relays.iter().any(|r| {
                r.is_ipv6() == peer.is_ipv6() && self.peer_connections.relays.contains_key(r)
            })
        })
    }

    /// A Connect request, authenticated by the gate: refused at once, or answered when the
    /// connection to the peer succeeds or fails.
    pub(crate) fn connect(
        &mut self,
        idx: usize,
        client: SocketAddr,
        msg: &Message<'_>,
        key: &MessageIntegrityCredentials,
        algorithm: IntegrityAlgorithm,
    ) -> Verdict {
        let refuse = |code: u16, reason: &str| {
            Verdict::Reply(signed_error(msg, code, reason, key, algorithm))
        };
        let Some(peer) = peer_addresses(msg).first().copied() else {
            return refuse(ErrorCode::BAD_REQUEST, "Bad Request: no XOR-PEER-ADDRESS");
        };
        let Some(relays) = self.client_relays.get(&(idx, client)) else {
            return refuse(ErrorCode::ALLOCATION_MISMATCH, "Allocation Mismatch");
        };
        let Some(relayed) = relays.iter().copied().find(|r| r.is_ipv6() == peer.is_ipv6()) else {
            return refuse(ErrorCode::PEER_ADDRESS_FAMILY_MISMATCH, "Peer Address Family Mismatch");
        };
        let Some(local) = self.peer_connections.relays.get(&relayed).map(|r| r.local) else {
            return refuse(ErrorCode::BAD_REQUEST, "Bad Request: not a TCP allocation");
        };
        if self.policy.check(peer.ip()).is_err() {
            bump(&self.stats.refused_peers);
            tracing::debug!(%client, %peer, "TCP peer refused by policy");
            return refuse(ErrorCode::FORBIDDEN, "Forbidden: peer address not allowed");
        }
        if self.peer_connections.connected(relayed, peer) {
            return refuse(ErrorCode::CONNECTION_ALREADY_EXISTS, "Connection Already Exists");
        }
        if !self.peer_connections.has_room(relayed) {
            return refuse(ErrorCode::INSUFFICIENT_CAPACITY, "Insufficient Capacity");
        }
        let engine = self.me.clone();
        let task = tokio::spawn(async move {
            let result = tcp_relay::connect(local, peer).await;
            if let Some(engine) = engine.upgrade() {
                lock(&engine).on_connected(relayed, peer, result);
            }
        });
        let connecting = Connecting {
            listener: idx,
            client,
            transaction: msg.transaction_id(),
            key: key.clone(),
            algorithm,
            task: task.abort_handle(),
        };
        self.peer_connections.connecting.insert((relayed, peer), connecting);
        Verdict::Drop
    }

    /// A connection to a peer asked for by a Connect request succeeded or failed.
    fn on_connected(
        &mut self,
        relayed: SocketAddr,
        peer: SocketAddr,
        result: io::Result<TcpStream>,
    ) {
        // Gone when the allocation went meanwhile; the connection then closes here.
        let Some(connecting) = self.peer_connections.connecting.remove(&(relayed, peer)) else {
            return;
        };
        let Connecting { listener, client, transaction, key, algorithm, .. } = connecting;
        let reply = match result {
            Ok(stream) => {
                let id = self.wait_for_bind(relayed, peer, stream);
                answer(CONNECT, transaction, Ok(id), &key, algorithm)
            }
            Err(error) => {
                tracing::debug!(%relayed, %peer, %error, "TCP connection to a peer failed");
                answer(
                    CONNECT,
                    transaction,
                    Err(ErrorCode::CONNECTION_TIMEOUT_OR_FAILURE),
                    &key,
                    algorithm,
                )
            }
        };
        self.send_to_client(listener, client, &reply);
    }

    /// A peer connected to the relay advertised at `relayed`: announced to the client if it has
    /// a permission (RFC 6062 §5.3), closed otherwise.
    pub(crate) fn on_peer_connection(
        &mut self,
        relayed: SocketAddr,
        stream: TcpStream,
        peer: SocketAddr,
    ) {
        let Some(relay) = self.relays.get(&relayed) else { return };
        if !relay.routes.permitted(peer.ip(), std::time::Instant::now()) {
            return;
        }
        if self.policy.check(peer.ip()).is_err() {
            bump(&self.stats.refused_peers);
            return;
        }
        if !self.peer_connections.has_room(relayed) {
            return;
        }
        let (listener, client) = (relay.listener, relay.client);
        let id = self.wait_for_bind(relayed, peer, stream);
        let transaction = TransactionId::generate();
        let mut msg = Message::builder(
            MessageType::from_class_method(MessageClass::Indication, CONNECTION_ATTEMPT),
            transaction,
            MessageWriteVec::with_capacity(64),
        );
        let _ = msg.add_attribute(&XorPeerAddress::new(peer, transaction));
        let _ = msg.add_attribute(&ConnectionId::new(id));
        let _ = msg.add_fingerprint();
        self.send_to_client(listener, client, &msg.finish());
    }

    /// Holds a new peer data connection for its ConnectionBind; its CONNECTION-ID.
    fn wait_for_bind(&mut self, relayed: SocketAddr, peer: SocketAddr, stream: TcpStream) -> u32 {
        let user = self.relays.get(&relayed).map(|r| r.user.clone()).unwrap_or_default();
        let listener = self.relays.get(&relayed).map_or(0, |r| r.listener);
        let connections = &mut self.peer_connections;
        let id = connections.new_id();
        let expires = Instant::now() + BIND_WITHIN;
        connections.waiting.insert(id, Waiting { relayed, peer, stream, listener, user, expires });
        bump(&self.stats.peer_connections_opened);
        self.publish_peer_connections();
        tracing::debug!(%relayed, %peer, id, "peer data connection waits for its ConnectionBind");
        id
    }

    /// Closes the peer data connections nobody bound in time (RFC 6062 §5.2, §5.3).
    pub(crate) fn sweep_peer_connections(&mut self, now: Instant) {
        let before = self.peer_connections.waiting.len();
        self.peer_connections.waiting.retain(|_, w| w.expires > now);
        if self.peer_connections.waiting.len() != before {
            self.publish_peer_connections();
        }
    }

    /// A splice ended on its own (either side closed).
    pub(crate) fn on_splice_ended(&mut self, id: u32) {
        if self.peer_connections.spliced.remove(&id).is_some() {
            self.publish_peer_connections();
        }
    }

    pub(crate) fn publish_peer_connections(&self) {
        let open = self.peer_connections.waiting.len() + self.peer_connections.spliced.len();
        self.stats.peer_connections.store(open as u64, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A response to a request of `method` made from its transaction id alone (the request is long
/// gone): success with a CONNECTION-ID, or an error code; signed with the client's key.
pub(crate) fn answer(
    method: turn_server_proto::types::stun::message::Method,
    transaction: TransactionId,
    outcome: Result<u32, u16>,
    key: &MessageIntegrityCredentials,
    algorithm: IntegrityAlgorithm,
) -> Vec<u8> {
    let class = if outcome.is_ok() { MessageClass::Success } else { MessageClass::Error };
    let mut reply = Message::builder(
        MessageType::from_class_method(class, method),
        transaction,
        MessageWriteVec::with_capacity(96),
    );
    match outcome {
        Ok(id) => {
            let _ = reply.add_attribute(&ConnectionId::new(id));
        }
        Err(code) => {
            if let Ok(error) = ErrorCode::builder(code).build() {
                let _ = reply.add_attribute(&error);
            }
        }
    }
    let _ = reply.add_message_integrity(key, algorithm);
    let _ = reply.add_fingerprint();
    reply.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::TurnSettings;
    use tokio::io::AsyncReadExt;

    #[test]
    fn answers_carry_the_connection_id_or_the_error_signed() {
        let key: MessageIntegrityCredentials =
            turn_server_proto::types::stun::message::LongTermKeyCredentials::new(
                "1:alice".into(),
                "secret".into(),
                "securevox".into(),
            )
            .into();
        let transaction = TransactionId::generate();
        let ok = answer(CONNECT, transaction, Ok(7), &key, IntegrityAlgorithm::Sha1);
        let msg = Message::from_bytes(&ok).unwrap();
        assert!(msg.has_class(MessageClass::Success) && msg.has_method(CONNECT));
        assert_eq!(msg.transaction_id(), transaction);
        assert_eq!(msg.attribute::<ConnectionId>().unwrap().id(), 7);
        assert!(msg.validate_integrity(&key).is_ok());
        let failed = answer(CONNECT, transaction, Err(447), &key, IntegrityAlgorithm::Sha1);
        let msg = Message::from_bytes(&failed).unwrap();
        assert!(msg.has_class(MessageClass::Error));
        assert_eq!(msg.attribute::<ErrorCode>().unwrap().code(), 447);
        assert!(msg.validate_integrity(&key).is_ok());
    }

    #[tokio::test]
    async fn a_connection_nobody_binds_is_closed_after_30_s() {
        let engine = Engine::new(Arc::new(TurnSettings::for_tests()), Arc::default(), Vec::new());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut peer = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (accepted, from) = listener.accept().await.unwrap();
        let relayed = "127.0.0.1:40000".parse().unwrap();
        {
            let mut guard = lock(&engine);
            let start = Instant::now();
            let id = guard.wait_for_bind(relayed, from, accepted);
            guard.sweep_peer_connections(start + Duration::from_secs(29));
            assert!(guard.peer_connections.waiting.contains_key(&id), "still waiting at 29 s");
            assert_eq!(guard.stats.snapshot().peer_connections, 1);
            guard.sweep_peer_connections(start + BIND_WITHIN + Duration::from_secs(1));
            assert!(guard.peer_connections.waiting.is_empty());
            assert_eq!(guard.stats.snapshot().peer_connections, 0);
        }
        let mut buf = [0u8; 8];
        assert_eq!(peer.read(&mut buf).await.unwrap(), 0, "the peer sees it closed");
    }
}
