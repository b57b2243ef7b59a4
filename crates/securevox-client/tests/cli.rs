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
