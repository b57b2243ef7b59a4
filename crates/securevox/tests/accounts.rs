//! Accounts over real HTTP: registration policy, login, refresh rotation, sessions, password.

#![allow(clippy::unwrap_used, clippy::too_many_lines)] // test code: a panic is the failure report

mod common;

use common::{code, Backend, Session, TestServer, PASSWORD};
use reqwest::{Method, StatusCode};
use serde_json::json;

on_both_backends!(
    first_user_is_admin_and_others_need_an_invite,
    registration_modes_open_and_closed,
    closed_mode_refuses_even_the_first_account,
    login_refresh_rotation_and_logout,
    sessions_are_listed_and_revoked_at_once,
    password_change_checks_current_and_ends_other_sessions,
    profile_update_and_validation,
);

async fn first_user_is_admin_and_others_need_an_invite(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (status, body) = server
        .post(
            "/api/v1/auth/register",
            json!({"username": "Alice", "password": PASSWORD, "display_name": "Alice A."}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["user"]["role"], "admin");
    assert_eq!(body["user"]["display_name"], "Alice A.");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    let admin = Session::from(&body);

    let (status, body) = server.register("bob", None).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "invalid_invite"));
    let (status, body) = server.register("bob", Some("not-a-real-code")).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "invalid_invite"));

    let (status, invite) = server
        .post(
            "/api/v1/admin/invites",
            json!({"max_uses": 1, "expires_in": 3600}),
            Some(&admin.access),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{invite}");
    let invite_code = invite["code"].as_str().unwrap();
    assert!(invite["url"].as_str().unwrap().ends_with(&format!("/register?invite={invite_code}")));

    let (status, body) = server.register("bob", Some(invite_code)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["user"]["role"], "user");
    let (status, body) = server.register("carol", Some(invite_code)).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "invalid_invite"), "used up");

    // Listing shows usage but never the code; revoking makes a fresh code useless.
    let (_, second) =
        server.post("/api/v1/admin/invites", json!({"max_uses": 0}), Some(&admin.access)).await;
    let (status, list) = server.get("/api/v1/admin/invites", Some(&admin.access)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert!(!list.to_string().contains(invite_code), "codes are not listed");
    let used = list.as_array().unwrap().iter().find(|i| i["id"] == invite["invite"]["id"]).unwrap();
    assert_eq!((used["uses"].as_i64(), used["usable"].as_bool()), (Some(1), Some(false)));
    let path = format!("/api/v1/admin/invites/{}", second["invite"]["id"].as_str().unwrap());
    let (status, _) = server.call(Method::DELETE, &path, None, Some(&admin.access)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = server.call(Method::DELETE, &path, None, Some(&admin.access)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "already revoked");
    let (status, body) = server.register("carol", second["code"].as_str()).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "invalid_invite"));

    // Taken usernames are taken whatever their case; bad invites parameters are refused.
    let (_, third) = server.post("/api/v1/admin/invites", json!({}), Some(&admin.access)).await;
    let (status, body) = server.register("ALICE", third["code"].as_str()).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "username_taken"));
    let (status, body) =
        server.post("/api/v1/admin/invites", json!({"expires_in": 5}), Some(&admin.access)).await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "invalid_expiry"));
    let bob = server.login("bob", PASSWORD).await.1;
    let (status, body) =
        server.post("/api/v1/admin/invites", json!({}), bob["access_token"].as_str()).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "forbidden"));
    server.stop().await;
}

async fn registration_modes_open_and_closed(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let (status, body) = server.get("/api/v1/admin/registration", Some(&admin.access)).await;
    assert_eq!((status, body["mode"].as_str()), (StatusCode::OK, Some("invite")));

    let (status, _) = server
        .call(
            Method::PUT,
            "/api/v1/admin/registration",
            Some(json!({"mode": "open"})),
            Some(&admin.access),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = server.register("dave", None).await;
    assert_eq!(status, StatusCode::CREATED, "open mode needs no invite: {body}");
    let dave = Session::from(&body);

    let (status, body) = server
        .call(
            Method::PUT,
            "/api/v1/admin/registration",
            Some(json!({"mode": "closed"})),
            Some(&dave.access),
        )
        .await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "forbidden"), "not an admin");
    let (status, body) = server
        .call(
            Method::PUT,
            "/api/v1/admin/registration",
            Some(json!({"mode": "sideways"})),
            Some(&admin.access),
        )
        .await;
    assert_eq!((status, code(&body)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"));
    server
        .call(
            Method::PUT,
            "/api/v1/admin/registration",
            Some(json!({"mode": "closed"})),
            Some(&admin.access),
        )
        .await;
    let (_, invite) = server.post("/api/v1/admin/invites", json!({}), Some(&admin.access)).await;
    let (status, body) = server.register("erin", invite["code"].as_str()).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "registration_closed"));
    server.stop().await;
}

async fn login_refresh_rotation_and_logout(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let (status, body) = server.login("admin", "wrong password").await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "invalid_credentials"));
    let (status, body) = server.login("nobody", PASSWORD).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "invalid_credentials"));
    let (status, body) = server
        .post(
            "/api/v1/auth/login",
            json!({"username": "ADMIN", "password": PASSWORD, "device_name": "laptop"}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "case-insensitive username: {body}");
    let laptop = Session::from(&body);
    assert_ne!(laptop.session_id, admin.session_id, "each login is its own session");

    let (status, me) = server.get("/api/v1/me", Some(&laptop.access)).await;
    assert_eq!((status, me["username"].as_str()), (StatusCode::OK, Some("admin")));

    // Refresh rotates: the new pair works, the presented token is spent.
    let (status, body) =
        server.post("/api/v1/auth/refresh", json!({"refresh_token": laptop.refresh}), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let rotated = Session::from(&body);
    assert_ne!(rotated.refresh, laptop.refresh);
    assert_eq!(rotated.session_id, laptop.session_id);
    assert_eq!(server.get("/api/v1/me", Some(&rotated.access)).await.0, StatusCode::OK);

    // Replaying the spent token is theft or a bug: the whole session ends.
    let (status, body) =
        server.post("/api/v1/auth/refresh", json!({"refresh_token": laptop.refresh}), None).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "refresh_token_reused"));
    let (status, body) = server.get("/api/v1/me", Some(&rotated.access)).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "session_revoked"));
    let (status, body) =
        server.post("/api/v1/auth/refresh", json!({"refresh_token": rotated.refresh}), None).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "invalid_refresh_token"));
    let (status, body) =
        server.post("/api/v1/auth/refresh", json!({"refresh_token": "made-up"}), None).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "invalid_refresh_token"));

    // Logout ends the session at once, for access and refresh tokens alike.
    let (status, _) = server.post("/api/v1/auth/logout", json!({}), Some(&admin.access)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = server.get("/api/v1/me", Some(&admin.access)).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "session_revoked"));
    let (status, _) =
        server.post("/api/v1/auth/refresh", json!({"refresh_token": admin.refresh}), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    server.stop().await;
}

async fn sessions_are_listed_and_revoked_at_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let bob = server.user(&admin, "bob").await;
    let (_, phone) = server
        .post(
            "/api/v1/auth/login",
            json!({"username": "bob", "password": PASSWORD, "device_name": "phone"}),
            None,
        )
        .await;
    let phone = Session::from(&phone);

    let (status, list) = server.get("/api/v1/me/sessions", Some(&bob.access)).await;
    assert_eq!(status, StatusCode::OK);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    let current: Vec<_> = list.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["id"], bob.session_id.as_str());
    assert!(list.iter().any(|s| s["device_name"] == "phone"));

    // Another user's session id looks like a missing one.
    let path = format!("/api/v1/me/sessions/{}", phone.session_id);
    let (status, _) = server.call(Method::DELETE, &path, None, Some(&admin.access)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(server.get("/api/v1/me", Some(&phone.access)).await.0, StatusCode::OK);

    let (status, _) = server.call(Method::DELETE, &path, None, Some(&bob.access)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = server.get("/api/v1/me", Some(&phone.access)).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "session_revoked"));
    let (_, list) = server.get("/api/v1/me/sessions", Some(&bob.access)).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (status, _) = server.call(Method::DELETE, &path, None, Some(&bob.access)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "already revoked");
    server.stop().await;
}

async fn password_change_checks_current_and_ends_other_sessions(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let other = Session::from(&server.login("admin", PASSWORD).await.1);
    let change =
        |current: &str, new: &str| json!({"current_password": current, "new_password": new});
    let (status, body) = server
        .post("/api/v1/me/password", change("wrong one", "a brand new pass"), Some(&admin.access))
        .await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "invalid_credentials"));
    let (status, body) =
        server.post("/api/v1/me/password", change(PASSWORD, "short"), Some(&admin.access)).await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "invalid_password"));
    let (status, _) = server
        .post("/api/v1/me/password", change(PASSWORD, "a brand new pass"), Some(&admin.access))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    assert_eq!(
        server.get("/api/v1/me", Some(&admin.access)).await.0,
        StatusCode::OK,
        "this session stays"
    );
    let (status, body) = server.get("/api/v1/me", Some(&other.access)).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "session_revoked"));
    assert_eq!(server.login("admin", PASSWORD).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(server.login("admin", "a brand new pass").await.0, StatusCode::OK);
    server.stop().await;
}

async fn profile_update_and_validation(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let (status, me) = server
        .call(
            Method::PATCH,
            "/api/v1/me",
            Some(json!({"display_name": "  The Admin  "})),
            Some(&admin.access),
        )
        .await;
    assert_eq!((status, me["display_name"].as_str()), (StatusCode::OK, Some("The Admin")));
    let (status, body) = server
        .call(
            Method::PATCH,
            "/api/v1/me",
            Some(json!({"display_name": "x".repeat(65)})),
            Some(&admin.access),
        )
        .await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "invalid_display_name"));

    let (_, invite) =
        server.post("/api/v1/admin/invites", json!({"max_uses": 0}), Some(&admin.access)).await;
    let invite = invite["code"].as_str().unwrap();
    for (username, password, expected) in [
        ("ab", PASSWORD, "invalid_username"),
        ("bad name", PASSWORD, "invalid_username"),
        ("robert'); DROP TABLE users;--", PASSWORD, "invalid_username"),
        ("valid_name", "short", "invalid_password"),
    ] {
        let (status, body) = server
            .post(
                "/api/v1/auth/register",
                json!({"username": username, "password": password, "invite_code": invite}),
                None,
            )
            .await;
        assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, expected), "{username}");
    }
    let (_, users) = server.get("/api/v1/admin/users", Some(&admin.access)).await;
    assert_eq!(users["total"], 1, "nothing was created by bad input");
    server.stop().await;
}

async fn closed_mode_refuses_even_the_first_account(backend: Backend) {
    // An operator who closes registration sets up the admin with the CLI; the first visitor
    // of a fresh server must not become its admin.
    let server = TestServer::start_with(backend, |c| {
        c.auth.registration = securevox_domain::RegistrationMode::Closed;
    })
    .await;
    let (status, body) = server.register("mallory", None).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "registration_closed"));
    server.stop().await;
}
