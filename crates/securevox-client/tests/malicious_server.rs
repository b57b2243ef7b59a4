//! The client against a malicious server: a proxy in front of the real server that tampers
//! with, reorders and replays what a device's inbox returns. The client must never show a
//! forged, misplaced or repeated message as genuine; it reports the bad items instead.

#![allow(clippy::unwrap_used, clippy::too_many_lines)] // test code: a panic is the failure report

mod common;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::response::Response;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use common::{texts, TestServer, PASSWORD};
use securevox_client::Client;
use serde_json::Value;
use std::sync::{Arc, Mutex};

/// What the proxy does to inbox pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Pass,
    /// Flips the last byte of every message's ciphertext.
    Tamper,
    /// Serves the page's items in reverse order.
    Reorder,
    /// Serves items it served before again, under new cursor ids.
    Replay,
}

#[derive(Clone)]
struct Proxy {
    upstream: String,
    http: reqwest::Client,
    mode: Arc<Mutex<Mode>>,
    served: Arc<Mutex<Vec<Value>>>,
}

impl Proxy {
    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }
}

async fn forward(State(proxy): State<Proxy>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let body = to_bytes(body, usize::MAX).await.unwrap();
    let mut upstream =
        proxy.http.request(parts.method.clone(), format!("{}{path}", proxy.upstream));
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" {
            upstream = upstream.header(name, value);
        }
    }
    let response = upstream.body(body).send().await.unwrap();
    let status = response.status();
    let content_type = response.headers().get("content-type").cloned();
    let mut bytes = response.bytes().await.unwrap().to_vec();
    let is_inbox = parts.method == axum::http::Method::GET && parts.uri.path().ends_with("/inbox");
    if is_inbox && status.is_success() {
        let mut page: Value = serde_json::from_slice(&bytes).unwrap();
        let mode = *proxy.mode.lock().unwrap();
        rewrite(&proxy, mode, &mut page);
        bytes = serde_json::to_vec(&page).unwrap();
    }
    let mut builder = Response::builder().status(status);
    if let Some(content_type) = content_type {
        builder = builder.header("content-type", content_type);
    }
    builder.body(Body::from(bytes)).unwrap()
}

fn rewrite(proxy: &Proxy, mode: Mode, page: &mut Value) {
    let next = page["next_after"].as_i64().unwrap();
    let items = page["items"].as_array_mut().unwrap();
    match mode {
        Mode::Pass => {}
        Mode::Tamper => {
            for item in items.iter_mut().filter(|i| i["kind"] == "message") {
                let mut data = B64.decode(item["data"].as_str().unwrap()).unwrap();
                *data.last_mut().unwrap() ^= 0x01;
                item["data"] = Value::from(B64.encode(data));
            }
        }
        Mode::Reorder => items.reverse(),
        Mode::Replay => {
            let again: Vec<Value> = proxy
                .served
                .lock()
                .unwrap()
                .iter()
                .filter(|i| i["kind"] == "message")
                .enumerate()
                .map(|(n, i)| {
                    let mut copy = i.clone();
                    copy["id"] = Value::from(next + 1 + n as i64);
                    copy
                })
                .collect();
            let last = again.last().map(|i| i["id"].clone());
            items.extend(again);
            if let Some(last) = last {
                page["next_after"] = last;
            }
        }
    }
    if mode != Mode::Replay {
        proxy.served.lock().unwrap().extend(page["items"].as_array().unwrap().iter().cloned());
    }
}

async fn start_proxy(upstream: &str) -> (String, Proxy) {
    let proxy = Proxy {
        upstream: upstream.to_owned(),
        http: reqwest::Client::new(),
        mode: Arc::new(Mutex::new(Mode::Pass)),
        served: Arc::default(),
    };
    let app = axum::Router::new().fallback(forward).with_state(proxy.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), proxy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_reordered_and_replayed_messages_are_rejected() {
    let server = TestServer::start().await;
    let (url, proxy) = start_proxy(&server.base).await;
    let dirs = tempfile::tempdir().unwrap();
    let mut alice =
        Client::register(&url, &dirs.path().join("alice"), "alice", PASSWORD, None).await.unwrap();
    let invite = server.invite(&alice.profile().access_token).await;
    let mut bob = Client::register(&url, &dirs.path().join("bob"), "bob", PASSWORD, Some(&invite))
        .await
        .unwrap();
    let id = alice.create_group("team", &["bob"]).await.unwrap();
    let report = bob.sync().await.unwrap();
    assert_eq!(report.joined, vec![id.clone()]);

    // Honest delivery works through the proxy.
    alice.send_text(&id, "genuine").await.unwrap();
    assert_eq!(texts(&bob.sync().await.unwrap().messages), ["genuine"]);

    // Tampered ciphertext: not shown, reported.
    alice.send_text(&id, "tampered").await.unwrap();
    proxy.set(Mode::Tamper);
    let report = bob.sync().await.unwrap();
    assert!(report.messages.is_empty(), "a tampered message was accepted: {report:?}");
    assert_eq!(report.errors.len(), 1, "{report:?}");

    // Reordered: a message of the next epoch served before the Commit that starts it is
    // refused, not shown out of place.
    proxy.set(Mode::Pass);
    alice.send_text(&id, "before the commit").await.unwrap();
    alice.update_keys(&id).await.unwrap();
    alice.send_text(&id, "after the commit").await.unwrap();
    proxy.set(Mode::Reorder);
    let report = bob.sync().await.unwrap();
    let shown = texts(&report.messages);
    assert!(!shown.contains(&"after the commit".to_owned()), "{report:?}");
    assert!(!report.errors.is_empty(), "the misplaced message is reported: {report:?}");

    // Replayed: every message served so far comes again under new ids. None already shown is
    // shown twice (MLS refuses a reused message key); the one refused above for its place
    // may now be read where it belongs, once.
    let shown_before: Vec<String> = texts(&bob.history(Some(&id)).unwrap());
    proxy.set(Mode::Replay);
    let report = bob.sync().await.unwrap();
    for text in texts(&report.messages) {
        assert!(!shown_before.contains(&text), "{text:?} was shown twice: {report:?}");
    }
    assert!(!report.errors.is_empty(), "the replays are reported: {report:?}");
    let history = texts(&bob.history(Some(&id)).unwrap());
    for text in ["genuine", "before the commit", "after the commit"] {
        assert!(history.iter().filter(|t| *t == text).count() <= 1, "{history:?}");
    }
    assert!(!history.contains(&"tampered".to_owned()), "{history:?}");
    server.stop().await;
}
