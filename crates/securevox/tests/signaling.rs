//! Real-time signaling driven by the official `socket.io-client` (Node) against the real server:
//! the scenarios live in `tests/socketio/*.test.mjs` (node:test); this test starts the server on
//! each backend, gives the scripts its URL, an admin token and the signing key (to forge expired
//! tokens), and fails with their report if any scenario fails.
//!
//! Needs Node and `npm ci --prefix tests/socketio`. Without them the test says it did not run,
//! unless `SECUREVOX_TEST_REQUIRE_NODE=1` (set by CI), which makes it fail instead.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use common::{Backend, TestServer};
use securevox_api::config::Secret;
use securevox_domain::RegistrationMode;
use std::path::PathBuf;

const JWT_SECRET: &str = "signaling-test-signing-key-0123456789abcdef";

async fn socketio_client_scenarios(backend: Backend) {
    let Some(dir) = common::node::socketio_scripts() else { return };
    let server = TestServer::start_with(backend, |c| {
        c.auth.registration = RegistrationMode::Open;
        c.auth.jwt_secret = Secret(JWT_SECRET.into());
        // Short timers so ringing, reconnect and auth time-outs are seen in seconds.
        c.realtime.auth_timeout_s = 1;
        c.calls.ring_timeout_s = 2;
        c.calls.rejoin_grace_s = 2;
        // Every scenario registers users of its own: more than the free profile's 50.
        c.limits.max_registered_users = 500;
    })
    .await;
    let admin = server.admin().await;
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".test.mjs"))
        .collect();
    files.sort();
    let mut args: Vec<String> =
        ["--test", "--test-concurrency=1", "--test-reporter=spec"].map(String::from).to_vec();
    args.extend(files.iter().map(|f| f.display().to_string()));
    let env = vec![
        ("SECUREVOX_URL", server.base.clone()),
        ("SECUREVOX_ADMIN_TOKEN", admin.access.clone()),
        ("SECUREVOX_JWT_SECRET", JWT_SECRET.to_owned()),
    ];
    let output = common::node::run_node(dir, args, env, 300).await;
    let report = String::from_utf8_lossy(&output.stdout);
    let errors = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "socket.io-client scenarios failed:\n{report}\n{errors}");
    assert!(report.contains("ℹ fail 0"), "no failures reported:\n{report}");
    assert!(!report.contains("ℹ pass 0"), "scenarios ran:\n{report}");
    println!("{report}");
    server.stop().await;
}

on_both_backends!(socketio_client_scenarios);
