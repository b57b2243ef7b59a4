//! The web app served at `/`, used by two people in two headless Chromium pages
//! (`tests/browser/chat.mjs`): register (the second with the first's invite), add each other,
//! chat end-to-end encrypted both ways live, reload with the history kept, compare safety
//! numbers, log out and in again; a third joins and the first starts a group of three.
//! Screenshots go to `target/browser-artifacts/chat-*.png`. And a video call in the app
//! (`tests/browser/app_call.mjs`): started from a conversation, accepted on the incoming-call
//! screen, media both ways, mutes seen, hung up, in the history; then again relay-only through
//! the embedded TURN (screenshots `target/browser-artifacts/app-call-*.png`).
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

/// Why the app's browser tests cannot run here, if they cannot: the browser tools, or the
/// built app.
fn missing_tool() -> Option<&'static str> {
    browser::missing_tool().or_else(|| {
        let index = std::fs::read_to_string(browser::workspace().join("web/dist/index.html"))
            .unwrap_or_default();
        (!index.contains("<div id=\"app\">")).then_some(
            "the web app is not built (npm ci --prefix web && npm run --prefix web build)",
        )
    })
}

/// Whether the browser test can run; a reason to skip it otherwise (a failure under CI).
fn can_run() -> bool {
    browser::can_run("web app browser test", missing_tool())
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
    let (status, login) = server.login("alice", PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{login}");
    let token = login["access_token"].as_str().unwrap();
    let (status, conversations) = server.get("/api/v1/conversations", Some(token)).await;
    assert_eq!(status, StatusCode::OK, "{conversations}");
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
        let (status, login) = server.login(username, PASSWORD).await;
        assert_eq!(status, StatusCode::OK, "{login}");
        let token = login["access_token"].as_str().unwrap();
        let (status, page) = server.get("/api/v1/calls", Some(token)).await;
        assert_eq!(status, StatusCode::OK, "{page}");
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
