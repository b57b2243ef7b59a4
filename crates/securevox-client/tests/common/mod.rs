//! Minimal harness: the real server (what `securevox serve` starts) in-process on SQLite or
//! PostgreSQL (see [`backend`], shared with the server's tests), on a port-0 listener.
#![allow(dead_code)]

#[path = "../../../securevox/tests/common/backend.rs"]
pub mod backend;
pub mod web;

pub use backend::{Backend, TestDb};

use securevox_api::Config;
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const PASSWORD: &str = "correct horse battery";

pub struct TestServer {
    pub base: String,
    pub dir: tempfile::TempDir,
    db: TestDb,
    config: Config,
    addr: std::net::SocketAddr,
    http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_on(&Backend::Sqlite).await
    }

    pub async fn start_on(backend: &Backend) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = TestDb::create(backend, dir.path()).await;
        let config = Config {
            listen: "127.0.0.1:0".into(),
            data_dir: dir.path().to_path_buf(),
            database_url: db.url.clone(),
            rate_limits: securevox_api::config::RateLimitConfig {
                login_per_minute: 1000,
                register_per_minute: 1000,
                api_per_second: 1000,
                api_burst: 1000,
            },
            capacity: securevox_api::config::CapacityConfig {
                disk_threshold_percent: 100,
                memory_threshold_percent: 100,
                ..Default::default()
            },
            turn: securevox_api::config::TurnConfig { enabled: false, ..Default::default() },
            ..Config::default()
        };
        let listener = tokio::net::TcpListener::bind(&config.listen).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut server = Self {
            base: format!("http://{addr}"),
            dir,
            db,
            config,
            addr,
            http: reqwest::Client::new(),
            stop: None,
            task: None,
        };
        server.launch(listener).await;
        server
    }

    async fn launch(&mut self, listener: tokio::net::TcpListener) {
        let (stop, stopped) = oneshot::channel::<()>();
        self.task = Some(tokio::spawn(securevox::launch(self.config.clone(), listener, async {
            let _ = stopped.await;
        })));
        self.stop = Some(stop);
        // A fresh client: one kept from before a restart may hold a pooled connection to the
        // stopped server, and its first request would fail on that dead connection.
        self.http = reqwest::Client::new();
        let health = self.http.get(format!("{}/health", self.base)).send().await;
        match health {
            Ok(response) if response.status().is_success() => {}
            Ok(response) => panic!("server did not become ready: /health {}", response.status()),
            Err(error) => panic!("server did not become ready: {error:?}"),
        }
    }

    /// Stops the server gracefully and starts it again on the same address and data.
    pub async fn restart(&mut self) {
        self.shut_down().await;
        let listener = tokio::net::TcpListener::bind(self.addr).await.expect("bind again");
        self.launch(listener).await;
    }

    async fn shut_down(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("server exited with an error");
        }
    }

    /// A new invite code, created by the admin with `access_token`.
    pub async fn invite(&self, access_token: &str) -> String {
        let response = self
            .http
            .post(format!("{}/api/v1/admin/invites", self.base))
            .bearer_auth(access_token)
            .json(&json!({}))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status().as_u16(), 201);
        let body: Value = response.json().await.expect("json");
        body["code"].as_str().expect("code").to_owned()
    }

    /// An access token of `username` (password [`PASSWORD`]), from a login over HTTP.
    pub async fn login(&self, username: &str) -> String {
        let body: Value = self
            .http
            .post(format!("{}/api/v1/auth/login", self.base))
            .json(&json!({ "username": username, "password": PASSWORD }))
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("json");
        body["access_token"].as_str().expect("access token").to_owned()
    }

    /// `GET path` with `token`; the JSON answer.
    pub async fn get(&self, path: &str, token: &str) -> Value {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("request");
        assert!(response.status().is_success(), "GET {path}: {}", response.status());
        response.json().await.expect("json")
    }

    /// Stops the server gracefully and drops its PostgreSQL database.
    pub async fn stop(mut self) {
        self.shut_down().await;
        self.db.drop_database().await;
    }

    /// Two users with a device each, profiles under `dir`: the first registered (the admin,
    /// named `first`) and one it invited (`second`).
    pub async fn pair(
        &self,
        dir: &std::path::Path,
        first: &str,
        second: &str,
    ) -> (securevox_client::Client, securevox_client::Client) {
        let a =
            securevox_client::Client::register(&self.base, &dir.join(first), first, PASSWORD, None)
                .await
                .expect("register the first user");
        let invite = self.invite(&a.profile().access_token).await;
        let b = securevox_client::Client::register(
            &self.base,
            &dir.join(second),
            second,
            PASSWORD,
            Some(&invite),
        )
        .await
        .expect("register the second user");
        (a, b)
    }
}

/// The texts among `messages`, in order.
pub fn texts(messages: &[securevox_client::Message]) -> Vec<String> {
    messages
        .iter()
        .filter_map(|m| match &m.content {
            securevox_client::Content::Text { body } => Some(body.clone()),
            _ => None,
        })
        .collect()
}
