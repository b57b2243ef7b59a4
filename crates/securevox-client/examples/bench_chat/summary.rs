//! The `summarize` command: one Markdown table over the result lines of several repetitions.

use anyhow::Result;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Medians (and ranges) over the runs of every result line in `files`.
pub fn print(files: &[PathBuf]) -> Result<()> {
    let mut lines: Vec<Value> = Vec::new();
    for file in files {
        for line in std::fs::read_to_string(file)?.lines().filter(|l| l.starts_with('{')) {
            lines.push(serde_json::from_str(line)?);
        }
    }
    // rows by group size, then in the order the modes run
    let order = ["isolated", "sequential", "window", "client"];
    let mut by_run: BTreeMap<(u64, usize, String), Vec<&Value>> = BTreeMap::new();
    for run in lines.iter().flat_map(|l| l["runs"].as_array().into_iter().flatten()) {
        let mode = run["mode"].as_str().unwrap_or_default().to_owned();
        if mode != "warmup" {
            let rank = order.iter().position(|m| *m == mode).unwrap_or(order.len());
            let size = run["group_size"].as_u64().unwrap_or(0);
            by_run.entry((size, rank, mode)).or_default().push(run);
        }
    }
    let figure = |runs: &[&Value], path: &[&str]| {
        let mut values: Vec<f64> = runs
            .iter()
            .map(|r| path.iter().fold(*r, |v, k| &v[*k]))
            .filter_map(Value::as_f64)
            .collect();
        values.sort_by(f64::total_cmp);
        match values.as_slice() {
            [] => "–".to_owned(),
            [one] => format!("{one}"),
            all => format!("{} ({}–{})", all[all.len() / 2], all[0], all[all.len() - 1]),
        }
    };
    println!("runs per row: {}; median (min–max) over them\n", lines.len());
    println!(
        "| members | mode | msgs | per device p50 / p99 ms | all devices p50 / p99 ms | msg/s | \
         items/s | server µs/msg | server µs/item | lost / dup / disorder / gaps | others (cores) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for ((size, _, mode), runs) in &by_run {
        let faults: f64 = runs
            .iter()
            .map(|r| {
                ["lost", "duplicates", "out_of_order", "gaps"]
                    .iter()
                    .map(|k| r[*k].as_f64().unwrap_or(0.0))
                    .sum::<f64>()
            })
            .sum();
        println!(
            "| {size} | {mode} | {} | {} / {} | {} / {} | {} | {} | {} | {} | {} | {} |",
            figure(runs, &["messages"]),
            figure(runs, &["per_device_ms", "p50"]),
            figure(runs, &["per_device_ms", "p99"]),
            figure(runs, &["all_devices_ms", "p50"]),
            figure(runs, &["all_devices_ms", "p99"]),
            figure(runs, &["messages_per_s"]),
            figure(runs, &["delivered_items_per_s"]),
            figure(runs, &["server_cpu_us_per_message"]),
            figure(runs, &["server_cpu_us_per_item"]),
            if faults == 0.0 { "0".to_owned() } else { format!("{faults} (see the runs)") },
            figure(runs, &["other_cores"]),
        );
    }
    let top: Vec<&Value> = lines.iter().collect();
    println!(
        "\nserver RSS MB: start {}, users registered {}, {} devices connected {}, end {}, peak {}",
        figure(&top, &["server_rss_mb", "start"]),
        figure(&top, &["server_rss_mb", "registered"]),
        figure(&top, &["devices", "connected"]),
        figure(&top, &["server_rss_mb", "connected_idle"]),
        figure(&top, &["server_rss_mb", "end"]),
        figure(&top, &["server_rss_mb", "peak"])
    );
    println!(
        "server idle CPU with every device connected: {} ms/s",
        figure(&top, &["server_idle_cpu_ms_per_s"])
    );
    Ok(())
}
