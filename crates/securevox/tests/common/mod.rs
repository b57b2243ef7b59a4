//! Test harness: starts the real server (what `securevox serve` starts) on a port-0 listener,
//! on SQLite or on a fresh PostgreSQL database, and talks to it over real HTTP.
//!
//! PostgreSQL runs when `SECUREVOX_TEST_DATABASE_URL` names a server where the user may create
//! databases (`.ci/run` sets one up). Without it PostgreSQL variants report that they did not run;
//! with `SECUREVOX_TEST_REQUIRE_POSTGRES=1` (set by CI) they fail instead.
#![allow(dead_code)]

pub mod backend;
pub mod browser;
pub mod node;
pub mod turnutils;

pub use backend::{Backend, TestDb};

use reqwest::{Method, StatusCode};
use securevox_api::Config;
use serde_json::{json, Value};
use std::net::SocketAddr;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A server running in this process.
pub struct TestServer {
    pub addr: SocketAddr,
    pub base: String,
    pub config: Config,
    pub dir: tempfile::TempDir,
    pub db: TestDb,
    pub http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

/// A test config: generous rate limits (tests of limits set their own), loopback only.
pub fn test_config() -> Config {
    Config {
        listen: "127.0.0.1:0".into(),
        rate_limits: securevox_api::config::RateLimitConfig {
            login_per_minute: 1000,
            register_per_minute: 1000,
            api_per_second: 1000,
            api_burst: 1000,
        },
        // The CI machine's own disk and memory must not decide a test's capacity level; the
        // tests that exercise resource pressure lower these again.
        capacity: securevox_api::config::CapacityConfig {
            disk_threshold_percent: 100,
            memory_threshold_percent: 100,
            ..Default::default()
        },
        // Tests share one machine: the embedded TURN server (fixed port 3478) runs only in
        // the tests that ask for it, on a port of its own.
        turn: securevox_api::config::TurnConfig { enabled: false, ..Default::default() },
        ..Config::default()
    }
}

impl TestServer {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    pub async fn start_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = TestDb::create(&backend, dir.path()).await;
        let mut config = test_config();
        config.data_dir = dir.path().to_path_buf();
        config.database_url = db.url.clone();
        tweak(&mut config);
        let listener = tokio::net::TcpListener::bind(&config.listen).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(securevox::launch(config.clone(), listener, async {
            let _ = stopped.await;
        }));
        let server = Self {
            addr,
            base: format!("http://{addr}"),
            config,
            dir,
            db,
            http: reqwest::Client::new(),
            stop: Some(stop),
            task: Some(task),
        };
        server.wait_ready().await;
        server
    }

    /// Waits until `/health` answers: surfaces a start-up failure as a clear assertion rather
    /// than as the first request of the test failing.
    async fn wait_ready(&self) {
        let response = self.http.get(format!("{}/health", self.base)).send().await;
        assert!(response.is_ok_and(|r| r.status().is_success()), "server did not become ready");
    }

    /// Stops the server gracefully and drops its PostgreSQL database.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("server exited with an error");
        }
        self.db.drop_database().await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a request with an optional JSON body and bearer token; returns status and JSON body
    /// (`Value::Null` when the body is empty or not JSON).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, self.url(path));
        if let Some(body) = body {
            request = request.json(&body);
        }
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.call(Method::GET, path, None, token).await
    }

    pub async fn post(&self, path: &str, body: Value, token: Option<&str>) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body), token).await
    }

    /// Registers a user (with `invite` if given) and returns the auth response.
    pub async fn register(&self, username: &str, invite: Option<&str>) -> (StatusCode, Value) {
        self.post(
            "/api/v1/auth/register",
            json!({"username": username, "password": PASSWORD, "invite_code": invite}),
            None,
        )
        .await
    }

    /// Registers the first user (the admin) and returns its access token.
    pub async fn admin(&self) -> Session {
        let (status, body) = self.register("admin", None).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        Session::from(&body)
    }

    /// Creates an invite as `admin` and registers `username` with it.
    pub async fn user(&self, admin: &Session, username: &str) -> Session {
        let (status, invite) =
            self.post("/api/v1/admin/invites", json!({}), Some(&admin.access)).await;
        assert_eq!(status, StatusCode::CREATED, "{invite}");
        let (status, body) = self.register(username, invite["code"].as_str()).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        Session::from(&body)
    }

    /// A failing login as if forwarded for `xff` by a proxy; the status says which limit
    /// bucket it landed in (401 = counted, 429 = over the limit).
    pub async fn login_forwarded_for(&self, xff: &str) -> StatusCode {
        self.http
            .post(self.url("/api/v1/auth/login"))
            .header("x-forwarded-for", xff)
            .json(&json!({"username": "x", "password": "y"}))
            .send()
            .await
            .expect("request")
            .status()
    }

    pub async fn login(&self, username: &str, password: &str) -> (StatusCode, Value) {
        self.post("/api/v1/auth/login", json!({"username": username, "password": password}), None)
            .await
    }
}

pub const PASSWORD: &str = "correct horse battery";

/// Tokens of one logged-in session.
#[derive(Debug, Clone)]
#[allow(clippy::struct_field_names)] // named as in the API's response
pub struct Session {
    pub access: String,
    pub refresh: String,
    pub user_id: String,
    pub session_id: String,
}

impl From<&Value> for Session {
    fn from(body: &Value) -> Self {
        let s =
            |v: &Value| v.as_str().unwrap_or_else(|| panic!("missing field in {body}")).to_owned();
        Self {
            access: s(&body["access_token"]),
            refresh: s(&body["refresh_token"]),
            user_id: s(&body["user"]["id"]),
            session_id: s(&body["session_id"]),
        }
    }
}

/// The error code of an error body.
pub fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<no error code>")
}

/// The element of a JSON array (e.g. a capacity report's `usage`) whose `name` is `name`.
pub fn named<'a>(items: &'a Value, name: &str) -> &'a Value {
    items
        .as_array()
        .and_then(|a| a.iter().find(|item| item["name"] == name))
        .unwrap_or_else(|| panic!("no item named {name} in {items}"))
}
