//! The web client, served at `/`: the files `npm run build` leaves in `web/dist`, embedded in
//! the binary by release builds (debug builds read them from disk, so a rebuilt client shows
//! without recompiling the server). Paths that are not files and look like the app's own
//! routes (`/chat/…`) get `index.html`; API paths keep their JSON 404.
//!
//! Every answer carries a strict Content-Security-Policy: scripts, styles and connections
//! only from this origin (WebSocket included), media from `blob:` (calls, attachments), no
//! framing. Built assets have hashed names and are cached for a year; `index.html` is
//! revalidated each time, by ETag.

use crate::error::ApiError;
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use rust_embed::RustEmbed;

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
    let etag = format!("\"{}\"", B64.encode(&file.metadata.sha256_hash()[..16]));
    let mut response = if headers.get(header::IF_NONE_MATCH).is_some_and(|v| v == etag.as_str()) {
        StatusCode::NOT_MODIFIED.into_response()
    } else if method == Method::HEAD {
        Response::new(Body::empty())
    } else {
        Response::new(Body::from(file.data.into_owned()))
    };
    let headers = response.headers_mut();
    if let Ok(mime) = HeaderValue::from_str(file.metadata.mimetype()) {
        headers.insert(header::CONTENT_TYPE, mime);
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
    use super::server_path;

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
