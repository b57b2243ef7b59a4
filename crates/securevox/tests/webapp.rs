//! The web client at `/`: its files with the right types, caching and security headers, the
//! app for its own routes, and the server's JSON 404 for everything else. Runs against
//! `web/dist` as `npm run --prefix web build` left it (`make test` builds it first); without
//! a build, `/` must explain how to get one.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use common::{Backend, TestServer};
use reqwest::StatusCode;
use std::path::PathBuf;

fn dist() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../web/dist")
}

#[tokio::test]
async fn the_web_client_is_served_at_the_root() {
    let server = TestServer::start(Backend::Sqlite).await;
    let get = |path: &str| server.http.get(server.url(path)).send();

    let root = get("/").await.unwrap();
    assert_eq!(root.status(), StatusCode::OK);
    let headers = root.headers().clone();
    assert!(headers["content-type"].to_str().unwrap().starts_with("text/html"));
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let page = root.text().await.unwrap();

    let Ok(index) = std::fs::read_to_string(dist().join("index.html")) else {
        assert!(page.contains("not built"), "{page}");
        return;
    };
    assert_eq!(page, index);
    assert_eq!(headers["cache-control"], "no-cache");

    // The app's own routes get the app; a reload revalidates by ETag.
    let deep = get("/conversations/123").await.unwrap();
    assert_eq!(deep.status(), StatusCode::OK);
    assert_eq!(deep.text().await.unwrap(), index);
    let etag = headers["etag"].to_str().unwrap().to_owned();
    let again =
        server.http.get(server.url("/")).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);

    // A built asset (the largest script): its type, cached for good.
    let asset = std::fs::read_dir(dist().join("assets"))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().extension().is_some_and(|e| e == "js"))
        .max_by_key(|e| e.metadata().unwrap().len())
        .expect("a built script")
        .file_name()
        .into_string()
        .unwrap();
    let script = get(&format!("/assets/{asset}")).await.unwrap();
    assert_eq!(script.status(), StatusCode::OK);
    assert!(script.headers()["content-type"].to_str().unwrap().contains("javascript"));
    assert!(script.headers()["cache-control"].to_str().unwrap().contains("immutable"));
    let identity_tag = script.headers()["etag"].to_str().unwrap().to_owned();
    assert!(script.headers().get("content-encoding").is_none(), "not asked for gzip");
    let bytes = script.bytes().await.unwrap();
    let original = std::fs::read(dist().join("assets").join(&asset)).unwrap();
    assert_eq!(bytes.as_ref(), original);

    // Gzip for browsers that take it: the same script, smaller, with a validator of its own.
    let url = server.url(&format!("/assets/{asset}"));
    let gzip = |etag: Option<&str>| {
        let request = server.http.get(&url).header("accept-encoding", "gzip, deflate, br");
        match etag {
            Some(etag) => request.header("if-none-match", etag),
            None => request,
        }
        .send()
    };
    let compressed = gzip(None).await.unwrap();
    assert_eq!(compressed.status(), StatusCode::OK);
    assert_eq!(compressed.headers()["content-encoding"], "gzip");
    assert_eq!(compressed.headers()["vary"], "accept-encoding");
    let gzip_tag = compressed.headers()["etag"].to_str().unwrap().to_owned();
    assert_ne!(gzip_tag, identity_tag);
    let body = compressed.bytes().await.unwrap();
    assert!(body.len() < original.len() / 2, "{} of {} bytes", body.len(), original.len());
    let mut unzipped = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(body.as_ref()), &mut unzipped)
        .unwrap();
    assert_eq!(unzipped, original);
    assert_eq!(gzip(Some(&gzip_tag)).await.unwrap().status(), StatusCode::NOT_MODIFIED);
    let refused =
        server.http.get(&url).header("accept-encoding", "gzip;q=0, identity").send().await.unwrap();
    assert!(refused.headers().get("content-encoding").is_none());
    // Gzip that would not shrink a file is not sent.
    let tiny = std::fs::read_dir(dist().join("assets"))
        .unwrap()
        .map(|e| e.unwrap())
        .find(|e| e.metadata().unwrap().len() < 40)
        .map(|e| e.file_name().into_string().unwrap());
    if let Some(tiny) = tiny {
        let answer = server
            .http
            .get(server.url(&format!("/assets/{tiny}")))
            .header("accept-encoding", "gzip")
            .send()
            .await
            .unwrap();
        assert!(answer.headers().get("content-encoding").is_none(), "{tiny}");
    }

    // Not the app's: missing files and server paths answer the JSON 404.
    for path in ["/assets/missing.js", "/api/v1/nope", "/socket.io.js.map"] {
        let answer = get(path).await.unwrap();
        assert_eq!(answer.status(), StatusCode::NOT_FOUND, "{path}");
        let body: serde_json::Value = answer.json().await.unwrap();
        assert_eq!(body["error"]["code"], "not_found", "{path}");
    }
    let post = server.http.post(server.url("/somewhere")).send().await.unwrap();
    assert_eq!(post.status(), StatusCode::NOT_FOUND);
    server.stop().await;
}
