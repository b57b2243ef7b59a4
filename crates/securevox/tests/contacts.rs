//! Contacts over real HTTP: finding people, adding and removing contacts, and what a block
//! stops — new conversations, KeyPackage claims, calls — in both directions.

#![allow(clippy::unwrap_used, clippy::too_many_lines)] // test code: a panic is the failure report

mod common;

use common::{code, Backend, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::json;

on_both_backends!(find_add_remove_contacts, a_block_stops_reach_both_ways);

async fn find_add_remove_contacts(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let alice = server.user(&admin, "alice").await;
    let alina = server.user(&admin, "alina").await;
    let bob = server.user(&admin, "bob").await;

    let (status, found) = server.get("/api/v1/users/search?q=AL", Some(&bob.access)).await;
    assert_eq!(status, StatusCode::OK, "{found}");
    let names: Vec<&str> =
        found.as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap()).collect();
    assert_eq!(names, ["alice", "alina"]);
    let (_, found) = server.get("/api/v1/users/search?q=al", Some(&alice.access)).await;
    assert_eq!(found.as_array().unwrap().len(), 1, "not yourself");
    let (status, body) = server.get("/api/v1/users/search?q=a", Some(&bob.access)).await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "query_too_short"));
    let (status, _) = server.get("/api/v1/users/search?q=al", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // A disabled account is not found.
    let path = format!("/api/v1/admin/users/{}", alina.user_id);
    let (status, _) = server
        .call(Method::PATCH, &path, Some(json!({"disabled": true})), Some(&admin.access))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, found) = server.get("/api/v1/users/search?q=al", Some(&bob.access)).await;
    assert_eq!(found.as_array().unwrap().len(), 1);

    let contact = format!("/api/v1/contacts/{}", alice.user_id);
    let (status, _) = server.call(Method::PUT, &contact, None, Some(&bob.access)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = server.call(Method::PUT, &contact, None, Some(&bob.access)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "adding twice is fine");
    let (_, list) = server.get("/api/v1/contacts", Some(&bob.access)).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(
        (list[0]["user"]["username"].as_str(), list[0]["state"].as_str()),
        (Some("alice"), Some("contact"))
    );
    let (_, list) = server.get("/api/v1/contacts", Some(&alice.access)).await;
    assert_eq!(list, json!([]), "a contact list is one's own");

    let myself = format!("/api/v1/contacts/{}", bob.user_id);
    let (status, body) = server.call(Method::PUT, &myself, None, Some(&bob.access)).await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "self"));
    let nobody = "/api/v1/contacts/00000000-0000-0000-0000-000000000000";
    let (status, _) = server.call(Method::PUT, nobody, None, Some(&bob.access)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let disabled = format!("/api/v1/contacts/{}", alina.user_id);
    let (status, _) = server.call(Method::PUT, &disabled, None, Some(&bob.access)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, _) = server.call(Method::DELETE, &contact, None, Some(&bob.access)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = server.call(Method::DELETE, &contact, None, Some(&bob.access)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    server.stop().await;
}

async fn a_block_stops_reach_both_ways(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let alice = server.user(&admin, "alice").await;
    let bob = server.user(&admin, "bob").await;

    // Bob blocks alice.
    let block = format!("/api/v1/contacts/{}/block", alice.user_id);
    let (status, _) = server.call(Method::PUT, &block, None, Some(&bob.access)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, list) = server.get("/api/v1/contacts", Some(&bob.access)).await;
    assert_eq!(list[0]["state"], "blocked");

    // Neither can reach the other: claims, calls, adding as a contact.
    for (from, to) in [(&alice, &bob), (&bob, &alice)] {
        let claim = format!("/api/v1/users/{}/key-packages/claim", to.user_id);
        let (status, body) = server.post(&claim, json!({}), Some(&from.access)).await;
        assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "blocked"), "claim {body}");
        let (status, body) = server
            .post("/api/v1/calls", json!({"invitees": [to.user_id]}), Some(&from.access))
            .await;
        assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "blocked"), "call {body}");
    }
    let add = format!("/api/v1/contacts/{}", bob.user_id);
    let (status, body) = server.call(Method::PUT, &add, None, Some(&alice.access)).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "blocked"));

    // Unblocked, they reach each other again.
    let (status, _) = server.call(Method::DELETE, &block, None, Some(&bob.access)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = server.call(Method::DELETE, &block, None, Some(&bob.access)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "not blocked any more");
    let claim = format!("/api/v1/users/{}/key-packages/claim", bob.user_id);
    let (status, _) = server.post(&claim, json!({}), Some(&alice.access)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) =
        server.post("/api/v1/calls", json!({"invitees": [bob.user_id]}), Some(&alice.access)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    server.stop().await;
}
