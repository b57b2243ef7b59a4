//! The web app served at `/`, used by two people in two headless Chromium pages
//! (`tests/browser/chat.mjs`): register (the second with the first's invite), add each other,
//! chat end-to-end encrypted both ways live, reload with the history kept, compare safety
//! numbers, log out and in again; a third joins and the first starts a group of three.
//! Screenshots go to `target/browser-artifacts/chat-*.png`. And a video call in the app
//! (`tests/browser/app_call.mjs`): started from a conversation, accepted on the incoming-call
//! screen, media both ways, mutes seen, hung up, in the history; then again relay-only through
//! the embedded TURN (screenshots `target/browser-artifacts/app-call-*.png`). And a second
//! browser of one person linked from the first (`tests/browser/link.mjs`).
//!
//! Needs Chromium, Node, `npm ci --prefix tests/browser` and the built app (`npm ci --prefix
//! web && npm run --prefix web build`, which `make test` does). Without them the test says it
//! did not run and passes, unless `SECUREVOX_TEST_REQUIRE_BROWSER=1` (set by CI): then it
//! fails.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use common::{browser, Backend, TestServer, PASSWORD};
use reqwest::StatusCode;

/// Bound on the whole browser run (the script bounds itself at 120 s).
const TIMEOUT_S: u32 = 180;

/// Whether the browser test can run; a reason to skip it otherwise (a failure under CI).
fn can_run() -> bool {
    browser::can_run("web app browser test", browser::missing_app_tool())
}

/// What `GET path` answers `username` (logged in over HTTP), after a browser run.
async fn get_as(server: &TestServer, username: &str, path: &str) -> serde_json::Value {
    let (status, login) = server.login(username, PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{login}");
    let (status, body) = server.get(path, Some(login["access_token"].as_str().unwrap())).await;
    assert_eq!(status, StatusCode::OK, "{username}: GET {path}: {body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_people_chat_in_the_web_app() {
    if !can_run() {
        return;
    }
    // The default invite-only registration: the first account needs no invite, the second
    // registers from the invite link the first (an admin) made.
    let server = TestServer::start(Backend::Sqlite).await;
    browser::run_script("chat.mjs", &server.base, Vec::new(), TIMEOUT_S).await;

    // What the server holds: the direct conversation of two and the group of three, with
    // messages it cannot read.
    let conversations = get_as(&server, "alice", "/api/v1/conversations").await;
    let conversations = conversations.as_array().unwrap();
    assert_eq!(conversations.len(), 2, "{conversations:?}");
    let kind = |k: &str| conversations.iter().find(|c| c["kind"] == k).unwrap().clone();
    let (direct, group) = (kind("direct"), kind("group"));
    assert_eq!(direct["members"].as_array().unwrap().len(), 2, "{direct}");
    assert!(direct["next_seq"].as_i64().unwrap() > 5, "{direct}");
    assert_eq!(group["members"].as_array().unwrap().len(), 3, "{group}");
    assert_eq!(group["name"], "Team", "{group}");
    // The SQLite database with its write-ahead log.
    let mut db = Vec::new();
    for file in std::fs::read_dir(server.dir.path()).unwrap() {
        let path = file.unwrap().path();
        if path.file_name().unwrap().to_string_lossy().starts_with("securevox.db") {
            db.extend(std::fs::read(&path).unwrap());
        }
    }
    assert!(!db.is_empty(), "no SQLite database in {}", server.dir.path().display());
    for plaintext in ["Hello Bob", "Still there after your reload", "Welcome back", "Hi team"] {
        assert!(
            !db.windows(plaintext.len()).any(|w| w == plaintext.as_bytes()),
            "{plaintext:?} in the server's database"
        );
    }
    server.stop().await;
}

/// A second browser of alice's is linked from her first (`tests/browser/link.mjs`): it shows
/// its code, a wrong code is refused, the right one approved; it joins her conversation with
/// bob and both read what is sent afterwards. Screenshots `target/browser-artifacts/link-*.png`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_browser_is_linked_in_the_web_app() {
    if !can_run() {
        return;
    }
    let server = TestServer::start(Backend::Sqlite).await;
    browser::run_script("link.mjs", &server.base, Vec::new(), TIMEOUT_S).await;

    // One identity, two chat devices, both in the conversation with bob.
    let devices = get_as(&server, "alice", "/api/v1/devices").await;
    assert_eq!(devices.as_array().unwrap().len(), 2, "{devices}");
    let links = get_as(&server, "alice", "/api/v1/devices/links").await;
    assert_eq!(links.as_array().unwrap().len(), 0, "{links}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_people_video_call_in_the_web_app() {
    if !can_run() {
        return;
    }
    let server = TestServer::start_with(Backend::Sqlite, |c| {
        c.turn.enabled = true;
        c.turn.port = 0;
        c.turn.listen = vec!["127.0.0.1".into()];
        // Both browsers' relayed addresses are on 127.0.0.1.
        c.turn.allow_loopback_peers = true;
    })
    .await;
    let env = vec![("SECUREVOX_APP_RELAY", "1".to_owned())];
    let summary = browser::run_script("app_call.mjs", &server.base, env, TIMEOUT_S).await;
    for run in ["direct", "relay"] {
        for side in 0..2 {
            let stats = &summary["runs"][run]["stats"][side];
            assert!(stats["framesDecoded"].as_u64() > Some(0), "{run} {side}: {summary}");
        }
    }

    // The record, in both members' histories: the two video calls answered and completed, and
    // the audio call declined.
    for (username, direction) in [("alice", "outgoing"), ("bob", "incoming")] {
        let page = get_as(&server, username, "/api/v1/calls").await;
        let calls = page["calls"].as_array().unwrap();
        assert_eq!(calls.len(), 3, "{username}: {page}");
        // Newest first: the relayed video call, the declined audio call, the direct video call.
        for (call, (outcome, media)) in calls.iter().zip([
            ("completed", "video"),
            ("declined", "audio"),
            ("completed", "video"),
        ]) {
            assert_eq!(call["outcome"], outcome, "{username}: {call}");
            assert_eq!(call["direction"], direction, "{username}: {call}");
            assert_eq!(call["media"], media, "{username}: {call}");
        }
    }
    server.stop().await;
}

/// A group call of three in the app (`tests/browser/group_call.mjs`): a ring cancelled before
/// an answer is a missed call in the group's timeline; a mesh where each page decodes the two
/// others; a dropped connection resumed within the grace period; people leaving; a connection
/// down past the grace period ends the call; a hang-up while reconnecting ends it at once. Screenshots `target/browser-artifacts/group-call-*`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_people_group_call_in_the_web_app() {
    if !can_run() {
        return;
    }
    let server = TestServer::start(Backend::Sqlite).await;
    let summary = browser::run_script("group_call.mjs", &server.base, Vec::new(), TIMEOUT_S).await;
    for (who, peers) in summary["mesh"].as_object().unwrap() {
        let peers = peers.as_array().unwrap();
        assert_eq!(peers.len(), 2, "{who}: {summary}");
        assert!(peers.iter().all(|p| p["framesDecoded"].as_u64() > Some(0)), "{who}: {summary}");
    }

    // The record, newest first: the call bob hung up while reconnecting, the call he dropped
    // out of, the group video call, the ring alice cancelled.
    for (username, outcomes) in [
        ("alice", ["completed", "completed", "completed", "cancelled"]),
        ("bob", ["completed", "completed", "completed", "missed"]),
        ("carol", ["declined", "declined", "completed", "missed"]),
    ] {
        let page = get_as(&server, username, "/api/v1/calls").await;
        let calls = page["calls"].as_array().unwrap();
        let got: Vec<&str> = calls.iter().map(|c| c["outcome"].as_str().unwrap_or("-")).collect();
        assert_eq!(got, outcomes, "{username}: {page}");
        assert!(calls.iter().all(|c| c["members"].as_array().unwrap().len() == 3), "{page}");
    }
    server.stop().await;
}
