//! Periodic work (B1, P3, P4): removing dead sessions and watching capacity.

use crate::capacity;
use crate::config::Config;
use crate::state::AppState;
use securevox_domain::{clock, CapacityReport, Level};
use securevox_store::{Store, StoreError};
use serde::Serialize;
use std::time::Duration;
use tokio::sync::watch;

/// What one clean-up removed.
#[derive(Debug, Default, Serialize)]
pub struct CleanupReport {
    pub sessions_removed: u64,
    pub inbox_items_removed: u64,
    pub group_messages_removed: u64,
    pub key_packages_removed: u64,
    pub attachments_removed: u64,
    pub device_links_removed: u64,
}

/// Deletes sessions that expired or were revoked more than `retention.sessions_days` ago, and
/// chat deliveries done more than `retention.messages_days` ago: acknowledged inbox items,
/// group messages no inbox holds any more, claimed and expired KeyPackages, attachments; and
/// device link requests that expired.
pub async fn cleanup(store: &Store, config: &Config) -> Result<CleanupReport, StoreError> {
    let now = clock::now();
    let days = |n: u64| now - (n * 24 * 3600) as i64;
    let sessions_removed = store.delete_dead_sessions(days(config.retention.sessions_days)).await?;
    let delivered = days(config.retention.messages_days);
    let (inbox_items_removed, group_messages_removed) =
        store.prune_delivered(delivered, delivered).await?;
    let key_packages_removed = store.prune_key_packages(now, delivered).await?;
    let device_links_removed = store.prune_device_links(now).await?;
    let blobs = crate::blobs::Blobs::at(&config.data_dir);
    let gone = store.prune_attachments(delivered).await?;
    for id in &gone {
        if let Err(e) = blobs.delete(id).await {
            tracing::warn!(error = %e, attachment = %id, "deleting an attachment's blob failed");
        }
    }
    // Blobs nobody records (their conversation was deleted) go too, once an hour old so an
    // upload in progress is not taken for one.
    let recorded = store.attachment_ids().await?.into_iter().collect();
    let cutoff = std::time::SystemTime::now() - std::time::Duration::from_hours(1);
    let orphans = blobs.sweep(&recorded, cutoff).await.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "sweeping orphaned attachment blobs failed");
        0
    });
    Ok(CleanupReport {
        attachments_removed: gone.len() as u64 + orphans,
        sessions_removed,
        inbox_items_removed,
        group_messages_removed,
        key_packages_removed,
        device_links_removed,
    })
}

/// Runs the clean-up and the capacity check on their intervals until `shutdown` flips.
pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let secs = |s: u64| Duration::from_secs(s.max(1));
    let mut cleanup_tick = tokio::time::interval(secs(state.config.retention.cleanup_interval_s));
    let mut capacity_tick = tokio::time::interval(secs(state.config.capacity.check_interval_s));
    let mut last_level = Level::Ok;
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = cleanup_tick.tick() => clean_up(&state, "scheduled").await,
            _ = capacity_tick.tick() => {
                match capacity::report(&state.store, &state.config, Some(&state.live)).await {
                    Ok(report) => {
                        log_level_change(&report, last_level);
                        last_level = report.level;
                        relieve_resources(&state, &report).await;
                    }
                    Err(e) => tracing::error!(error = %e, "capacity check failed"),
                }
            }
        }
    }
}

fn log_level_change(report: &CapacityReport, last: Level) {
    let items: Vec<String> = report
        .usage
        .iter()
        .map(|u| (u.name.as_str(), u.level))
        .chain(report.resources.iter().map(|r| (r.name.as_str(), r.level)))
        .filter(|(_, level)| *level >= Level::Warning)
        .map(|(name, level)| format!("{name}={}", level.as_str()))
        .collect();
    if report.level >= Level::Warning {
        tracing::warn!(level = report.level.as_str(), items = %items.join(","), "capacity");
    } else if last != Level::Ok {
        tracing::info!(level = report.level.as_str(), "capacity back to normal");
    }
}

/// P3: when disk or memory is past its threshold, clean up now instead of waiting for the
/// next scheduled clean-up.
async fn relieve_resources(state: &AppState, report: &CapacityReport) {
    let pressed: Vec<&str> = report
        .resources
        .iter()
        .filter(|r| r.level >= Level::Critical)
        .map(|r| r.name.as_str())
        .collect();
    if pressed.is_empty() {
        return;
    }
    tracing::warn!(resources = %pressed.join(","), "resources past their threshold: cleaning up");
    clean_up(state, "resource pressure").await;
}

/// One clean-up pass of everything the server can shed: in-memory rate-limit and activity
/// entries, and sessions past retention.
async fn clean_up(state: &AppState, reason: &str) {
    state.limiters.prune();
    state.activity.prune();
    match cleanup(&state.store, &state.config).await {
        Ok(r) => tracing::info!(reason, sessions_removed = r.sessions_removed, "cleanup"),
        Err(e) => tracing::error!(reason, error = %e, "cleanup failed"),
    }
}
