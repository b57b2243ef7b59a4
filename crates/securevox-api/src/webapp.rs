//! The web client, served at `/`: the files `npm run build` leaves in `web/dist`, embedded in
//! the binary by release builds (debug builds read them from disk, so a rebuilt client shows
//! without recompiling the server). Paths that are not files and look like the app's own
//! routes (`/chat/…`) get `index.html`; API paths keep their JSON 404.
//!
//! Every answer carries a strict Content-Security-Policy: scripts, styles and connections
//! only from this origin (WebSocket included), media from `blob:` (calls, attachments), no
//! framing. Built assets have hashed names and are cached for a year; `index.html` is
//! revalidated each time, by ETag. Text, scripts and styles go gzip-compressed to browsers
//! that take it (compressed once per file, then kept in memory).

use crate::error::ApiError;
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use flate2::write::GzEncoder;
use flate2::Compression;
use rust_embed::RustEmbed;
use std::collections::HashMap;
use std::io::Write as _;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

#[derive(RustEmbed)]
#[folder = "../../web/dist"]
#[allow_missing = true]
struct Assets;

/// What the app may load and connect to.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self' \
    'wasm-unsafe-eval'; style-src 'self' 'unsafe-inline'; img-src 'self' blob: data:; \
    media-src 'self' blob:; connect-src 'self' ws: wss:; worker-src 'self' blob:; \
    frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'";

/// Paths that belong to the server, not the app.
fn server_path(path: &str) -> bool {
    ["/api/", "/socket.io/", "/metrics", "/health"].iter().any(|p| path.starts_with(p))
}

/// The fallback of the router: an app file, the app for its own routes, or a JSON 404.
pub async fn serve(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path();
    if server_path(path) || (method != Method::GET && method != Method::HEAD) {
        return ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route").into_response();
    }
    let name = path.trim_start_matches('/');
    let (name, file) = match Assets::get(name) {
        Some(file) if !name.is_empty() => (name, file),
        // No such file: an app route (no extension) gets the app; a missing file is a 404.
        _ if name.rsplit('/').next().is_some_and(|last| last.contains('.')) => {
            return ApiError::not_found("file").into_response();
        }
        _ => match Assets::get("index.html") {
            Some(file) => ("index.html", file),
            None => return not_built(),
        },
    };
    let hash = file.metadata.sha256_hash();
    let mime = file.metadata.mimetype();
    let compressible = compressible(mime);
    let gzipped = if compressible && accepts_gzip(&headers) {
        // Compressing the bundle the first time takes a few milliseconds: off the async
        // threads. Later requests find it made.
        let data = file.data.clone();
        tokio::task::spawn_blocking(move || gzipped(hash, &data)).await.ok().flatten()
    } else {
        None
    };
    // Each encoding is its own representation, with its own validator.
    let tag = B64.encode(&hash[..16]);
    let etag = if gzipped.is_some() { format!("\"{tag}-gz\"") } else { format!("\"{tag}\"") };
    let mut response = if matches_etag(&headers, &etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else if method == Method::HEAD {
        Response::new(Body::empty())
    } else if let Some(gzipped) = &gzipped {
        Response::new(Body::from(axum::body::Bytes::from_owner(Arc::clone(gzipped))))
    } else {
        Response::new(Body::from(file.data.into_owned()))
    };
    let headers = response.headers_mut();
    if let Ok(mime) = HeaderValue::from_str(mime) {
        headers.insert(header::CONTENT_TYPE, mime);
    }
    if compressible {
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    if gzipped.is_some() {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    let cache = if name.starts_with("assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, etag);
    }
    secure(headers);
    response
}

/// Whether `If-None-Match` names `etag`: one of a list, `*`, or the same tag made weak (`W/`)
/// by a proxy (RFC 9110's weak comparison, as the header asks).
fn matches_etag(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

/// Text, scripts, styles and WebAssembly shrink by gzip; images and fonts are compressed
/// already.
fn compressible(mime: &str) -> bool {
    mime.starts_with("text/")
        || ["javascript", "json", "svg", "wasm", "xml"].iter().any(|kind| mime.contains(kind))
}

/// Whether the request's `Accept-Encoding` takes gzip (listed, or `*`, without `q=0`).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    let Some(accepted) = headers.get(header::ACCEPT_ENCODING).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    accepted.split(',').any(|coding| {
        let mut parts = coding.split(';').map(str::trim);
        let name = parts.next().unwrap_or_default();
        let refused = parts.any(|p| {
            p.strip_prefix("q=").and_then(|q| q.parse::<f32>().ok()).is_some_and(|q| q <= 0.0)
        });
        (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
    })
}

/// The gzip of an app file, made once per content (by its SHA-256: a debug build reading a
/// rebuilt client gets the new one); `None` when gzip would not make it smaller.
fn gzipped(hash: [u8; 32], data: &[u8]) -> Option<Arc<[u8]>> {
    type Cache = Mutex<HashMap<[u8; 32], Option<Arc<[u8]>>>>;
    static CACHE: LazyLock<Cache> = LazyLock::new(Mutex::default);
    if let Some(cached) = CACHE.lock().unwrap_or_else(PoisonError::into_inner).get(&hash) {
        return cached.clone();
    }
    let mut encoder = GzEncoder::new(Vec::with_capacity(data.len() / 3), Compression::best());
    let compressed = encoder
        .write_all(data)
        .and_then(|()| encoder.finish())
        .ok()
        .filter(|gz| gz.len() < data.len())
        .map(Arc::from);
    CACHE.lock().unwrap_or_else(PoisonError::into_inner).insert(hash, compressed.clone());
    compressed
}

fn secure(headers: &mut HeaderMap) {
    headers
        .insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}

/// `/` of a server built without the web client.
fn not_built() -> Response {
    let page = "<!doctype html><meta charset=utf-8><title>SecureVox</title>\
        <h1>SecureVox is running</h1><p>The web client was not built into this server: run \
        <code>make run</code>, or <code>npm ci --prefix web &amp;&amp; npm run --prefix web \
        build</code> and restart. The API is at <a href=/api/docs>/api/docs</a>.</p>";
    let mut response = (StatusCode::OK, axum::response::Html(page)).into_response();
    secure(response.headers_mut());
    response
}

#[cfg(test)]
mod tests {
    use super::{accepts_gzip, compressible, gzipped, matches_etag, server_path};
    use axum::http::{header, HeaderMap, HeaderValue};
    use std::sync::Arc;

    #[test]
    fn gzip_is_sent_only_to_who_takes_it() {
        let accepting = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(value).unwrap());
            accepts_gzip(&headers)
        };
        assert!(accepting("gzip, deflate, br, zstd"));
        assert!(accepting("br;q=1.0, GZIP;q=0.5"));
        assert!(accepting("*"));
        assert!(!accepting("gzip;q=0"));
        assert!(!accepting("gzip; q=0.0, br"));
        assert!(!accepting("identity"));
        assert!(!accepting("x-gzip-not"));
        assert!(!accepts_gzip(&HeaderMap::new()));
        assert!(compressible("text/javascript") && compressible("image/svg+xml"));
        assert!(!compressible("image/png") && !compressible("font/woff2"));
    }

    #[test]
    fn if_none_match_takes_lists_and_weak_tags() {
        let asking = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::IF_NONE_MATCH, HeaderValue::from_str(value).unwrap());
            matches_etag(&headers, "\"abc\"")
        };
        assert!(asking("\"abc\""));
        assert!(asking("\"x\", \"abc\""));
        assert!(asking("W/\"abc\""));
        assert!(asking("*"));
        assert!(!asking("\"abcd\""));
        assert!(!asking("\"abc-gz\""));
        assert!(!matches_etag(&HeaderMap::new(), "\"abc\""));
    }

    #[test]
    fn gzip_is_kept_only_when_it_shrinks() {
        assert!(gzipped([1; 32], b"ab").is_none());
        let script = "function hello() { return 'hello'; }\n".repeat(50);
        let gz = gzipped([2; 32], script.as_bytes()).expect("a script shrinks");
        assert!(gz.len() < script.len() / 5);
        // Made once per content hash.
        assert!(Arc::ptr_eq(&gz, &gzipped([2; 32], script.as_bytes()).unwrap()));
    }

    #[test]
    fn server_paths_stay_the_servers() {
        assert!(server_path("/api/v1/nope"));
        assert!(server_path("/socket.io/"));
        assert!(server_path("/metrics"));
        assert!(!server_path("/"));
        assert!(!server_path("/chat/123"));
        assert!(!server_path("/assets/index-abc.js"));
    }
}
