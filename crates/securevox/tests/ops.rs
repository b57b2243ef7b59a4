//! Operations endpoints: health, metrics, OpenAPI and docs.

#![allow(clippy::unwrap_used, clippy::too_many_lines)] // test code: a panic is the failure report

mod common;

use common::{Backend, TestServer};
use reqwest::StatusCode;
use securevox_api::config::Secret;
use securevox_api::AppState;
use serde_json::Value;

on_both_backends!(health_reports_service_and_database);

async fn health_reports_service_and_database(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (status, body) = server.get("/health", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "healthy");
    assert_eq!(body["service"], "securevox");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(body["database"], "ok");
    assert_eq!(body["activeCalls"], 0);
    assert_eq!(body["connectedUsers"], 0);
    assert!(body["uptime_s"].is_u64());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_503_when_the_database_is_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::test_config();
    config.data_dir = dir.path().to_path_buf();
    let (config, store) = securevox::open(config).await.unwrap();
    let state = AppState::new(config, store.clone()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(securevox_api::serve(listener, state, async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    assert_eq!(client.get(format!("{base}/health")).send().await.unwrap().status(), StatusCode::OK);

    store.close().await;
    let response = client.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (body["status"].as_str(), body["database"].as_str()),
        (Some("unhealthy"), Some("unreachable"))
    );
    // Other requests fail cleanly too: an error body, not a dropped connection.
    let response = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&serde_json::json!({"username": "alice", "password": "b"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["message"], "internal error", "no details leak: {body}");
    let _ = stop.send(());
    task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_expose_requests_users_and_capacity_to_loopback() {
    let server = TestServer::start(Backend::Sqlite).await;
    server.admin().await;
    server.get("/api/v1/me", Some("bad-token")).await;
    let response = server.http.get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    for needle in [
        "securevox_http_requests_total{method=\"POST\",route=\"/api/v1/auth/register\",status=\"201\"} 1",
        "securevox_http_request_duration_seconds_bucket",
        "securevox_capacity_usage{name=\"registered_users\"} 1",
        "securevox_capacity_usage{name=\"active_users\"} 1",
        "securevox_capacity_level 0",
        "securevox_auth_failures_total{name=\"invalid_token\"} 1",
        "securevox_db_pool_connections",
        "securevox_db_up 1",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    assert!(!text.contains("\"/api/v1/me/sessions/"), "routes are templates, not raw paths");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_need_the_token_when_one_is_configured() {
    let server = TestServer::start_with(Backend::Sqlite, |c| {
        c.metrics.token = Secret("scrape-token-0123456789".into());
    })
    .await;
    let get = |token: Option<&'static str>| {
        let mut request = server.http.get(server.url("/metrics"));
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        async move { request.send().await.unwrap().status() }
    };
    assert_eq!(get(None).await, StatusCode::FORBIDDEN, "loopback alone is not enough then");
    assert_eq!(get(Some("wrong-token")).await, StatusCode::FORBIDDEN);
    assert_eq!(get(Some("scrape-token-0123456789")).await, StatusCode::OK);
    server.stop().await;

    // Without a token, a client that is not on loopback (here: forwarded by a trusted proxy)
    // is refused.
    let server = TestServer::start_with(Backend::Sqlite, |c| {
        c.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    let response = server
        .http
        .get(server.url("/metrics"))
        .header("x-forwarded-for", "203.0.113.5")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_and_docs_page_cover_every_route() {
    let server = TestServer::start(Backend::Sqlite).await;
    let (status, doc) = server.get("/api/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/v1/auth/register", "post"),
        ("/api/v1/auth/login", "post"),
        ("/api/v1/auth/refresh", "post"),
        ("/api/v1/auth/logout", "post"),
        ("/api/v1/me", "get"),
        ("/api/v1/me", "patch"),
        ("/api/v1/me/sessions", "get"),
        ("/api/v1/me/sessions/{id}", "delete"),
        ("/api/v1/me/password", "post"),
        ("/api/v1/admin/users", "get"),
        ("/api/v1/admin/users/{id}", "patch"),
        ("/api/v1/admin/users/{id}", "delete"),
        ("/api/v1/admin/invites", "post"),
        ("/api/v1/admin/invites", "get"),
        ("/api/v1/admin/invites/{id}", "delete"),
        ("/api/v1/admin/registration", "put"),
        ("/api/v1/admin/limits", "put"),
        ("/api/v1/admin/limits", "delete"),
        ("/api/v1/admin/capacity", "get"),
        ("/health", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} undocumented"
        );
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());

    let response = server.http.get(server.url("/api/docs")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = response.text().await.unwrap();
    assert!(html.contains("/api/v1/auth/login") && html.contains("/api/openapi.json"));
    assert!(!html.contains("<script src=\"http"), "no third-party scripts");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_allows_only_configured_origins() {
    let server = TestServer::start_with(Backend::Sqlite, |c| {
        c.cors_origins = vec!["https://app.example.org".into()];
    })
    .await;
    let preflight = |origin: &'static str| {
        let request = server
            .http
            .request(reqwest::Method::OPTIONS, server.url("/api/v1/auth/login"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type");
        async move { request.send().await.unwrap() }
    };
    let allowed = preflight("https://app.example.org").await;
    assert_eq!(allowed.headers()["access-control-allow-origin"], "https://app.example.org");
    let denied = preflight("https://evil.example.com").await;
    assert!(denied.headers().get("access-control-allow-origin").is_none());
    server.stop().await;

    // By default no cross-origin access at all.
    let server = TestServer::start(Backend::Sqlite).await;
    let response = server
        .http
        .get(server.url("/health"))
        .header("origin", "https://app.example.org")
        .send()
        .await
        .unwrap();
    assert!(response.headers().get("access-control-allow-origin").is_none());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_links_follow_public_url_or_a_trusted_proxys_scheme() {
    let invite_url = |server: &TestServer, token: String, proto: &'static str| {
        let request = server
            .http
            .post(server.url("/api/v1/admin/invites"))
            .bearer_auth(token)
            .header("x-forwarded-proto", proto)
            .header("host", "chat.example.org")
            .json(&serde_json::json!({}));
        async move {
            let body: Value = request.send().await.unwrap().json().await.unwrap();
            body["url"].as_str().unwrap().to_owned()
        }
    };
    // Untrusted peer: the forwarded scheme is ignored.
    let server = TestServer::start(Backend::Sqlite).await;
    let admin = server.admin().await;
    let url = invite_url(&server, admin.access.clone(), "https").await;
    assert!(url.starts_with("http://chat.example.org/register?invite="), "{url}");
    server.stop().await;

    let server = TestServer::start_with(Backend::Sqlite, |c| {
        c.trusted_proxies = vec!["127.0.0.0/8".into()];
    })
    .await;
    let admin = server.admin().await;
    let url = invite_url(&server, admin.access.clone(), "https").await;
    assert!(url.starts_with("https://chat.example.org/register?invite="), "{url}");
    server.stop().await;

    let server = TestServer::start_with(Backend::Sqlite, |c| {
        c.public_url = "https://vox.example.net/".into();
    })
    .await;
    let admin = server.admin().await;
    let url = invite_url(&server, admin.access.clone(), "http").await;
    assert!(url.starts_with("https://vox.example.net/register?invite="), "{url}");
    server.stop().await;
}
