//! Every server option, with the defaults that make `securevox serve` work with no file.
//!
//! The binary layers these defaults, an optional TOML file, `SECUREVOX_*` environment variables
//! and command-line flags. A key `section.name` is the variable `SECUREVOX_SECTION_NAME`; lists
//! are comma-separated in the environment.

use ipnet::IpNet;
use securevox_domain::{Limits, RegistrationMode};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address and port of the HTTP / Socket.IO listener.
    pub listen: String,
    /// Directory for the SQLite database, generated secrets and stored files.
    pub data_dir: PathBuf,
    /// `postgres://…` to use PostgreSQL; empty means SQLite at `<data_dir>/securevox.db`.
    pub database_url: String,
    /// Public base URL (e.g. `https://chat.example.org`), used in invite links. Empty: taken
    /// from the request's Host header.
    pub public_url: String,
    /// `text` or `json`.
    pub log_format: LogFormat,
    /// A `tracing` filter such as `info` or `securevox=debug,info`.
    pub log_level: String,
    /// Reverse proxies (IP or CIDR) whose `X-Forwarded-For` / `X-Forwarded-Proto` are believed.
    pub trusted_proxies: Vec<String>,
    /// Origins allowed by CORS for browser clients served elsewhere; empty = same origin only.
    pub cors_origins: Vec<String>,
    /// Largest request body accepted by the JSON API, in bytes.
    pub max_body_bytes: u64,
    pub auth: AuthConfig,
    pub rate_limits: RateLimitConfig,
    pub limits: Limits,
    pub capacity: CapacityConfig,
    pub retention: RetentionConfig,
    pub attachments: AttachmentsConfig,
    pub metrics: MetricsConfig,
    pub turn: TurnConfig,
    pub realtime: RealtimeConfig,
    pub calls: CallsConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "0.0.0.0:8080".into(),
            data_dir: PathBuf::from("./data"),
            database_url: String::new(),
            public_url: String::new(),
            log_format: LogFormat::Text,
            log_level: "info".into(),
            trusted_proxies: Vec::new(),
            cors_origins: Vec::new(),
            max_body_bytes: 1024 * 1024,
            auth: AuthConfig::default(),
            rate_limits: RateLimitConfig::default(),
            limits: Limits::default(),
            capacity: CapacityConfig::default(),
            retention: RetentionConfig::default(),
            attachments: AttachmentsConfig::default(),
            metrics: MetricsConfig::default(),
            turn: TurnConfig::default(),
            realtime: RealtimeConfig::default(),
            calls: CallsConfig::default(),
        }
    }
}

impl Config {
    /// The database URL in effect: the configured one, or SQLite under the data directory.
    /// `%`, `?` and `#` in the path are percent-encoded, so they stay part of the file name
    /// instead of starting an escape, a query or a fragment.
    pub fn effective_database_url(&self) -> String {
        if self.database_url.is_empty() {
            let path = self.data_dir.join("securevox.db").display().to_string();
            let mut url = String::with_capacity(path.len() + 9);
            url.push_str("sqlite://");
            for c in path.chars() {
                match c {
                    '%' => url.push_str("%25"),
                    '?' => url.push_str("%3F"),
                    '#' => url.push_str("%23"),
                    c => url.push(c),
                }
            }
            url
        } else {
            self.database_url.clone()
        }
    }

    /// Parses `trusted_proxies`; a bare address means that one host.
    pub fn trusted_proxy_nets(&self) -> Result<Vec<IpNet>, String> {
        self.trusted_proxies
            .iter()
            .map(|raw| {
                raw.parse::<IpNet>()
                    .or_else(|_| raw.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("trusted_proxies: {raw:?} is not an IP address or CIDR"))
            })
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Lifetime of access tokens (JWT), seconds.
    pub access_token_ttl_s: u64,
    /// Lifetime of a refresh token since its last use, seconds.
    pub refresh_token_ttl_s: u64,
    /// Minimum password length in characters.
    pub min_password_length: usize,
    /// `invite` (default), `open` or `closed`. An admin's change at run time takes precedence.
    pub registration: RegistrationMode,
    /// Secret that signs access tokens. Empty: generated on first start and kept in
    /// `<data_dir>/secrets/jwt.key` (mode 0600). Set it (same value) on every node of a cluster.
    pub jwt_secret: Secret,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            access_token_ttl_s: 15 * 60,
            refresh_token_ttl_s: 30 * 24 * 3600,
            min_password_length: 8,
            registration: RegistrationMode::Invite,
            jwt_secret: Secret::default(),
        }
    }
}

/// Per-client-IP rate limits. 0 turns a limit off.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    pub login_per_minute: u32,
    pub register_per_minute: u32,
    /// Sustained API requests per second.
    pub api_per_second: u32,
    /// Requests allowed in a burst above the sustained rate.
    pub api_burst: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self { login_per_minute: 5, register_per_minute: 2, api_per_second: 10, api_burst: 20 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CapacityConfig {
    /// Disk use of the data directory's volume above which clean-up is due (percent).
    pub disk_threshold_percent: u8,
    /// System memory use above which clean-up is due (percent).
    pub memory_threshold_percent: u8,
    /// A user seen within this many seconds counts as active.
    pub active_window_s: u64,
    /// How often the server checks capacity and logs warnings, seconds.
    pub check_interval_s: u64,
}

impl Default for CapacityConfig {
    fn default() -> Self {
        Self {
            disk_threshold_percent: 80,
            memory_threshold_percent: 85,
            active_window_s: 300,
            check_interval_s: 300,
        }
    }
}

/// Encrypted chat attachments (C2), stored under `<data_dir>/blobs/`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AttachmentsConfig {
    /// Largest attachment accepted, bytes (the free profile's 10 MB).
    pub max_bytes: u64,
}

impl Default for AttachmentsConfig {
    fn default() -> Self {
        Self { max_bytes: 10 * 1024 * 1024 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// Expired or revoked sessions are deleted this many days after they ended.
    pub sessions_days: u64,
    /// Chat: inbox items a device acknowledged, group messages no inbox still holds, and
    /// claimed KeyPackages are deleted this many days later.
    pub messages_days: u64,
    /// How often the server runs the clean-up, seconds.
    pub cleanup_interval_s: u64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self { sessions_days: 7, messages_days: 30, cleanup_interval_s: 3600 }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Bearer token that `/metrics` requires. Empty: `/metrics` answers only loopback clients.
    pub token: Secret,
}

/// STUN/TURN for calls: the credentials the API mints (TURN REST scheme) and where clients
/// are told to find the TURN server.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TurnConfig {
    /// Secret shared with the TURN server (coturn: `static-auth-secret`). Empty: generated on
    /// first start and kept in `<data_dir>/secrets/turn.key`.
    pub secret: Secret,
    /// Key that servers send as `X-Api-Key` to `POST /api/v1/turn/credentials`. Empty:
    /// generated on first start and kept in `<data_dir>/secrets/turn-api.key`.
    pub api_key: Secret,
    /// Host name or IP put in the STUN/TURN URIs. Empty: the host the client reached us at.
    pub public_host: String,
    /// STUN/TURN port (UDP and TCP).
    pub port: u16,
    /// TURN-over-TLS port; 0 leaves the `turns:` URI out.
    pub tls_port: u16,
    /// Credential lifetime when the client asks for none, seconds (60..86400).
    pub default_ttl_s: u64,
    /// Run the embedded STUN/TURN server. Off when an external coturn shares `secret`.
    pub enabled: bool,
    /// Addresses the embedded server listens on (UDP and TCP, at `port`).
    pub listen: Vec<String>,
    /// Local addresses relay sockets bind to, at most one per IP family. Empty: the listen
    /// address, or the host's outward address when listening on all.
    pub relay_ips: Vec<String>,
    /// Public addresses of `relay_ips` behind 1:1 NAT (cloud VMs), one per family; relayed
    /// addresses are advertised with these.
    pub external_ips: Vec<String>,
    /// Relay ports are taken from `min_port..=max_port`.
    pub min_port: u16,
    pub max_port: u16,
    /// Realm of the long-term credentials.
    pub realm: String,
    /// Relay to loopback peers (127.0.0.0/8, ::1). For tests only: it opens the host's own
    /// services to anyone holding credentials.
    pub allow_loopback_peers: bool,
    /// Relay to private, carrier-grade NAT and unique-local peers (servers on a LAN).
    pub allow_private_peers: bool,
    /// Allocations one user may hold at once; 0 = unlimited.
    pub user_quota: u64,
    /// Allocations in all; 0 = unlimited.
    pub total_quota: u64,
    /// Bandwidth cap per allocation and direction, bits per second; 0 = unlimited.
    pub max_bps: u64,
    /// PEM certificate chain for TURN over TLS on `tls_port`; with `tls_key`. Empty: no TLS.
    pub tls_cert: String,
    /// PEM private key of `tls_cert`.
    pub tls_key: String,
}

impl Default for TurnConfig {
    fn default() -> Self {
        Self {
            secret: Secret::default(),
            api_key: Secret::default(),
            public_host: String::new(),
            port: 3478,
            tls_port: 5349,
            default_ttl_s: 3600,
            enabled: true,
            listen: vec!["0.0.0.0".into(), "::".into()],
            relay_ips: Vec::new(),
            external_ips: Vec::new(),
            min_port: 49152,
            max_port: 65535,
            realm: "securevox".into(),
            allow_loopback_peers: false,
            allow_private_peers: false,
            user_quota: 10,
            total_quota: 500,
            max_bps: 3_000_000,
            tls_cert: String::new(),
            tls_key: String::new(),
        }
    }
}

/// The Socket.IO endpoint at `/socket.io/`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RealtimeConfig {
    /// Seconds a socket may stay connected without authenticating.
    pub auth_timeout_s: u64,
    /// Largest Engine.IO message accepted, bytes; a larger one closes the connection.
    pub max_payload_bytes: u64,
    /// Seconds between server pings (Engine.IO `pingInterval`).
    pub ping_interval_s: u64,
    /// Seconds to wait for a pong before the connection counts as lost (`pingTimeout`).
    pub ping_timeout_s: u64,
    /// Microseconds a waking worker waits, while Socket.IO events arrive fast, so that one pass
    /// reads and relays what arrives meanwhile (`realtime::coalesce`); 0 turns it off.
    pub coalesce_us: u64,
    /// Socket.IO events per second (whole server) from which [`Self::coalesce_us`] applies.
    pub coalesce_min_events_per_s: u64,
}

impl Default for RealtimeConfig {
    fn default() -> Self {
        Self {
            auth_timeout_s: 10,
            max_payload_bytes: 256 * 1024,
            ping_interval_s: 25,
            ping_timeout_s: 20,
            coalesce_us: 200,
            coalesce_min_events_per_s: 10_000,
        }
    }
}

/// Call sessions: ringing, reconnection, clean-up and per-call tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CallsConfig {
    /// Seconds invitees' devices ring before the call counts as missed.
    pub ring_timeout_s: u64,
    /// Seconds a participant whose connection dropped stays in the call, so a reconnect resumes.
    pub rejoin_grace_s: u64,
    /// Seconds a call may sit with fewer than two participants before it is ended (K6).
    pub idle_timeout_s: u64,
    /// Lifetime of per-call tokens from `POST /api/call/token`, seconds.
    pub token_ttl_s: u64,
}

impl Default for CallsConfig {
    fn default() -> Self {
        Self { ring_timeout_s: 45, rejoin_grace_s: 10, idle_timeout_s: 3600, token_ttl_s: 3600 }
    }
}

/// A configured secret: serialised as is (for the config file), never shown by `Debug`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl Secret {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "Secret(<unset>)" } else { "Secret(<redacted>)" })
    }
}

impl TurnConfig {
    /// What the embedded server is started with; `Err` names the first bad key.
    pub fn embedded(&self) -> Result<securevox_turn::TurnSettings, String> {
        let ips = |key: &str, list: &[String]| -> Result<Vec<std::net::IpAddr>, String> {
            list.iter()
                .map(|raw| {
                    raw.trim()
                        .parse()
                        .map_err(|_| format!("turn.{key}: {raw:?} is not an IP address"))
                })
                .collect()
        };
        if self.min_port == 0 || self.min_port > self.max_port {
            return Err(format!(
                "turn.min_port..turn.max_port ({}..{}) is not a port range",
                self.min_port, self.max_port
            ));
        }
        if self.realm.is_empty() || self.realm.len() > 127 {
            return Err("turn.realm must be 1 to 127 characters".into());
        }
        Ok(securevox_turn::TurnSettings {
            listen: ips("listen", &self.listen)?,
            port: self.port,
            relay_ips: ips("relay_ips", &self.relay_ips)?,
            external_ips: ips("external_ips", &self.external_ips)?,
            relay_ports: self.min_port..=self.max_port,
            realm: self.realm.clone(),
            secret: self.secret.expose().as_bytes().to_vec(),
            allow_loopback_peers: self.allow_loopback_peers,
            allow_private_peers: self.allow_private_peers,
            user_quota: usize::try_from(self.user_quota).unwrap_or(usize::MAX),
            total_quota: usize::try_from(self.total_quota).unwrap_or(usize::MAX),
            max_bps: self.max_bps,
            tls: match (self.tls_cert.is_empty(), self.tls_key.is_empty()) {
                (true, true) => None,
                (false, false) => Some(securevox_turn::settings::TlsFiles {
                    cert: self.tls_cert.clone().into(),
                    key: self.tls_key.clone().into(),
                    port: self.tls_port,
                }),
                _ => return Err("turn.tls_cert and turn.tls_key go together".into()),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_url_keeps_special_characters_in_the_data_dir_as_part_of_the_path() {
        let config = |dir: &str| Config { data_dir: PathBuf::from(dir), ..Config::default() };
        assert_eq!(config("./data").effective_database_url(), "sqlite://./data/securevox.db");
        assert_eq!(
            config("/srv/50% off?#1").effective_database_url(),
            "sqlite:///srv/50%25 off%3F%231/securevox.db"
        );
        let explicit = Config { database_url: "postgres://h/db".into(), ..config("/x?y") };
        assert_eq!(explicit.effective_database_url(), "postgres://h/db", "used as given");
    }
}
