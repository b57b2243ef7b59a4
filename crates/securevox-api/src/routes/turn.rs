//! TURN credentials (T2): short-lived STUN/TURN usernames and passwords in the TURN REST
//! scheme, which our embedded TURN server and any coturn sharing the secret accept.

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, AuthUser};
use crate::state::AppState;
use axum::extract::State;
use axum::http::header::HOST;
use axum::http::HeaderMap;
use axum::Json;
use securevox_domain::clock;
use securevox_domain::secret_token::secrets_equal;
use securevox_domain::turn::{self, TurnCredentials, TurnTtl, TurnUser};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(for_caller, for_server))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct TtlQuery {
    /// Lifetime in seconds, 60..86400; default `turn.default_ttl_s` (3600).
    pub ttl: Option<u64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerRequest {
    /// Who the credentials are for: 1–128 printable characters, no `:` or spaces.
    pub username: String,
    /// Lifetime in seconds, 60..86400; default `turn.default_ttl_s`.
    pub ttl: Option<u64>,
}

/// One entry of `RTCConfiguration.iceServers`.
#[derive(Debug, Serialize, ToSchema)]
pub struct IceServer {
    pub urls: Vec<String>,
    pub username: String,
    pub credential: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TurnCredentialsView {
    /// `<unix expiry>:<user>`.
    pub username: String,
    /// `base64(HMAC-SHA1(secret, username))`.
    pub password: String,
    /// Seconds the credentials are valid for.
    pub ttl: u64,
    /// RFC 3339.
    pub expires_at: String,
    /// `stun:`, `turn:` (UDP, TCP) and, when TLS is configured, `turns:` URIs.
    pub uris: Vec<String>,
    /// The same, ready to pass to `new RTCPeerConnection({iceServers})`.
    pub ice_servers: Vec<IceServer>,
}

/// `GET /api/v1/turn/credentials` — STUN/TURN credentials for the caller's calls.
#[utoipa::path(get, path = "/api/v1/turn/credentials", tag = "calls", security(("bearer" = [])),
    params(TtlQuery),
    responses(
        (status = 200, body = TurnCredentialsView),
        (status = 400, description = "`invalid_ttl`", body = ErrorBody),
        (status = 401, body = ErrorBody),
    ))]
async fn for_caller(
    State(state): State<AppState>,
    caller: AuthUser,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<TtlQuery>,
) -> ApiResult<Json<TurnCredentialsView>> {
    let ttl = ttl(&state, query.ttl)?;
    // A user id is a UUID: always a valid TURN user.
    let user = TurnUser::try_from(caller.user.id.as_str()).map_err(|e| ApiError::internal(&e))?;
    Ok(Json(view(&state, &headers, &user, ttl)))
}

/// `POST /api/v1/turn/credentials` — credentials for any username, for other servers
/// (send `X-Api-Key: <turn.api_key>`).
#[utoipa::path(post, path = "/api/v1/turn/credentials", tag = "calls",
    request_body = ServerRequest,
    params(("X-Api-Key" = String, Header, description = "The server's `turn.api_key`")),
    responses(
        (status = 200, body = TurnCredentialsView),
        (status = 400, description = "`invalid_username` or `invalid_ttl`", body = ErrorBody),
        (status = 401, description = "`invalid_api_key`: missing or wrong", body = ErrorBody),
    ))]
async fn for_server(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<ServerRequest>,
) -> ApiResult<Json<TurnCredentialsView>> {
    let given = headers.get("x-api-key").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !secrets_equal(given, state.config.turn.api_key.expose()) {
        state.metrics.auth_failure("invalid_api_key");
        return Err(ApiError::unauthorized(
            "invalid_api_key",
            "send the server's API key as X-Api-Key",
        ));
    }
    let user = TurnUser::try_from(req.username.as_str())
        .map_err(|e| ApiError::bad_request("invalid_username", e.to_string()))?;
    let ttl = ttl(&state, req.ttl)?;
    Ok(Json(view(&state, &headers, &user, ttl)))
}

fn ttl(state: &AppState, requested: Option<u64>) -> ApiResult<TurnTtl> {
    TurnTtl::try_from(requested.unwrap_or(state.config.turn.default_ttl_s))
        .map_err(|e| ApiError::bad_request("invalid_ttl", e.to_string()))
}

fn view(
    state: &AppState,
    headers: &HeaderMap,
    user: &TurnUser,
    ttl: TurnTtl,
) -> TurnCredentialsView {
    let TurnCredentials { username, password, ttl, expires_at } =
        turn::mint(state.config.turn.secret.expose().as_bytes(), user, ttl, clock::now());
    let uris = uris(state, headers);
    TurnCredentialsView {
        ice_servers: vec![IceServer {
            urls: uris.clone(),
            username: username.clone(),
            credential: password.clone(),
        }],
        username,
        password,
        ttl,
        expires_at: clock::rfc3339(expires_at),
        uris,
    }
}

/// The URIs clients should use: the configured public host, else the host they reached us at;
/// the embedded server's live port when it runs, else the configured one (an external coturn).
fn uris(state: &AppState, headers: &HeaderMap) -> Vec<String> {
    let turn = &state.config.turn;
    let host =
        if turn.public_host.is_empty() { request_host(headers) } else { turn.public_host.clone() };
    let embedded = state.turn.port();
    let port = embedded.unwrap_or(turn.port);
    let mut uris = vec![
        format!("stun:{host}:{port}"),
        format!("turn:{host}:{port}?transport=udp"),
        format!("turn:{host}:{port}?transport=tcp"),
    ];
    // The embedded server offers `turns:` when it has a certificate; an external one is
    // assumed to serve TLS on `tls_port`.
    let tls_port = if embedded.is_some() { state.turn.tls_port() } else { Some(turn.tls_port) };
    if let Some(tls_port) = tls_port.filter(|p| *p != 0) {
        uris.push(format!("turns:{host}:{tls_port}?transport=tcp"));
    }
    uris
}

/// The Host header without its port (`[::1]:8080` → `[::1]`, `chat.example.org:443` →
/// `chat.example.org`); `localhost` if absent or unusable.
fn request_host(headers: &HeaderMap) -> String {
    let host = headers.get(HOST).and_then(|h| h.to_str().ok()).unwrap_or_default().trim();
    let bare = if let Some(rest) = host.strip_prefix('[') {
        rest.split_once(']').map(|(v6, _)| format!("[{v6}]"))
    } else {
        host.split(':').next().map(str::to_owned)
    };
    bare.filter(|h| {
        !h.is_empty() && h.chars().all(|c| c.is_ascii_alphanumeric() || "-.[]:".contains(c))
    })
    .unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::request_host;
    use axum::http::HeaderMap;

    fn host(value: &str) -> String {
        let mut headers = HeaderMap::new();
        headers.insert("host", value.parse().unwrap());
        request_host(&headers)
    }

    #[test]
    fn host_header_loses_its_port_and_junk() {
        assert_eq!(host("chat.example.org:8443"), "chat.example.org");
        assert_eq!(host("chat.example.org"), "chat.example.org");
        assert_eq!(host("[2001:db8::1]:8080"), "[2001:db8::1]");
        assert_eq!(host("127.0.0.1:8080"), "127.0.0.1");
        assert_eq!(host("evil.example/<script>"), "localhost");
        assert_eq!(request_host(&HeaderMap::new()), "localhost");
    }
}
