//! Builds the capacity report (P1–P4) from the database, live counters and the machine.

use crate::config::Config;
use crate::runtime_settings;
use crate::state::LiveCounts;
use securevox_domain::capacity::Counts;
use securevox_domain::{clock, CapacityReport, ResourceUsage};
use securevox_store::{Store, StoreError};
use std::path::Path;
use std::sync::atomic::Ordering;
use sysinfo::{Disks, ProcessesToUpdate, System};

/// The report now. `live` is `None` outside the server (the CLI sees no calls).
pub async fn report(
    store: &Store,
    config: &Config,
    live: Option<&LiveCounts>,
) -> Result<CapacityReport, StoreError> {
    let now = clock::now();
    let (limits, _) = runtime_settings::limits(store, config).await?;
    let counts = Counts {
        registered_users: store.count_users().await?,
        active_users: store
            .count_users_seen_since(now - config.capacity.active_window_s as i64)
            .await?,
        daily_active_users: store.count_users_seen_since(now - 24 * 3600).await?,
        concurrent_calls: live.map_or(0, |l| l.active_calls.load(Ordering::Relaxed)),
        call_participants: live.map_or(0, |l| l.call_participants.load(Ordering::Relaxed)),
    };
    let data_dir = config.data_dir.clone();
    let (disk_threshold, memory_threshold) =
        (config.capacity.disk_threshold_percent, config.capacity.memory_threshold_percent);
    let (resources, resident) = tokio::task::spawn_blocking(move || {
        machine_resources(&data_dir, disk_threshold, memory_threshold)
    })
    .await
    .unwrap_or_default();
    Ok(CapacityReport::build(counts, limits, resources, resident, clock::rfc3339(now)))
}

/// Disk use of the volume holding `data_dir`, system memory use, and this process's resident
/// memory.
fn machine_resources(
    data_dir: &Path,
    disk_threshold: u8,
    memory_threshold: u8,
) -> (Vec<ResourceUsage>, u64) {
    let mut resources = Vec::new();
    let dir = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    let disks = Disks::new_with_refreshed_list();
    // The volume is the disk whose mount point is the longest prefix of the data directory.
    if let Some(disk) = disks
        .list()
        .iter()
        .filter(|d| dir.starts_with(d.mount_point()))
        .max_by_key(|d| d.mount_point().as_os_str().len())
    {
        let total = disk.total_space();
        let used = total.saturating_sub(disk.available_space());
        resources.push(ResourceUsage::new("disk", used, total, disk_threshold));
    }
    let mut system = System::new();
    system.refresh_memory();
    resources.push(ResourceUsage::new(
        "memory",
        system.used_memory(),
        system.total_memory(),
        memory_threshold,
    ));
    let resident = sysinfo::get_current_pid()
        .ok()
        .and_then(|pid| {
            system.refresh_processes(ProcessesToUpdate::Some(&[pid]), true);
            system.process(pid).map(sysinfo::Process::memory)
        })
        .unwrap_or(0);
    (resources, resident)
}
