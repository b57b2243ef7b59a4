//! Loads the configuration: built-in defaults, then an optional TOML file, then `SECUREVOX_*`
//! environment variables, then command-line flags — each layer overriding the one before.
//!
//! The environment mapping is derived from the defaults themselves: every leaf key
//! `section.name` is read from `SECUREVOX_SECTION_NAME`, parsed as the type its default has
//! (lists comma-separated). So a new option is settable from the environment with no extra code.

use anyhow::{bail, Context, Result};
use securevox_api::Config;
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
        bail!(
            "listen: {:?} is not an address such as 0.0.0.0:8080",
            config.listen
        );
    }
    Ok(config)
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
        let entry = table
            .entry(part)
            .or_insert_with(|| Value::Table(Table::new()));
        let Value::Table(inner) = entry else { return };
        table = inner;
    }
    table.insert(last.to_owned(), value);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
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
        let c = load(
            Some(&file),
            &e,
            &[("listen", Some("127.0.0.1:9002".into()))],
        )
        .unwrap();
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
        assert!(
            format!("{err:#}").contains("SECUREVOX_LIMITS_MAX_REGISTERED_USERS"),
            "{err:#}"
        );

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "[limits]\nmax_users_typo = 3\n").unwrap();
        assert!(
            load(Some(&file), &BTreeMap::new(), &[]).is_err(),
            "unknown keys are refused"
        );

        let e = env(&[("SECUREVOX_TRUSTED_PROXIES", "not-an-ip")]);
        assert!(load(None, &e, &[]).is_err());
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
        assert!(
            missing.is_empty(),
            "docs/OPERATIONS.md does not mention {missing:?}"
        );
    }
}
