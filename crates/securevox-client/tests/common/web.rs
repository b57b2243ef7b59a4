//! Running a vitest file of the web client (`web/tests/interop/*.test.ts`) against a test
//! server, with this crate's `securevox-cli` at hand.

use std::path::PathBuf;
use std::process::Command;

/// `web/`, when Node and its packages are there; `None` (the test did not run) otherwise,
/// unless `SECUREVOX_TEST_REQUIRE_NODE=1` (set by CI): then it fails.
pub fn web_dir(test: &str) -> Option<PathBuf> {
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
    eprintln!("{test} not run: node or web/node_modules missing (npm ci --prefix web)");
    None
}

/// Runs `web/<file>` with vitest against the server at `base` (`SECUREVOX_URL`), the CLI
/// binary in `SECUREVOX_CLI`; fails the test if it fails or skipped itself.
pub async fn run_vitest(dir: PathBuf, file: &str, base: &str) {
    let mut command = Command::new("node");
    command
        .arg("node_modules/vitest/vitest.mjs")
        .args(["run", file, "--reporter=verbose"])
        .current_dir(dir)
        .env("SECUREVOX_URL", base)
        .env("SECUREVOX_CLI", env!("CARGO_BIN_EXE_securevox-cli"))
        .env("NO_COLOR", "1");
    // Off the runtime's threads: the server runs on them meanwhile.
    let output = tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(output.status.success(), "{file} failed:\n{stdout}\n{stderr}");
    // A run that skipped itself (no SECUREVOX_URL reaching it) must not pass silently.
    assert!(!stdout.contains("skipped"), "{file} did not run:\n{stdout}");
    assert!(stdout.contains("Tests") && stdout.contains("passed"), "{stdout}");
}
