//! Chat delivery benchmark (issue 5): message send → the item pushed to every online member
//! device, for a small and a large MLS group, while many devices are connected.
//!
//! Drives a separately started `securevox serve` (so its CPU and memory are the server's alone);
//! `scripts/bench-chat.sh` starts one with the limits lifted and runs this. By hand:
//!
//! ```text
//! cargo run --release -p securevox-client --example bench_chat -- \
//!     run --url http://127.0.0.1:8080 --server-pid <pid>
//! cargo run --release -p securevox-client --example bench_chat -- summarize results.jsonl
//! ```
//!
//! Population: `--devices` users with one real device each (identity key, vouched device,
//! KeyPackages); for each `--groups size:messages`, `size` of them form a real MLS group (the
//! creator's Add Commit, the others join from the Welcome); the rest are in no conversation.
//! Every device holds one Socket.IO connection naming it (`auth: {token, deviceId}`).
//!
//! Per group, the creator sends: a warm-up (not judged), then each mode of `--modes`:
//! `isolated` (one at a time, the next once every member device has the last), `sequential`
//! (the next as soon as the server answers), `window` (up to `--window` in flight) — all three
//! encrypted ahead and timed from the HTTP request's start — and `client`
//! ([`securevox_client::Client::send_text`] one after the other, timed from the call, so MLS
//! encryption and the fsynced state save count too). "Delivered" is the `inbox` event on the
//! device's socket; decrypting is left to the check at the end, where some members sync and
//! must read every text in order. Before each run it waits for the machine to be quiet.
//!
//! Users are registered `--register-parallel` at a time (concurrent registrations once made
//! the server answer some with 500; docs/PERFORMANCE.md, "Chat delivery").

#![allow(clippy::too_many_lines)] // `run` reads best as the one script it is

mod measure;
mod population;
mod process;
mod report;
mod summary;

use anyhow::{bail, Context as _, Result};
use clap::{Parser, Subcommand};
use measure::{Anomalies, Pace, Poster};
use population::{Credentials, Group};
use process::Sample;
use report::{Cursors, Outcome, Readings, Run};
use securevox_client::{Client, Content};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the benchmark; one JSON line on stdout, a summary on stderr.
    Run(Args),
    /// A Markdown table of the runs in result files (medians over repetitions).
    Summarize { files: Vec<PathBuf> },
}

#[derive(clap::Args)]
struct Args {
    /// The server's base URL.
    #[arg(long)]
    url: String,
    /// The server's process id (its CPU and memory are read from /proc).
    #[arg(long)]
    server_pid: u32,
    /// Devices connected in all (group members included).
    #[arg(long, default_value_t = 1000)]
    devices: usize,
    /// Groups as `members:messages`, comma-separated.
    #[arg(long, default_value = "2:500,50:200", value_delimiter = ',')]
    groups: Vec<String>,
    #[arg(long, default_value = "isolated,sequential,window,client", value_delimiter = ',')]
    modes: Vec<String>,
    /// Requests in flight in the `window` mode.
    #[arg(long, default_value_t = 8)]
    window: usize,
    /// Messages sent before the judged runs of each group.
    #[arg(long, default_value_t = 20)]
    warmup: usize,
    /// Members per group (besides the sender) that decrypt everything at the end.
    #[arg(long, default_value_t = 3)]
    verify_devices: usize,
    /// Joins and connections in flight during set-up.
    #[arg(long, default_value_t = 16)]
    parallel: usize,
    /// Registrations in flight during set-up.
    #[arg(long, default_value_t = 8)]
    register_parallel: usize,
    /// Seconds of idle measurement with every device connected.
    #[arg(long, default_value_t = 5)]
    idle_s: u64,
    /// A run stops waiting when nothing arrived for this long (what is missing is lost).
    #[arg(long, default_value_t = 10)]
    stall_s: u64,
    /// Before each run, wait until the machine uses less than this many cores…
    #[arg(long, default_value_t = 0.15)]
    quiet_max_cores: f64,
    /// …but no longer than this many seconds.
    #[arg(long, default_value_t = 120)]
    quiet_wait_s: u64,
    /// Profiles go here (default: a temporary directory).
    #[arg(long)]
    work_dir: Option<PathBuf>,
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Run(args) => {
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            let result = runtime.block_on(run(args))?;
            println!("{result}");
            // the sockets' tasks end with the runtime, without closing handshakes
            runtime.shutdown_background();
            Ok(())
        }
        Command::Summarize { files } => summary::print(&files),
    }
}

fn parse_groups(specs: &[String]) -> Result<Vec<(usize, usize)>> {
    specs
        .iter()
        .map(|spec| {
            let (size, count) = spec.split_once(':').context("a group is members:messages")?;
            let size: usize = size.parse()?;
            if size < 2 {
                bail!("a group has at least 2 members");
            }
            Ok((size, count.parse()?))
        })
        .collect()
}

fn log(start: Instant, what: &str) {
    eprintln!("[bench_chat {:>6.1}s] {what}", start.elapsed().as_secs_f64());
}

async fn run(args: Args) -> Result<Value> {
    let t = Instant::now();
    let pid = args.server_pid.to_string();
    let groups = parse_groups(&args.groups)?;
    let members: usize = groups.iter().map(|g| g.0).sum();
    let Some(background) = args.devices.checked_sub(members) else {
        bail!("--devices {} is fewer than the groups' {members} members", args.devices);
    };
    let temp = tempfile::tempdir()?;
    let root = args.work_dir.clone().unwrap_or_else(|| temp.path().to_path_buf());
    let stall = Duration::from_secs(args.stall_s);
    let rss_start = Sample::read(&pid);

    // ---- set-up: users and devices, groups, sockets
    let mut names: Vec<String> = Vec::new();
    for (g, &(size, _)) in groups.iter().enumerate() {
        names.extend((0..size).map(|i| format!("g{g}-m{size}-{i}")));
    }
    names.extend((0..background).map(|i| format!("bg-{i}")));
    log(t, &format!("registering {} users, one device each", names.len()));
    let mut clients = population::register(&args.url, &root, names, args.register_parallel).await?;
    let registered_s = t.elapsed().as_secs_f64();
    let background_clients = clients.split_off(members);
    let mut formed: Vec<Group> = Vec::new();
    for (g, &(size, _)) in groups.iter().enumerate() {
        let rest = clients.split_off(size);
        let group_clients = std::mem::replace(&mut clients, rest);
        log(t, &format!("forming group {g} of {size} members"));
        formed.push(population::form_group(&format!("bench {size}"), group_clients, 8).await?);
    }
    let grouped_s = t.elapsed().as_secs_f64();
    let rss_registered = Sample::read(&pid);

    let mut credentials = Vec::with_capacity(args.devices);
    for client in formed.iter().flat_map(|g| &g.members).chain(&background_clients) {
        credentials.push(Credentials::of(client)?);
    }
    drop(background_clients);
    log(t, &format!("connecting {} devices over Socket.IO", credentials.len()));
    let sockets = population::connect(&args.url, credentials, args.parallel).await?;
    let connected_s = t.elapsed().as_secs_f64();
    let anomalies = Arc::new(Anomalies::default());
    let mut channels = Vec::new();
    let mut sockets = sockets.into_iter().enumerate();
    for group in &formed {
        let (tx, rx) = mpsc::unbounded_channel();
        for (device, live) in sockets.by_ref().take(group.members.len()) {
            measure::listen(live, device, Some(tx.clone()), anomalies.clone());
        }
        channels.push(rx);
    }
    for (device, live) in sockets {
        measure::listen(live, device, None, anomalies.clone());
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle0 = (Sample::read(&pid), Instant::now());
    tokio::time::sleep(Duration::from_secs(args.idle_s)).await;
    let rss_connected = Sample::read(&pid);
    let idle_cpu_ms_per_s =
        rss_connected.cpu_since(&idle0.0).as_secs_f64() * 1000.0 / idle0.1.elapsed().as_secs_f64();
    log(t, &format!("all connected; idle server CPU {idle_cpu_ms_per_s:.1} ms/s"));

    // ---- the runs
    let http = reqwest::Client::new();
    let mut runs: Vec<Run> = Vec::new();
    let mut verified = Vec::new();
    let mut first_device = 0;
    // one Welcome per joining member so far
    let mut inbox_rows: usize = groups.iter().map(|g| g.0 - 1).sum();
    for (g, (group, rx)) in formed.into_iter().zip(&mut channels).enumerate() {
        let (size, count) = groups[g];
        let Group { id, mut members } = group;
        let sender = members.remove(0);
        let devices: Vec<usize> = (first_device + 1..first_device + size).collect();
        first_device += size;
        let mut cursors: Cursors = devices
            .iter()
            .zip(&members)
            .map(|(&d, c)| (d, (0, c.profile().inbox_cursor)))
            .collect();
        let sender_dir = root.join(sender.username());
        let poster = Poster {
            http: http.clone(),
            url: format!("{}/api/v1/conversations/{id}/messages", args.url),
            token: sender.profile().access_token.clone(),
            device_id: sender.device_id()?.to_owned(),
        };
        drop(sender); // its state is read back from the profile to encrypt ahead
        let mut plan: Vec<(&'static str, Pace, usize)> =
            vec![("warmup", Pace::Window(1), args.warmup)];
        for mode in &args.modes {
            plan.push(match mode.as_str() {
                "isolated" => ("isolated", Pace::Isolated, count),
                "sequential" => ("sequential", Pace::Window(1), count),
                "window" => ("window", Pace::Window(args.window), count),
                "client" => ("client", Pace::Window(1), count),
                other => bail!("unknown mode {other}"),
            });
        }
        let text = |mode: &str, i: usize| format!("group {g} {mode} message {i}");
        let ahead: Vec<String> = plan
            .iter()
            .filter(|p| p.0 != "client")
            .flat_map(|&(mode, _, n)| (0..n).map(move |i| text(mode, i)))
            .collect();
        let mut bodies = measure::encrypt_ahead(&sender_dir, &id, &ahead)?.into_iter();
        let mut expected: BTreeMap<i64, String> = BTreeMap::new();
        for (mode, pace, n) in plan {
            let patience = Duration::from_secs(args.quiet_wait_s);
            let busy_before = process::wait_quiet(args.quiet_max_cores, patience).await;
            log(
                t,
                &format!(
                    "group of {size}: {mode}, {n} messages (machine {busy_before:.2} cores before)"
                ),
            );
            let texts: Vec<String> = (0..n).map(|i| text(mode, i)).collect();
            let mut client = if mode == "client" { Some(Client::open(&sender_dir)?) } else { None };
            let before = (Sample::read(&pid), Sample::read("self"), process::machine_busy_ticks());
            let started = Instant::now();
            let (sent, arrivals) = if let Some(client) = &mut client {
                measure::send_with_client(client, &id, &texts, size - 1, rx, stall).await?
            } else {
                let batch = bodies.by_ref().take(n).collect();
                measure::send_ready(&poster, batch, pace, size - 1, rx, stall).await?
            };
            let readings = Readings {
                server: (before.0, Sample::read(&pid)),
                bench: (before.1, Sample::read("self")),
                machine: (before.2, process::machine_busy_ticks()),
                wall: started.elapsed(),
            };
            expected.extend(sent.iter().map(|s| (s.seq, texts[s.index].clone())));
            let window = match pace {
                Pace::Isolated => 1,
                Pace::Window(w) => w,
            };
            let outcome = Outcome {
                group_size: size,
                mode,
                window,
                sent: &sent,
                arrivals: &arrivals,
                devices: &devices,
            };
            let mut judged = outcome.judge(&mut cursors, &readings);
            judged.inbox_rows_before = inbox_rows;
            judged.machine_cores_before = busy_before;
            inbox_rows += sent.len() * (size - 1);
            if mode != "warmup" {
                eprintln!("{}", judged.line());
            }
            runs.push(judged);
        }
        // ---- decrypting: members sync and must read every text, in order
        let expected: Vec<String> = expected.into_values().collect();
        for member in members.iter_mut().take(args.verify_devices) {
            let report = member.sync().await?;
            let texts: Vec<&str> = report
                .messages
                .iter()
                .filter_map(|m| match &m.content {
                    Content::Text { body } => Some(body.as_str()),
                    _ => None,
                })
                .collect();
            // Which runs the unreadable messages came from (texts are "group g <mode> message i").
            let mut missing: BTreeMap<&str, usize> = BTreeMap::new();
            for text in expected.iter().filter(|e| !texts.contains(&e.as_str())) {
                *missing.entry(text.split(' ').nth(2).unwrap_or("?")).or_default() += 1;
            }
            verified.push(json!({
                "group_size": size,
                "device": member.device_id()?,
                "decrypted": texts.len(),
                "expected": expected.len(),
                "in_order_and_complete": texts == expected,
                "missing_by_mode": missing,
                "first_errors": report.errors.iter().take(3).collect::<Vec<_>>(),
            }));
        }
    }
    let end = Sample::read(&pid);
    log(t, "done");
    let mb = |s: &Sample| (s.rss_kb as f64 / 102.4).round() / 10.0;
    Ok(json!({
        "bench": "chat-delivery",
        "devices": {
            "connected": args.devices,
            "group_members": members,
            "background": background,
            "what": "one registered user per device (identity key, vouched device, KeyPackages); \
                     one Socket.IO connection per device with auth {token, deviceId}; \
                     background devices are in no conversation",
        },
        "groups": args.groups,
        "window": args.window,
        "setup_s": {
            "register": registered_s,
            "groups": grouped_s - registered_s,
            "connect": connected_s - grouped_s,
        },
        "server_rss_mb": {
            "start": mb(&rss_start),
            "registered": mb(&rss_registered),
            "connected_idle": mb(&rss_connected),
            "end": mb(&end),
            "peak": (end.hwm_kb as f64 / 102.4).round() / 10.0,
        },
        "server_idle_cpu_ms_per_s": (idle_cpu_ms_per_s * 10.0).round() / 10.0,
        "server_cpu_s_total": end.cpu_since(&rss_start).as_secs_f64(),
        "sockets_disconnected": anomalies.disconnected.load(Ordering::Relaxed),
        "unexpected_events": anomalies.unexpected.load(Ordering::Relaxed),
        "runs": runs,
        "decrypt_check": verified,
    }))
}
