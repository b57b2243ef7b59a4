//! Device linking between the web client's protocol core (`web/src/core/linking.ts`) and
//! this crate's `securevox-cli` through the real server: `web/tests/interop/linking.test.ts`,
//! run here with vitest against a server started on port 0 with no account. A CLI user's new
//! web device is linked by the CLI approving its code, reads what is sent afterwards and
//! writes back; the web device then approves a new CLI device of the same user. Also pins the
//! link-code vectors `web/tests/unit/linking.test.ts` asserts for the TypeScript port.
//!
//! Needs Node and `npm ci --prefix web`; without them the test says it did not run, unless
//! `SECUREVOX_TEST_REQUIRE_NODE=1` (set by CI), which makes it fail instead.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use common::TestServer;
use securevox_client::safety;
use sha2::{Digest, Sha256};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_and_cli_devices_link_each_other_through_the_server() {
    let Some(dir) = common::web::web_dir("web linking test") else { return };
    let server = TestServer::start().await;
    common::web::run_vitest(dir, "tests/interop/linking.test.ts", &server.base).await;
    server.stop().await;
}

/// The vectors `web/tests/unit/linking.test.ts` asserts for the TypeScript port.
#[test]
fn link_code_vectors_of_the_web_tests() {
    let signature_key = Sha256::digest(b"signature key");
    let transfer_key = Sha256::digest(b"transfer key");
    assert_eq!(safety::link_code(&signature_key, &transfer_key), "4578854807991817");
    assert_eq!(safety::link_code(&transfer_key, &signature_key), "0238535201210749");
}
