//! Running Node scripts (the official socket.io-client, playwright-core) from a test.
//! Shared with `crates/securevox-client/tests` (by path), so it needs nothing else of
//! `common`.

/// Runs `node <args>` in `dir` with `env`, killed after `timeout_s`. The wait happens off the
/// runtime's threads: the server under test runs on them meanwhile.
pub async fn run_node(
    dir: std::path::PathBuf,
    args: Vec<String>,
    env: Vec<(&'static str, String)>,
    timeout_s: u32,
) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        std::process::Command::new("timeout")
            .args(["-k", "10", &timeout_s.to_string(), "node"])
            .args(&args)
            .envs(env)
            .current_dir(dir)
            .output()
            .expect("run node under timeout")
    })
    .await
    .expect("node runner")
}

/// `tests/socketio` (the official `socket.io-client` scenarios), if Node and its packages are
/// there. Without them: `None` (the caller says it did not run), unless
/// `SECUREVOX_TEST_REQUIRE_NODE=1` (set by CI), which fails instead.
#[allow(dead_code)] // not every test binary runs the scenarios
pub fn socketio_scripts() -> Option<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/socketio");
    let node_runs = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if node_runs && dir.join("node_modules/socket.io-client").is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var("SECUREVOX_TEST_REQUIRE_NODE").as_deref() != Ok("1"),
        "SECUREVOX_TEST_REQUIRE_NODE=1 but node or tests/socketio/node_modules is missing \
         (npm ci --prefix tests/socketio)"
    );
    eprintln!("socket.io-client scenarios not run: node or tests/socketio/node_modules missing");
    None
}
