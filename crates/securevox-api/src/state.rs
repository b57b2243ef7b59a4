//! What every handler can reach. Cheap to clone: everything is behind an `Arc` or is a pool.

use crate::activity::ActivityTracker;
use crate::calls::CallDirectory;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::rate_limit::RateLimiters;
use crate::realtime::Realtime;
use crate::tokens::AccessTokens;
use ipnet::IpNet;
use securevox_store::Store;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Instant;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<Config>,
    pub tokens: Arc<AccessTokens>,
    pub limiters: Arc<RateLimiters>,
    pub metrics: Arc<Metrics>,
    pub activity: Arc<ActivityTracker>,
    pub live: Arc<LiveCounts>,
    pub realtime: Arc<Realtime>,
    pub calls: Arc<CallDirectory>,
    pub turn: Arc<crate::turn_server::EmbeddedTurn>,
    pub trusted_proxies: Arc<[IpNet]>,
    pub started: Instant,
}

/// Live figures owned by the real-time layer (sockets, calls); read by health and capacity.
#[derive(Debug, Default)]
pub struct LiveCounts {
    pub connected_users: AtomicU64,
    pub active_calls: AtomicU64,
    pub call_participants: AtomicU64,
}

impl AppState {
    /// Builds the state from a loaded config and an open store. `jwt_secret` must be set
    /// (the binary generates one on first start).
    pub fn new(config: Config, store: Store) -> Result<Self, String> {
        for (name, secret, min) in [
            ("auth.jwt_secret", &config.auth.jwt_secret, 32),
            // A secret shared with an existing coturn is the operator's choice, within reason.
            ("turn.secret", &config.turn.secret, 16),
            ("turn.api_key", &config.turn.api_key, 32),
        ] {
            if secret.expose().chars().count() < min {
                return Err(format!("{name} must be at least {min} characters"));
            }
        }
        let trusted_proxies = config.trusted_proxy_nets()?.into();
        Ok(Self {
            tokens: Arc::new(AccessTokens::new(
                config.auth.jwt_secret.expose().as_bytes(),
                config.auth.access_token_ttl_s,
            )),
            limiters: Arc::new(RateLimiters::new(&config.rate_limits)),
            metrics: Arc::new(Metrics::new()),
            activity: Arc::new(ActivityTracker::default()),
            live: Arc::new(LiveCounts::default()),
            realtime: Arc::new(Realtime::new(&config.realtime)),
            calls: Arc::new(CallDirectory::default()),
            turn: Arc::default(),
            trusted_proxies,
            started: Instant::now(),
            store,
            config: Arc::new(config),
        })
    }
}
