//! Which client a request comes from (`X-Forwarded-For` behind trusted proxies) and who may
//! scrape `/metrics`, over real HTTP.

#![allow(clippy::unwrap_used, clippy::too_many_lines)] // test code: a panic is the failure report

mod common;

use common::{Backend, TestServer};
use reqwest::StatusCode;
use securevox_api::config::Secret;

/// One login a minute per client, behind the trusted proxy 127.0.0.1 (the test client).
async fn behind_trusted_proxy() -> TestServer {
    TestServer::start_with(Backend::Sqlite, |c| {
        c.rate_limits.login_per_minute = 1;
        c.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spoofed_leading_forwarded_for_does_not_escape_the_login_limit() {
    let server = behind_trusted_proxy().await;
    // The proxy appended the real client (with its port); the client wrote the rest.
    assert_eq!(
        server.login_forwarded_for("9.9.9.1, 203.0.113.5:443").await,
        StatusCode::UNAUTHORIZED
    );
    for spoofed in
        ["9.9.9.2, 203.0.113.5:443", "unknown, 203.0.113.5:443", "127.0.0.1, 203.0.113.5:443"]
    {
        assert_eq!(
            server.login_forwarded_for(spoofed).await,
            StatusCode::TOO_MANY_REQUESTS,
            "{spoofed}"
        );
    }
    // Garbage left of the real hop changes nothing either.
    assert_eq!(
        server.login_forwarded_for("1.1.1.1, garbage, 203.0.113.5").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hops_with_ports_and_brackets_are_understood() {
    let server = behind_trusted_proxy().await;
    // `ip:port` and `ip` are the same client ...
    assert_eq!(server.login_forwarded_for("203.0.113.5:443").await, StatusCode::UNAUTHORIZED);
    assert_eq!(server.login_forwarded_for("203.0.113.5").await, StatusCode::TOO_MANY_REQUESTS);
    // ... and a different one has its own allowance: the port form was read, not dropped.
    assert_eq!(server.login_forwarded_for("198.51.100.7:1234").await, StatusCode::UNAUTHORIZED);
    // Bracketed IPv6, with and without a port, and the rest of its /64: one client.
    assert_eq!(server.login_forwarded_for("[2001:db8:0:1::1]:443").await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        server.login_forwarded_for("[2001:db8:0:1::1]").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        server.login_forwarded_for("2001:db8:0:1:ffff::2").await,
        StatusCode::TOO_MANY_REQUESTS,
        "one IPv6 /64 shares one allowance"
    );
    assert_eq!(server.login_forwarded_for("[2001:db8:0:2::1]").await, StatusCode::UNAUTHORIZED);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unparseable_nearest_hop_means_the_proxy_itself() {
    let server = behind_trusted_proxy().await;
    // Nothing left of `unknown` is believed, so these are all the proxy (127.0.0.1).
    assert_eq!(server.login_forwarded_for("198.51.100.1, unknown").await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        server.login_forwarded_for("198.51.100.2, unknown").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        server.login_forwarded_for("198.51.100.3, 127.0.0.1").await,
        StatusCode::UNAUTHORIZED
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_refuse_a_proxied_request_from_an_untrusted_loopback_peer() {
    // No trusted proxies, no token: a same-host reverse proxy connects from loopback, so its
    // requests must not count as local scrapes.
    let server = TestServer::start(Backend::Sqlite).await;
    for (name, value) in [
        ("x-forwarded-for", "203.0.113.5"),
        ("x-forwarded-for", "127.0.0.1"),
        ("forwarded", "for=203.0.113.5"),
        ("x-real-ip", "203.0.113.5"),
    ] {
        let response =
            server.http.get(server.url("/metrics")).header(name, value).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{name}: {value}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "forbidden");
    }
    // A plain local scrape still works.
    let response = server.http.get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_accept_the_bearer_scheme_in_any_case() {
    let server = TestServer::start_with(Backend::Sqlite, |c| {
        c.metrics.token = Secret("scrape-token-0123456789".into());
    })
    .await;
    let get = |authorization: &'static str| {
        let request =
            server.http.get(server.url("/metrics")).header("authorization", authorization);
        async move { request.send().await.unwrap().status() }
    };
    for ok in [
        "bearer scrape-token-0123456789",
        "BEARER scrape-token-0123456789",
        "Bearer scrape-token-0123456789",
    ] {
        assert_eq!(get(ok).await, StatusCode::OK, "{ok}");
    }
    for refused in ["bearer wrong-token", "Basic scrape-token-0123456789", "bearer"] {
        assert_eq!(get(refused).await, StatusCode::FORBIDDEN, "{refused}");
    }
    // With a token configured, proxy headers do not matter: the token decides.
    let response = server
        .http
        .get(server.url("/metrics"))
        .header("x-forwarded-for", "203.0.113.5")
        .header("authorization", "bearer scrape-token-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    server.stop().await;
}
