//! The admin commands that work on the same data as `serve`, even while it runs: `user …`,
//! `check`, `cleanup`, `config`.

use anyhow::{anyhow, bail, Context, Result};
use securevox_api::{accounts, capacity, maintenance, runtime_settings, Config};
use securevox_domain::{CapacityReport, Level, Password, Role, Username};
use securevox_store::{AccountChange, Admission, InvitePolicy, Store, UserRecord};
use std::io::BufRead;
use std::time::Duration;

/// `securevox user add NAME [--admin] --password-stdin`: the account gets exactly the role asked
/// for, even as the first account (unlike registration through the API, where the first
/// account becomes admin).
pub async fn user_add(
    store: &Store,
    config: &Config,
    name: &str,
    admin: bool,
    display_name: Option<String>,
) -> Result<UserRecord> {
    let username = Username::try_from(name).map_err(|e| anyhow!("{e}"))?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).context("reading the password from stdin")?;
    let password =
        Password::new(line.trim_end_matches(['\r', '\n']), config.auth.min_password_length)
            .map_err(|e| anyhow!("{e}"))?;
    let (limits, _) = runtime_settings::limits(store, config).await?;
    let admission = Admission {
        max_users: limits.max_registered_users,
        invite: InvitePolicy::NotNeeded,
        first_user_is_admin: false,
    };
    let role = if admin { Role::Admin } else { Role::User };
    let (user, _) =
        accounts::create_user(store, username, password, display_name, role, &admission).await?;
    Ok(user)
}

/// After `user add`: a note on stderr when the server has no enabled admin yet, since nobody
/// could then create invites or manage accounts through the API.
pub async fn note_if_no_admin(store: &Store) -> Result<()> {
    if store.count_active_admins().await? == 0 {
        eprintln!(
            "note: no admin account exists yet; add one with: \
             securevox user add NAME --admin --password-stdin"
        );
    }
    Ok(())
}

pub async fn find_user(store: &Store, name: &str) -> Result<UserRecord> {
    store
        .user_by_username(&name.to_ascii_lowercase())
        .await?
        .ok_or_else(|| anyhow!("no user named {name:?}"))
}

pub async fn user_set_disabled(store: &Store, name: &str, disabled: bool) -> Result<()> {
    let user = find_user(store, name).await?;
    accounts::change_account(store, &user.id, &[AccountChange::SetDisabled(disabled)]).await?;
    Ok(())
}

pub async fn user_delete(store: &Store, name: &str) -> Result<()> {
    let user = find_user(store, name).await?;
    accounts::change_account(store, &user.id, &[AccountChange::Delete]).await?;
    Ok(())
}

pub fn print_users(users: &[UserRecord], json: bool) {
    if json {
        let rows: Vec<_> = users
            .iter()
            .map(|u| {
                serde_json::json!({
                    "id": u.id, "username": u.username, "display_name": u.display_name,
                    "role": u.role.as_str(), "disabled": u.is_disabled(),
                    "created_at": securevox_domain::clock::rfc3339(u.created_at),
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(rows));
        return;
    }
    println!("{:<32} {:<6} {:<9} created", "username", "role", "status");
    for u in users {
        println!(
            "{:<32} {:<6} {:<9} {}",
            u.username,
            u.role.as_str(),
            if u.is_disabled() { "disabled" } else { "active" },
            securevox_domain::clock::rfc3339(u.created_at)
        );
    }
}

/// `securevox check`: prints the report and returns its level.
pub async fn check_once(store: &Store, config: &Config, json: bool) -> Result<Level> {
    let report = capacity::report(store, config, None).await?;
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", render_report(&report));
    }
    Ok(report.level)
}

/// `securevox check --watch`: repeats the check until interrupted. A check that fails (say, the
/// database is briefly unreachable) is reported on stderr and the watch goes on.
pub async fn check_watch(store: &Store, config: &Config, json: bool, interval: u64) -> Result<()> {
    if interval == 0 {
        bail!("--interval must be at least 1 second");
    }
    let mut tick = tokio::time::interval(Duration::from_secs(interval));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // One listener for the whole watch, so a Ctrl-C during a check is not lost.
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    loop {
        tokio::select! {
            _ = &mut interrupted => return Ok(()),
            _ = tick.tick() => {}
        }
        tokio::select! {
            _ = &mut interrupted => return Ok(()),
            checked = check_once(store, config, json) => {
                if let Err(e) = checked {
                    eprintln!(
                        "error: {} check failed: {}; next try in {interval} s",
                        securevox_domain::clock::rfc3339(securevox_domain::clock::now()),
                        crate::flatten(e.as_ref())
                    );
                }
            }
        }
    }
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1024.0 * 1024.0 * 1024.0))
}

pub fn render_report(report: &CapacityReport) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "capacity: {} ({})",
        report.level.as_str().to_uppercase(),
        report.generated_at
    );
    for u in &report.usage {
        let limit = if u.limit == 0 { "unlimited".to_owned() } else { u.limit.to_string() };
        let _ = writeln!(
            out,
            "  {:<20} {:>6} / {:<9} {:>6.1}%  {}",
            u.name,
            u.used,
            limit,
            u.percent,
            u.level.as_str()
        );
    }
    for r in &report.resources {
        let _ = writeln!(
            out,
            "  {:<20} {:>9} / {:<9} {:>6.1}%  {} (clean-up above {}%)",
            r.name,
            gib(r.used_bytes),
            gib(r.total_bytes),
            r.percent,
            r.level.as_str(),
            r.threshold_percent
        );
    }
    let _ = writeln!(out, "  {:<20} {:>9}", "process_memory", gib(report.process_resident_bytes));
    out
}

/// `securevox cleanup`
pub async fn cleanup(store: &Store, config: &Config, json: bool) -> Result<()> {
    let report = maintenance::cleanup(store, config).await?;
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "removed {} expired or revoked sessions (ended more than {} days ago)",
            report.sessions_removed, config.retention.sessions_days
        );
        println!(
            "removed {} delivered inbox items, {} group messages, {} used or expired \
             KeyPackages and {} attachments (done more than {} days ago)",
            report.inbox_items_removed,
            report.group_messages_removed,
            report.key_packages_removed,
            report.attachments_removed,
            config.retention.messages_days
        );
    }
    Ok(())
}

/// `securevox config`: the effective configuration, secrets hidden (and the database
/// password, wherever the URL holds it).
pub fn print_config(config: &Config) -> Result<()> {
    let mut shown = config.clone();
    for secret in [
        &mut shown.auth.jwt_secret,
        &mut shown.metrics.token,
        &mut shown.turn.secret,
        &mut shown.turn.api_key,
    ] {
        if !secret.is_empty() {
            secret.0 = "<redacted>".into();
        }
    }
    shown.database_url = crate::redact_url(&shown.database_url);
    print!("{}", toml::to_string_pretty(&shown)?);
    Ok(())
}
