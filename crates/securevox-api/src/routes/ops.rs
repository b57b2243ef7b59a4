//! Operations: health, Prometheus metrics, the OpenAPI document and its docs page.

use crate::capacity;
use crate::error::{ApiError, ApiResult};
use crate::extract::ClientIp;
use crate::state::AppState;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use securevox_domain::secret_token::secrets_equal;
use serde::Serialize;
use std::sync::atomic::Ordering;
use utoipa::ToSchema;

/// Health of this node (K3).
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `healthy`, or `unhealthy` when the database does not answer.
    pub status: &'static str,
    pub service: &'static str,
    pub version: &'static str,
    pub uptime_s: u64,
    /// `ok` or `unreachable`.
    pub database: &'static str,
    #[serde(rename = "activeCalls")]
    pub active_calls: u64,
    #[serde(rename = "connectedUsers")]
    pub connected_users: u64,
    /// The embedded STUN/TURN server; `null` when it is off (an external one is used).
    pub turn: Option<TurnHealth>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TurnHealth {
    /// UDP and TCP port.
    pub port: u16,
    /// Live allocations (relayed addresses).
    pub allocations: u64,
}

/// `GET /health` — liveness and readiness; 503 when the database is unreachable.
#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, body = Health), (status = 503, body = Health)))]
pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let db_ok = tokio::time::timeout(std::time::Duration::from_secs(3), state.store.ping())
        .await
        .is_ok_and(|r| r.is_ok());
    let body = Health {
        status: if db_ok { "healthy" } else { "unhealthy" },
        service: "securevox",
        version: env!("CARGO_PKG_VERSION"),
        uptime_s: state.started.elapsed().as_secs(),
        database: if db_ok { "ok" } else { "unreachable" },
        active_calls: state.live.active_calls.load(Ordering::Relaxed),
        connected_users: state.live.connected_users.load(Ordering::Relaxed),
        turn: state
            .turn
            .port()
            .zip(state.turn.snapshot())
            .map(|(port, stats)| TurnHealth { port, allocations: stats.allocations }),
    };
    let status = if db_ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body))
}

/// `GET /metrics` — Prometheus text format. Needs `metrics.token` as a bearer token when one is
/// configured; otherwise answers only direct local scrapes: the connection comes from loopback
/// and carries no proxy header. A reverse proxy on the same host (trusted or not) connects from
/// loopback too, so anything it forwards must not count as local.
pub async fn metrics(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let token = &state.config.metrics.token;
    let allowed = if token.is_empty() {
        let peer_is_loopback =
            peer.is_some_and(|axum::Extension(axum::extract::ConnectInfo(addr))| {
                addr.ip().to_canonical().is_loopback()
            });
        let proxied = headers.keys().any(|name| {
            let name = name.as_str();
            matches!(name, "forwarded" | "x-real-ip" | "via") || name.starts_with("x-forwarded-")
        });
        peer_is_loopback && !proxied && ip.to_canonical().is_loopback()
    } else {
        crate::extract::bearer_token(&headers)
            .is_some_and(|given| secrets_equal(given, token.expose()))
    };
    if !allowed {
        return Err(ApiError::forbidden(
            "forbidden",
            "metrics need the configured bearer token, or a direct request from loopback",
        ));
    }
    let report = capacity::report(&state.store, &state.config, Some(&state.live)).await.ok();
    let text =
        state.metrics.render(report.as_ref(), state.store.pool_stats(), state.turn.snapshot());
    Ok(([(CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text)
        .into_response())
}

/// A self-contained HTML page listing every operation of the OpenAPI document (no CDN: the
/// server may run where browsers reach nothing else).
pub fn docs_page(openapi: &serde_json::Value) -> Html<String> {
    use std::fmt::Write;
    let esc = |s: &str| {
        s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
    };
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    let mut body = String::new();
    let title = text(&openapi["info"]["title"]);
    let version = text(&openapi["info"]["version"]);
    let _ = write!(
        body,
        "<h1>{} <small>{}</small></h1><p>{}</p><p>Machine-readable: <a href=\"/api/openapi.json\">/api/openapi.json</a> (OpenAPI {}). \
         Errors always have the shape <code>{{\"error\": {{\"code\", \"message\", \"details\"?}}}}</code>.</p>",
        esc(&title), esc(&version), esc(&text(&openapi["info"]["description"])), esc(&text(&openapi["openapi"]))
    );
    if let Some(paths) = openapi["paths"].as_object() {
        for (path, item) in paths {
            let Some(ops) = item.as_object() else {
                continue;
            };
            for (method, op) in ops {
                let _ = write!(
                    body,
                    "<section><h3><span class=\"m {m}\">{M}</span> <code>{p}</code></h3><p>{s}</p>",
                    m = esc(method),
                    M = esc(&method.to_uppercase()),
                    p = esc(path),
                    s = esc(&text(&op["summary"])),
                );
                if op.get("security").is_some() {
                    body.push_str("<p class=\"auth\">Needs <code>Authorization: Bearer &lt;access token&gt;</code></p>");
                }
                if let Some(schema) =
                    op["requestBody"]["content"]["application/json"]["schema"]["$ref"].as_str()
                {
                    let name = schema.rsplit('/').next().unwrap_or_default();
                    let _ =
                        write!(body, "<p>Body: <a href=\"#schema-{n}\">{n}</a></p>", n = esc(name));
                }
                body.push_str("<ul>");
                if let Some(responses) = op["responses"].as_object() {
                    for (status, r) in responses {
                        let _ = write!(
                            body,
                            "<li><b>{}</b> {}</li>",
                            esc(status),
                            esc(&text(&r["description"]))
                        );
                    }
                }
                body.push_str("</ul></section>");
            }
        }
    }
    body.push_str("<h2>Schemas</h2>");
    if let Some(schemas) = openapi["components"]["schemas"].as_object() {
        for (name, schema) in schemas {
            let pretty = serde_json::to_string_pretty(schema).unwrap_or_default();
            let _ = write!(
                body,
                "<details id=\"schema-{n}\"><summary>{n}</summary><pre>{}</pre></details>",
                esc(&pretty),
                n = esc(name)
            );
        }
    }
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>{t} API</title><style>body{{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}}\
         section{{border-top:1px solid #ddd}}.m{{display:inline-block;min-width:4.5em;font-size:.8em;padding:.1em .4em;border-radius:4px;color:#fff;background:#555}}\
         .get{{background:#2b7}}.post{{background:#27c}}.put,.patch{{background:#c82}}.delete{{background:#c33}}pre{{background:#f6f6f6;padding:.5em;overflow:auto}}\
         .auth{{color:#666;font-size:.9em}}</style></head><body>{body}</body></html>",
        t = esc(&title)
    ))
}
