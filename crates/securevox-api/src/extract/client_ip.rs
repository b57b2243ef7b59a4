//! The client's IP address, for rate limits and logs. `X-Forwarded-For` is believed only when
//! the connection comes from a configured trusted proxy; otherwise anyone could pick their IP.

use crate::state::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use ipnet::IpNet;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

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
        Ok(Self(client_ip(
            peer(parts),
            &parts.headers,
            &state.trusted_proxies,
        )))
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
        let forwarded = parts
            .headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok());
        Ok(Self(match forwarded.map(str::trim) {
            Some("https") if trusted => "https",
            _ => "http",
        }))
    }
}

/// Walks `X-Forwarded-For` from the right (the hop nearest us), skipping trusted proxies; the
/// first address not trusted is the client. Without a trusted peer the header is ignored.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|hop| hop.trim().parse().ok())
        .collect();
    hops.iter()
        .rev()
        .find(|ip| !is_trusted(ip))
        .or(hops.first())
        .copied()
        .unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", xff.parse().unwrap());
        h
    }

    #[test]
    fn ignores_forwarded_for_from_untrusted_peers() {
        let peer: IpAddr = "203.0.113.9".parse().unwrap();
        assert_eq!(client_ip(peer, &headers("1.2.3.4"), &[]), peer);
    }

    #[test]
    fn takes_the_nearest_untrusted_hop_behind_trusted_proxies() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let peer: IpAddr = "10.0.0.2".parse().unwrap();
        // The client spoofs a leading entry; the proxy appended the real address.
        let ip = client_ip(peer, &headers("6.6.6.6, 198.51.100.7, 10.0.0.3"), &trusted);
        assert_eq!(ip, "198.51.100.7".parse::<IpAddr>().unwrap());
        assert_eq!(client_ip(peer, &HeaderMap::new(), &trusted), peer);
    }
}
