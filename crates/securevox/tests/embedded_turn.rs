//! The embedded STUN/TURN server (T1–T3) as `securevox serve` runs it, driven by coturn's own
//! clients (`turnutils_stunclient`, `turnutils_uclient`, `turnutils_peer`) with credentials
//! from `/api/v1/turn/credentials`.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use common::turnutils::{self, Peer};
use common::{Backend, TestServer};
use reqwest::StatusCode;
use securevox_api::config::Secret;
use securevox_domain::turn::{self, TurnTtl, TurnUser};
use serde_json::Value;

const TURN_SECRET: &str = "embedded-turn-secret-0123456789";

async fn server(
    allow_loopback: bool,
    tweak: impl FnOnce(&mut securevox_api::Config),
) -> TestServer {
    TestServer::start_with(Backend::Sqlite, |c| {
        c.turn.secret = Secret(TURN_SECRET.into());
        c.turn.enabled = true;
        c.turn.port = 0;
        c.turn.listen = vec!["127.0.0.1".into()];
        c.turn.allow_loopback_peers = allow_loopback;
        tweak(c);
    })
    .await
}

/// The embedded server's port, as `/health` reports it.
async fn turn_port(server: &TestServer) -> u16 {
    let (status, health) = server.get("/health", None).await;
    assert_eq!(status, StatusCode::OK);
    u16::try_from(health["turn"]["port"].as_u64().expect("health reports the TURN port")).unwrap()
}

async fn credentials(server: &TestServer) -> (String, String, Value) {
    let admin = server.admin().await;
    let (status, creds) = server.get("/api/v1/turn/credentials", Some(&admin.access)).await;
    assert_eq!(status, StatusCode::OK, "{creds}");
    let user = creds["username"].as_str().unwrap().to_owned();
    let pass = creds["password"].as_str().unwrap().to_owned();
    (user, pass, creds)
}

async fn metric(server: &TestServer, name: &str) -> u64 {
    let text = server.http.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.trim().parse().ok()))
        .unwrap_or_else(|| panic!("{name} not in /metrics"))
}

/// Runs a blocking tool off the async runtime.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minted_credentials_relay_to_a_peer_over_udp_and_tcp_without_loss() {
    if !turnutils::available() {
        return;
    }
    // uclient leaves its UDP allocations to expire: more than one user's quota over the runs.
    let server = server(true, |c| c.turn.user_quota = 0).await;
    let port = turn_port(&server).await;
    let (user, pass, creds) = credentials(&server).await;
    assert_eq!(
        creds["uris"][1],
        format!("turn:127.0.0.1:{port}?transport=udp"),
        "the URIs name the port the embedded server listens on"
    );
    assert!(
        !creds["uris"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u.as_str().unwrap().starts_with("turns:")),
        "no turns: URI while the embedded server has no TLS"
    );

    let reflexive = blocking(move || turnutils::stunclient(port)).await;
    assert!(reflexive.is_some_and(|out| out.contains("UDP reflexive addr: 127.0.0.1:")));

    let peer = Peer::start();
    let peer_port = peer.port.to_string();
    for flags in [&[][..], &["-t"], &["-c"], &["-t", "-c"]] {
        let (user, pass, peer_port) = (user.clone(), pass.clone(), peer_port.clone());
        let out = blocking(move || {
            let mut args = vec!["-n", "25", "-m", "4", "-l", "1000", "-e", "127.0.0.1", "-r"];
            args.push(&peer_port);
            args.extend(flags);
            turnutils::uclient(port, &user, &pass, &args)
        })
        .await;
        assert!(turnutils::relayed_all(&out), "uclient {flags:?} via our TURN:\n{out}");
    }
    // Client to client through two relays, over UDP and TCP.
    for tcp in [false, true] {
        let (user, pass) = (user.clone(), pass.clone());
        let out = blocking(move || {
            let mut args = vec!["-y", "-n", "20", "-m", "2"];
            if tcp {
                args.push("-t");
            }
            turnutils::uclient(port, &user, &pass, &args)
        })
        .await;
        assert!(turnutils::relayed_all(&out), "uclient -y (tcp {tcp}):\n{out}");
    }
    let to_peer =
        metric(&server, "securevox_turn_relayed_packets_total{direction=\"to_peer\"}").await;
    let to_client =
        metric(&server, "securevox_turn_relayed_packets_total{direction=\"to_client\"}").await;
    // 4 peer runs × 4 sessions × 25 messages each way, plus the client-to-client runs.
    assert!(to_peer >= 400 && to_client >= 400, "{to_peer} / {to_client}");
    assert!(metric(&server, "securevox_turn_binding_requests_total").await >= 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_relays_carry_uclient_streams_without_loss() {
    if !turnutils::available() {
        return;
    }
    let server = server(true, |c| c.turn.user_quota = 0).await;
    let port = turn_port(&server).await;
    let (user, pass, _) = credentials(&server).await;
    let run = |flags: &'static [&'static str]| {
        let (user, pass) = (user.clone(), pass.clone());
        blocking(move || {
            let mut args = vec!["-n", "20", "-m", "4", "-l", "1000"];
            args.extend(flags);
            turnutils::uclient(port, &user, &pass, &args)
        })
    };
    // Pairs of clients with TCP allocations (RFC 6062): one of each pair Connects to the other's
    // relayed address, which announces it in a ConnectionAttempt; both bind a data connection
    // and stream to each other.
    let out = run(&["-T"]).await;
    assert!(turnutils::relayed_all(&out), "uclient -T via our TURN:\n{out}");
    // Clients whose peer is a plain TCP socket connecting to their relay. uclient's peer
    // cannot read what it is sent, so only the clients count: they get all the peers sent,
    // half the total (as against coturn's own server). What reaches the peers is counted
    // below, in the bytes relayed to them.
    let out = run(&["-P"]).await;
    assert_eq!(turnutils::tally(&out), Some((80, 40)), "uclient -P via our TURN:\n{out}");
    let to_peer =
        metric(&server, "securevox_turn_relayed_bytes_total{direction=\"to_peer\"}").await;
    let to_client =
        metric(&server, "securevox_turn_relayed_bytes_total{direction=\"to_client\"}").await;
    // -T: 80 messages of 1000 bytes, each through two relays; -P: 40 each way through one.
    assert!(to_peer >= 120_000 && to_client >= 120_000, "{to_peer} / {to_client}");
    // Each -T session opened a peer connection; they close with their allocations.
    assert!(metric(&server, "securevox_turn_peer_connections_opened_total").await >= 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_and_wrong_credentials_and_loopback_peers_are_refused() {
    if !turnutils::available() {
        return;
    }
    // Loopback peers are refused: the default.
    let server = server(false, |_| {}).await;
    let port = turn_port(&server).await;
    let (user, pass, _) = credentials(&server).await;
    let peer = Peer::start();
    let peer_port = peer.port.to_string();
    let out = blocking({
        let (user, pass, peer_port) = (user.clone(), pass.clone(), peer_port.clone());
        move || {
            turnutils::uclient(
                port,
                &user,
                &pass,
                &["-n", "5", "-m", "1", "-e", "127.0.0.1", "-r", &peer_port],
            )
        }
    })
    .await;
    assert!(!turnutils::relayed_all(&out) && out.contains("403"), "loopback peer relayed:\n{out}");
    assert!(metric(&server, "securevox_turn_refused_peers_total").await >= 1);

    let expired = turn::mint(
        TURN_SECRET.as_bytes(),
        &TurnUser::try_from("alice").unwrap(),
        TurnTtl::try_from(60).unwrap(),
        securevox_domain::clock::now() - 120,
    );
    let out = blocking(move || {
        turnutils::uclient(
            port,
            &expired.username,
            &expired.password,
            &["-y", "-n", "5", "-m", "1"],
        )
    })
    .await;
    assert!(out.contains("401") && !turnutils::relayed_all(&out), "expired accepted:\n{out}");
    let out = blocking(move || {
        turnutils::uclient(port, &user, "bm90IHRoZSBwYXNzd29yZA==", &["-y", "-n", "5", "-m", "1"])
    })
    .await;
    assert!(!turnutils::relayed_all(&out), "wrong password accepted:\n{out}");
    assert!(metric(&server, "securevox_turn_auth_failures_total").await >= 2);
    assert_eq!(
        metric(&server, "securevox_turn_relayed_packets_total{direction=\"to_peer\"}").await,
        0,
        "nothing reached a peer"
    );
    let _ = pass;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_shutdown_follow_the_embedded_server() {
    let server = server(false, |_| {}).await;
    let port = turn_port(&server).await;
    let (_, health) = server.get("/health", None).await;
    assert_eq!(health["turn"]["allocations"], 0);
    server.stop().await;
    // Stopping the server releases the TURN ports.
    std::net::UdpSocket::bind(("127.0.0.1", port)).expect("UDP port released");
    std::net::TcpListener::bind(("127.0.0.1", port)).expect("TCP port released");

    let off = TestServer::start(Backend::Sqlite).await;
    let (_, health) = off.get("/health", None).await;
    assert!(health["turn"].is_null(), "no embedded TURN when turn.enabled = false: {health}");
    off.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turn_over_tls_relays_when_a_certificate_is_configured() {
    if !turnutils::available() {
        return;
    }
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../securevox-turn/tests/fixtures")
        .canonicalize()
        .unwrap();
    let server = server(true, |c| {
        c.turn.tls_cert = fixtures.join("cert.pem").display().to_string();
        c.turn.tls_key = fixtures.join("key.pem").display().to_string();
        c.turn.tls_port = 0;
    })
    .await;
    let (user, pass, creds) = credentials(&server).await;
    let turns = creds["uris"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|u| u.as_str().unwrap().strip_prefix("turns:127.0.0.1:"))
        .expect("a turns: URI once a certificate is configured")
        .to_owned();
    let tls_port: u16 = turns.strip_suffix("?transport=tcp").unwrap().parse().unwrap();
    assert_ne!(tls_port, turn_port(&server).await);

    let peer = Peer::start();
    let peer_port = peer.port.to_string();
    let out = blocking({
        let (user, pass) = (user.clone(), pass.clone());
        move || {
            let flags = ["-t", "-S", "-n", "20", "-m", "2", "-e", "127.0.0.1", "-r", &peer_port];
            turnutils::uclient(tls_port, &user, &pass, &flags)
        }
    })
    .await;
    assert!(turnutils::relayed_all(&out), "uclient over TLS:\n{out}");
    // TCP relays too: control and data connections over TLS.
    let out = blocking(move || {
        turnutils::uclient(tls_port, &user, &pass, &["-T", "-S", "-n", "20", "-m", "2"])
    })
    .await;
    assert!(turnutils::relayed_all(&out), "uclient -T over TLS:\n{out}");
    server.stop().await;
}
