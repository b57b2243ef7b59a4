//! Per-client-IP rate limits (U3): login, registration, and every API request.

use crate::config::RateLimitConfig;
use crate::error::ApiError;
use crate::extract::ClientIp;
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;

pub struct RateLimiters {
    login: Option<DefaultKeyedRateLimiter<IpAddr>>,
    register: Option<DefaultKeyedRateLimiter<IpAddr>>,
    api: Option<DefaultKeyedRateLimiter<IpAddr>>,
}

/// Which limit a request ran into; a metrics label.
#[derive(Debug, Clone, Copy)]
pub enum Limit {
    Login,
    Register,
    Api,
}

impl Limit {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::Register => "register",
            Self::Api => "api",
        }
    }
}

impl RateLimiters {
    pub fn new(config: &RateLimitConfig) -> Self {
        let per_minute =
            |n: u32| NonZeroU32::new(n).map(|n| RateLimiter::keyed(Quota::per_minute(n)));
        Self {
            login: per_minute(config.login_per_minute),
            register: per_minute(config.register_per_minute),
            api: NonZeroU32::new(config.api_per_second).map(|rate| {
                let burst = NonZeroU32::new(config.api_burst).unwrap_or(rate).max(rate);
                RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
            }),
        }
    }

    /// Takes one request from `ip`'s allowance (shared with its whole [`limit_key`] block), or
    /// says how many seconds until the next.
    pub fn check(&self, limit: Limit, ip: IpAddr) -> Result<(), u64> {
        let limiter = match limit {
            Limit::Login => &self.login,
            Limit::Register => &self.register,
            Limit::Api => &self.api,
        };
        let Some(limiter) = limiter else {
            return Ok(());
        };
        limiter.check_key(&limit_key(ip)).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }

    /// Forgets clients whose allowance is full again, so memory stays bounded.
    pub fn prune(&self) {
        for limiter in [&self.login, &self.register, &self.api].into_iter().flatten() {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

/// The rate-limit bucket of an address. One IPv6 subscriber usually holds a whole /64 (2^64
/// addresses), so per-address keys would let it pick a fresh allowance per request: IPv6 keys on
/// its /64. IPv4-mapped IPv6 (`::ffff:a.b.c.d`, as a dual-stack socket reports IPv4 peers) is the
/// IPv4 address and shares its bucket.
pub fn limit_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        },
    }
}

impl AppState {
    /// Applies `limit` to the client, counting rejections in the metrics.
    pub fn rate_limit(&self, limit: Limit, ip: IpAddr) -> Result<(), ApiError> {
        self.limiters.check(limit, ip).map_err(|retry_after| {
            self.metrics.rate_limited(limit.as_str());
            ApiError::rate_limited(retry_after.max(1))
        })
    }
}

/// Middleware: the general API limit for every `/api` request.
pub async fn api_limit(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    state.rate_limit(Limit::Api, ip)?;
    Ok(next.run(request).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv4_keys_on_the_address() {
        assert_eq!(limit_key(ip("203.0.113.5")), ip("203.0.113.5"));
        assert_ne!(limit_key(ip("203.0.113.5")), limit_key(ip("203.0.113.6")));
    }

    #[test]
    fn ipv4_mapped_ipv6_keys_on_the_ipv4_address() {
        assert_eq!(limit_key(ip("::ffff:203.0.113.5")), ip("203.0.113.5"));
        assert_eq!(limit_key(ip("::ffff:cb00:7105")), ip("203.0.113.5"));
    }

    #[test]
    fn ipv6_keys_on_the_slash_64() {
        let key = limit_key(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd"));
        assert_eq!(key, ip("2001:db8:1:2::"));
        assert_eq!(limit_key(ip("2001:db8:1:2::1")), key);
        assert_eq!(limit_key(ip("2001:db8:1:2:ffff:ffff:ffff:ffff")), key);
        assert_ne!(limit_key(ip("2001:db8:1:3::1")), key, "the next /64 is another client");
        assert_ne!(limit_key(ip("2001:db8:1:1:ffff:ffff:ffff:ffff")), key);
        // Not IPv4-mapped: ordinary IPv6, masked.
        assert_eq!(limit_key(ip("::1")), ip("::"));
    }

    fn one_login_per_minute() -> RateLimiters {
        RateLimiters::new(&RateLimitConfig {
            login_per_minute: 1,
            register_per_minute: 0,
            api_per_second: 0,
            api_burst: 0,
        })
    }

    #[test]
    fn addresses_in_one_ipv6_slash_64_share_an_allowance() {
        let limiters = one_login_per_minute();
        assert!(limiters.check(Limit::Login, ip("2001:db8:0:1::1")).is_ok());
        assert!(limiters.check(Limit::Login, ip("2001:db8:0:1::2")).is_err());
        assert!(limiters.check(Limit::Login, ip("2001:db8:0:1:dead:beef:0:1")).is_err());
        assert!(limiters.check(Limit::Login, ip("2001:db8:0:2::1")).is_ok(), "another /64");
        // Limits that are off stay off.
        assert!(limiters.check(Limit::Api, ip("2001:db8:0:1::1")).is_ok());
    }

    #[test]
    fn ipv4_and_its_mapped_form_share_an_allowance() {
        let limiters = one_login_per_minute();
        assert!(limiters.check(Limit::Login, ip("198.51.100.1")).is_ok());
        assert!(limiters.check(Limit::Login, ip("::ffff:198.51.100.1")).is_err());
        assert!(limiters.check(Limit::Login, ip("198.51.100.2")).is_ok());
    }
}
