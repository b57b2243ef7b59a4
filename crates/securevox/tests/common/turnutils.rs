//! coturn's client tools (Debian package `coturn`) as real TURN clients in tests.

use std::process::{Child, Command, Stdio};

/// Whether `turnutils_uclient` and friends are installed. Missing tools skip the caller's test
/// with a note, unless `SECUREVOX_TEST_REQUIRE_COTURN=1` (CI), where they fail it.
pub fn available() -> bool {
    if Command::new("turnutils_uclient").arg("-h").output().is_ok() {
        return true;
    }
    assert!(
        std::env::var("SECUREVOX_TEST_REQUIRE_COTURN").as_deref() != Ok("1"),
        "SECUREVOX_TEST_REQUIRE_COTURN=1 but coturn's tools are not installed"
    );
    eprintln!("TURN interop not run: coturn's tools are not installed (apt-get install coturn)");
    false
}

/// A `turnutils_peer` echoing UDP on 127.0.0.1, killed on drop.
pub struct Peer {
    child: Child,
    pub port: u16,
}

impl Peer {
    pub fn start() -> Self {
        let port = {
            let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let child = Command::new("turnutils_peer")
            .args(["-L", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(200));
        Self { child, port }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `turnutils_uclient` against 127.0.0.1:`port` (bounded by a timeout) and returns what
/// it printed. `extra` are its flags: `-t` TCP, `-y` client to client, `-e`/`-r` a peer, `-c`
/// no channels.
pub fn uclient(port: u16, username: &str, password: &str, extra: &[&str]) -> String {
    let out = Command::new("timeout")
        .args(["60", "turnutils_uclient"])
        .args(extra)
        .args(["-p", &port.to_string(), "-u", username, "-w", password, "127.0.0.1"])
        .output()
        .unwrap();
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// Whether a uclient run sent something and got all of it back: its final tally
/// (`start_mclient: tot_send_msgs=N, tot_recv_msgs=N`) balances and it lost nothing.
pub fn relayed_all(output: &str) -> bool {
    matches!(tally(output), Some((sent, received)) if sent > 0 && sent == received)
        && output.contains("Total lost packets 0 (0.000000%)")
}

/// The messages a uclient run sent and received in all, from its final tally.
pub fn tally(output: &str) -> Option<(u64, u64)> {
    output.lines().rev().find_map(|line| {
        let rest = line.split("start_mclient: tot_send_msgs=").nth(1)?;
        let (sent, rest) = rest.split_once(", tot_recv_msgs=")?;
        Some((sent.trim().parse::<u64>().ok()?, rest.trim().parse::<u64>().ok()?))
    })
}

/// Runs `turnutils_stunclient` against 127.0.0.1:`port`; its output, if it got an answer.
pub fn stunclient(port: u16) -> Option<String> {
    let out = Command::new("timeout")
        .args(["2", "turnutils_stunclient", "-p", &port.to_string(), "127.0.0.1"])
        .output()
        .unwrap();
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}
