//! Loads the configuration: built-in defaults, then an optional TOML file, then `SECUREVOX_*`
//! environment variables, then command-line flags — each layer overriding the one before.
//!
//! The environment mapping is derived from the defaults themselves: every leaf key
//! `section.name` is read from `SECUREVOX_SECTION_NAME`, parsed as the type its default has
//! (lists comma-separated). So a new option is settable from the environment with no extra code.

use anyhow::{bail, Context, Result};
use securevox_api::Config;
use securevox_domain::turn::TurnTtl;
use std::collections::BTreeMap;
use std::path::Path;
use toml::{Table, Value};

/// Environment variable name for a key path.
pub fn env_name(path: &[&str]) -> String {
    format!("SECUREVOX_{}", path.join("_").to_ascii_uppercase())
}

/// Every settable key (dotted) with its environment variable and default, in file order.
pub fn keys() -> Vec<(String, String, Value)> {
    let defaults = defaults_table();
    let mut out = Vec::new();
    walk(&defaults, &mut Vec::new(), &mut |path, value| {
        out.push((path.join("."), env_name(path), value.clone()));
    });
    out
}

fn defaults_table() -> Table {
    // Serialising a struct of plain fields to TOML cannot fail.
    Table::try_from(Config::default()).unwrap_or_default()
}

fn walk<'a>(table: &'a Table, path: &mut Vec<&'a str>, visit: &mut dyn FnMut(&[&str], &Value)) {
    for (key, value) in table {
        path.push(key);
        match value {
            Value::Table(inner) => walk(inner, path, visit),
            leaf => visit(path, leaf),
        }
        path.pop();
    }
}

/// Loads the layers. `env` is the process environment (a map, so tests can pass their own).
pub fn load(
    file: Option<&Path>,
    env: &BTreeMap<String, String>,
    flags: &[(&str, Option<String>)],
) -> Result<Config> {
    let mut doc = defaults_table();
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        let overlay: Table =
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        merge(&mut doc, overlay);
    }
    for (key, var, default) in keys() {
        if let Some(raw) = env.get(&var) {
            let value = parse_env(raw, &default).with_context(|| format!("{var}={raw:?}"))?;
            set(&mut doc, &key, value);
        }
    }
    for (key, value) in flags {
        if let Some(value) = value {
            set(&mut doc, key, Value::String(value.clone()));
        }
    }
    let config: Config = Value::Table(doc)
        .try_into()
        .context("invalid configuration (see docs/OPERATIONS.md for every key)")?;
    config.trusted_proxy_nets().map_err(anyhow::Error::msg)?;
    if config.listen.parse::<std::net::SocketAddr>().is_err() {
        bail!("listen: {:?} is not an address such as 0.0.0.0:8080", config.listen);
    }
    check_ranges(&config)?;
    config.turn.embedded().map_err(anyhow::Error::msg)?;
    check_cors_origins(&config.cors_origins)?;
    Ok(config)
}

/// Ten years in seconds: the longest lifetime, window or interval accepted. Larger values only
/// overflow the server's time arithmetic.
pub const MAX_SECONDS: u64 = 3650 * 24 * 3600;

/// Refuses values outside what the server can use, naming the key and its variable.
fn check_ranges(c: &Config) -> Result<()> {
    let seconds = 1..=MAX_SECONDS;
    let checks: [(&str, u64, std::ops::RangeInclusive<u64>, &str); 23] = [
        ("auth.access_token_ttl_s", c.auth.access_token_ttl_s, seconds.clone(), " seconds"),
        ("auth.refresh_token_ttl_s", c.auth.refresh_token_ttl_s, seconds.clone(), " seconds"),
        (
            "auth.min_password_length",
            u64::try_from(c.auth.min_password_length).unwrap_or(u64::MAX),
            1..=1024,
            " characters",
        ),
        (
            "capacity.disk_threshold_percent",
            c.capacity.disk_threshold_percent.into(),
            1..=100,
            " %",
        ),
        (
            "capacity.memory_threshold_percent",
            c.capacity.memory_threshold_percent.into(),
            1..=100,
            " %",
        ),
        ("capacity.active_window_s", c.capacity.active_window_s, seconds.clone(), " seconds"),
        ("capacity.check_interval_s", c.capacity.check_interval_s, seconds.clone(), " seconds"),
        ("retention.sessions_days", c.retention.sessions_days, 0..=36_500, " days"),
        ("retention.messages_days", c.retention.messages_days, 0..=36_500, " days"),
        ("attachments.max_bytes", c.attachments.max_bytes, 1..=1 << 31, " bytes"),
        ("retention.cleanup_interval_s", c.retention.cleanup_interval_s, seconds, " seconds"),
        ("max_body_bytes", c.max_body_bytes, 1024..=u64::MAX, " bytes"),
        ("turn.default_ttl_s", c.turn.default_ttl_s, TurnTtl::MIN_S..=TurnTtl::MAX_S, " seconds"),
        ("realtime.auth_timeout_s", c.realtime.auth_timeout_s, 1..=3600, " seconds"),
        ("realtime.max_payload_bytes", c.realtime.max_payload_bytes, 16_384..=16_777_216, " bytes"),
        ("realtime.ping_interval_s", c.realtime.ping_interval_s, 1..=3600, " seconds"),
        ("realtime.ping_timeout_s", c.realtime.ping_timeout_s, 1..=3600, " seconds"),
        ("realtime.coalesce_us", c.realtime.coalesce_us, 0..=1_000, " microseconds"),
        (
            "realtime.coalesce_min_events_per_s",
            c.realtime.coalesce_min_events_per_s,
            1..=u64::MAX,
            " events per second",
        ),
        ("calls.ring_timeout_s", c.calls.ring_timeout_s, 1..=3600, " seconds"),
        ("calls.rejoin_grace_s", c.calls.rejoin_grace_s, 0..=3600, " seconds"),
        ("calls.idle_timeout_s", c.calls.idle_timeout_s, 1..=MAX_SECONDS, " seconds"),
        ("calls.token_ttl_s", c.calls.token_ttl_s, 60..=86_400, " seconds"),
    ];
    for (key, value, range, unit) in checks {
        if !range.contains(&value) {
            let var = env_name(&key.split('.').collect::<Vec<_>>());
            let allowed = if *range.end() == u64::MAX {
                format!("at least {}{unit}", range.start())
            } else {
                format!("from {} to {}{unit}", range.start(), range.end())
            };
            bail!("{key} ({var}) = {value} is out of range: it must be {allowed}");
        }
    }
    Ok(())
}

/// Each entry must be an origin as browsers send it (`https://host[:port]`), or `*` alone.
fn check_cors_origins(origins: &[String]) -> Result<()> {
    if origins.iter().any(|o| o == "*") {
        if origins.len() > 1 {
            bail!("cors_origins: \"*\" allows any origin and must be the only entry");
        }
        return Ok(());
    }
    for origin in origins {
        if let Err(why) = check_origin(origin) {
            bail!(
                "cors_origins: {origin:?} {why}; write an origin as scheme://host[:port], e.g. \
                 https://app.example.org, or \"*\" alone for any origin"
            );
        }
    }
    Ok(())
}

fn check_origin(origin: &str) -> std::result::Result<(), &'static str> {
    let (rest, default_port) = if let Some(rest) = origin.strip_prefix("https://") {
        (rest, "443")
    } else if let Some(rest) = origin.strip_prefix("http://") {
        (rest, "80")
    } else {
        return Err("does not start with http:// or https://");
    };
    if rest.contains(['/', '?', '#']) {
        return Err("has a path: an origin has none, not even a trailing /");
    }
    if rest.contains('@') {
        return Err("has user information");
    }
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or("has an unclosed [")?;
        if host.is_empty() || !host.chars().all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.') {
            return Err("has an invalid IPv6 address");
        }
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':').ok_or("has text after the ]")?)),
        }
    } else {
        match rest.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        }
    };
    if host.is_empty() {
        return Err("has no host");
    }
    if !host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ':')) {
        return Err("has characters a host name cannot have");
    }
    if host.chars().any(|c| c.is_ascii_uppercase()) {
        return Err("has upper-case letters: browsers send the host in lower case");
    }
    if let Some(port) = port {
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err("has an invalid port");
        }
        match port.parse::<u16>() {
            Ok(0) | Err(_) => return Err("has an invalid port"),
            Ok(_) if port == default_port => {
                return Err("names the scheme's default port, which browsers leave out");
            }
            Ok(_) => {}
        }
    }
    Ok(())
}

fn parse_env(raw: &str, default: &Value) -> Result<Value> {
    Ok(match default {
        Value::Integer(_) => Value::Integer(raw.trim().parse().context("expected a whole number")?),
        Value::Boolean(_) => Value::Boolean(match raw.trim() {
            "1" | "true" | "yes" | "on" => true,
            "0" | "false" | "no" | "off" => false,
            _ => bail!("expected true or false"),
        }),
        Value::Float(_) => Value::Float(raw.trim().parse().context("expected a number")?),
        Value::Array(_) => Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_owned()))
                .collect(),
        ),
        _ => Value::String(raw.to_owned()),
    })
}

fn merge(base: &mut Table, overlay: Table) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(Value::Table(b)), Value::Table(o)) => merge(b, o),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

fn set(doc: &mut Table, dotted: &str, value: Value) {
    let mut parts: Vec<&str> = dotted.split('.').collect();
    let Some(last) = parts.pop() else { return };
    let mut table = doc;
    for part in parts {
        let entry = table.entry(part).or_insert_with(|| Value::Table(Table::new()));
        let Value::Table(inner) = entry else { return };
        table = inner;
    }
    table.insert(last.to_owned(), value);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn defaults_need_no_file() {
        let c = load(None, &BTreeMap::new(), &[]).unwrap();
        assert_eq!(c.listen, "0.0.0.0:8080");
        assert_eq!(c.limits.max_registered_users, 50);
        assert_eq!(c.rate_limits.login_per_minute, 5);
    }

    #[test]
    fn layers_override_in_order_file_env_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("securevox.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9000\"\nlog_format = \"json\"\n[limits]\nmax_registered_users = 7\n\
             [rate_limits]\nlogin_per_minute = 9\n",
        )
        .unwrap();
        let e = env(&[
            ("SECUREVOX_RATE_LIMITS_LOGIN_PER_MINUTE", "11"),
            ("SECUREVOX_TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.1"),
            ("SECUREVOX_LISTEN", "127.0.0.1:9001"),
        ]);
        let c = load(Some(&file), &e, &[("listen", Some("127.0.0.1:9002".into()))]).unwrap();
        assert_eq!(c.limits.max_registered_users, 7, "file");
        assert_eq!(c.rate_limits.login_per_minute, 11, "env beats file");
        assert_eq!(c.listen, "127.0.0.1:9002", "flag beats env");
        assert_eq!(c.trusted_proxies, vec!["10.0.0.0/8", "192.0.2.1"]);
        assert_eq!(c.log_format, securevox_api::config::LogFormat::Json);
    }

    #[test]
    fn bad_values_are_clear_errors() {
        let e = env(&[("SECUREVOX_LIMITS_MAX_REGISTERED_USERS", "lots")]);
        let err = load(None, &e, &[]).unwrap_err();
        assert!(format!("{err:#}").contains("SECUREVOX_LIMITS_MAX_REGISTERED_USERS"), "{err:#}");

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "[limits]\nmax_users_typo = 3\n").unwrap();
        assert!(load(Some(&file), &BTreeMap::new(), &[]).is_err(), "unknown keys are refused");

        let e = env(&[("SECUREVOX_TRUSTED_PROXIES", "not-an-ip")]);
        assert!(load(None, &e, &[]).is_err());
    }

    #[test]
    fn out_of_range_values_are_refused_naming_the_key() {
        let refused = |var: &str, value: &str, key: &str| {
            let err = load(None, &env(&[(var, value)]), &[]).expect_err(var);
            let err = format!("{err:#}");
            assert!(err.contains(key) && err.contains(var), "{var}={value}: {err}");
        };
        let ten_years_and_a_second = (MAX_SECONDS + 1).to_string();
        for (var, key, bad) in [
            ("SECUREVOX_AUTH_ACCESS_TOKEN_TTL_S", "auth.access_token_ttl_s", "0"),
            ("SECUREVOX_AUTH_ACCESS_TOKEN_TTL_S", "auth.access_token_ttl_s", "9223372036854775807"),
            (
                "SECUREVOX_AUTH_REFRESH_TOKEN_TTL_S",
                "auth.refresh_token_ttl_s",
                &ten_years_and_a_second,
            ),
            ("SECUREVOX_AUTH_MIN_PASSWORD_LENGTH", "auth.min_password_length", "0"),
            ("SECUREVOX_AUTH_MIN_PASSWORD_LENGTH", "auth.min_password_length", "1025"),
            ("SECUREVOX_CAPACITY_DISK_THRESHOLD_PERCENT", "capacity.disk_threshold_percent", "0"),
            (
                "SECUREVOX_CAPACITY_MEMORY_THRESHOLD_PERCENT",
                "capacity.memory_threshold_percent",
                "101",
            ),
            ("SECUREVOX_CAPACITY_ACTIVE_WINDOW_S", "capacity.active_window_s", "0"),
            ("SECUREVOX_CAPACITY_CHECK_INTERVAL_S", "capacity.check_interval_s", "0"),
            ("SECUREVOX_RETENTION_SESSIONS_DAYS", "retention.sessions_days", "36501"),
            ("SECUREVOX_RETENTION_SESSIONS_DAYS", "retention.sessions_days", "213503982334601"),
            ("SECUREVOX_RETENTION_CLEANUP_INTERVAL_S", "retention.cleanup_interval_s", "0"),
            ("SECUREVOX_MAX_BODY_BYTES", "max_body_bytes", "1023"),
            ("SECUREVOX_REALTIME_COALESCE_US", "realtime.coalesce_us", "1001"),
            (
                "SECUREVOX_REALTIME_COALESCE_MIN_EVENTS_PER_S",
                "realtime.coalesce_min_events_per_s",
                "0",
            ),
        ] {
            refused(var, bad, key);
        }

        let limits = env(&[
            ("SECUREVOX_AUTH_ACCESS_TOKEN_TTL_S", "1"),
            ("SECUREVOX_AUTH_REFRESH_TOKEN_TTL_S", &MAX_SECONDS.to_string()),
            ("SECUREVOX_AUTH_MIN_PASSWORD_LENGTH", "1024"),
            ("SECUREVOX_CAPACITY_DISK_THRESHOLD_PERCENT", "100"),
            ("SECUREVOX_CAPACITY_MEMORY_THRESHOLD_PERCENT", "1"),
            ("SECUREVOX_RETENTION_SESSIONS_DAYS", "0"),
            ("SECUREVOX_RETENTION_CLEANUP_INTERVAL_S", "1"),
            ("SECUREVOX_MAX_BODY_BYTES", "1024"),
            ("SECUREVOX_REALTIME_COALESCE_US", "0"),
            ("SECUREVOX_REALTIME_COALESCE_MIN_EVENTS_PER_S", "1"),
        ]);
        let c = load(None, &limits, &[]).expect("the bounds themselves are allowed");
        assert_eq!(c.retention.sessions_days, 0);
        assert_eq!((c.realtime.coalesce_us, c.realtime.coalesce_min_events_per_s), (0, 1));
    }

    #[test]
    fn cors_origins_must_be_origins_or_a_lone_star() {
        let cors = |list: &str| load(None, &env(&[("SECUREVOX_CORS_ORIGINS", list)]), &[]);
        for good in [
            "*",
            "https://app.example.org",
            "http://localhost:3000, https://app.example.org",
            "http://127.0.0.1:8080",
            "http://[::1]:5173",
            "https://[2001:db8::1]",
        ] {
            let c = cors(good).unwrap_or_else(|e| panic!("{good}: {e:#}"));
            assert!(!c.cors_origins.is_empty());
        }
        for bad in [
            "https://app.example.org/",
            "https://app.example.org/path",
            "app.example.org",
            "ftp://app.example.org",
            "https://",
            "https://user@app.example.org",
            "https://App.Example.org",
            "https://app.example.org:0",
            "https://app.example.org:99999",
            "https://app.example.org:443",
            "http://app.example.org:",
            "https://app example.org",
            "http://[::1",
            "*, https://app.example.org",
        ] {
            let err = format!("{:#}", cors(bad).expect_err(bad));
            assert!(err.contains("cors_origins"), "{bad}: {err}");
        }
    }

    #[test]
    fn every_key_has_an_environment_variable() {
        let names: Vec<String> = keys().into_iter().map(|(_, var, _)| var).collect();
        for expected in [
            "SECUREVOX_LISTEN",
            "SECUREVOX_DATA_DIR",
            "SECUREVOX_DATABASE_URL",
            "SECUREVOX_AUTH_ACCESS_TOKEN_TTL_S",
            "SECUREVOX_LIMITS_MAX_CONCURRENT_CALLS",
        ] {
            assert!(names.iter().any(|n| n == expected), "{expected} missing");
        }
    }

    #[test]
    fn operations_doc_lists_every_key() {
        let doc = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/OPERATIONS.md"
        ))
        .unwrap();
        let missing: Vec<String> = keys()
            .into_iter()
            .map(|(_, var, _)| var)
            .filter(|v| !doc.contains(v.as_str()))
            .collect();
        assert!(missing.is_empty(), "docs/OPERATIONS.md does not mention {missing:?}");
    }
}
