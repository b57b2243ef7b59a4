//! A real WebRTC video call between two headless Chromium pages that use only our Socket.IO
//! signaling (`tests/browser/call.mjs`), then the call as its members' history records it.
//!
//! Needs Chromium, Node and `npm ci --prefix tests/browser`. Without them the test says it did
//! not run and passes, unless `SECUREVOX_TEST_REQUIRE_BROWSER=1` (set by CI): then it fails.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use common::{browser, Backend, TestServer, PASSWORD};
use reqwest::StatusCode;
use serde_json::Value;

/// Bound on the whole browser run (the script bounds itself at 60 s).
const TIMEOUT_S: u32 = 120;

/// The call `session_id` in the history of `username`.
async fn history_entry(server: &TestServer, username: &str, session_id: &str) -> Value {
    let (status, login) = server.login(username, PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{login}");
    let token = login["access_token"].as_str().unwrap();
    let (status, page) = server.get("/api/v1/calls", Some(token)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let calls = page["calls"].as_array().unwrap();
    calls
        .iter()
        .find(|c| c["session_id"] == session_id)
        .unwrap_or_else(|| panic!("call {session_id} not in {username}'s history: {page}"))
        .clone()
}

/// Whether the browser test can run; a reason to skip it otherwise (a failure under CI).
fn can_run() -> bool {
    browser::can_run("browser call test", browser::missing_tool())
}

/// Runs `call.mjs` against `server` (relay-only over `turn` when given) and returns its
/// summary after checking media flowed both ways and the call ended completed for both.
async fn call(server: &TestServer, turn: Option<&str>) -> Value {
    let mut env = Vec::new();
    if let Some(transport) = turn {
        env.push(("SECUREVOX_TURN_TRANSPORT", transport.to_owned()));
    }
    let summary = browser::run_script("call.mjs", &server.base, env, TIMEOUT_S).await;
    assert_eq!(summary["endReason"], "completed", "{summary}");
    for side in ["caller", "callee"] {
        assert!(summary["framesDecoded"][side].as_u64() > Some(0), "{side}: {summary}");
        assert!(summary["audioPacketsReceived"][side].as_u64() > Some(0), "{side}: {summary}");
    }

    // The record: answered, ended by hanging up, completed for both members.
    let session_id = summary["sessionId"].as_str().unwrap();
    for (side, direction) in [("caller", "outgoing"), ("callee", "incoming")] {
        let username = summary[side]["username"].as_str().unwrap();
        let call = history_entry(server, username, session_id).await;
        assert_eq!(call["outcome"], "completed", "{side}: {call}");
        assert_eq!(call["state"], "ended", "{side}: {call}");
        assert_eq!(call["direction"], direction, "{side}: {call}");
        assert_eq!(call["media"], "video", "{side}: {call}");
        assert_eq!(call["caller_id"], summary["caller"]["id"], "{side}: {call}");
        assert!(call["answered_at"].is_string() && call["ended_at"].is_string(), "{call}");
    }
    summary
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_browsers_call_each_other_over_our_signaling() {
    if !can_run() {
        return;
    }
    let server = TestServer::start_with(Backend::Sqlite, |c| {
        c.auth.registration = securevox_domain::RegistrationMode::Open;
    })
    .await;
    let summary = call(&server, None).await;
    for side in ["caller", "callee"] {
        assert_eq!(summary["selectedTypes"][side]["local"], "host", "{summary}");
    }
    server.stop().await;
}

/// The relayed bytes the server counted in `direction`.
async fn relayed_bytes(server: &TestServer, direction: &str) -> u64 {
    let text = server.http.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let name = format!("securevox_turn_relayed_bytes_total{{direction=\"{direction}\"}}");
    text.lines()
        .find_map(|l| l.strip_prefix(&name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browsers_call_through_the_embedded_turn_over_udp_and_tcp() {
    if !can_run() {
        return;
    }
    let server = TestServer::start_with(Backend::Sqlite, |c| {
        c.auth.registration = securevox_domain::RegistrationMode::Open;
        c.turn.enabled = true;
        c.turn.port = 0;
        c.turn.listen = vec!["127.0.0.1".into()];
        // Both browsers' relayed addresses are on 127.0.0.1.
        c.turn.allow_loopback_peers = true;
    })
    .await;
    for transport in ["udp", "tcp"] {
        let before = relayed_bytes(&server, "to_peer").await;
        let summary = call(&server, Some(transport)).await;
        for side in ["caller", "callee"] {
            let types = &summary["selectedTypes"][side];
            assert_eq!(types["local"], "relay", "{side} over {transport}: {summary}");
            assert_eq!(types["relayProtocol"], transport, "{side}: {summary}");
            assert!(["relay", "prflx"].contains(&types["remote"].as_str().unwrap()), "{summary}");
        }
        // The media crossed our relays: every video byte a page received was relayed to it.
        let relayed = relayed_bytes(&server, "to_peer").await - before;
        let video: u64 = ["caller", "callee"]
            .iter()
            .map(|side| summary["videoBytesReceived"][side].as_u64().unwrap())
            .sum();
        assert!(
            video > 0 && relayed >= video,
            "{relayed} bytes relayed over {transport}, {video} of video received"
        );
    }
    server.stop().await;
}
