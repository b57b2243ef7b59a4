//! Which peers a relay may talk to. A TURN server relays to any address its clients name, so
//! left open it is a door into the host's own network (the classic TURN SSRF hole): by default
//! loopback, private, link-local, multicast, reserved and the server's own addresses are
//! refused. Operators on a LAN may allow private peers; tests allow loopback.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why a peer was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Loopback,
    Private,
    LinkLocal,
    Multicast,
    Reserved,
    OwnAddress,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Loopback => "loopback",
            Self::Private => "private",
            Self::LinkLocal => "link_local",
            Self::Multicast => "multicast",
            Self::Reserved => "reserved",
            Self::OwnAddress => "own_address",
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct PeerPolicy {
    pub allow_loopback: bool,
    pub allow_private: bool,
    /// The server's own addresses (listen, relay and external); loopback ones are covered by
    /// the loopback rule instead, so that tests on 127.0.0.1 can opt in.
    pub own: Vec<IpAddr>,
}

impl PeerPolicy {
    pub fn check(&self, ip: IpAddr) -> Result<(), Refusal> {
        let ip = canonical(ip);
        let class = classify(ip);
        match class {
            Some(Refusal::Loopback) if self.allow_loopback => return Ok(()),
            Some(Refusal::Private) if self.allow_private => {}
            Some(refusal) => return Err(refusal),
            None => {}
        }
        if self.own.iter().any(|own| canonical(*own) == ip) {
            return Err(Refusal::OwnAddress);
        }
        Ok(())
    }
}

/// IPv4-mapped and NAT64 (64:ff9b::/96) addresses are judged as the IPv4 address they carry.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let s = v6.segments();
            if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
                let o = v6.octets();
                return IpAddr::V4(Ipv4Addr::new(o[12], o[13], o[14], o[15]));
            }
            IpAddr::V6(v6)
        }
        v4 @ IpAddr::V4(_) => v4,
    }
}

fn classify(ip: IpAddr) -> Option<Refusal> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<Refusal> {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        Some(Refusal::Loopback)
    } else if ip.is_private() || (a == 100 && (64..128).contains(&b)) {
        // RFC 1918 and the carrier-grade NAT range (RFC 6598).
        Some(Refusal::Private)
    } else if ip.is_link_local() {
        Some(Refusal::LinkLocal)
    } else if ip.is_multicast() {
        Some(Refusal::Multicast)
    } else if a == 0 || a >= 240 || ip.is_documentation() || (a == 198 && (b & 0xfe) == 18) {
        // "this network", reserved and broadcast, TEST-NETs, benchmarking (198.18/15).
        Some(Refusal::Reserved)
    } else {
        None
    }
}

fn classify_v6(ip: Ipv6Addr) -> Option<Refusal> {
    let first = ip.segments()[0];
    if ip.is_loopback() {
        Some(Refusal::Loopback)
    } else if (first & 0xfe00) == 0xfc00 {
        Some(Refusal::Private) // unique local fc00::/7
    } else if (first & 0xffc0) == 0xfe80 {
        Some(Refusal::LinkLocal)
    } else if ip.is_multicast() {
        Some(Refusal::Multicast)
    } else if ip.is_unspecified() || first == 0x2001 && ip.segments()[1] == 0x0db8 {
        Some(Refusal::Reserved)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_host_network_is_refused_by_default() {
        let policy = PeerPolicy::default();
        for (addr, why) in [
            ("127.0.0.1", Refusal::Loopback),
            ("127.8.9.10", Refusal::Loopback),
            ("::1", Refusal::Loopback),
            ("::ffff:127.0.0.1", Refusal::Loopback),
            ("64:ff9b::7f00:1", Refusal::Loopback),
            ("10.1.2.3", Refusal::Private),
            ("172.16.0.1", Refusal::Private),
            ("192.168.1.1", Refusal::Private),
            ("100.64.0.1", Refusal::Private),
            ("fd00::1", Refusal::Private),
            ("169.254.169.254", Refusal::LinkLocal), // the cloud metadata service
            ("fe80::1", Refusal::LinkLocal),
            ("224.0.0.1", Refusal::Multicast),
            ("ff02::1", Refusal::Multicast),
            ("0.0.0.0", Refusal::Reserved),
            ("255.255.255.255", Refusal::Reserved),
            ("192.0.2.1", Refusal::Reserved),
            ("::", Refusal::Reserved),
        ] {
            assert_eq!(policy.check(ip(addr)), Err(why), "{addr}");
        }
        for public in ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "100.128.0.1", "172.32.0.1"] {
            assert_eq!(policy.check(ip(public)), Ok(()), "{public}");
        }
    }

    #[test]
    fn options_open_loopback_and_private_only() {
        let policy = PeerPolicy { allow_loopback: true, ..PeerPolicy::default() };
        assert_eq!(policy.check(ip("127.0.0.1")), Ok(()));
        assert_eq!(policy.check(ip("10.0.0.1")), Err(Refusal::Private));
        assert_eq!(policy.check(ip("169.254.169.254")), Err(Refusal::LinkLocal));
        let policy = PeerPolicy { allow_private: true, ..PeerPolicy::default() };
        assert_eq!(policy.check(ip("10.0.0.1")), Ok(()));
        assert_eq!(policy.check(ip("127.0.0.1")), Err(Refusal::Loopback));
    }

    #[test]
    fn own_addresses_are_refused() {
        let policy = PeerPolicy {
            allow_private: true,
            own: vec![ip("203.0.113.7"), ip("10.0.0.5")],
            ..PeerPolicy::default()
        };
        assert_eq!(policy.check(ip("10.0.0.5")), Err(Refusal::OwnAddress));
        assert_eq!(policy.check(ip("::ffff:10.0.0.5")), Err(Refusal::OwnAddress));
        assert_eq!(policy.check(ip("10.0.0.6")), Ok(()));
    }
}
