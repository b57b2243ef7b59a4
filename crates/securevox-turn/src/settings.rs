//! What the embedded TURN server is told at start; the API crate builds it from the `turn`
//! section of the configuration.

use crate::peers::PeerPolicy;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::ops::RangeInclusive;

#[derive(Debug, Clone)]
pub struct TurnSettings {
    /// Addresses to listen on (UDP and TCP each).
    pub listen: Vec<IpAddr>,
    /// STUN/TURN port for UDP and TCP; 0 picks a free one (tests).
    pub port: u16,
    /// Where relay sockets bind, one per address family; empty = derived from `listen`.
    pub relay_ips: Vec<IpAddr>,
    /// The public addresses that `relay_ips` are reached at (1:1 NAT on cloud VMs), one per
    /// family; a relayed address is advertised with these. Empty = the relay addresses.
    pub external_ips: Vec<IpAddr>,
    pub relay_ports: RangeInclusive<u16>,
    pub realm: String,
    /// The TURN REST secret shared with `/api/v1/turn/credentials`.
    pub secret: Vec<u8>,
    pub allow_loopback_peers: bool,
    pub allow_private_peers: bool,
    /// Allocations one user may hold at once; 0 = unlimited.
    pub user_quota: usize,
    /// Allocations in all; 0 = unlimited.
    pub total_quota: usize,
    /// Per allocation and direction, bits per second; 0 = unlimited.
    pub max_bps: u64,
    /// TURN over TLS, when a certificate is configured.
    pub tls: Option<TlsFiles>,
}

/// A PEM certificate chain and its private key, and the port to serve TURN over TLS on.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
    /// 0 picks a free one (tests).
    pub port: u16,
}

impl TurnSettings {
    /// The relay address for a family: the configured one, else the listen address when it is
    /// a concrete one, else the address the host routes outwards from.
    pub(crate) fn relay_ip(&self, v6: bool) -> Option<IpAddr> {
        let family = |ip: &&IpAddr| ip.is_ipv6() == v6;
        if let Some(ip) = self.relay_ips.iter().find(family) {
            return Some(*ip);
        }
        if !self.relay_ips.is_empty() {
            return None;
        }
        if let Some(ip) = self.listen.iter().filter(family).find(|ip| !ip.is_unspecified()) {
            return Some(*ip);
        }
        if self.listen.iter().any(|ip| ip.is_unspecified() && ip.is_ipv6() == v6) {
            return outward_ip(v6);
        }
        None
    }

    /// The address a relay bound on `relay` is advertised at.
    pub(crate) fn advertised(&self, relay: SocketAddr) -> SocketAddr {
        let v6 = relay.is_ipv6();
        let ip = self.external_ips.iter().find(|ip| ip.is_ipv6() == v6).copied();
        SocketAddr::new(ip.unwrap_or(relay.ip()), relay.port())
    }

    pub(crate) fn peer_policy(&self) -> PeerPolicy {
        let mut own: Vec<IpAddr> =
            self.listen.iter().copied().filter(|ip| !ip.is_unspecified()).collect();
        own.extend(self.external_ips.iter().copied());
        own.extend([self.relay_ip(false), self.relay_ip(true)].into_iter().flatten());
        PeerPolicy {
            allow_loopback: self.allow_loopback_peers,
            allow_private: self.allow_private_peers,
            own,
        }
    }
}

#[cfg(test)]
impl TurnSettings {
    /// Loopback only, no limits: for unit tests of the engine.
    pub(crate) fn for_tests() -> Self {
        Self {
            listen: Vec::new(),
            port: 0,
            relay_ips: Vec::new(),
            external_ips: Vec::new(),
            relay_ports: 40_000..=40_001,
            realm: "securevox".into(),
            secret: b"secret".to_vec(),
            allow_loopback_peers: false,
            allow_private_peers: false,
            user_quota: 0,
            total_quota: 0,
            max_bps: 0,
            tls: None,
        }
    }
}

/// The source address the host would use to reach the internet: the kernel picks it when a
/// UDP socket is connected (nothing is sent). `None` without a route.
fn outward_ip(v6: bool) -> Option<IpAddr> {
    let (bind, probe): (SocketAddr, SocketAddr) = if v6 {
        ((Ipv6Addr::UNSPECIFIED, 0).into(), "[2001:4860:4860::8888]:53".parse().ok()?)
    } else {
        ((Ipv4Addr::UNSPECIFIED, 0).into(), "8.8.8.8:53".parse().ok()?)
    };
    let socket = UdpSocket::bind(bind).ok()?;
    socket.connect(probe).ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_unspecified()).then_some(ip)
}
