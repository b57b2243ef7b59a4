//! From what was sent and what arrived to the figures: latency percentiles, throughput, loss
//! and order per device, and the server's CPU per message.

use crate::measure::{Arrival, Sent};
use crate::process::Sample;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// Percentiles of a set of durations, in milliseconds.
#[derive(Debug, Default, Serialize)]
pub struct Spread {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Spread {
    fn of(mut values: Vec<Duration>) -> Self {
        values.sort_unstable();
        // nearest rank
        let at = |p: f64| {
            let rank = ((p / 100.0) * values.len() as f64).ceil() as usize;
            values.get(rank.max(1) - 1).map_or(0.0, |d| round(d.as_secs_f64() * 1000.0, 3))
        };
        Self { p50: at(50.0), p90: at(90.0), p99: at(99.0), max: at(100.0) }
    }
}

fn round(x: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (x * scale).round() / scale
}

/// Each member device's highest seq received and its last inbox item id, carried from one run
/// to the next so the order checks span them all.
pub type Cursors = HashMap<usize, (i64, i64)>;

/// The figures of one run of messages.
#[derive(Debug, Serialize)]
pub struct Run {
    pub group_size: usize,
    pub mode: &'static str,
    pub window: usize,
    pub messages: usize,
    pub receivers: usize,
    /// Request start (or `send_text` call) → the item on one member device's socket.
    pub per_device_ms: Spread,
    /// Request start → the item on every member device's socket (messages that got there).
    pub all_devices_ms: Spread,
    /// Request start → the server's answer.
    pub answer_ms: Spread,
    /// Messages over the time from the first request to the last delivery.
    pub messages_per_s: f64,
    pub delivered_items_per_s: f64,
    pub lost: usize,
    pub duplicates: usize,
    /// Items a device got after one with a higher seq (pushed out of order); items whose
    /// `prev` is not the device's item before them by id (a gap in its inbox chain).
    pub out_of_order: usize,
    pub gaps: usize,
    /// Items of other messages arriving during this run.
    pub stray: usize,
    /// Rows in the server's inbox table when the run started (every item this benchmark
    /// caused: Welcomes and messages times receivers; nothing else writes there).
    pub inbox_rows_before: usize,
    pub wall_s: f64,
    pub server_cpu_ms: f64,
    pub server_cpu_us_per_message: f64,
    pub server_cpu_us_per_item: f64,
    pub server_rss_kb_after: u64,
    pub bench_cpu_ms: f64,
    /// CPU used meanwhile by processes other than the server and the benchmark, in cores.
    pub other_cores: f64,
    /// CPU the whole machine used in the second before the run, in cores.
    pub machine_cores_before: f64,
}

/// What the process readings around a run were.
pub struct Readings {
    pub server: (Sample, Sample),
    pub bench: (Sample, Sample),
    /// Busy ticks of the whole machine.
    pub machine: (u64, u64),
    pub wall: Duration,
}

pub struct Outcome<'a> {
    pub group_size: usize,
    pub mode: &'static str,
    pub window: usize,
    pub sent: &'a [Sent],
    pub arrivals: &'a [Arrival],
    pub devices: &'a [usize],
}

impl Outcome<'_> {
    pub fn judge(&self, cursors: &mut Cursors, readings: &Readings) -> Run {
        let starts: HashMap<i64, Instant> = self.sent.iter().map(|s| (s.seq, s.start)).collect();
        let mut seen = HashSet::new();
        let (mut per_device, mut duplicates, mut stray) = (Vec::new(), 0, 0);
        let mut last_of: HashMap<i64, Instant> = HashMap::new();
        let mut count_of: HashMap<i64, usize> = HashMap::new();
        let (mut out_of_order, mut gaps) = (0, 0);
        let mut items_of: HashMap<usize, Vec<(i64, Option<i64>)>> = HashMap::new();
        for a in self.arrivals {
            let Some(start) = starts.get(&a.seq) else {
                stray += 1;
                continue;
            };
            if !seen.insert((a.device, a.seq)) {
                duplicates += 1;
                continue;
            }
            per_device.push(a.at - *start);
            *count_of.entry(a.seq).or_default() += 1;
            let last = last_of.entry(a.seq).or_insert(a.at);
            *last = (*last).max(a.at);
            let cursor = cursors.entry(a.device).or_insert((0, 0));
            out_of_order += usize::from(a.seq <= cursor.0);
            cursor.0 = cursor.0.max(a.seq);
            items_of.entry(a.device).or_default().push((a.id, a.prev));
        }
        // The inbox chain: in id order, each item names the one before it as `prev`.
        for (device, mut items) in items_of {
            items.sort_unstable();
            let cursor = cursors.entry(device).or_insert((0, 0));
            for (id, prev) in items {
                gaps += usize::from(prev != Some(cursor.1));
                cursor.1 = id;
            }
        }
        let receivers = self.devices.len();
        let complete: Vec<Duration> = self
            .sent
            .iter()
            .filter(|s| count_of.get(&s.seq) == Some(&receivers))
            .map(|s| last_of[&s.seq] - s.start)
            .collect();
        let first = self.sent.iter().map(|s| s.start).min();
        let end = last_of.values().copied().chain(self.sent.iter().map(|s| s.answered)).max();
        let span = match (first, end) {
            (Some(first), Some(end)) => (end - first).as_secs_f64(),
            _ => 0.0,
        };
        let rate = |n: usize| if span > 0.0 { round(n as f64 / span, 1) } else { 0.0 };
        let (server, bench) = (&readings.server, &readings.bench);
        let server_cpu = server.1.cpu_since(&server.0).as_secs_f64();
        let bench_cpu = bench.1.cpu_since(&bench.0).as_secs_f64();
        let machine = crate::process::ticks(readings.machine.1 - readings.machine.0).as_secs_f64();
        let messages = self.sent.len();
        let items = per_device.len();
        Run {
            group_size: self.group_size,
            mode: self.mode,
            window: self.window,
            messages,
            receivers,
            per_device_ms: Spread::of(per_device),
            all_devices_ms: Spread::of(complete),
            answer_ms: Spread::of(self.sent.iter().map(|s| s.answered - s.start).collect()),
            messages_per_s: rate(messages),
            delivered_items_per_s: rate(items),
            lost: messages * receivers - items,
            duplicates,
            out_of_order,
            gaps,
            stray,
            inbox_rows_before: 0,
            wall_s: round(readings.wall.as_secs_f64(), 3),
            server_cpu_ms: round(server_cpu * 1000.0, 1),
            server_cpu_us_per_message: round(server_cpu * 1e6 / messages.max(1) as f64, 1),
            server_cpu_us_per_item: round(server_cpu * 1e6 / items.max(1) as f64, 1),
            server_rss_kb_after: server.1.rss_kb,
            bench_cpu_ms: round(bench_cpu * 1000.0, 1),
            machine_cores_before: 0.0,
            other_cores: round(
                (machine - server_cpu - bench_cpu) / readings.wall.as_secs_f64().max(1e-9),
                2,
            ),
        }
    }
}

impl Run {
    /// One line of the human summary.
    pub fn line(&self) -> String {
        format!(
            "{:>3} members {:<10} {:>4} msgs: per device p50 {:>7.2} ms p99 {:>7.2} ms | all \
             devices p50 {:>7.2} p99 {:>7.2} ms | {:>7.1} msg/s {:>8.1} items/s | server \
             {:>6.0} µs/msg {:>5.0} µs/item | lost {} dup {} disorder {} gaps {} | others \
             {:.2} cores",
            self.group_size,
            self.mode,
            self.messages,
            self.per_device_ms.p50,
            self.per_device_ms.p99,
            self.all_devices_ms.p50,
            self.all_devices_ms.p99,
            self.messages_per_s,
            self.delivered_items_per_s,
            self.server_cpu_us_per_message,
            self.server_cpu_us_per_item,
            self.lost,
            self.duplicates,
            self.out_of_order,
            self.gaps,
            self.other_cores,
        )
    }
}
