//! Live delivery over Socket.IO, seen by the official `socket.io-client` (Node, driven by
//! `tests/socketio/watch.mjs`): a socket that names its device gets each new inbox item whole
//! and the client applies it without a sync; other sockets of the user get a hint; a socket
//! cannot name another user's device. Pushed items arriving out of order make the client
//! sync instead, and nothing is applied twice.
//!
//! Needs Node and `npm ci --prefix tests/socketio`; without them the test says it did not run,
//! unless `SECUREVOX_TEST_REQUIRE_NODE=1` (set by CI), which makes it fail instead.

#![allow(clippy::unwrap_used, clippy::too_many_lines)] // test code: a panic is the failure report

mod common;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use common::{texts, TestServer};
use securevox_client::Content;
use serde_json::{json, Value};
use std::io::BufRead as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio::sync::mpsc;

fn scripts_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/socketio");
    let ready = dir.join("node_modules/socket.io-client").is_dir()
        && Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success());
    if ready {
        return Some(dir);
    }
    assert!(
        std::env::var("SECUREVOX_TEST_REQUIRE_NODE").as_deref() != Ok("1"),
        "SECUREVOX_TEST_REQUIRE_NODE=1 but node or tests/socketio/node_modules is missing"
    );
    eprintln!("push test not run: node or tests/socketio/node_modules missing");
    None
}

/// `watch.mjs` running; its lines arrive on `lines`. Killed on drop.
struct Watcher {
    child: Child,
    lines: mpsc::UnboundedReceiver<Value>,
    /// Lines received but not asked for yet.
    backlog: Vec<Value>,
}

impl Watcher {
    async fn start(dir: &PathBuf, url: &str, sockets: &Value) -> Self {
        let mut child = Command::new("node")
            .arg("watch.mjs")
            .current_dir(dir)
            .env("SECUREVOX_URL", url)
            .env("WATCH_SOCKETS", sockets.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(value) = serde_json::from_str(&line) {
                    if tx.send(value).is_err() {
                        break;
                    }
                }
            }
        });
        let mut watcher = Self { child, lines, backlog: Vec::new() };
        watcher.next(|l| l["ready"] == true).await;
        watcher
    }

    /// The first line, in arrival order, that satisfies `want`; others are kept for later.
    async fn next(&mut self, want: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self.backlog.iter().position(&want) {
            return self.backlog.remove(i);
        }
        let (lines, backlog) = (&mut self.lines, &mut self.backlog);
        let found = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let line = lines.recv().await.expect("watch.mjs exited");
                if want(&line) {
                    return line;
                }
                backlog.push(line);
            }
        });
        let found = found.await;
        found.unwrap_or_else(|_| {
            panic!("the expected Socket.IO event did not come; got {backlog:?}")
        })
    }

    /// Every line not asked for yet, after waiting `wait` for more.
    async fn drain(&mut self, wait: Duration) -> Vec<Value> {
        tokio::time::sleep(wait).await;
        while let Ok(line) = self.lines.try_recv() {
            self.backlog.push(line);
        }
        std::mem::take(&mut self.backlog)
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn inbox_of(socket: &'static str) -> impl Fn(&Value) -> bool {
    move |l| l["socket"] == socket && l["event"] == "inbox"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connected_devices_get_their_items_pushed() {
    let Some(dir) = scripts_dir() else { return };
    let server = TestServer::start().await;
    let dirs = tempfile::tempdir().unwrap();
    let (mut alice, mut bob) = server.pair(dirs.path(), "alice", "bob").await;
    let token = bob.profile().access_token.clone();
    let device = bob.device_id().unwrap().to_owned();
    let sockets = json!([
        { "name": "device", "auth": { "token": token, "deviceId": device } },
        { "name": "plain", "auth": { "token": token } },
        { "name": "stolen", "auth": { "token": token, "deviceId": alice.device_id().unwrap() } },
    ]);
    let mut watcher = Watcher::start(&dir, &server.base, &sockets).await;
    let refused = watcher.next(|l| l["socket"] == "stolen").await;
    assert_eq!(refused["event"], "connect_error", "{refused}");
    assert!(refused["data"].as_str().unwrap().starts_with("not_found"), "{refused}");

    // The Welcome comes whole to the device's socket; bob joins from it without a sync.
    let id = alice.create_group("team", &["bob"]).await.unwrap();
    let welcome = watcher.next(inbox_of("device")).await;
    assert_eq!(welcome["data"]["item"]["kind"], "welcome", "{welcome}");
    assert_eq!(welcome["data"]["conversationId"], id.as_str());
    let report = bob.receive_pushed(&welcome["data"]).await.unwrap();
    assert_eq!(report.joined, vec![id.clone()], "{report:?}");
    let hint = watcher.next(inbox_of("plain")).await;
    assert!(hint["data"].get("item").is_none(), "a socket without a device gets a hint: {hint}");
    assert_eq!(hint["data"]["conversationId"], id.as_str());

    // Messages, pushed in order, applied one by one.
    alice.send_text(&id, "one").await.unwrap();
    let one = watcher.next(inbox_of("device")).await;
    assert_eq!(one["data"]["item"]["prev"], welcome["data"]["item"]["id"], "{one}");
    let report = bob.receive_pushed(&one["data"]).await.unwrap();
    assert_eq!(texts(&report.messages), ["one"]);
    assert_eq!(bob.profile().inbox_cursor, one["data"]["item"]["id"].as_i64().unwrap());

    // Out of order: the later item makes the client sync (and so take both); the earlier
    // one, arriving after, is not applied again.
    alice.send_text(&id, "two").await.unwrap();
    alice.send_text(&id, "three").await.unwrap();
    let two = watcher.next(inbox_of("device")).await;
    let three = watcher.next(inbox_of("device")).await;
    let report = bob.receive_pushed(&three["data"]).await.unwrap();
    assert_eq!(texts(&report.messages), ["two", "three"]);
    let report = bob.receive_pushed(&two["data"]).await.unwrap();
    assert!(report.messages.is_empty(), "{report:?}");
    assert_eq!(texts(&bob.history(Some(&id)).unwrap()), ["one", "two", "three"]);

    // Alice's own device is not connected: nothing was pushed for it, and her sockets-less
    // sync still works.
    // Typing travels as an unstored ephemeral MLS message to connected devices only.
    assert_eq!(alice.send_typing(&id, true).await.unwrap(), 1, "bob's device socket");
    let typing = watcher.next(|l| l["socket"] == "device" && l["event"] == "ephemeral").await;
    let typed = bob.receive_ephemeral(&typing["data"]).unwrap().expect("decrypts");
    assert_eq!(typed.content, Content::Typing { active: true });
    assert_eq!(typed.sender_user_id, alice.user_id());
    assert!(
        !bob.history(Some(&id)).unwrap().iter().any(|m| m.content == typed.content),
        "not logged"
    );

    // What crosses Socket.IO is ciphertext: a canary sent as text is nowhere in the events.
    let canary = format!("canary-{}", std::process::id());
    alice.send_text(&id, &canary).await.unwrap();
    let pushed = watcher.next(inbox_of("device")).await;
    let ciphertext = B64.decode(pushed["data"]["item"]["data"].as_str().unwrap()).unwrap();
    assert!(!ciphertext.windows(canary.len()).any(|w| w == canary.as_bytes()));
    assert!(!pushed.to_string().contains(&canary));
    assert_eq!(texts(&bob.receive_pushed(&pushed["data"]).await.unwrap().messages), [canary]);

    let earlier = watcher.drain(Duration::ZERO).await;
    assert_eq!(
        earlier.iter().filter(|l| l["socket"] == "plain" && l["event"] == "inbox").count(),
        4,
        "the plain socket got a hint per message: {earlier:?}"
    );
    bob.send_text(&id, "back").await.unwrap();
    assert_eq!(texts(&alice.sync().await.unwrap().messages), ["back"]);
    let rest = watcher.drain(Duration::from_millis(200)).await;
    assert!(
        earlier.iter().all(|l| l["event"] != "ephemeral"),
        "only the device socket: {earlier:?}"
    );
    assert!(
        rest.iter().all(|l| l["event"] != "inbox"),
        "bob's sockets get nothing for bob's own message: {rest:?}"
    );
}

/// A user's keys changing (here: a device removed) tells those who may hold them — people
/// they share a conversation with, contacts — to compare again (`keys_changed`), and no one
/// else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_hear_of_key_changes() {
    let Some(dir) = scripts_dir() else { return };
    let server = TestServer::start().await;
    let dirs = tempfile::tempdir().unwrap();
    let (mut alice, bob) = server.pair(dirs.path(), "alice", "bob").await;
    let invite = server.invite(&alice.profile().access_token).await;
    let carol = securevox_client::Client::register(
        &server.base,
        &dirs.path().join("carol"),
        "carol",
        common::PASSWORD,
        Some(&invite),
    )
    .await
    .unwrap();
    alice.create_group("team", &["bob"]).await.unwrap();
    let sockets = json!([
        { "name": "bob", "auth": { "token": bob.profile().access_token } },
        { "name": "carol", "auth": { "token": carol.profile().access_token } },
    ]);
    let mut watcher = Watcher::start(&dir, &server.base, &sockets).await;

    let removed = reqwest::Client::new()
        .delete(format!("{}/api/v1/devices/{}", server.base, alice.device_id().unwrap()))
        .bearer_auth(&alice.profile().access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status().as_u16(), 204);
    let heard = watcher.next(|l| l["event"] == "keys_changed").await;
    assert_eq!(heard["socket"], "bob", "{heard}");
    assert_eq!(heard["data"], json!({ "userId": alice.user_id() }));
    let rest = watcher.drain(Duration::from_millis(500)).await;
    assert!(!rest.iter().any(|l| l["event"] == "keys_changed"), "carol shares nothing: {rest:?}");
    server.stop().await;
}
