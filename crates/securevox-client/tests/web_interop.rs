//! The web client's protocol core (TypeScript, ts-mls; `web/src/core`) and this crate's
//! `securevox-cli` chat through the real server: `web/tests/interop/chat.test.ts`, run here
//! with vitest against a server started on port 0 with no account (the web user registers
//! first, becomes admin and invites the CLI user). Also pins the safety-number and link-code
//! vectors the web unit tests assert (`web/tests/unit/safety.test.ts`).
//!
//! Needs Node and `npm ci --prefix web`; without them the test says it did not run, unless
//! `SECUREVOX_TEST_REQUIRE_NODE=1` (set by CI), which makes it fail instead.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use common::TestServer;
use securevox_client::safety;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_user_and_a_cli_user_chat_through_the_server() {
    let Some(dir) = common::web::web_dir("web interop test") else { return };
    let server = TestServer::start().await;
    common::web::run_vitest(dir, "tests/interop/chat.test.ts", &server.base).await;
    server.stop().await;
}

/// The vectors `web/tests/unit/safety.test.ts` asserts for the TypeScript port.
#[test]
fn safety_vectors_of_the_web_tests() {
    let ones = [1u8; 32];
    let twos = [2u8; 32];
    let counting: Vec<u8> = (0u8..32).collect();
    let falling: Vec<u8> = (0u8..32).map(|i| 255 - i * 7).collect();
    let (alice, bob) =
        ("5f1c0a52-3c9e-4d7b-9a43-0e2f6b8d1c77", "c0ffee00-1234-4abc-8def-000000000001");
    assert_eq!(safety::fingerprint(&ones, "alice"), "833650374266538598819783808930");
    assert_eq!(safety::fingerprint(&twos, "bob"), "337339632640826941165046395424");
    assert_eq!(
        safety::safety_number(&ones, "alice", &twos, "bob"),
        "337339632640826941165046395424833650374266538598819783808930"
    );
    assert_eq!(
        safety::safety_number(&counting, alice, &falling, bob),
        "814290509494817744418548093194966373660374532984303016517031"
    );
    assert_eq!(safety::link_code(&ones, &twos), "9591062198749573");
    assert_eq!(safety::link_code(&counting, &falling), "9257614591945745");
}
