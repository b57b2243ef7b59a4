//! The capacity profile (P1–P4): configurable limits, how full the server is, and the level
//! that follows. The free-tier numbers of the original deployment are the defaults; 0 means
//! "no limit".

use serde::{Deserialize, Serialize};

/// Limits that the capacity guard enforces. Every field: 0 = unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Registered accounts; registration is refused at the limit.
    pub max_registered_users: u64,
    /// Users active at the same time (seen within the active window).
    pub max_active_users: u64,
    /// Distinct users seen in the last 24 hours.
    pub max_daily_active_users: u64,
    /// Calls in progress at once; new calls are refused at the limit.
    pub max_concurrent_calls: u64,
    /// Participants in one call.
    pub max_participants_per_call: u64,
    /// Participants across all calls.
    pub max_call_participants_total: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_registered_users: 50,
            max_active_users: 15,
            max_daily_active_users: 30,
            max_concurrent_calls: 10,
            max_participants_per_call: 4,
            max_call_participants_total: 40,
        }
    }
}

/// How close to a limit the server is. Ordered: a report's level is its worst item's level.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Ok,
    /// At or above 80 % of a limit.
    Warning,
    /// At or above 94 % of a limit, or a resource past its threshold.
    Critical,
    /// At 100 %: the guarded action is refused.
    Blocked,
}

impl Level {
    pub const WARNING_PERCENT: f64 = 80.0;
    pub const CRITICAL_PERCENT: f64 = 94.0;

    /// Level for `used` out of `limit` (0 = unlimited, always `Ok`).
    pub fn for_usage(used: u64, limit: u64) -> Self {
        if limit == 0 {
            return Self::Ok;
        }
        let percent = percent(used, limit);
        if used >= limit {
            Self::Blocked
        } else if percent >= Self::CRITICAL_PERCENT {
            Self::Critical
        } else if percent >= Self::WARNING_PERCENT {
            Self::Warning
        } else {
            Self::Ok
        }
    }

    /// Exit status of `securevox check`: 0 ok, 1 warning, 2 critical or blocked.
    pub fn exit_code(self) -> u8 {
        match self {
            Self::Ok => 0,
            Self::Warning => 1,
            Self::Critical | Self::Blocked => 2,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Warning => "warning",
            Self::Critical => "critical",
            Self::Blocked => "blocked",
        }
    }
}

fn percent(used: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        (used as f64 * 1000.0 / total as f64).round() / 10.0
    }
}

/// One counted quantity against its limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Usage {
    pub name: String,
    pub used: u64,
    /// 0 = unlimited.
    pub limit: u64,
    pub percent: f64,
    pub level: Level,
}

impl Usage {
    pub fn new(name: &str, used: u64, limit: u64) -> Self {
        Self {
            name: name.to_owned(),
            used,
            limit,
            percent: if limit == 0 { 0.0 } else { percent(used, limit) },
            level: Level::for_usage(used, limit),
        }
    }
}

/// A machine resource (disk of the data volume, memory) against its clean-up threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ResourceUsage {
    pub name: String,
    pub used_bytes: u64,
    pub total_bytes: u64,
    pub percent: f64,
    pub threshold_percent: u8,
    /// `critical` once past the threshold (clean-up needed), else `ok`.
    pub level: Level,
}

impl ResourceUsage {
    pub fn new(name: &str, used_bytes: u64, total_bytes: u64, threshold_percent: u8) -> Self {
        let pct = percent(used_bytes, total_bytes);
        let level = if total_bytes > 0 && pct >= f64::from(threshold_percent) {
            Level::Critical
        } else {
            Level::Ok
        };
        Self {
            name: name.to_owned(),
            used_bytes,
            total_bytes,
            percent: pct,
            threshold_percent,
            level,
        }
    }
}

/// Counts the report is built from; the calls part is filled in by the call service.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub registered_users: u64,
    pub active_users: u64,
    pub daily_active_users: u64,
    pub concurrent_calls: u64,
    pub call_participants: u64,
}

/// The capacity report: every counted quantity and resource, and the worst level among them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CapacityReport {
    pub level: Level,
    pub generated_at: String,
    pub usage: Vec<Usage>,
    pub resources: Vec<ResourceUsage>,
    /// Resident memory of the server process measuring (bytes).
    pub process_resident_bytes: u64,
    pub limits: Limits,
}

impl CapacityReport {
    pub fn build(
        counts: Counts,
        limits: Limits,
        resources: Vec<ResourceUsage>,
        process_resident_bytes: u64,
        generated_at: String,
    ) -> Self {
        let usage = vec![
            Usage::new("registered_users", counts.registered_users, limits.max_registered_users),
            Usage::new("active_users", counts.active_users, limits.max_active_users),
            Usage::new(
                "daily_active_users",
                counts.daily_active_users,
                limits.max_daily_active_users,
            ),
            Usage::new("concurrent_calls", counts.concurrent_calls, limits.max_concurrent_calls),
            Usage::new(
                "call_participants",
                counts.call_participants,
                limits.max_call_participants_total,
            ),
        ];
        let level = usage
            .iter()
            .map(|u| u.level)
            .chain(resources.iter().map(|r| r.level))
            .max()
            .unwrap_or(Level::Ok);
        Self { level, generated_at, usage, resources, process_resident_bytes, limits }
    }

    pub fn usage(&self, name: &str) -> Option<&Usage> {
        self.usage.iter().find(|u| u.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_follow_the_seed_thresholds() {
        assert_eq!(Level::for_usage(39, 50), Level::Ok);
        assert_eq!(Level::for_usage(40, 50), Level::Warning);
        assert_eq!(Level::for_usage(46, 50), Level::Warning);
        assert_eq!(Level::for_usage(47, 50), Level::Critical);
        assert_eq!(Level::for_usage(50, 50), Level::Blocked);
        assert_eq!(Level::for_usage(70, 50), Level::Blocked);
        assert_eq!(Level::for_usage(1_000_000, 0), Level::Ok, "0 means unlimited");
    }

    #[test]
    fn exit_codes_match_the_check_command_contract() {
        assert_eq!(Level::Ok.exit_code(), 0);
        assert_eq!(Level::Warning.exit_code(), 1);
        assert_eq!(Level::Critical.exit_code(), 2);
        assert_eq!(Level::Blocked.exit_code(), 2);
    }

    #[test]
    fn report_level_is_the_worst_item() {
        let counts = Counts { registered_users: 41, ..Counts::default() };
        let report = CapacityReport::build(counts, Limits::default(), vec![], 0, String::new());
        assert_eq!(report.level, Level::Warning);
        assert!((report.usage("registered_users").unwrap().percent - 82.0).abs() < 1e-9);

        let full_disk = ResourceUsage::new("disk", 81, 100, 80);
        assert_eq!(full_disk.level, Level::Critical);
        let report =
            CapacityReport::build(counts, Limits::default(), vec![full_disk], 0, String::new());
        assert_eq!(report.level, Level::Critical);
    }
}
