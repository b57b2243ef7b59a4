//! The `securevox` binary as an operator uses it: `serve`, `user …` while the server runs,
//! `check` exit codes, `cleanup`, `config`.

#![allow(clippy::unwrap_used, clippy::too_many_lines)] // test code: a panic is the failure report

mod common;

use common::{Backend, TestDb, PASSWORD};
use reqwest::StatusCode;
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_securevox");

/// A `securevox` command on `data_dir` (and `database_url`, if PostgreSQL), with machine
/// resource thresholds out of the way so results depend only on the data.
fn securevox(data_dir: &Path, database_url: &str) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("SECUREVOX_CAPACITY_DISK_THRESHOLD_PERCENT", "100")
        .env("SECUREVOX_CAPACITY_MEMORY_THRESHOLD_PERCENT", "100")
        .env("SECUREVOX_LOG_LEVEL", "warn")
        // Tests run side by side: each server's embedded TURN takes a free port of its own.
        .env("SECUREVOX_TURN_PORT", "0")
        .env("SECUREVOX_TURN_LISTEN", "127.0.0.1")
        .arg("--data-dir")
        .arg(data_dir);
    if !database_url.starts_with("sqlite") {
        cmd.arg("--database-url").arg(database_url);
    }
    cmd
}

fn run(mut cmd: Command, stdin: Option<&str>) -> Output {
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn securevox");
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// A `securevox serve` child process; killed if the test fails before stopping it.
struct Served {
    child: Child,
    base: String,
}

impl Served {
    fn start(mut cmd: Command) -> Self {
        cmd.args(["serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("spawn serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let base = line.trim().strip_prefix("securevox listening on ").expect(&line).to_owned();
        Self { child, base }
    }

    /// Waits until the server answers /health. It prints its address only once the database
    /// is open and migrated, so the first try normally succeeds.
    async fn ready(&self) -> reqwest::Client {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = client.get(format!("{}/health", self.base)).send().await {
                if r.status() == StatusCode::OK {
                    return client;
                }
            }
            assert!(Instant::now() < deadline, "server did not become ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Logs `username` (password [`PASSWORD`]) in; their access token.
    async fn login(&self, client: &reqwest::Client, username: &str) -> String {
        let login: Value = client
            .post(format!("{}/api/v1/auth/login", self.base))
            .json(&serde_json::json!({"username": username, "password": PASSWORD}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        login["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("{username} logs in: {login}"))
            .to_owned()
    }

    fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "server did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// `securevox_realtime_coalesced_wakeups_total` from the server's /metrics.
async fn coalesced_wakeups(client: &reqwest::Client, base: &str) -> u64 {
    let metrics = client.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    let line = metrics
        .lines()
        .find(|l| l.starts_with("securevox_realtime_coalesced_wakeups_total "))
        .unwrap_or_else(|| panic!("no coalesced wake-ups counter in:\n{metrics}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

/// Receive coalescing (`realtime.coalesce_us`) lives in the binary's runtime, so only a real
/// `securevox serve` shows it. Forced on for any traffic, with the longest delay allowed, the
/// official socket.io-client's ordering scenario (two peers, 400 interleaved offer / answer /
/// ice_candidate each, both sending at once) still gets every event, in order, and the server
/// did wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_coalescing_forced_on_relays_everything_in_order() {
    let Some(scripts) = common::node::socketio_scripts() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // The scenarios' harness wants an admin's token.
    let mut add = securevox(&data, "sqlite");
    add.args(["user", "add", "root", "--admin", "--password-stdin"]);
    assert!(run(add, Some(PASSWORD)).status.success());
    let mut cmd = securevox(&data, "sqlite");
    cmd.env("SECUREVOX_AUTH_REGISTRATION", "open")
        .env("SECUREVOX_REALTIME_COALESCE_US", "1000")
        .env("SECUREVOX_REALTIME_COALESCE_MIN_EVENTS_PER_S", "1");
    let served = Served::start(cmd);
    let client = served.ready().await;
    let admin = served.login(&client, "root").await;
    let args = ["--test", "--test-reporter=spec", "--test-name-pattern=arrives in order"]
        .map(String::from)
        .into_iter()
        .chain([scripts.join("live.test.mjs").display().to_string()])
        .collect();
    let env = vec![("SECUREVOX_URL", served.base.clone()), ("SECUREVOX_ADMIN_TOKEN", admin)];
    let output = common::node::run_node(scripts, args, env, 120).await;
    let report = String::from_utf8_lossy(&output.stdout);
    let errors = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "ordering scenario failed:\n{report}\n{errors}");
    assert!(report.contains("ℹ pass 1") && report.contains("ℹ fail 0"), "it ran:\n{report}");
    let waited = coalesced_wakeups(&client, &served.base).await;
    assert!(waited > 0, "the server waited on waking while events arrived");
    assert!(served.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_on_defaults_in_the_working_directory_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir.path())
        .env_remove("SECUREVOX_DATA_DIR")
        .env_remove("SECUREVOX_DATABASE_URL");
    let served = Served::start(cmd);
    assert!(served.base.starts_with("http://127.0.0.1:"), "{}", served.base);
    let client = served.ready().await;
    let health: Value =
        client.get(format!("{}/health", served.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["status"], "healthy");
    assert_eq!(coalesced_wakeups(&client, &served.base).await, 0, "a quiet server never waits");

    let data = dir.path().join("data");
    assert!(data.join("securevox.db").exists(), "SQLite under ./data by default");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&data.join("secrets/jwt.key")), 0o600);
        assert_eq!(mode(&data), 0o700);
    }
    let status = served.terminate();
    assert!(status.success(), "graceful exit on SIGTERM: {status}");
}

on_both_backends!(user_commands_work_while_the_server_runs);

async fn user_commands_work_while_the_server_runs(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::create(&backend, dir.path()).await;
    let cmd = || securevox(dir.path(), &db.url);
    let served = Served::start(cmd());
    let client = served.ready().await;

    let mut add = cmd();
    add.args(["user", "add", "root", "--admin", "--password-stdin"]);
    let out = run(add, Some(&format!("{PASSWORD}\n")));
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("created root (admin"), "{}", text(&out));
    let mut add = cmd();
    add.args(["user", "add", "Bob", "--display-name", "Bob B", "--password-stdin"]);
    assert!(run(add, Some(PASSWORD)).status.success());

    let mut list = cmd();
    list.args(["user", "list", "--json"]);
    let out = run(list, None);
    let users: Value = serde_json::from_slice(&out.stdout).expect("JSON list");
    let roles: Vec<_> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["username"].as_str().unwrap(), u["role"].as_str().unwrap()))
        .collect();
    assert_eq!(roles, [("Bob", "user"), ("root", "admin")]);

    // Bob logs in to the running server; disabling him from the CLI cuts him off at once.
    let token = served.login(&client, "bob").await;
    let me = |token: String| {
        let request = client.get(format!("{}/api/v1/me", served.base)).bearer_auth(token);
        async move { request.send().await.unwrap().status() }
    };
    assert_eq!(me(token.clone()).await, StatusCode::OK);
    let mut disable = cmd();
    disable.args(["user", "disable", "bob"]);
    let out = run(disable, None);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(me(token).await, StatusCode::UNAUTHORIZED);
    let mut enable = cmd();
    enable.args(["user", "enable", "bob"]);
    assert!(run(enable, None).status.success());

    // Failure paths: clear messages, non-zero exit, nothing changed.
    let mut short = cmd();
    short.args(["user", "add", "carol", "--password-stdin"]);
    let out = run(short, Some("short\n"));
    assert!(!out.status.success());
    assert!(text(&out).contains("at least 8 characters"), "{}", text(&out));
    let mut dup = cmd();
    dup.args(["user", "add", "BOB", "--password-stdin"]);
    let out = run(dup, Some(PASSWORD));
    assert!(!out.status.success() && text(&out).contains("username_taken"), "{}", text(&out));
    let mut unknown = cmd();
    unknown.args(["user", "disable", "nobody"]);
    let out = run(unknown, None);
    assert!(!out.status.success() && text(&out).contains("no user named"), "{}", text(&out));
    let mut delete_root = cmd();
    delete_root.args(["user", "delete", "root"]);
    let out = run(delete_root, None);
    assert!(!out.status.success() && text(&out).contains("last_admin"), "{}", text(&out));
    let mut no_stdin_flag = cmd();
    no_stdin_flag.args(["user", "add", "dave"]);
    assert!(!run(no_stdin_flag, None).status.success(), "passwords never come from argv");

    let mut delete = cmd();
    delete.args(["user", "delete", "bob"]);
    assert!(run(delete, None).status.success());
    let mut list = cmd();
    list.args(["user", "list"]);
    let out = run(list, None);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("Bob"), "{}", text(&out));

    assert!(served.terminate().success());
    db.drop_database().await;
}

#[test]
fn check_exit_codes_follow_the_capacity_level() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("securevox.db").display());
    let check = |limit: &str| {
        let mut cmd = securevox(dir.path(), &url);
        cmd.env("SECUREVOX_LIMITS_MAX_REGISTERED_USERS", limit).args(["check", "--json"]);
        let out = run(cmd, None);
        let report: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        (out.status.code(), report["level"].as_str().unwrap_or("?").to_owned())
    };
    assert_eq!(check("5"), (Some(64), "?".into()), "no database yet: an error, not an empty one");
    assert!(!dir.path().join("securevox.db").exists());
    for name in ["user1", "user2", "user3", "user4"] {
        let mut cmd = securevox(dir.path(), &url);
        cmd.args(["user", "add", name, "--password-stdin"]);
        assert!(run(cmd, Some(PASSWORD)).status.success());
    }
    assert_eq!(check("10"), (Some(0), "ok".into()));
    assert_eq!(check("5"), (Some(1), "warning".into()), "4 of 5 is 80 %");
    assert_eq!(check("4"), (Some(2), "blocked".into()));
    assert_eq!(check("0"), (Some(0), "ok".into()), "0 = unlimited");

    let mut human = securevox(dir.path(), &url);
    human.env("SECUREVOX_LIMITS_MAX_REGISTERED_USERS", "5").arg("check");
    let out = run(human, None);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("capacity: WARNING") && shown.contains("registered_users"), "{shown}");
    assert!(shown.contains("disk") && shown.contains("memory"), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_removes_only_long_dead_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::test_config();
    config.data_dir = dir.path().to_path_buf();
    let (_, store) = securevox::open(config).await.unwrap();
    let url = format!("sqlite://{}", dir.path().join("securevox.db").display());
    let mut add = securevox(dir.path(), &url);
    add.args(["user", "add", "alice", "--password-stdin"]);
    assert!(run(add, Some(PASSWORD)).status.success());
    let user = store.user_by_username("alice").await.unwrap().unwrap();
    let now = securevox_domain::clock::now();
    for (id, expires_at) in
        [("old", now - 8 * 24 * 3600), ("recent", now - 3600), ("live", now + 3600)]
    {
        store
            .create_session(&securevox_store::NewSession {
                id: id.into(),
                user_id: user.id.clone(),
                device_name: None,
                refresh_digest: format!("digest-{id}"),
                expires_at,
                ip: None,
                user_agent: None,
            })
            .await
            .unwrap();
    }
    store.close().await;
    let mut cleanup = securevox(dir.path(), &url);
    cleanup.args(["cleanup", "--json"]);
    let out = run(cleanup, None);
    assert!(out.status.success(), "{}", text(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["sessions_removed"], 1, "only the one that ended over 7 days ago");
    let mut again = securevox(dir.path(), &url);
    again.arg("cleanup");
    let out = run(again, None);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("removed 0 "), "{}", text(&out));
}

#[test]
fn config_shows_effective_values_and_hides_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("securevox.toml");
    std::fs::write(&file, "[rate_limits]\napi_burst = 33\n").unwrap();
    let mut cmd = securevox(dir.path(), "sqlite:");
    cmd.env("SECUREVOX_AUTH_JWT_SECRET", "a-very-secret-value-that-must-not-print")
        .env(
            "SECUREVOX_DATABASE_URL",
            "postgres://sv:db-pass-in-userinfo@192.0.2.1:5432/securevox\
             ?sslmode=disable&password=db-pass-in-query",
        )
        .env("SECUREVOX_RATE_LIMITS_LOGIN_PER_MINUTE", "7")
        .arg("--config")
        .arg(&file)
        .arg("config");
    let out = run(cmd, None);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", text(&out));
    assert!(shown.contains("login_per_minute = 7") && shown.contains("api_burst = 33"), "{shown}");
    assert!(shown.contains("<redacted>") && !shown.contains("a-very-secret"), "{shown}");
    assert!(!shown.contains("db-pass"), "the database password is hidden: {shown}");
    assert!(
        shown.contains(
            "database_url = \"postgres://sv:***@192.0.2.1:5432/securevox?sslmode=disable&password=***\""
        ),
        "the rest of the URL is shown: {shown}"
    );

    let mut bad = securevox(dir.path(), "sqlite:");
    bad.env("SECUREVOX_RATE_LIMITS_LOGIN_PER_MINUTE", "many").arg("config");
    let out = run(bad, None);
    assert!(
        !out.status.success() && text(&out).contains("SECUREVOX_RATE_LIMITS_LOGIN_PER_MINUTE"),
        "{}",
        text(&out)
    );
}

#[test]
fn admin_commands_never_create_a_database_or_secrets_by_mistake() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let url = format!("sqlite://{}", data.join("securevox.db").display());
    let cmd = || {
        let mut cmd = securevox(&data, &url);
        cmd.current_dir(dir.path());
        cmd
    };
    for args in [
        &["user", "list"][..],
        &["user", "disable", "bob"],
        &["user", "enable", "bob"],
        &["user", "delete", "bob"],
        &["check"],
        &["cleanup"],
    ] {
        let mut c = cmd();
        c.args(args);
        let out = run(c, None);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {}", text(&out));
        let expected = format!(
            "error: no database at {}: start the server once, or pass --data-dir / --database-url",
            data.join("securevox.db").display()
        );
        assert_eq!(String::from_utf8_lossy(&out.stderr).trim(), expected, "{args:?}");
        assert!(!data.exists(), "{args:?} created {}", data.display());
    }

    // `user add` may create the database, to add the first admin before the first `serve`, but
    // it gives the role asked for and creates no secrets.
    let mut add = cmd();
    add.args(["user", "add", "alice", "--password-stdin"]);
    let out = run(add, Some(PASSWORD));
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("created alice (user,"), "not an admin: {}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(
            "note: no admin account exists yet; add one with: \
             securevox user add NAME --admin --password-stdin"
        ),
        "{}",
        text(&out)
    );
    assert!(data.join("securevox.db").exists());
    assert!(!data.join("secrets").exists(), "the CLI never generates secrets");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&data).unwrap().permissions().mode() & 0o777, 0o700);
    }

    let mut add = cmd();
    add.args(["user", "add", "root", "--admin", "--password-stdin"]);
    let out = run(add, Some(PASSWORD));
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("created root (admin,"), "{}", text(&out));
    assert!(!text(&out).contains("note:"), "an admin exists now: {}", text(&out));

    let mut list = cmd();
    list.args(["user", "list"]);
    let out = run(list, None);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!data.join("secrets").exists());
}

#[test]
fn serve_fails_fast_and_clearly_when_postgres_is_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    let url = "postgres://sv:unreachable-db-pass@127.0.0.1:1/securevox";
    let mut cmd = securevox(dir.path(), url);
    cmd.args(["serve", "--listen", "127.0.0.1:0"]);
    let started = Instant::now();
    let out = run(cmd, None);
    let elapsed = started.elapsed();
    assert_eq!(out.status.code(), Some(64), "{}", text(&out));
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    assert!(out.stdout.is_empty(), "never said it was listening: {}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot connect to the database (postgres://sv:***@127.0.0.1:1/securevox)"),
        "{stderr}"
    );
    assert!(stderr.contains("refused"), "{stderr}");
    assert!(!stderr.contains("unreachable-db-pass"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line, each cause once: {stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_watch_keeps_watching_through_database_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::test_config();
    config.data_dir = dir.path().to_path_buf();
    let (config, store) = securevox::open(config).await.unwrap();
    store.close().await; // every check now fails
    let watch = securevox::cli::check_watch(&store, &config, true, 1);
    let outcome = tokio::time::timeout(Duration::from_millis(2500), watch).await;
    assert!(outcome.is_err(), "still watching after failed checks: {outcome:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_never_contain_passwords_tokens_or_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("securevox.db").display());
    let mut cmd = securevox(dir.path(), &url);
    cmd.env("SECUREVOX_LOG_LEVEL", "debug").env("SECUREVOX_LOG_FORMAT", "json");
    cmd.args(["serve", "--listen", "127.0.0.1:0"]).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let log_reader = std::thread::spawn(move || {
        let mut logs = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut logs).unwrap();
        logs
    });
    let served = Served { base: line.trim().replace("securevox listening on ", ""), child };
    let client = served.ready().await;

    let password = "canary-password-7f3a9c";
    let post =
        |path: &str, body: Value| client.post(format!("{}{path}", served.base)).json(&body).send();
    let registered: Value = post(
        "/api/v1/auth/register",
        serde_json::json!({"username": "alice", "password": password}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let refreshed: Value = post(
        "/api/v1/auth/refresh",
        serde_json::json!({"refresh_token": registered["refresh_token"]}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let wrong = post(
        "/api/v1/auth/login",
        serde_json::json!({"username": "alice", "password": "canary-wrong-b81d"}),
    )
    .await
    .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let invite: Value = client
        .post(format!("{}/api/v1/admin/invites", served.base))
        .bearer_auth(refreshed["access_token"].as_str().unwrap())
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    assert!(served.terminate().success());
    let logs = log_reader.join().unwrap();
    assert!(logs.contains("user registered"), "debug logs were captured: {logs}");

    let jwt_secret = std::fs::read_to_string(dir.path().join("secrets/jwt.key")).unwrap();
    for (what, secret) in [
        ("password", password),
        ("wrong password", "canary-wrong-b81d"),
        ("access token", registered["access_token"].as_str().unwrap()),
        ("refresh token", registered["refresh_token"].as_str().unwrap()),
        ("rotated refresh token", refreshed["refresh_token"].as_str().unwrap()),
        ("invite code", invite["code"].as_str().unwrap()),
        ("JWT secret", jwt_secret.trim()),
    ] {
        assert!(!logs.contains(secret), "the {what} appears in the logs");
    }
}
