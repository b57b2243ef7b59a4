//! Counters the server keeps and `/metrics` and `/health` read.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct TurnStats {
    pub allocations: AtomicU64,
    /// Client → peer.
    pub packets_to_peers: AtomicU64,
    pub bytes_to_peers: AtomicU64,
    /// Peer → client.
    pub packets_to_clients: AtomicU64,
    pub bytes_to_clients: AtomicU64,
    /// Requests refused for credentials: expired, wrong or unknown.
    pub auth_failures: AtomicU64,
    /// Permissions, channel bindings and sends refused by the peer policy.
    pub refused_peers: AtomicU64,
    /// Allocations refused by the per-user quota or the total cap.
    pub quota_refusals: AtomicU64,
    /// Packets dropped by the per-allocation bandwidth cap.
    pub throttled_packets: AtomicU64,
    pub stun_bindings: AtomicU64,
    /// Unauthenticated UDP requests dropped by the per-address rate limit.
    pub strangers_dropped: AtomicU64,
    /// Peer data connections of TCP allocations (RFC 6062) open now, bound to a client data
    /// connection or waiting for its ConnectionBind. Their bytes count in `bytes_to_*`.
    pub peer_connections: AtomicU64,
    /// Peer data connections opened in all: Connect successes and ConnectionAttempts.
    pub peer_connections_opened: AtomicU64,
}

/// A consistent-enough copy for reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TurnSnapshot {
    pub allocations: u64,
    pub packets_to_peers: u64,
    pub bytes_to_peers: u64,
    pub packets_to_clients: u64,
    pub bytes_to_clients: u64,
    pub auth_failures: u64,
    pub refused_peers: u64,
    pub quota_refusals: u64,
    pub throttled_packets: u64,
    pub stun_bindings: u64,
    pub strangers_dropped: u64,
    pub peer_connections: u64,
    pub peer_connections_opened: u64,
}

impl TurnStats {
    pub fn snapshot(&self) -> TurnSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        TurnSnapshot {
            allocations: get(&self.allocations),
            packets_to_peers: get(&self.packets_to_peers),
            bytes_to_peers: get(&self.bytes_to_peers),
            packets_to_clients: get(&self.packets_to_clients),
            bytes_to_clients: get(&self.bytes_to_clients),
            auth_failures: get(&self.auth_failures),
            refused_peers: get(&self.refused_peers),
            quota_refusals: get(&self.quota_refusals),
            throttled_packets: get(&self.throttled_packets),
            stun_bindings: get(&self.stun_bindings),
            strangers_dropped: get(&self.strangers_dropped),
            peer_connections: get(&self.peer_connections),
            peer_connections_opened: get(&self.peer_connections_opened),
        }
    }
}

pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn add(counter: &AtomicU64, n: usize) {
    counter.fetch_add(n as u64, Ordering::Relaxed);
}
