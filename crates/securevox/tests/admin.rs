//! Admin user management over real HTTP: listing, disable/enable, roles, delete, last-admin guard.

#![allow(clippy::unwrap_used, clippy::too_many_lines)] // test code: a panic is the failure report

mod common;

use common::{code, Backend, TestServer, PASSWORD};
use reqwest::{Method, StatusCode};
use serde_json::json;

on_both_backends!(
    non_admins_are_refused_everywhere,
    disabling_a_user_cuts_off_their_tokens_at_once,
    roles_change_and_the_last_admin_is_protected,
    deleting_a_user_removes_account_and_sessions,
);

async fn non_admins_are_refused_everywhere(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let bob = server.user(&admin, "bob").await;
    let target = format!("/api/v1/admin/users/{}", admin.user_id);
    for (method, path, body) in [
        (Method::GET, "/api/v1/admin/users", None),
        (Method::PATCH, target.as_str(), Some(json!({"disabled": true}))),
        (Method::DELETE, target.as_str(), None),
        (Method::GET, "/api/v1/admin/invites", None),
        (Method::POST, "/api/v1/admin/invites", Some(json!({}))),
        (Method::GET, "/api/v1/admin/registration", None),
        (Method::PUT, "/api/v1/admin/registration", Some(json!({"mode": "open"}))),
        (Method::GET, "/api/v1/admin/limits", None),
        (Method::PUT, "/api/v1/admin/limits", Some(json!({"max_registered_users": 0}))),
        (Method::DELETE, "/api/v1/admin/limits", None),
        (Method::GET, "/api/v1/admin/capacity", None),
    ] {
        let (status, reply) =
            server.call(method.clone(), path, body.clone(), Some(&bob.access)).await;
        assert_eq!((status, code(&reply)), (StatusCode::FORBIDDEN, "forbidden"), "{method} {path}");
        let (status, reply) = server.call(method.clone(), path, body, None).await;
        assert_eq!(
            (status, code(&reply)),
            (StatusCode::UNAUTHORIZED, "missing_token"),
            "{method} {path}"
        );
    }
    // Nothing changed: the admin is still enabled and registration still needs invites.
    let (_, users) = server.get("/api/v1/admin/users", Some(&admin.access)).await;
    assert!(users["users"].as_array().unwrap().iter().all(|u| u["disabled"] == false));
    server.stop().await;
}

async fn disabling_a_user_cuts_off_their_tokens_at_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let bob = server.user(&admin, "bob").await;
    let path = format!("/api/v1/admin/users/{}", bob.user_id);

    let (status, user) = server
        .call(Method::PATCH, &path, Some(json!({"disabled": true})), Some(&admin.access))
        .await;
    assert_eq!((status, user["disabled"].as_bool()), (StatusCode::OK, Some(true)));
    let (status, body) = server.get("/api/v1/me", Some(&bob.access)).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "account_disabled"));
    let (status, _) =
        server.post("/api/v1/auth/refresh", json!({"refresh_token": bob.refresh}), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = server.login("bob", PASSWORD).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "account_disabled"));
    // A wrong password on a disabled account says nothing about the account.
    let (status, body) = server.login("bob", "wrong password").await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "invalid_credentials"));

    let (status, user) = server
        .call(Method::PATCH, &path, Some(json!({"disabled": false})), Some(&admin.access))
        .await;
    assert_eq!((status, user["disabled"].as_bool()), (StatusCode::OK, Some(false)));
    assert_eq!(server.login("bob", PASSWORD).await.0, StatusCode::OK);
    // Old sessions stay ended after re-enabling.
    assert_eq!(server.get("/api/v1/me", Some(&bob.access)).await.0, StatusCode::UNAUTHORIZED);

    let (status, body) = server
        .call(
            Method::PATCH,
            "/api/v1/admin/users/no-such-id",
            Some(json!({"disabled": true})),
            Some(&admin.access),
        )
        .await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "not_found"));
    server.stop().await;
}

async fn roles_change_and_the_last_admin_is_protected(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let bob = server.user(&admin, "bob").await;
    let admin_path = format!("/api/v1/admin/users/{}", admin.user_id);
    let bob_path = format!("/api/v1/admin/users/{}", bob.user_id);

    for change in [json!({"disabled": true}), json!({"role": "user"})] {
        let (status, body) =
            server.call(Method::PATCH, &admin_path, Some(change), Some(&admin.access)).await;
        assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "last_admin"));
    }
    let (status, body) = server.call(Method::DELETE, &admin_path, None, Some(&admin.access)).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "last_admin"));

    let (status, user) = server
        .call(Method::PATCH, &bob_path, Some(json!({"role": "admin"})), Some(&admin.access))
        .await;
    assert_eq!((status, user["role"].as_str()), (StatusCode::OK, Some("admin")));
    // Bob's existing token carries the new role at once (roles are read per request).
    assert_eq!(server.get("/api/v1/admin/users", Some(&bob.access)).await.0, StatusCode::OK);
    let (status, user) = server
        .call(Method::PATCH, &admin_path, Some(json!({"role": "user"})), Some(&bob.access))
        .await;
    assert_eq!((status, user["role"].as_str()), (StatusCode::OK, Some("user")));
    assert_eq!(
        server.get("/api/v1/admin/users", Some(&admin.access)).await.0,
        StatusCode::FORBIDDEN
    );

    let (status, body) = server
        .call(Method::PATCH, &bob_path, Some(json!({"role": "owner"})), Some(&bob.access))
        .await;
    assert_eq!((status, code(&body)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"));
    server.stop().await;
}

async fn deleting_a_user_removes_account_and_sessions(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let bob = server.user(&admin, "bob").await;
    let path = format!("/api/v1/admin/users/{}", bob.user_id);
    let (status, _) = server.call(Method::DELETE, &path, None, Some(&admin.access)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = server.get("/api/v1/me", Some(&bob.access)).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "session_revoked"));
    assert_eq!(server.login("bob", PASSWORD).await.0, StatusCode::UNAUTHORIZED);
    let (_, users) = server.get("/api/v1/admin/users", Some(&admin.access)).await;
    assert_eq!(users["total"], 1);
    assert_eq!(users["users"][0]["username"], "admin");
    let (status, _) = server.call(Method::DELETE, &path, None, Some(&admin.access)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The name is free again.
    assert!(!server.user(&admin, "bob").await.user_id.is_empty());
    server.stop().await;
}
