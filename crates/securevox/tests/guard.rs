//! The capacity guard and rate limits over real HTTP.

#![allow(clippy::unwrap_used, clippy::too_many_lines)] // test code: a panic is the failure report

mod common;

use common::{code, named, Backend, Session, TestServer, PASSWORD};
use reqwest::{Method, StatusCode};
use serde_json::json;

on_both_backends!(
    registration_stops_at_the_user_limit,
    limits_change_at_run_time_and_reset_to_config,
    capacity_report_shows_levels_and_resources,
    resource_pressure_triggers_cleanup_at_once,
);

async fn registration_stops_at_the_user_limit(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.limits.max_registered_users = 3).await;
    let admin = server.admin().await;
    let (_, invite) =
        server.post("/api/v1/admin/invites", json!({"max_uses": 0}), Some(&admin.access)).await;
    let invite = invite["code"].as_str().unwrap();
    assert_eq!(server.register("bob", Some(invite)).await.0, StatusCode::CREATED);
    assert_eq!(server.register("carol", Some(invite)).await.0, StatusCode::CREATED);
    let (status, body) = server.register("dave", Some(invite)).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "capacity_reached"));

    let (_, report) = server.get("/api/v1/admin/capacity", Some(&admin.access)).await;
    assert_eq!(report["level"], "blocked");
    let users = named(&report["usage"], "registered_users");
    assert_eq!((users["used"].as_u64(), users["limit"].as_u64()), (Some(3), Some(3)));

    // Deleting a user frees a place.
    let (_, list) = server.get("/api/v1/admin/users", Some(&admin.access)).await;
    let carol =
        list["users"].as_array().unwrap().iter().find(|u| u["username"] == "carol").unwrap();
    let path = format!("/api/v1/admin/users/{}", carol["id"].as_str().unwrap());
    server.call(Method::DELETE, &path, None, Some(&admin.access)).await;
    assert_eq!(server.register("dave", Some(invite)).await.0, StatusCode::CREATED);
    server.stop().await;
}

async fn limits_change_at_run_time_and_reset_to_config(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let (status, body) = server.get("/api/v1/admin/limits", Some(&admin.access)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["source"], "config");
    assert_eq!(body["limits"]["max_registered_users"], 50);
    assert_eq!(body["limits"]["max_participants_per_call"], 4);

    // A partial change keeps the other limits.
    let (status, body) = server
        .call(
            Method::PUT,
            "/api/v1/admin/limits",
            Some(json!({"max_registered_users": 1})),
            Some(&admin.access),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["source"], "database");
    assert_eq!(body["limits"]["max_registered_users"], 1);
    assert_eq!(body["limits"]["max_concurrent_calls"], 10);
    let (_, invite) = server.post("/api/v1/admin/invites", json!({}), Some(&admin.access)).await;
    let (status, body) = server.register("bob", invite["code"].as_str()).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "capacity_reached"));

    for bad in [
        json!({"max_registered_users": "many"}),
        json!({"max_users": 3}),
        json!({"max_active_users": -1}),
    ] {
        let (status, body) = server
            .call(Method::PUT, "/api/v1/admin/limits", Some(bad.clone()), Some(&admin.access))
            .await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"),
            "{bad}"
        );
    }
    let (_, body) = server.get("/api/v1/admin/limits", Some(&admin.access)).await;
    assert_eq!(body["limits"]["max_registered_users"], 1, "bad input changed nothing");

    // 0 = unlimited.
    server
        .call(
            Method::PUT,
            "/api/v1/admin/limits",
            Some(json!({"max_registered_users": 0})),
            Some(&admin.access),
        )
        .await;
    assert_eq!(server.register("bob", invite["code"].as_str()).await.0, StatusCode::CREATED);

    let (status, body) =
        server.call(Method::DELETE, "/api/v1/admin/limits", None, Some(&admin.access)).await;
    assert_eq!((status, body["source"].as_str()), (StatusCode::OK, Some("config")));
    let (_, body) = server.get("/api/v1/admin/limits", Some(&admin.access)).await;
    assert_eq!(
        (body["source"].as_str(), body["limits"]["max_registered_users"].as_u64()),
        (Some("config"), Some(50))
    );
    server.stop().await;
}

async fn capacity_report_shows_levels_and_resources(backend: Backend) {
    let server = TestServer::start_with(backend, |c| {
        c.limits.max_registered_users = 5;
        // The machine's own disk and memory must not decide this test's level.
        c.capacity.disk_threshold_percent = 100;
        c.capacity.memory_threshold_percent = 100;
    })
    .await;
    let admin = server.admin().await;
    let (_, report) = server.get("/api/v1/admin/capacity", Some(&admin.access)).await;
    let names: Vec<_> =
        report["usage"].as_array().unwrap().iter().map(|u| u["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "registered_users",
            "active_users",
            "daily_active_users",
            "concurrent_calls",
            "call_participants"
        ]
    );
    let active = named(&report["usage"], "active_users");
    assert_eq!(active["used"], 1, "the admin just made requests");
    assert_eq!(report["level"], "ok", "{report}");
    let resources: Vec<_> = report["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert!(resources.contains(&"memory") && resources.contains(&"disk"), "{resources:?}");
    let disk = named(&report["resources"], "disk");
    assert!(disk["total_bytes"].as_u64().unwrap() > 0);
    assert_eq!(disk["threshold_percent"], 100, "the configured threshold");
    assert!(report["process_resident_bytes"].as_u64().unwrap() > 1_000_000);

    // 4 of 5 = 80 %: warning.
    let (_, invite) =
        server.post("/api/v1/admin/invites", json!({"max_uses": 0}), Some(&admin.access)).await;
    for name in ["bob", "carol", "dave"] {
        assert_eq!(server.register(name, invite["code"].as_str()).await.0, StatusCode::CREATED);
    }
    let (_, report) = server.get("/api/v1/admin/capacity", Some(&admin.access)).await;
    assert_eq!(report["usage"][0]["level"], "warning");
    assert_eq!(report["usage"][0]["percent"], 80.0);
    server.stop().await;
}

async fn resource_pressure_triggers_cleanup_at_once(backend: Backend) {
    // A 1 % disk threshold puts any real volume "past its threshold" (P3).
    let server = TestServer::start_with(backend, |c| {
        c.capacity.disk_threshold_percent = 1;
        c.capacity.check_interval_s = 1;
        c.retention.cleanup_interval_s = 24 * 3600;
    })
    .await;
    let admin = server.admin().await;
    let (_, report) = server.get("/api/v1/admin/capacity", Some(&admin.access)).await;
    let disk = named(&report["resources"], "disk");
    assert_eq!(disk["level"], "critical");
    assert_eq!(report["level"], "critical");

    // A session that ended long ago, planted next to the running server.
    let store = securevox_store::Store::connect(&server.db.url).await.unwrap();
    let long_ago = securevox_domain::clock::now() - 30 * 24 * 3600;
    store
        .create_session(&securevox_store::NewSession {
            id: "long-dead".into(),
            user_id: admin.user_id.clone(),
            device_name: None,
            refresh_digest: "long-dead-digest".into(),
            expires_at: long_ago,
            ip: None,
            user_agent: None,
        })
        .await
        .unwrap();
    assert!(store.session_auth("long-dead").await.unwrap().is_some());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while store.session_auth("long-dead").await.unwrap().is_some() {
        assert!(std::time::Instant::now() < deadline, "the capacity check did not clean up");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        server.get("/api/v1/me", Some(&admin.access)).await.0,
        StatusCode::OK,
        "live sessions stay"
    );
    store.close().await;
    server.stop().await;
}

// Rate limits live in memory per server, so one backend is enough for them.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_is_limited_per_client_ip_with_retry_after() {
    let server =
        TestServer::start_with(Backend::Sqlite, |c| c.rate_limits.login_per_minute = 3).await;
    server.admin().await;
    for _ in 0..3 {
        assert_eq!(server.login("admin", "wrong password").await.0, StatusCode::UNAUTHORIZED);
    }
    let response = server
        .http
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({"username": "admin", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=20).contains(&retry), "retry-after {retry}");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(code(&body), "rate_limited");

    let (_, metrics) = metrics_text(&server).await;
    assert!(metrics.contains("securevox_rate_limited_total{name=\"login\"} 1"), "{metrics}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_change_attempts_are_limited_like_logins() {
    let server =
        TestServer::start_with(Backend::Sqlite, |c| c.rate_limits.login_per_minute = 3).await;
    let admin = server.admin().await;
    let guess = |n: usize| json!({"current_password": format!("guess {n}"), "new_password": "whatever 123"});
    let mut statuses = Vec::new();
    for n in 0..4 {
        statuses.push(server.post("/api/v1/me/password", guess(n), Some(&admin.access)).await.0);
    }
    assert_eq!(
        statuses,
        [
            StatusCode::FORBIDDEN,
            StatusCode::FORBIDDEN,
            StatusCode::FORBIDDEN,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_is_limited_per_client_ip() {
    let server =
        TestServer::start_with(Backend::Sqlite, |c| c.rate_limits.register_per_minute = 2).await;
    assert_eq!(server.register("alice", None).await.0, StatusCode::CREATED);
    assert_eq!(server.register("bob", None).await.0, StatusCode::FORBIDDEN, "needs an invite");
    let (status, body) = server.register("carol", None).await;
    assert_eq!((status, code(&body)), (StatusCode::TOO_MANY_REQUESTS, "rate_limited"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_requests_are_limited_with_a_burst() {
    let server = TestServer::start_with(Backend::Sqlite, |c| {
        c.rate_limits.api_per_second = 1;
        c.rate_limits.api_burst = 5;
    })
    .await;
    let (_, body) = server.register("alice", None).await; // 1 of the burst
    let admin = Session::from(&body);
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(server.get("/api/v1/me", Some(&admin.access)).await.0);
    }
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let limited = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    // A burst of 5 (one used by registration), perhaps one more refilled during the loop.
    assert!((4..=5).contains(&ok), "{statuses:?}");
    assert_eq!(ok + limited, 8, "{statuses:?}");
    // Health is not an API route and stays reachable for monitors.
    assert_eq!(server.get("/health", None).await.0, StatusCode::OK);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_counts_only_behind_a_trusted_proxy() {
    // Not trusted: X-Forwarded-For is ignored, so rotating it does not escape the limit.
    let server =
        TestServer::start_with(Backend::Sqlite, |c| c.rate_limits.login_per_minute = 1).await;
    assert_eq!(server.login_forwarded_for("198.51.100.1").await, StatusCode::UNAUTHORIZED);
    assert_eq!(server.login_forwarded_for("198.51.100.2").await, StatusCode::TOO_MANY_REQUESTS);
    server.stop().await;

    // Trusted (the test client is the proxy on loopback): each forwarded client has its own limit.
    let server = TestServer::start_with(Backend::Sqlite, |c| {
        c.rate_limits.login_per_minute = 1;
        c.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    assert_eq!(server.login_forwarded_for("198.51.100.1").await, StatusCode::UNAUTHORIZED);
    assert_eq!(server.login_forwarded_for("198.51.100.2").await, StatusCode::UNAUTHORIZED);
    assert_eq!(server.login_forwarded_for("198.51.100.1").await, StatusCode::TOO_MANY_REQUESTS);
    server.stop().await;
}

async fn metrics_text(server: &TestServer) -> (StatusCode, String) {
    let response = server.http.get(server.url("/metrics")).send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}
