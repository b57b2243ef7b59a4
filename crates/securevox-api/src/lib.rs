//! SecureVox API: the HTTP surface of the server (axum).
//!
//! Owns request parsing and validation at the edge (`extract`), the error shape (`error`), the
//! account use cases (`accounts`), the live connection (`realtime`: Socket.IO, presence) and
//! calls (`calls`: rooms, ringing, signaling relay), rate limits, metrics, the capacity report
//! and periodic maintenance, and assembles them into one router served by [`serve`]. Storage comes from
//! `securevox-store` (one concrete store over SQLite/PostgreSQL), rules from `securevox-domain`.
//! Must not depend on the binary (config loading, CLI, telemetry set-up).

pub mod accounts;
pub mod activity;
pub mod blobs;
pub mod calls;
pub mod capacity;
pub mod config;
pub mod error;
pub mod extract;
pub mod key_changes;
pub mod maintenance;
pub mod metrics;
pub mod password_work;
pub mod rate_limit;
pub mod realtime;
pub mod routes;
pub mod runtime_settings;
pub mod state;
pub mod tokens;
pub mod turn_server;
pub mod webapp;

use crate::error::ApiError;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::serve::ListenerExt;
use axum::{Json, Router};
use securevox_domain::call::EndReason;
use securevox_domain::clock;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

pub use config::Config;
pub use state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "SecureVox",
        description = "Self-hosted end-to-end encrypted chat and calls. JSON over HTTP; access tokens \
                       from /api/v1/auth/login go in `Authorization: Bearer`.",
    ),
    tags(
        (name = "auth", description = "Accounts and sessions"),
        (name = "me", description = "The caller's own account"),
        (name = "admin", description = "Server administration (admins only)"),
        (name = "calls", description = "Calls: start, history, per-call tokens, STUN/TURN credentials. \
                                         Signaling itself runs over Socket.IO at /socket.io/ (docs/SOCKETIO.md)."),
        (name = "keys", description = "End-to-end encryption's key directory: identity keys, devices and \
                                        their MLS KeyPackages. Public keys only (docs/E2EE.md)."),
        (name = "chat", description = "End-to-end encrypted conversations: MLS groups, Commits, messages and \
                                        device inboxes. The server sees MLS headers only (docs/E2EE.md)."),
        (name = "contacts", description = "Finding people, contacts and blocking"),
        (name = "operations", description = "Health and monitoring"),
    )
)]
struct ApiDoc;

/// The OpenAPI document and the routes it describes.
pub fn api_routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(routes::auth::routes())
        .merge(routes::me::routes())
        .merge(routes::admin_users::routes())
        .merge(routes::admin_invites::routes())
        .merge(routes::admin_registration::routes())
        .merge(routes::admin_limits::routes())
        .merge(routes::admin_capacity::routes())
        .merge(routes::turn::routes())
        .merge(routes::calls::routes())
        .merge(routes::keys::routes())
        .merge(routes::key_packages::routes())
        .merge(routes::conversations::routes())
        .merge(routes::contacts::routes())
        .merge(routes::delivery::routes())
        .merge(routes::inbox::routes())
        .merge(routes::device_links::routes())
        .merge(routes::attachments::routes())
        .split_for_parts();
    openapi.info.version = env!("CARGO_PKG_VERSION").into();
    let components = openapi.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build(),
        ),
    );
    (router, openapi)
}

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    let (api, mut openapi) = api_routes();
    let (health_router, health_doc) =
        OpenApiRouter::new().routes(utoipa_axum::routes!(routes::ops::health)).split_for_parts();
    openapi.merge(health_doc);
    let openapi_json = Arc::new(serde_json::to_value(&openapi).unwrap_or_default());
    let docs_html = Arc::new(routes::ops::docs_page(&openapi_json));

    let api = api.layer(from_fn_with_state(state.clone(), rate_limit::api_limit));
    let mut app = Router::new()
        .merge(api)
        .merge(health_router)
        .route("/metrics", get(routes::ops::metrics))
        .route("/api/openapi.json", get(move || async move { Json((*openapi_json).clone()) }))
        .route("/api/docs", get(move || async move { (*docs_html).clone() }))
        .route_layer(from_fn_with_state(state.clone(), metrics::track))
        .fallback(webapp::serve)
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed on this route",
            )
        })
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes as usize))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal(&"a request handler panicked").into_response()
        }))
        .layer(TraceLayer::new_for_http());
    // Socket.IO answers /socket.io/ itself and passes everything else on to the router.
    state.realtime.attach(&state);
    app = app
        .layer(state.realtime.layer())
        .layer(axum::middleware::map_request(realtime::detach_upgrade_request));
    if !state.config.cors_origins.is_empty() {
        // The binary validated the origins at load: "*" alone, or http(s) origins.
        let allow = if state.config.cors_origins.iter().any(|o| o == "*") {
            AllowOrigin::any()
        } else {
            AllowOrigin::list(state.config.cors_origins.iter().filter_map(|o| o.parse().ok()))
        };
        app = app.layer(
            CorsLayer::new()
                .allow_origin(allow)
                .allow_methods(tower_http::cors::Any)
                .allow_headers(tower_http::cors::Any),
        );
    }
    app.with_state(state)
}

/// Serves the application on `listener` until `shutdown` resolves, then finishes in-flight
/// requests, stops background jobs and closes the database.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop_jobs, jobs_stopped) = tokio::sync::watch::channel(false);
    let jobs = tokio::spawn(maintenance::run(state.clone(), jobs_stopped));
    // Calls left live by a crash or a kill have no room any more.
    let left_live = state.store.end_live_calls(EndReason::ServerStopped, clock::now()).await;
    if let Ok(n @ 1..) = left_live {
        tracing::info!(calls = n, "ended calls left live by the previous run");
    }
    let turn = match state.turn.start(&state.config.turn) {
        Ok(turn) => turn,
        Err(e) => {
            let _ = stop_jobs.send(true);
            let _ = jobs.await;
            state.store.close().await;
            return Err(std::io::Error::other(format!("starting STUN/TURN: {e}")));
        }
    };
    let app = router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let realtime = &state.config.realtime;
    realtime::coalesce::configure(realtime.coalesce_us, realtime.coalesce_min_events_per_s);
    // Signaling is many small messages: Nagle's delay would sit on each of them.
    let listener = realtime::read_ahead::ReadAheadListener(listener).tap_io(|tcp| {
        let _ = tcp.get_ref().set_nodelay(true);
    });
    let served = axum::serve(listener, app).with_graceful_shutdown(shutdown).await;
    state.calls.stop_all(&state).await;
    state.realtime.close().await;
    if let Some(turn) = turn {
        turn.shutdown();
    }
    let _ = stop_jobs.send(true);
    let _ = jobs.await;
    state.store.close().await;
    served
}
