//! The one owner of TURN state: a `turn-server-proto` server per listening socket, the relay
//! sockets, the TCP client connections, the peer connections of TCP relays, and the quotas. IO
//! tasks hand it packets under a mutex; it never awaits, and it sends with `try_send` (a UDP
//! packet that cannot be sent now is dropped, as the network would drop it).

use crate::bandwidth::TokenBucket;
use crate::fastpath::{self, Grant, Routes};
use crate::peers::PeerPolicy;
use crate::settings::TurnSettings;
use crate::stats::{add, bump, TurnStats};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use turn_server_proto::api::{
    DelayedMessageOrChannelSend, SocketAllocateError, TcpConnectError, TurnServerApi,
    TurnServerPollRet,
};
use turn_server_proto::server::TurnServer;
use turn_server_proto::stun::agent::Transmit;
use turn_server_proto::types::prelude::DelayedTransmitBuild;
use turn_server_proto::types::transmit::TransmitBuild;
use turn_server_proto::types::{AddressFamily, Instant, TransportType};

pub(crate) type Shared = Arc<Mutex<Engine>>;

/// Locks the engine; a panic elsewhere does not make the state unusable (every method leaves
/// it consistent between statements that can panic).
pub(crate) fn lock(shared: &Mutex<Engine>) -> MutexGuard<'_, Engine> {
    shared.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A listening socket and the protocol server that answers on it.
pub(crate) struct Listener {
    pub server: TurnServer,
    pub transport: TransportType,
    pub addr: SocketAddr,
    pub udp: Option<Arc<UdpSocket>>,
    /// A plain clone of `udp` to send with (see `relay::bind`).
    pub udp_out: Option<std::net::UdpSocket>,
    /// Usernames already handed to `server` (its table only grows; see credentials.rs).
    pub known_users: HashSet<String>,
}

/// A relayed transport address and the socket behind it.
pub(crate) struct Relay {
    /// What the engine sends with; the relay's task reads the tokio twin. `None` for a TCP
    /// relay (RFC 6062), whose peers have connections of their own (`peer_connections`).
    out: Option<std::net::UdpSocket>,
    pub(crate) listener: usize,
    pub(crate) client: SocketAddr,
    pub(crate) user: String,
    to_peers: TokenBucket,
    to_client: TokenBucket,
    /// The task reading the UDP socket, or accepting on the TCP one.
    task: AbortHandle,
    /// Channels and permissions granted to it, for the data plane's shortcut.
    pub(crate) routes: Routes,
}

pub(crate) struct Engine {
    started: std::time::Instant,
    pub(crate) settings: Arc<TurnSettings>,
    pub(crate) policy: PeerPolicy,
    pub(crate) stats: Arc<TurnStats>,
    pub(crate) listeners: Vec<Listener>,
    pub(crate) relays: HashMap<SocketAddr, Relay>,
    /// Relayed addresses whose relay we closed (its TCP client went away) while the protocol
    /// server still holds the allocation until it expires: not reused until then.
    zombies: HashSet<SocketAddr>,
    pub(crate) tcp: HashMap<(usize, SocketAddr), mpsc::Sender<Vec<u8>>>,
    pub(crate) per_user: HashMap<String, usize>,
    /// The user of an authenticated Allocate on its way to the protocol server.
    /// (and whether it asked for an even port, EVEN-PORT: RTP's port before RTCP's).
    pub(crate) pending_users: HashMap<(usize, SocketAddr), (String, bool)>,
    /// The relays of each client (two for a dual-stack allocation).
    pub(crate) client_relays: HashMap<(usize, SocketAddr), Vec<SocketAddr>>,
    pub(crate) peer_connections: crate::peer_connections::PeerConnections,
    /// CreatePermission and ChannelBind requests passed to the protocol server, by
    /// transaction id, until their response leaves.
    pending_grants: HashMap<[u8; 12], (usize, SocketAddr, Grant)>,
    relay_ips: [Option<std::net::IpAddr>; 2],
    /// The rate limit on answers to unauthenticated UDP requests.
    pub(crate) strangers: crate::strangers::Strangers,
    pub(crate) last_housekeeping: std::time::Instant,
    scratch: Vec<u8>,
    pub(crate) me: Weak<Mutex<Engine>>,
}

impl Engine {
    pub(crate) fn new(
        settings: Arc<TurnSettings>,
        stats: Arc<TurnStats>,
        listeners: Vec<Listener>,
    ) -> Shared {
        let relay_ips = [settings.relay_ip(false), settings.relay_ip(true)];
        let policy = settings.peer_policy();
        Arc::new_cyclic(|me| {
            Mutex::new(Self {
                started: std::time::Instant::now(),
                settings,
                policy,
                stats,
                listeners,
                relays: HashMap::new(),
                zombies: HashSet::new(),
                tcp: HashMap::new(),
                per_user: HashMap::new(),
                pending_users: HashMap::new(),
                client_relays: HashMap::new(),
                peer_connections: crate::peer_connections::PeerConnections::default(),
                pending_grants: HashMap::new(),
                relay_ips,
                strangers: crate::strangers::Strangers::default(),
                last_housekeeping: std::time::Instant::now(),
                scratch: vec![0; 70_000],
                me: me.clone(),
            })
        })
    }

    pub(crate) fn now(&self) -> Instant {
        Instant::from_nanos(self.started.elapsed().as_nanos() as i64)
    }

    /// Converts a protocol deadline to a tokio one.
    pub(crate) fn deadline(&self, at: Instant) -> tokio::time::Instant {
        let wait = at.saturating_duration_since(self.now());
        tokio::time::Instant::now() + wait
    }

    pub(crate) fn relay_ips(&self) -> [Option<std::net::IpAddr>; 2] {
        self.relay_ips
    }

    /// A packet (UDP datagram or framed TCP message) from a client on listener `idx`.
    pub(crate) fn on_client_packet(&mut self, idx: usize, from: SocketAddr, data: &[u8]) {
        let is_stun = data.first().is_some_and(|b| b & 0xc0 == 0);
        if !is_stun && self.relay_to_peer(idx, from, data) {
            return;
        }
        if is_stun {
            match self.gate(idx, from, data) {
                crate::gate::Verdict::Pass => {}
                crate::gate::Verdict::Drop => return,
                crate::gate::Verdict::Reply(bytes) => {
                    self.send_to_client(idx, from, &bytes);
                    return;
                }
            }
        }
        let now = self.now();
        let listener = &mut self.listeners[idx];
        let transmit = Transmit::new(data, listener.transport, from, listener.addr);
        if let Some(out) = listener.server.recv(transmit, now) {
            self.dispatch(out);
        }
        if is_stun {
            self.poll_listener(idx);
        } else {
            self.drain_transmits(idx);
        }
    }

    /// A datagram from a peer to the relay advertised at `relayed`.
    pub(crate) fn on_peer_packet(&mut self, relayed: SocketAddr, from: SocketAddr, data: &[u8]) {
        let Some(relay) = self.relays.get_mut(&relayed) else { return };
        if !relay.to_client.take_now(data.len()) {
            bump(&self.stats.throttled_packets);
            return;
        }
        let idx = relay.listener;
        if let Some(number) = relay.routes.channel_to(from, std::time::Instant::now()) {
            let client = relay.client;
            let mut frame = std::mem::take(&mut self.scratch);
            frame.clear();
            frame.extend_from_slice(&number.to_be_bytes());
            frame.extend_from_slice(&(data.len() as u16).to_be_bytes());
            frame.extend_from_slice(data);
            bump(&self.stats.packets_to_clients);
            add(&self.stats.bytes_to_clients, data.len());
            self.send_to_client(idx, client, &frame);
            self.scratch = frame;
            return;
        }
        let now = self.now();
        let transmit = Transmit::new(data, TransportType::Udp, from, relayed);
        if let Some(out) = self.listeners[idx].server.recv(transmit, now) {
            bump(&self.stats.packets_to_clients);
            add(&self.stats.bytes_to_clients, data.len());
            self.dispatch(out);
        }
    }

    /// A TCP client connection ended: its allocations go with it (RFC 8656 §3.1).
    pub(crate) fn on_tcp_closed(&mut self, idx: usize, client: SocketAddr) {
        self.tcp.remove(&(idx, client));
        self.pending_users.remove(&(idx, client));
        let now = self.now();
        let listener = &mut self.listeners[idx];
        let _ = listener
            .server
            .recv(Transmit::new(&[][..], TransportType::Tcp, client, listener.addr), now);
        let gone: Vec<SocketAddr> = self
            .relays
            .iter()
            .filter(|(_, r)| r.listener == idx && r.client == client)
            .map(|(addr, _)| *addr)
            .collect();
        for addr in gone {
            self.close_relay(addr);
            self.zombies.insert(addr);
        }
    }

    pub(crate) fn register_tcp(
        &mut self,
        idx: usize,
        client: SocketAddr,
        tx: mpsc::Sender<Vec<u8>>,
    ) {
        self.tcp.insert((idx, client), tx);
    }

    pub(crate) fn tcp_connections(&self) -> usize {
        self.tcp.len()
    }

    pub(crate) fn has_allocation(&self, idx: usize, client: SocketAddr) -> bool {
        self.relays.values().any(|r| r.listener == idx && r.client == client)
    }

    /// Whether listener `idx` holds any allocation, live, on its way or expiring.
    pub(crate) fn listener_busy(&self, idx: usize) -> bool {
        !self.zombies.is_empty()
            || self.client_relays.keys().any(|(i, _)| *i == idx)
            || self.pending_users.keys().any(|(i, _)| *i == idx)
    }

    pub(crate) fn allocations(&self) -> usize {
        self.relays.len()
    }

    /// ChannelData from a client on a channel the protocol server granted: straight to the
    /// peer. False when the shortcut does not know it (the protocol server decides then).
    fn relay_to_peer(&mut self, idx: usize, client: SocketAddr, data: &[u8]) -> bool {
        let Some((number, payload)) = fastpath::channel_data(data) else { return false };
        let Some(relays) = self.client_relays.get(&(idx, client)) else { return false };
        let now = std::time::Instant::now();
        let Some((relay, peer)) = relays.iter().find_map(|addr| {
            let peer = self.relays.get(addr)?.routes.peer_of(number, now)?;
            Some((*addr, peer))
        }) else {
            return false;
        };
        let Some(relay) = self.relays.get_mut(&relay) else { return false };
        if self.policy.check(peer.ip()).is_err() {
            bump(&self.stats.refused_peers);
        } else if !relay.to_peers.take_now(payload.len()) {
            bump(&self.stats.throttled_packets);
        } else if let Some(out) = &relay.out {
            bump(&self.stats.packets_to_peers);
            add(&self.stats.bytes_to_peers, payload.len());
            let _ = out.send_to(payload, peer);
        }
        true
    }

    /// Remembers what a CreatePermission or ChannelBind request will grant if it succeeds.
    pub(crate) fn expect_grant(
        &mut self,
        idx: usize,
        client: SocketAddr,
        data: &[u8],
        grant: Grant,
    ) {
        // Requests the protocol server never answers must not pile up.
        if self.pending_grants.len() >= 10_000 {
            self.pending_grants.clear();
        }
        let mut transaction = [0; 12];
        transaction.copy_from_slice(&data[8..20]);
        self.pending_grants.insert(transaction, (idx, client, grant));
    }

    fn settle_grant(&mut self, transaction: [u8; 12], success: bool) {
        let Some((idx, client, grant)) = self.pending_grants.remove(&transaction) else { return };
        if !success {
            return;
        }
        let v6 = match &grant {
            Grant::Permissions(ips) => ips.first().is_some_and(std::net::IpAddr::is_ipv6),
            Grant::Channel(_, peer) => peer.is_ipv6(),
        };
        let now = std::time::Instant::now();
        let Some(relays) = self.client_relays.get(&(idx, client)) else { return };
        if let Some(relay) =
            relays.iter().find(|a| a.is_ipv6() == v6).and_then(|addr| self.relays.get_mut(addr))
        {
            relay.routes.apply(&grant, now);
        }
    }

    fn dispatch(&mut self, out: TransmitBuild<DelayedMessageOrChannelSend<&[u8]>>) {
        if matches!(out.data, DelayedMessageOrChannelSend::Message(_)) {
            // turn-types 0.7.3 writes every delayed indication as a Send indication in
            // `write_into`; `build` makes the Data indication a client expects. (Bulk data
            // goes over channels, so this allocation is off the hot path.)
            let transmit = out.build();
            self.route(transmit.transport, transmit.from, transmit.to, &transmit.data);
            return;
        }
        let len = out.data.len();
        let mut scratch = std::mem::take(&mut self.scratch);
        if scratch.len() < len {
            scratch.resize(len, 0);
        }
        let transmit = out.write_into(&mut scratch[..len]);
        self.route(transmit.transport, transmit.from, transmit.to, transmit.data);
        self.scratch = scratch;
    }

    /// Sends what the protocol server produced: from a relayed address to a peer, or from a
    /// listening address to a client.
    fn route(&mut self, transport: TransportType, from: SocketAddr, to: SocketAddr, bytes: &[u8]) {
        if let Some(relay) = self.relays.get_mut(&from) {
            // A Send indication on a TCP relay: discarded (RFC 6062 §5.1).
            let Some(out) = &relay.out else { return };
            if self.policy.check(to.ip()).is_err() {
                bump(&self.stats.refused_peers);
                return;
            }
            if !relay.to_peers.take_now(bytes.len()) {
                bump(&self.stats.throttled_packets);
                return;
            }
            bump(&self.stats.packets_to_peers);
            add(&self.stats.bytes_to_peers, bytes.len());
            let _ = out.send_to(bytes, to);
            return;
        }
        if let Some(idx) =
            self.listeners.iter().position(|l| l.transport == transport && l.addr == from)
        {
            if let Some((success, transaction)) = fastpath::grant_response(bytes) {
                self.settle_grant(transaction, success);
            }
            self.send_to_client(idx, to, bytes);
        }
    }

    pub(crate) fn send_to_client(&mut self, idx: usize, to: SocketAddr, bytes: &[u8]) {
        let listener = &self.listeners[idx];
        if let Some(udp) = &listener.udp_out {
            let _ = udp.send_to(bytes, to);
            return;
        }
        let Some(tx) = self.tcp.get(&(idx, to)) else { return };
        let mut frame = bytes.to_vec();
        // ChannelData over a stream is padded to a multiple of four (RFC 8656 §12.5).
        if bytes.first().is_some_and(|b| b & 0xc0 == 0x40) {
            frame.resize(bytes.len().next_multiple_of(4), 0);
        }
        if tx.try_send(frame).is_err() {
            // A client that does not read its stream loses it rather than our memory.
            self.tcp.remove(&(idx, to));
        }
    }

    fn drain_transmits(&mut self, idx: usize) {
        let now = self.now();
        while let Some(transmit) = self.listeners[idx].server.poll_transmit(now) {
            self.route(transmit.transport, transmit.from, transmit.to, &transmit.data);
        }
    }

    /// Runs the protocol server's timers and requests; returns when it next wants a poll.
    pub(crate) fn poll_listener(&mut self, idx: usize) -> Instant {
        let now = self.now();
        // Each step answers one request of the server; the bound only guards against a loop.
        for _ in 0..10_000 {
            match self.listeners[idx].server.poll(now) {
                TurnServerPollRet::WaitUntil(at) => {
                    self.drain_transmits(idx);
                    return at;
                }
                TurnServerPollRet::AllocateSocket {
                    transport,
                    listen_addr,
                    client_addr,
                    allocation_transport,
                    family,
                } => {
                    let (user, even) =
                        self.pending_users.remove(&(idx, client_addr)).unwrap_or_default();
                    let result =
                        self.open_relay(idx, client_addr, user, even, allocation_transport, family);
                    self.listeners[idx].server.allocated_socket(
                        transport,
                        listen_addr,
                        client_addr,
                        allocation_transport,
                        family,
                        result,
                        now,
                    );
                }
                TurnServerPollRet::SocketClose { listen_addr, .. } => {
                    if !self.zombies.remove(&listen_addr) {
                        self.close_relay(listen_addr);
                    }
                }
                // The gate answers Connect requests itself (`peer_connections`): the protocol
                // server never sees one it could ask about.
                TurnServerPollRet::TcpConnect {
                    relayed_addr,
                    peer_addr,
                    listen_addr,
                    client_addr,
                } => {
                    self.listeners[idx].server.tcp_connected(
                        relayed_addr,
                        peer_addr,
                        listen_addr,
                        client_addr,
                        Err(TcpConnectError::Forbidden),
                        now,
                    );
                }
                TurnServerPollRet::TcpClose { local_addr, remote_addr } => {
                    if self.listeners[idx].addr == local_addr {
                        self.tcp.remove(&(idx, remote_addr));
                    }
                }
            }
        }
        self.drain_transmits(idx);
        now
    }

    /// Polls every listener; returns the earliest next deadline.
    pub(crate) fn poll_all(&mut self) -> Instant {
        let mut next = self.now() + std::time::Duration::from_secs(1);
        for idx in 0..self.listeners.len() {
            next = next.min(self.poll_listener(idx));
        }
        next
    }

    fn open_relay(
        &mut self,
        idx: usize,
        client: SocketAddr,
        user: String,
        even: bool,
        transport: TransportType,
        family: AddressFamily,
    ) -> Result<SocketAddr, SocketAllocateError> {
        let v6 = family == AddressFamily::IPV6;
        let ip = self.relay_ips[usize::from(v6)]
            .ok_or(SocketAllocateError::AddressFamilyNotSupported)?;
        let bound = match transport {
            TransportType::Tcp => self.bind_tcp_relay(ip),
            TransportType::Udp => self.bind_udp_relay(ip, even),
        };
        let (advertised, out, task) = bound.map_err(|e| {
            tracing::warn!(error = %e, %ip, "no relay port free");
            SocketAllocateError::InsufficientCapacity
        })?;
        let now = std::time::Instant::now();
        let bps = self.settings.max_bps;
        tracing::debug!(%client, %advertised, user, "allocation");
        *self.per_user.entry(user.clone()).or_default() += 1;
        self.stats.allocations.fetch_add(1, Ordering::Relaxed);
        self.relays.insert(
            advertised,
            Relay {
                out,
                listener: idx,
                client,
                user,
                to_peers: TokenBucket::new(bps, now),
                to_client: TokenBucket::new(bps, now),
                task,
                routes: Routes::default(),
            },
        );
        self.client_relays.entry((idx, client)).or_default().push(advertised);
        Ok(advertised)
    }

    /// Whether a relay port on `ip` is in use: by a live relay of either transport (they share
    /// the map of relayed addresses), or by one the protocol server still holds.
    pub(crate) fn port_taken(&self, ip: std::net::IpAddr) -> impl Fn(u16) -> bool + '_ {
        move |port| {
            let addr = self.settings.advertised(SocketAddr::new(ip, port));
            self.relays.contains_key(&addr) || self.zombies.contains(&addr)
        }
    }

    fn close_relay(&mut self, advertised: SocketAddr) {
        let Some(relay) = self.relays.remove(&advertised) else { return };
        relay.task.abort();
        if relay.out.is_none() {
            self.close_tcp_relay(advertised);
        }
        let key = (relay.listener, relay.client);
        if let Some(list) = self.client_relays.get_mut(&key) {
            list.retain(|a| *a != advertised);
            if list.is_empty() {
                self.client_relays.remove(&key);
            }
        }
        if let Some(count) = self.per_user.get_mut(&relay.user) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.per_user.remove(&relay.user);
            }
        }
        self.stats.allocations.fetch_sub(1, Ordering::Relaxed);
        tracing::debug!(%advertised, client = %relay.client, "allocation closed");
    }

    /// Closes every relay and connection (shutdown).
    pub(crate) fn close_all(&mut self) {
        let all: Vec<SocketAddr> = self.relays.keys().copied().collect();
        for addr in all {
            self.close_relay(addr);
        }
        self.tcp.clear();
    }
}
