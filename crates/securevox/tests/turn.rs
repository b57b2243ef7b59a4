//! TURN credentials (T2) over real HTTP, and proof that a real coturn accepts what we mint.

#![allow(clippy::unwrap_used, clippy::too_many_lines)] // test code: a panic is the failure report

mod common;

use common::{code, turnutils, Backend, TestServer};
use reqwest::StatusCode;
use securevox_api::config::Secret;
use securevox_domain::turn::{self, TurnTtl, TurnUser};
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};

const TURN_SECRET: &str = "shared-with-coturn-0123456789";
const API_KEY: &str = "server-to-server-api-key-0123456789abcdef";

async fn server() -> TestServer {
    TestServer::start_with(Backend::Sqlite, |c| {
        c.turn.secret = Secret(TURN_SECRET.into());
        c.turn.api_key = Secret(API_KEY.into());
    })
    .await
}

fn now() -> i64 {
    securevox_domain::clock::now()
}

async fn server_request(
    server: &TestServer,
    key: Option<&str>,
    body: Value,
) -> (StatusCode, Value) {
    let mut request = server.http.post(server.url("/api/v1/turn/credentials")).json(&body);
    if let Some(key) = key {
        request = request.header("x-api-key", key);
    }
    let response = request.send().await.unwrap();
    (response.status(), response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_get_credentials_for_themselves() {
    let server = server().await;
    let admin = server.admin().await;
    let (status, body) = server.get("/api/v1/turn/credentials", None).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "missing_token"));

    let (status, creds) = server.get("/api/v1/turn/credentials", Some(&admin.access)).await;
    assert_eq!(status, StatusCode::OK, "{creds}");
    let username = creds["username"].as_str().unwrap();
    let (expiry, user) = username.split_once(':').unwrap();
    assert_eq!(user, admin.user_id, "credentials name the caller");
    let expiry: i64 = expiry.parse().unwrap();
    assert!((expiry - (now() + 3600)).abs() <= 5, "default ttl is an hour: {expiry}");
    assert_eq!(creds["ttl"], 3600);
    assert_eq!(
        creds["password"].as_str().unwrap(),
        turn::password_for(TURN_SECRET.as_bytes(), username),
        "HMAC-SHA1 of the username under the shared secret"
    );
    let host = "127.0.0.1";
    assert_eq!(
        creds["uris"],
        json!([
            format!("stun:{host}:3478"),
            format!("turn:{host}:3478?transport=udp"),
            format!("turn:{host}:3478?transport=tcp"),
            format!("turns:{host}:5349?transport=tcp"),
        ])
    );
    assert_eq!(creds["ice_servers"][0]["urls"], creds["uris"]);
    assert_eq!(creds["ice_servers"][0]["credential"], creds["password"]);

    let (status, creds) = server.get("/api/v1/turn/credentials?ttl=60", Some(&admin.access)).await;
    assert_eq!((status, creds["ttl"].as_u64()), (StatusCode::OK, Some(60)));
    for bad in ["59", "86401", "0"] {
        let (status, body) =
            server.get(&format!("/api/v1/turn/credentials?ttl={bad}"), Some(&admin.access)).await;
        assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "invalid_ttl"), "{bad}");
    }
    let (status, body) = server.get("/api/v1/turn/credentials?ttl=soon", Some(&admin.access)).await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "invalid_query"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_need_the_api_key_and_valid_input() {
    let server = server().await;
    let ok = json!({"username": "bob", "ttl": 600});
    let (status, body) = server_request(&server, None, ok.clone()).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "invalid_api_key"));
    let (status, body) = server_request(&server, Some("wrong-key"), ok.clone()).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "invalid_api_key"));
    let (status, body) =
        server_request(&server, Some(&API_KEY[..API_KEY.len() - 1]), ok.clone()).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "invalid_api_key"), "prefix");

    let (status, creds) = server_request(&server, Some(API_KEY), ok).await;
    assert_eq!(status, StatusCode::OK, "{creds}");
    let username = creds["username"].as_str().unwrap();
    assert!(username.ends_with(":bob"), "{username}");
    assert_eq!(creds["ttl"], 600);
    assert_eq!(
        creds["password"].as_str().unwrap(),
        turn::password_for(TURN_SECRET.as_bytes(), username)
    );

    for (body, expected) in [
        (json!({"username": "a:b"}), "invalid_username"),
        (json!({"username": ""}), "invalid_username"),
        (json!({"username": "two words"}), "invalid_username"),
        (json!({"username": "x".repeat(129)}), "invalid_username"),
        (json!({"username": "bob", "ttl": 30}), "invalid_ttl"),
        (json!({"username": "bob", "ttl": 90_000}), "invalid_ttl"),
    ] {
        let (status, reply) = server_request(&server, Some(API_KEY), body.clone()).await;
        assert_eq!((status, code(&reply)), (StatusCode::BAD_REQUEST, expected), "{body}");
    }
    let (status, reply) =
        server_request(&server, Some(API_KEY), json!({"username": "bob", "ttl": "long"})).await;
    assert_eq!((status, code(&reply)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_host_and_ports_are_configurable_and_secrets_generated() {
    let server = TestServer::start_with(Backend::Sqlite, |c| {
        c.turn.public_host = "turn.example.org".into();
        c.turn.port = 3479;
        c.turn.tls_port = 0;
    })
    .await;
    let admin = server.admin().await;
    let (_, creds) = server.get("/api/v1/turn/credentials", Some(&admin.access)).await;
    assert_eq!(
        creds["uris"],
        json!([
            "stun:turn.example.org:3479",
            "turn:turn.example.org:3479?transport=udp",
            "turn:turn.example.org:3479?transport=tcp",
        ]),
        "no turns: URI without a TLS port"
    );
    // The secret was generated on first start (0600) and signs the passwords.
    let secret = std::fs::read_to_string(server.dir.path().join("secrets/turn.key")).unwrap();
    let username = creds["username"].as_str().unwrap();
    assert_eq!(
        creds["password"].as_str().unwrap(),
        turn::password_for(secret.trim().as_bytes(), username)
    );
    assert!(server.dir.path().join("secrets/turn-api.key").exists());
    server.stop().await;
}

/// A coturn `turnserver` on loopback sharing our secret, killed on drop.
struct Coturn {
    child: Child,
    port: u16,
}

impl Coturn {
    fn start() -> Option<Self> {
        if Command::new("turnserver").arg("--version").output().is_err() {
            assert!(
                std::env::var("SECUREVOX_TEST_REQUIRE_COTURN").as_deref() != Ok("1"),
                "SECUREVOX_TEST_REQUIRE_COTURN=1 but turnserver is not installed"
            );
            eprintln!(
                "coturn interop not run: turnserver is not installed (apt-get install coturn)"
            );
            return None;
        }
        // A port free for both UDP and TCP right now.
        let port = loop {
            let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let port = udp.local_addr().unwrap().port();
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
                break port;
            }
        };
        let child = Command::new("turnserver")
            .args(["--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1"])
            .arg(format!("--listening-port={port}"))
            .args(["--min-port=51000", "--max-port=51999", "--realm=securevox"])
            .args(["--use-auth-secret", &format!("--static-auth-secret={TURN_SECRET}")])
            .args(["--no-tls", "--no-dtls", "--no-cli", "--allow-loopback-peers"])
            .args(["--log-file=stdout", "--simple-log", "--no-stdout-log"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let coturn = Self { child, port };
        // Ready when it answers a STUN binding request.
        for _ in 0..100 {
            // A STUN request sent before the server listens is lost and the client would wait
            // for ever: bound every probe.
            if turnutils::stunclient(port).is_some() {
                return Some(coturn);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("turnserver did not come up on port {port}");
    }

    /// Allocates a relay and exchanges messages client-to-client; true if all arrived.
    fn relays(&self, username: &str, password: &str, tcp: bool) -> bool {
        let mut flags = vec!["-y", "-n", "5", "-m", "1"];
        if tcp {
            flags.push("-t");
        }
        turnutils::relayed_all(&turnutils::uclient(self.port, username, password, &flags))
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_coturn_accepts_minted_credentials_and_refuses_expired_ones() {
    let Some(coturn) = Coturn::start() else { return };
    let server = server().await;
    let admin = server.admin().await;
    let (_, mine) = server.get("/api/v1/turn/credentials?ttl=600", Some(&admin.access)).await;
    let (_, theirs) = server_request(&server, Some(API_KEY), json!({"username": "bridge"})).await;
    for creds in [&mine, &theirs] {
        let (user, pass) =
            (creds["username"].as_str().unwrap(), creds["password"].as_str().unwrap());
        assert!(coturn.relays(user, pass, false), "coturn refused {user} over UDP");
        assert!(coturn.relays(user, pass, true), "coturn refused {user} over TCP");
    }
    // The same scheme, but expired a minute ago: coturn must refuse it, as must a wrong password.
    let expired = turn::mint(
        TURN_SECRET.as_bytes(),
        &TurnUser::try_from("alice").unwrap(),
        TurnTtl::try_from(60).unwrap(),
        now() - 120,
    );
    assert!(!coturn.relays(&expired.username, &expired.password, false), "expired accepted");
    let user = mine["username"].as_str().unwrap();
    assert!(!coturn.relays(user, "bm90IHRoZSBwYXNzd29yZA==", false), "wrong password accepted");
    server.stop().await;
}
