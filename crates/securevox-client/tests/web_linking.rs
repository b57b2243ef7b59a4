//! Device linking between the web client's protocol core (`web/src/core/linking.ts`) and
//! this crate's `securevox-cli` through the real server: `web/tests/interop/linking.test.ts`,
//! run here with vitest against a server started on port 0 with no account. A CLI user's new
//! web device is linked by the CLI approving its code, reads what is sent afterwards and
//! writes back; the web device then approves a new CLI device of the same user. Also pins the
//! link-code vectors `web/tests/unit/linking.test.ts` asserts for the TypeScript port.
//!
//! Needs Node and `npm ci --prefix web`; without them the test says it did not run, unless
//! `SECUREVOX_TEST_REQUIRE_NODE=1` (set by CI), which makes it fail instead.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use common::TestServer;
use securevox_client::safety;
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::process::Command;

fn web_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../web");
    let ready = dir.join("node_modules/vitest").is_dir()
        && dir.join("node_modules/ts-mls").is_dir()
        && Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success());
    if ready {
        return Some(dir);
    }
    assert!(
        std::env::var("SECUREVOX_TEST_REQUIRE_NODE").as_deref() != Ok("1"),
        "SECUREVOX_TEST_REQUIRE_NODE=1 but node or web/node_modules is missing"
    );
    eprintln!("web linking test not run: node or web/node_modules missing (npm ci --prefix web)");
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_and_cli_devices_link_each_other_through_the_server() {
    let Some(dir) = web_dir() else { return };
    let server = TestServer::start().await;
    let mut command = Command::new("node");
    command
        .arg("node_modules/vitest/vitest.mjs")
        .args(["run", "tests/interop/linking.test.ts", "--reporter=verbose"])
        .current_dir(&dir)
        .env("SECUREVOX_URL", &server.base)
        .env("SECUREVOX_CLI", env!("CARGO_BIN_EXE_securevox-cli"))
        .env("NO_COLOR", "1");
    // Off the runtime's threads: the server runs on them meanwhile.
    let output = tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(output.status.success(), "the web linking test failed:\n{stdout}\n{stderr}");
    // A run that skipped itself (no SECUREVOX_URL reaching it) must not pass silently.
    assert!(!stdout.contains("skipped"), "the web linking test did not run:\n{stdout}");
    assert!(stdout.contains("Tests") && stdout.contains("passed"), "{stdout}");
    server.stop().await;
}

/// The vectors `web/tests/unit/linking.test.ts` asserts for the TypeScript port.
#[test]
fn link_code_vectors_of_the_web_tests() {
    let signature_key = Sha256::digest(b"signature key");
    let transfer_key = Sha256::digest(b"transfer key");
    assert_eq!(safety::link_code(&signature_key, &transfer_key), "4578854807991817");
    assert_eq!(safety::link_code(&transfer_key, &signature_key), "0238535201210749");
}
