//! The API's contract for bad input and bad tokens: always the error shape, never a 500.

#![allow(clippy::unwrap_used, clippy::too_many_lines)] // test code: a panic is the failure report

mod common;

use common::{code, Backend, TestServer};

use jsonwebtoken::{encode, EncodingKey, Header};
use reqwest::StatusCode;
use securevox_api::config::Secret;
use serde_json::{json, Value};

const SECRET: &str = "test-secret-test-secret-test-secret-0123";

fn forge(secret: &str, claims: &Value) -> String {
    encode(&Header::default(), claims, &EncodingKey::from_secret(secret.as_bytes())).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_clear_4xx_errors() {
    let server = TestServer::start_with(Backend::Sqlite, |c| c.max_body_bytes = 4096).await;
    let raw = |body: &'static str, content_type: &'static str| {
        let request = server
            .http
            .post(server.url("/api/v1/auth/login"))
            .header("content-type", content_type)
            .body(body);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            (status, response.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, body) = raw("{not json", "application/json").await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "malformed_json"));
    let (status, body) = raw(r#"{"username": 5, "password": "x"}"#, "application/json").await;
    assert_eq!((status, code(&body)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"));
    assert!(body["error"]["message"].as_str().unwrap().contains("username"), "{body}");
    let (status, body) = raw(r#"{"username": "a"}"#, "application/json").await;
    assert_eq!((status, code(&body)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"));
    let (status, body) =
        raw(r#"{"username":"a","password":"b","admin":true}"#, "application/json").await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"),
        "unknown fields"
    );
    let (status, body) = raw(r#"{"username":"a","password":"b"}"#, "text/plain").await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
    );

    let huge = json!({"username": "a", "password": "x".repeat(10_000)});
    let (status, body) = server.post("/api/v1/auth/login", huge, None).await;
    assert_eq!((status, code(&body)), (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"));

    let (status, body) = server.get("/api/v1/no/such/route", None).await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "not_found"));
    let (status, body) = server.get("/api/v1/auth/login", None).await;
    assert_eq!((status, code(&body)), (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"));
    let (status, body) = server.get("/api/v1/admin/users?limit=lots", None).await;
    assert!(status.is_client_error() && body["error"]["code"].is_string(), "{status} {body}");

    // A long password at login is refused as credentials, not hashed.
    let (status, body) = server.login("admin", &"p".repeat(2000)).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "invalid_credentials"));
    assert_eq!(server.get("/health", None).await.0, StatusCode::OK, "still serving");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_are_refused_with_specific_codes() {
    let server = TestServer::start_with(Backend::Sqlite, |c| {
        c.auth.jwt_secret = Secret(SECRET.into());
    })
    .await;
    let admin = server.admin().await;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
        as i64;
    let claims = |exp: i64, typ: &str| json!({"sub": admin.user_id, "sid": admin.session_id, "iat": now - 100, "exp": exp, "typ": typ});

    // Sanity: a token forged with the real secret and valid claims is accepted, so the failures
    // below are due to what each one changes.
    let good = forge(SECRET, &claims(now + 60, "access"));
    assert_eq!(server.get("/api/v1/me", Some(&good)).await.0, StatusCode::OK);

    let cases = [
        (forge(SECRET, &claims(now - 10, "access")), "token_expired"),
        (
            forge("some-other-secret-some-other-secret-000", &claims(now + 60, "access")),
            "invalid_token",
        ),
        (forge(SECRET, &claims(now + 60, "refresh")), "invalid_token"),
        ("not-a-jwt".to_owned(), "invalid_token"),
        (
            forge(
                SECRET,
                &json!({"sub": admin.user_id, "sid": "no-such-session", "iat": now, "exp": now + 60, "typ": "access"}),
            ),
            "session_revoked",
        ),
        (
            // Another user's id with the admin's session: never accepted.
            forge(
                SECRET,
                &json!({"sub": "someone-else", "sid": admin.session_id, "iat": now, "exp": now + 60, "typ": "access"}),
            ),
            "session_revoked",
        ),
    ];
    for (token, expected) in cases {
        let (status, body) = server.get("/api/v1/me", Some(&token)).await;
        assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, expected), "{token}");
    }
    let response = server
        .http
        .get(server.url("/api/v1/me"))
        .header("authorization", format!("Basic {}", admin.access))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(code(&body), "missing_token");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_short_configured_secret_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::test_config();
    config.data_dir = dir.path().to_path_buf();
    config.auth.jwt_secret = Secret("short".into());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = securevox::launch(config, listener, async {}).await.unwrap_err();
    assert!(err.to_string().contains("jwt_secret"), "{err}");
}

on_both_backends!(odd_bytes_in_input_are_client_errors_on_every_backend);

/// NUL bytes and invalid UTF-8 must never reach the database (PostgreSQL refuses NUL in text,
/// which would surface as a 500) and must get the same answer on both backends.
async fn odd_bytes_in_input_are_client_errors_on_every_backend(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let (status, body) = server
        .post("/api/v1/auth/login", json!({"username": "ad\u{0}min", "password": "x"}), None)
        .await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "invalid_credentials"));
    let (status, body) = server
        .post(
            "/api/v1/auth/login",
            json!({"username": "admin", "password": common::PASSWORD, "device_name": "ph\u{0}one"}),
            None,
        )
        .await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "invalid_device_name"));
    let (status, body) = server
        .call(
            reqwest::Method::PATCH,
            "/api/v1/me",
            Some(json!({"display_name": "nul\u{0}name"})),
            Some(&admin.access),
        )
        .await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "invalid_display_name"));
    for path in [
        "/api/v1/me/sessions/%00",
        "/api/v1/me/sessions/not-a-session-id",
        "/api/v1/admin/users/%00",
        "/api/v1/admin/invites/%00",
    ] {
        let (status, body) =
            server.call(reqwest::Method::DELETE, path, None, Some(&admin.access)).await;
        assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "not_found"), "{path}");
    }
    let (status, body) = server
        .call(reqwest::Method::DELETE, "/api/v1/admin/users/%FF", None, Some(&admin.access))
        .await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "invalid_path"));
    // Still serving, and nothing was changed.
    let (status, users) = server.get("/api/v1/admin/users", Some(&admin.access)).await;
    assert_eq!((status, users["total"].as_u64()), (StatusCode::OK, Some(1)));
    server.stop().await;
}
