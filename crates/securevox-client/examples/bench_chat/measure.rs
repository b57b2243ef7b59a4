//! Sending a run of messages and timing their delivery: what each device's socket received and
//! when, and what the sender sent and when its request started.

use anyhow::{bail, Context as _, Result};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use futures_util::StreamExt as _;
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use securevox_client::live::Live;
use securevox_client::store::{Profile, Provider};
use securevox_client::{Client, Content, CIPHERSUITE};
use serde_json::json;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// An `inbox` event as one device's socket received it.
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    pub device: usize,
    /// The message's place in its conversation.
    pub seq: i64,
    /// The inbox item's id, and the id of the device's item before it.
    pub id: i64,
    pub prev: Option<i64>,
    pub at: Instant,
}

/// What the sockets saw besides the items they were meant to get.
#[derive(Debug, Default)]
pub struct Anomalies {
    /// Connections that ended during the run.
    pub disconnected: AtomicUsize,
    /// `inbox` events on sockets of devices in no measured group, or without a whole item.
    pub unexpected: AtomicUsize,
}

/// Reads one device's socket until it ends: answers pings, and hands each inbox item to
/// `arrivals` (when `arrivals` is given: the device is a group member).
pub fn listen(
    mut live: Live,
    device: usize,
    arrivals: Option<mpsc::UnboundedSender<Arrival>>,
    anomalies: Arc<Anomalies>,
) {
    tokio::spawn(async move {
        loop {
            match live.next_event().await {
                Ok(Some(event)) if event.name == "inbox" => {
                    let at = Instant::now();
                    let item = &event.data["item"];
                    let found = (event.data["seq"].as_i64(), item["id"].as_i64(), &arrivals);
                    if let (Some(seq), Some(id), Some(arrivals)) = found {
                        let prev = item["prev"].as_i64();
                        let _ = arrivals.send(Arrival { device, seq, id, prev, at });
                    } else {
                        anomalies.unexpected.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => {
                    anomalies.disconnected.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        }
    });
}

/// One message sent: which of the run, its seq, when its request started and was answered.
#[derive(Debug, Clone, Copy)]
pub struct Sent {
    pub index: usize,
    pub seq: i64,
    pub start: Instant,
    pub answered: Instant,
}

/// Encrypts `texts` as MLS application messages of `conversation` with the sender device
/// whose profile is `dir` (not open in a [`Client`]), ready as request bodies, and saves the
/// state back. Encrypting ahead lets the timing start at the HTTP request and lets several
/// requests be in flight, which [`Client::send_text`] (one at a time) does not.
pub fn encrypt_ahead(dir: &Path, conversation: &str, texts: &[String]) -> Result<Vec<String>> {
    let profile = Profile::load(dir)?;
    let provider = Provider::load(dir)?;
    let public = B64.decode(profile.device_signature_key.context("no device key")?)?;
    let signer =
        SignatureKeyPair::read(provider.storage(), &public, CIPHERSUITE.signature_algorithm())
            .context("the device's signature key is not in mls.json")?;
    let mut group =
        MlsGroup::load(provider.storage(), &GroupId::from_slice(conversation.as_bytes()))?
            .context("the sender is not in the group")?;
    let mut bodies = Vec::with_capacity(texts.len());
    for text in texts {
        let plaintext = serde_json::to_vec(&Content::Text { body: text.clone() })?;
        let message = group.create_message(&provider, &signer, &plaintext)?;
        bodies.push(json!({ "message": B64.encode(message.to_bytes()?) }).to_string());
    }
    provider.save(dir)?;
    Ok(bodies)
}

/// Posts ready message bodies as one device.
pub struct Poster {
    pub http: reqwest::Client,
    pub url: String,
    pub token: String,
    pub device_id: String,
}

impl Poster {
    async fn post(&self, index: usize, body: String) -> Result<Sent> {
        let start = Instant::now();
        let response = self
            .http
            .post(&self.url)
            .bearer_auth(&self.token)
            .header("x-device-id", &self.device_id)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await?;
        let status = response.status();
        let text = response.text().await?;
        let answered = Instant::now();
        if status.as_u16() != 201 {
            bail!("message {index}: {status}: {text}");
        }
        let seq = serde_json::from_str::<serde_json::Value>(&text)?["seq"]
            .as_i64()
            .context("no seq in the answer")?;
        Ok(Sent { index, seq, start, answered })
    }
}

/// How the messages of a run are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// One at a time, the next once every member device has the last one.
    Isolated,
    /// Up to this many requests in flight, each next one as soon as one is answered.
    Window(usize),
}

/// Sends `bodies` at `pace` while collecting arrivals; stops waiting when `receivers` devices
/// have every message or nothing arrived for `stall`.
pub async fn send_ready(
    poster: &Poster,
    bodies: Vec<String>,
    pace: Pace,
    receivers: usize,
    arrivals: &mut mpsc::UnboundedReceiver<Arrival>,
    stall: Duration,
) -> Result<(Vec<Sent>, Vec<Arrival>)> {
    let expected = bodies.len() * receivers;
    match pace {
        Pace::Isolated => {
            let (mut sent, mut got) = (Vec::new(), Vec::new());
            for (index, body) in bodies.into_iter().enumerate() {
                let message = poster.post(index, body).await?;
                let done = |got: &[Arrival]| got.iter().filter(|a| a.seq == message.seq).count();
                while done(&got) < receivers && receive(arrivals, &mut got, stall).await {}
                sent.push(message);
            }
            drain(arrivals, &mut got);
            Ok((sent, got))
        }
        Pace::Window(window) => {
            let sending = futures_util::stream::iter(bodies.into_iter().enumerate())
                .map(|(index, body)| poster.post(index, body))
                .buffer_unordered(window)
                .collect::<Vec<_>>();
            let (sent, got) = tokio::join!(sending, collect(arrivals, expected, stall));
            Ok((sent.into_iter().collect::<Result<_>>()?, got))
        }
    }
}

/// Sends `texts` one after the other with [`Client::send_text`] (encryption, the state saved,
/// the request), timed from the call, while collecting arrivals.
pub async fn send_with_client(
    client: &mut Client,
    conversation: &str,
    texts: &[String],
    receivers: usize,
    arrivals: &mut mpsc::UnboundedReceiver<Arrival>,
    stall: Duration,
) -> Result<(Vec<Sent>, Vec<Arrival>)> {
    let sending = async {
        let mut sent = Vec::with_capacity(texts.len());
        for (index, text) in texts.iter().enumerate() {
            let start = Instant::now();
            let message = client.send_text(conversation, text).await?;
            let seq = message.seq.context("no seq")?;
            sent.push(Sent { index, seq, start, answered: Instant::now() });
        }
        anyhow::Ok(sent)
    };
    let (sent, got) = tokio::join!(sending, collect(arrivals, texts.len() * receivers, stall));
    Ok((sent?, got))
}

async fn collect(
    arrivals: &mut mpsc::UnboundedReceiver<Arrival>,
    expected: usize,
    stall: Duration,
) -> Vec<Arrival> {
    let mut got = Vec::with_capacity(expected);
    while got.len() < expected && receive(arrivals, &mut got, stall).await {}
    drain(arrivals, &mut got);
    got
}

/// Waits up to `stall` for the next arrival; false if none came.
async fn receive(
    arrivals: &mut mpsc::UnboundedReceiver<Arrival>,
    got: &mut Vec<Arrival>,
    stall: Duration,
) -> bool {
    match tokio::time::timeout(stall, arrivals.recv()).await {
        Ok(Some(arrival)) => {
            got.push(arrival);
            true
        }
        _ => false,
    }
}

/// Takes what already arrived beyond what was waited for (duplicates would show here).
fn drain(arrivals: &mut mpsc::UnboundedReceiver<Arrival>, got: &mut Vec<Arrival>) {
    while let Ok(arrival) = arrivals.try_recv() {
        got.push(arrival);
    }
}
