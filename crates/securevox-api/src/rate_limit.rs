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
use std::net::IpAddr;
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

    /// Takes one request from `ip`'s allowance, or says how many seconds until the next.
    pub fn check(&self, limit: Limit, ip: IpAddr) -> Result<(), u64> {
        let limiter = match limit {
            Limit::Login => &self.login,
            Limit::Register => &self.register,
            Limit::Api => &self.api,
        };
        let Some(limiter) = limiter else {
            return Ok(());
        };
        limiter.check_key(&ip).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }

    /// Forgets clients whose allowance is full again, so memory stays bounded.
    pub fn prune(&self) {
        for limiter in [&self.login, &self.register, &self.api]
            .into_iter()
            .flatten()
        {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
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
