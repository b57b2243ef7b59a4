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
