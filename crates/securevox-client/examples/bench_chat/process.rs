//! What `/proc` says about a process (CPU time, resident memory) and about the whole machine
//! (busy CPU time), so the server's cost is read for the server process alone.

use std::time::Duration;

/// `USER_HZ`: the unit of the CPU times in `/proc` (100 on every Linux this runs on).
const TICKS_PER_SECOND: u64 = 100;

/// One reading of a process.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    /// utime + stime, in ticks.
    pub cpu_ticks: u64,
    /// VmRSS and VmHWM (peak resident), kB.
    pub rss_kb: u64,
    pub hwm_kb: u64,
}

impl Sample {
    /// Reads `/proc/<pid>` (`"self"` for this process); zeros if it is gone.
    pub fn read(pid: &str) -> Self {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // The command name may hold spaces: the fields that follow start after its ')'.
        let fields: Vec<&str> =
            stat.rsplit_once(") ").map(|(_, rest)| rest.split(' ').collect()).unwrap_or_default();
        let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
        // After the name: state is field 0, utime 11, stime 12.
        let cpu_ticks = field(11) + field(12);
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let kb = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        Self { cpu_ticks, rss_kb: kb("VmRSS:"), hwm_kb: kb("VmHWM:") }
    }

    /// CPU time used since `earlier`.
    pub fn cpu_since(&self, earlier: &Self) -> Duration {
        ticks(self.cpu_ticks.saturating_sub(earlier.cpu_ticks))
    }
}

/// Busy CPU time of the whole machine (user, nice, system, irq, softirq, steal), in ticks.
pub fn machine_busy_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = stat.lines().find(|l| l.starts_with("cpu ")) else { return 0 };
    let values: Vec<u64> = line.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    [0, 1, 2, 5, 6, 7].iter().filter_map(|&i| values.get(i)).sum()
}

pub fn ticks(n: u64) -> Duration {
    Duration::from_millis(n * 1000 / TICKS_PER_SECOND)
}

/// Waits (up to `patience`) until the whole machine, this benchmark and the server included,
/// uses less than `max_cores` over one second; returns the last reading, in cores.
pub async fn wait_quiet(max_cores: f64, patience: Duration) -> f64 {
    let deadline = std::time::Instant::now() + patience;
    loop {
        let before = machine_busy_ticks();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let busy = ticks(machine_busy_ticks() - before).as_secs_f64();
        if busy < max_cores || std::time::Instant::now() >= deadline {
            return busy;
        }
    }
}
