//! The client's IP address, for rate limits and logs. `X-Forwarded-For` is believed only when
//! the connection comes from a configured trusted proxy; otherwise anyone could pick their IP.

use crate::state::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use ipnet::IpNet;
use std::convert::Infallible;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

fn peer(parts: &Parts) -> IpAddr {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip())
}

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Infallible> {
        Ok(Self(client_ip(peer(parts), &parts.headers, &state.trusted_proxies)))
    }
}

/// The scheme the client used: `X-Forwarded-Proto` from a trusted proxy (which terminated TLS),
/// else `http` (the server itself speaks plain HTTP).
#[derive(Debug, Clone, Copy)]
pub struct ClientScheme(pub &'static str);

impl FromRequestParts<AppState> for ClientScheme {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Infallible> {
        let peer = peer(parts);
        let trusted = state.trusted_proxies.iter().any(|net| net.contains(&peer));
        let forwarded = parts.headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok());
        Ok(Self(match forwarded.map(str::trim) {
            Some("https") if trusted => "https",
            _ => "http",
        }))
    }
}

/// Walks `X-Forwarded-For` from the right (the hop nearest us), skipping trusted proxies; the
/// first address not trusted is the client. Without a trusted peer the header is ignored.
///
/// Everything left of the first untrusted hop was written by that client and proves nothing, so
/// it is never read. A hop that is not an address (`unknown`, garbage) ends the walk: the client
/// is then the hop to its right, or the peer when there is none. If every hop is trusted, the
/// client is the leftmost one walked to (an infrastructure address).
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    // Several header lines form one list, in order (RFC 9110 §5.3). A line that is not visible
    // ASCII reads as "", one unparseable hop.
    let lines: Vec<&str> =
        headers.get_all("x-forwarded-for").iter().map(|v| v.to_str().unwrap_or("")).collect();
    let mut client = peer;
    for hop in lines.iter().rev().flat_map(|line| line.rsplit(',')) {
        let Some(ip) = parse_hop(hop) else {
            return client;
        };
        client = ip;
        if !is_trusted(&ip) {
            return ip;
        }
    }
    client
}

/// One `X-Forwarded-For` entry: `ip`, `ip:port`, `[v6]` or `[v6]:port`; `None` for anything else.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(addr) = hop.parse::<SocketAddr>() {
        return Some(addr.ip());
    }
    let v6 = hop.strip_prefix('[')?.strip_suffix(']')?;
    v6.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(xff: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", xff.parse().unwrap());
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    /// The client as seen behind the trusted proxy 127.0.0.1 (the peer).
    fn behind_loopback_proxy(xff: &str) -> IpAddr {
        client_ip(ip("127.0.0.1"), &headers(xff), &nets(&["127.0.0.1/32"]))
    }

    #[test]
    fn ignores_forwarded_for_from_untrusted_peers() {
        let peer = ip("203.0.113.9");
        assert_eq!(client_ip(peer, &headers("1.2.3.4"), &[]), peer);
        let trusted = nets(&["10.0.0.0/8"]);
        assert_eq!(client_ip(peer, &headers("1.2.3.4"), &trusted), peer);
    }

    #[test]
    fn takes_the_nearest_untrusted_hop_behind_trusted_proxies() {
        let trusted = nets(&["10.0.0.0/8"]);
        let peer = ip("10.0.0.2");
        // The client spoofs a leading entry; the proxy appended the real address.
        let got = client_ip(peer, &headers("6.6.6.6, 198.51.100.7, 10.0.0.3"), &trusted);
        assert_eq!(got, ip("198.51.100.7"));
        assert_eq!(client_ip(peer, &HeaderMap::new(), &trusted), peer);
    }

    #[test]
    fn understands_hops_with_ports_and_brackets() {
        // The proxy appended `ip:port`: that hop is the client, not the spoofed one on its left.
        assert_eq!(behind_loopback_proxy("9.9.9.9, 203.0.113.5:443"), ip("203.0.113.5"));
        assert_eq!(behind_loopback_proxy("9.9.9.9, [2001:db8::5]"), ip("2001:db8::5"));
        assert_eq!(behind_loopback_proxy("9.9.9.9, [2001:db8::5]:8443"), ip("2001:db8::5"));
        assert_eq!(behind_loopback_proxy("9.9.9.9,2001:db8::5"), ip("2001:db8::5"));
        assert_eq!(behind_loopback_proxy(" 203.0.113.5 "), ip("203.0.113.5"));
    }

    #[test]
    fn parse_hop_accepts_only_address_forms() {
        assert_eq!(parse_hop("203.0.113.5"), Some(ip("203.0.113.5")));
        assert_eq!(parse_hop("203.0.113.5:443"), Some(ip("203.0.113.5")));
        assert_eq!(parse_hop("[2001:db8::1]"), Some(ip("2001:db8::1")));
        assert_eq!(parse_hop("[2001:db8::1]:80"), Some(ip("2001:db8::1")));
        assert_eq!(parse_hop("2001:db8::1"), Some(ip("2001:db8::1")));
        for bad in [
            "",
            "unknown",
            "_hidden",
            "203.0.113.5:99999",
            "203.0.113.5:",
            "[203.0.113.5]",
            "[2001:db8::1",
            "[2001:db8::1]x",
            "[2001:db8::1]:",
            "1.2.3",
            "example.com",
        ] {
            assert_eq!(parse_hop(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn an_unparseable_hop_ends_the_walk() {
        // Nothing left of garbage is believed: the client is the hop right of it ...
        assert_eq!(behind_loopback_proxy("9.9.9.9, unknown, 203.0.113.5"), ip("203.0.113.5"));
        // ... or, with a trusted hop right of it, that hop ...
        assert_eq!(behind_loopback_proxy("9.9.9.9, garbage, 127.0.0.1"), ip("127.0.0.1"));
        // ... or the peer when the garbage is the nearest hop.
        let trusted = nets(&["10.0.0.0/8"]);
        let peer = ip("10.0.0.2");
        assert_eq!(client_ip(peer, &headers("9.9.9.9, unknown"), &trusted), peer);
        assert_eq!(client_ip(peer, &headers("9.9.9.9,"), &trusted), peer);
        assert_eq!(client_ip(peer, &headers("9.9.9.9, 10.0.0.7:80x"), &trusted), peer);
    }

    #[test]
    fn all_trusted_hops_give_the_leftmost_trusted_one() {
        let trusted = nets(&["10.0.0.0/8"]);
        let peer = ip("10.0.0.2");
        let got = client_ip(peer, &headers("10.0.0.9, 10.0.0.8:81, 10.0.0.3"), &trusted);
        assert_eq!(got, ip("10.0.0.9"));
        // Never a hop left of an unparseable one, even if it is the leftmost.
        let got = client_ip(peer, &headers("9.9.9.9, unknown, 10.0.0.8, 10.0.0.3"), &trusted);
        assert_eq!(got, ip("10.0.0.8"));
    }

    #[test]
    fn several_header_lines_are_one_list() {
        let trusted = nets(&["10.0.0.0/8"]);
        let peer = ip("10.0.0.2");
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", HeaderValue::from_static("9.9.9.9, 198.51.100.7"));
        h.append("x-forwarded-for", HeaderValue::from_static("10.0.0.3"));
        assert_eq!(client_ip(peer, &h, &trusted), ip("198.51.100.7"));
        // A line that is not ASCII is one unparseable hop: nothing left of it counts.
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", HeaderValue::from_static("9.9.9.9"));
        h.append("x-forwarded-for", HeaderValue::from_bytes(b"\xff").unwrap());
        h.append("x-forwarded-for", HeaderValue::from_static("10.0.0.3"));
        assert_eq!(client_ip(peer, &h, &trusted), ip("10.0.0.3"));
    }
}
