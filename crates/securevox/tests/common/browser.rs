//! What the headless-Chromium tests need: Debian's Chromium, Node, and the playwright-core
//! scripts in `tests/browser` with their packages. Without them a test says it did not run and
//! passes, unless `SECUREVOX_TEST_REQUIRE_BROWSER=1` (set by CI): then it fails.

use std::path::{Path, PathBuf};
use std::process::Command;

/// `tests/browser`, where the scripts and their `node_modules` are.
pub fn scripts_dir() -> PathBuf {
    workspace().join("tests/browser")
}

/// The repository's root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The Chromium binary (`CHROMIUM`, else Debian's).
pub fn chromium() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

/// Why browser tests cannot run here, if they cannot.
pub fn missing_tool() -> Option<&'static str> {
    if !Path::new(&chromium()).exists() {
        return Some("chromium is not installed (apt-get install chromium)");
    }
    if Command::new("node").arg("--version").output().is_err() {
        return Some("node is not installed");
    }
    let modules = scripts_dir().join("node_modules");
    if !modules.join("playwright-core").is_dir() || !modules.join("socket.io-client").is_dir() {
        return Some("tests/browser/node_modules is missing (npm ci --prefix tests/browser)");
    }
    None
}

/// Why the web app's browser tests cannot run here, if they cannot: the browser tools, or the
/// built app (`web/dist`).
pub fn missing_app_tool() -> Option<&'static str> {
    missing_tool().or_else(|| {
        let index =
            std::fs::read_to_string(workspace().join("web/dist/index.html")).unwrap_or_default();
        (!index.contains("<div id=\"app\">")).then_some(
            "the web app is not built (npm ci --prefix web && npm run --prefix web build)",
        )
    })
}

/// Whether `test` can run given `missing` (a reason it cannot); under CI a missing tool fails.
pub fn can_run(test: &str, missing: Option<&str>) -> bool {
    let Some(reason) = missing else { return true };
    assert!(
        std::env::var("SECUREVOX_TEST_REQUIRE_BROWSER").as_deref() != Ok("1"),
        "SECUREVOX_TEST_REQUIRE_BROWSER=1 but {reason}"
    );
    eprintln!("{test} not run: {reason}");
    false
}

/// Runs `tests/browser/<script>` against `base` with `env` (plus `CHROMIUM`), bounded by
/// `timeout_s`; prints its log, fails the test if it fails, and returns its JSON summary (the
/// last line of its output), whose `ok` must be true.
pub async fn run_script(
    script: &str,
    base: &str,
    mut env: Vec<(&'static str, String)>,
    timeout_s: u32,
) -> serde_json::Value {
    let dir = scripts_dir();
    let path = dir.join(script).display().to_string();
    env.push(("CHROMIUM", chromium()));
    let started = std::time::Instant::now();
    let out = super::node::run_node(dir, vec![path, base.to_owned()], env, timeout_s).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stderr}{stdout}browser run took {:.1} s", started.elapsed().as_secs_f64());
    assert!(
        out.status.success(),
        "{script} failed ({}; 124 = timed out after {timeout_s} s):\n{stderr}{stdout}",
        out.status
    );
    let summary: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or_default())
            .unwrap_or_else(|e| panic!("no JSON summary line ({e}) in:\n{stdout}"));
    assert_eq!(summary["ok"], true, "{summary}");
    summary
}
