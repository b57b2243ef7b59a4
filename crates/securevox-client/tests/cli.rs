//! The `securevox-cli` binary against the real server, with `--json`.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use common::{TestServer, PASSWORD};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Runs the CLI (off the runtime's threads: the server runs on them meanwhile).
async fn cli(server: &str, profile: &Path, args: &[&str]) -> (bool, Value, String) {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_securevox-cli"));
    command
        .args(["--server", server, "--profile"])
        .arg(profile)
        .arg("--json")
        .args(args)
        .env("SECUREVOX_PASSWORD", PASSWORD);
    let output = tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let value = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (output.status.success(), value, stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_send_and_read_with_the_cli() {
    let server = TestServer::start().await;
    let dirs = tempfile::tempdir().unwrap();
    let alice: PathBuf = dirs.path().join("alice");
    let bob: PathBuf = dirs.path().join("bob");
    let base = server.base.as_str();

    let (ok, body, err) = cli(base, &alice, &["register", "alice"]).await;
    assert!(ok, "{err}");
    assert_eq!(body["username"], "alice");
    let profile: Value =
        serde_json::from_str(&std::fs::read_to_string(alice.join("profile.json")).unwrap())
            .unwrap();
    let invite = server.invite(profile["access_token"].as_str().unwrap()).await;

    // Without the invite bob is refused, with the server's error code.
    let (ok, _, err) = cli(base, &bob, &["register", "bob"]).await;
    assert!(!ok);
    let error: Value = serde_json::from_str(err.trim()).unwrap();
    assert!(error["error"]["code"].is_string(), "{err}");
    let _ = std::fs::remove_dir_all(&bob);
    let (ok, _, err) = cli(base, &bob, &["register", "bob", "--invite", &invite]).await;
    assert!(ok, "{err}");

    let (ok, body, err) = cli(base, &alice, &["group", "create", "team", "bob"]).await;
    assert!(ok, "{err}");
    let id = body["conversation_id"].as_str().unwrap().to_owned();
    let (ok, body, err) = cli(base, &alice, &["send", &id, "hello from the cli"]).await;
    assert!(ok, "{err}");
    assert_eq!(body["content"]["body"], "hello from the cli");

    let (ok, body, err) = cli(base, &bob, &["messages", &id]).await;
    assert!(ok, "{err}");
    let messages = body.as_array().unwrap();
    assert_eq!(messages.len(), 1, "{body}");
    assert_eq!(
        messages[0]["content"],
        serde_json::json!({"type": "text", "body": "hello from the cli"})
    );
    assert_eq!(messages[0]["outgoing"], false);

    let (_, a, _) = cli(base, &alice, &["safety-number", "bob"]).await;
    let (_, b, _) = cli(base, &bob, &["safety-number", "alice"]).await;
    assert_eq!(a["safety_number"], b["safety_number"]);
    let (ok, devices, _) = cli(base, &bob, &["devices"]).await;
    assert!(ok);
    assert_eq!(devices.as_array().unwrap().len(), 1);
    server.stop().await;
}

/// The CLI as a child process whose stdout lines (JSON) arrive on a channel.
struct Running {
    child: std::process::Child,
    lines: tokio::sync::mpsc::UnboundedReceiver<Value>,
}

impl Running {
    fn start(server: &str, profile: &Path, args: &[&str]) -> Self {
        use std::io::BufRead as _;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_securevox-cli"))
            .args(["--server", server, "--profile"])
            .arg(profile)
            .arg("--json")
            .args(args)
            .env("SECUREVOX_PASSWORD", PASSWORD)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(value) = serde_json::from_str(&line) {
                    let _ = tx.send(value);
                }
            }
        });
        Self { child, lines }
    }

    async fn next(&mut self, want: impl Fn(&Value) -> bool) -> Value {
        let found = tokio::time::timeout(std::time::Duration::from_secs(20), async {
            loop {
                let line = self.lines.recv().await.expect("the CLI exited");
                if want(&line) {
                    return line;
                }
            }
        });
        found.await.expect("the expected output did not come")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_a_device_listen_and_react_with_the_cli() {
    let server = TestServer::start().await;
    let dirs = tempfile::tempdir().unwrap();
    let (alice, phone, bob) =
        (dirs.path().join("alice"), dirs.path().join("phone"), dirs.path().join("bob"));
    let base = server.base.as_str();
    assert!(cli(base, &alice, &["register", "alice"]).await.0);
    let profile: Value =
        serde_json::from_str(&std::fs::read_to_string(alice.join("profile.json")).unwrap())
            .unwrap();
    let invite = server.invite(profile["access_token"].as_str().unwrap()).await;
    assert!(cli(base, &bob, &["register", "bob", "--invite", &invite]).await.0);
    let (_, body, _) = cli(base, &alice, &["group", "create", "team", "bob"]).await;
    let id = body["conversation_id"].as_str().unwrap().to_owned();

    // Logging in on the phone prints a code and waits; the laptop approves it.
    let mut linking = Running::start(base, &phone, &["login", "alice"]);
    let asked = linking.next(|l| l.get("link_code").is_some()).await;
    let code = asked["link_code"].as_str().unwrap().to_owned();
    let (ok, listed, err) = cli(base, &alice, &["link", "list"]).await;
    assert!(ok, "{err}");
    assert_eq!(listed[0]["code"], code.replace(' ', ""));
    let (ok, _, err) = cli(base, &alice, &["link", "approve", "0000000000000000"]).await;
    assert!(!ok && err.contains("no pending link request"), "{err}");
    let (ok, device, err) = cli(base, &alice, &["link", "approve", &code]).await;
    assert!(ok, "{err}");
    let done = linking.next(|l| l.get("device_id").is_some()).await;
    assert_eq!(done["device_id"], device["id"]);

    // The phone listens; bob's message arrives live.
    let mut listener = Running::start(base, &phone, &["listen"]);
    listener.next(|l| l["connected"] == true).await;
    assert!(cli(base, &bob, &["sync"]).await.0, "bob joins, and sees the phone join");
    let (ok, sent, err) = cli(base, &bob, &["send", &id, "hi phone"]).await;
    assert!(ok, "{err}");
    let got = listener.next(|l| l["content"]["body"] == "hi phone").await;
    assert_eq!(got["seq"], sent["seq"]);

    // Reactions and edits show in everyone's timeline.
    let seq = sent["seq"].to_string();
    assert!(cli(base, &alice, &["react", &id, &seq, "👍"]).await.0);
    assert!(cli(base, &bob, &["edit", &id, &seq, "hi, phone"]).await.0);
    let (ok, timeline, err) = cli(base, &bob, &["timeline", &id]).await;
    assert!(ok, "{err}");
    let entry = &timeline.as_array().unwrap()[0];
    assert_eq!(entry["message"]["content"]["body"], "hi, phone");
    assert_eq!(entry["edited"], true);
    assert_eq!(entry["reactions"]["👍"].as_array().unwrap().len(), 1);
    let (ok, _, err) = cli(base, &alice, &["edit", &id, &seq, "not mine"]).await;
    assert!(!ok && err.contains("not one of yours"), "{err}");
}
