//! The web app in headless Chromium and this crate's `securevox-cli` talk through the real
//! server (`tests/browser/cli_chat.mjs`): the CLI user starts a group with the web user, they
//! write both ways, send each other a photo (previewed in the browser) and a document
//! (decrypted by the CLI), and compare safety numbers. Screenshots go to
//! `target/browser-artifacts/cli-chat-*.png`.
//!
//! Needs what the browser tests of the `securevox` crate need (Chromium, Node,
//! `npm ci --prefix tests/browser`, the built web app); without them the test says it did not
//! run and passes, unless `SECUREVOX_TEST_REQUIRE_BROWSER=1` (set by CI): then it fails.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;
// The browser harness of the server's tests, shared by path (it needs only `node`).
#[path = "../../securevox/tests/common/browser.rs"]
mod browser;
#[path = "../../securevox/tests/common/node.rs"]
mod node;

use common::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_user_and_a_cli_user_chat_in_the_browser() {
    if !browser::can_run("web and CLI browser test", browser::missing_app_tool()) {
        return;
    }
    let server = TestServer::start().await;
    let cli = env!("CARGO_BIN_EXE_securevox-cli").to_owned();
    let summary =
        browser::run_script("cli_chat.mjs", &server.base, vec![("SECUREVOX_CLI", cli)], 180).await;

    // The group the CLI user made holds both, as the server sees it.
    let token = server.login("dave").await;
    let conversation = summary["conversation"].as_str().unwrap();
    let view = server.get(&format!("/api/v1/conversations/{conversation}"), &token).await;
    let mut members: Vec<&str> =
        view["members"].as_array().unwrap().iter().filter_map(|m| m["username"].as_str()).collect();
    members.sort_unstable();
    assert_eq!(members, ["alice", "dave"], "{view}");
    server.stop().await;
}
