//! Prometheus metrics: one registry per server instance (no global recorder, so several servers
//! can run in one test process). Gauges that come from the database are refreshed at scrape time.

use crate::state::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use securevox_domain::CapacityReport;
use std::time::Instant;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NameLabel {
    name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: String,
}

type HistogramFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: HistogramFamily,
    rate_limited: Family<NameLabel, Counter>,
    auth_failures: Family<NameLabel, Counter>,
    usage: Family<NameLabel, Gauge>,
    capacity_level: Gauge,
    db_pool: Family<StateLabel, Gauge>,
    db_up: Gauge,
    pub realtime: RealtimeMetrics,
    turn: TurnMetrics,
}

/// The embedded TURN server's counters, copied from its atomics at scrape time.
#[derive(Default)]
struct TurnMetrics {
    allocations: Gauge,
    packets: Family<DirectionLabel, Counter>,
    bytes: Family<DirectionLabel, Counter>,
    auth_failures: Counter,
    refused_peers: Counter,
    quota_refusals: Counter,
    throttled_packets: Counter,
    binding_requests: Counter,
    strangers_dropped: Counter,
    peer_connections: Gauge,
    peer_connections_opened: Counter,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabel {
    direction: &'static str,
}

impl TurnMetrics {
    fn register(&self, registry: &mut Registry) {
        let t = self;
        registry.register("turn_allocations", "Live TURN allocations", t.allocations.clone());
        registry.register(
            "turn_relayed_packets",
            "Packets relayed by TURN, by direction (to_peer, to_client)",
            t.packets.clone(),
        );
        registry.register(
            "turn_relayed_bytes",
            "Bytes relayed by TURN, by direction",
            t.bytes.clone(),
        );
        registry.register(
            "turn_auth_failures",
            "TURN requests refused for expired or wrong credentials",
            t.auth_failures.clone(),
        );
        registry.register(
            "turn_refused_peers",
            "TURN permissions, channels and sends refused by the peer policy",
            t.refused_peers.clone(),
        );
        registry.register(
            "turn_quota_refusals",
            "TURN allocations refused by the user quota or total cap",
            t.quota_refusals.clone(),
        );
        registry.register(
            "turn_throttled_packets",
            "Relayed packets dropped by the bandwidth cap",
            t.throttled_packets.clone(),
        );
        registry.register(
            "turn_binding_requests",
            "STUN Binding requests answered",
            t.binding_requests.clone(),
        );
        registry.register(
            "turn_unauthenticated_dropped",
            "Unauthenticated UDP requests dropped by the per-address rate limit",
            t.strangers_dropped.clone(),
        );
        registry.register(
            "turn_peer_connections",
            "Live TCP connections to peers of TCP relays (RFC 6062)",
            t.peer_connections.clone(),
        );
        registry.register(
            "turn_peer_connections_opened",
            "TCP connections to peers of TCP relays opened (Connect or from the peer)",
            t.peer_connections_opened.clone(),
        );
    }

    fn update(&self, s: &securevox_turn::TurnSnapshot) {
        // The sources only grow, so the difference brings each counter to their value.
        let to = |counter: &Counter, value: u64| {
            counter.inc_by(value.saturating_sub(counter.get()));
        };
        self.allocations.set(s.allocations as i64);
        for (direction, packets, bytes) in [
            ("to_peer", s.packets_to_peers, s.bytes_to_peers),
            ("to_client", s.packets_to_clients, s.bytes_to_clients),
        ] {
            to(&self.packets.get_or_create(&DirectionLabel { direction }), packets);
            to(&self.bytes.get_or_create(&DirectionLabel { direction }), bytes);
        }
        to(&self.auth_failures, s.auth_failures);
        to(&self.refused_peers, s.refused_peers);
        to(&self.quota_refusals, s.quota_refusals);
        to(&self.throttled_packets, s.throttled_packets);
        to(&self.binding_requests, s.stun_bindings);
        to(&self.strangers_dropped, s.strangers_dropped);
        self.peer_connections.set(s.peer_connections as i64);
        to(&self.peer_connections_opened, s.peer_connections_opened);
    }
}

/// Sockets, calls and signaling. Counters on the relay path are resolved once, so relaying a
/// message costs an atomic increment, not a label lookup.
pub struct RealtimeMetrics {
    /// Connected Socket.IO sockets, authenticated or not.
    pub sockets: Gauge,
    /// Live calls by state.
    calls: Family<StateLabel, Gauge>,
    pub relayed_offer: Counter,
    pub relayed_answer: Counter,
    pub relayed_ice: Counter,
    signaling_errors: Family<NameLabel, Counter>,
    calls_ended: Family<NameLabel, Counter>,
    /// Seconds from a call's creation to its first answer.
    pub call_setup: Histogram,
    /// Wake-ups that waited `realtime.coalesce_us`, copied from the process's count at scrape.
    coalesced_wakeups: Counter,
}

impl RealtimeMetrics {
    fn new(registry: &mut Registry) -> Self {
        let sockets = Gauge::default();
        registry.register("sockets", "Connected Socket.IO sockets", sockets.clone());
        let calls = Family::<StateLabel, Gauge>::default();
        registry.register("calls", "Live calls by state", calls.clone());
        let relayed = Family::<NameLabel, Counter>::default();
        registry.register(
            "signaling_relayed",
            "Signaling messages relayed (offer, answer, ice_candidate)",
            relayed.clone(),
        );
        let signaling_errors = Family::<NameLabel, Counter>::default();
        registry.register(
            "signaling_errors",
            "Socket.IO requests refused, by error code",
            signaling_errors.clone(),
        );
        let calls_ended = Family::<NameLabel, Counter>::default();
        registry.register("calls_ended", "Calls ended, by reason", calls_ended.clone());
        // 50 ms … ~7 min
        let call_setup = Histogram::new(exponential_buckets(0.05, 2.0, 14));
        registry.register(
            "call_setup_seconds",
            "Time from a call's creation to its first answer",
            call_setup.clone(),
        );
        let coalesced_wakeups = Counter::default();
        registry.register(
            "realtime_coalesced_wakeups",
            "Runtime wake-ups that waited realtime.coalesce_us because signaling was busy",
            coalesced_wakeups.clone(),
        );
        let counter = |n: &str| relayed.get_or_create(&NameLabel { name: n.into() }).clone();
        let (relayed_offer, relayed_answer, relayed_ice) =
            (counter("offer"), counter("answer"), counter("ice_candidate"));
        Self {
            sockets,
            calls,
            relayed_offer,
            relayed_answer,
            relayed_ice,
            signaling_errors,
            calls_ended,
            call_setup,
            coalesced_wakeups,
        }
    }

    pub fn signaling_error(&self, code: &str) {
        self.signaling_errors.get_or_create(&NameLabel { name: code.into() }).inc();
    }

    pub fn call_ended(&self, reason: &str) {
        self.calls_ended.get_or_create(&NameLabel { name: reason.into() }).inc();
    }

    /// A live call moved from `from` (None: new) to `to` (None: gone).
    pub fn call_moved(&self, from: Option<&str>, to: Option<&str>) {
        if let Some(from) = from {
            self.calls.get_or_create(&StateLabel { state: from.into() }).dec();
        }
        if let Some(to) = to {
            self.calls.get_or_create(&StateLabel { state: to.into() }).inc();
        }
    }
}

fn latency_histogram() -> Histogram {
    // 0.5 ms … ~16 s
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("securevox");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests by route and status", requests.clone());
        let latency: HistogramFamily = Family::new_with_constructor(latency_histogram);
        registry.register("http_request_duration_seconds", "HTTP request latency", latency.clone());
        let rate_limited = Family::<NameLabel, Counter>::default();
        registry.register("rate_limited", "Requests refused by a rate limit", rate_limited.clone());
        let auth_failures = Family::<NameLabel, Counter>::default();
        registry.register(
            "auth_failures",
            "Failed logins and rejected tokens",
            auth_failures.clone(),
        );
        let usage = Family::<NameLabel, Gauge>::default();
        registry.register(
            "capacity_usage",
            "Counted quantities of the capacity profile (registered_users, active_users, …)",
            usage.clone(),
        );
        let capacity_level = Gauge::default();
        registry.register(
            "capacity_level",
            "Capacity level: 0 ok, 1 warning, 2 critical, 3 blocked",
            capacity_level.clone(),
        );
        let db_pool = Family::<StateLabel, Gauge>::default();
        registry.register("db_pool_connections", "Database pool connections", db_pool.clone());
        let db_up = Gauge::default();
        registry.register("db_up", "1 when the database answered the last scrape", db_up.clone());
        let realtime = RealtimeMetrics::new(&mut registry);
        let turn = TurnMetrics::default();
        turn.register(&mut registry);
        Self {
            registry,
            requests,
            latency,
            rate_limited,
            auth_failures,
            usage,
            capacity_level,
            db_pool,
            db_up,
            realtime,
            turn,
        }
    }

    pub fn rate_limited(&self, limit: &str) {
        self.rate_limited.get_or_create(&NameLabel { name: limit.into() }).inc();
    }

    pub fn auth_failure(&self, reason: &str) {
        self.auth_failures.get_or_create(&NameLabel { name: reason.into() }).inc();
    }

    fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let route = route.to_owned();
        self.requests
            .get_or_create(&RequestLabels { method: method.into(), route: route.clone(), status })
            .inc();
        self.latency.get_or_create(&RouteLabels { method: method.into(), route }).observe(seconds);
    }

    /// Refreshes the database-derived gauges and renders the text exposition format.
    pub fn render(
        &self,
        report: Option<&CapacityReport>,
        pool: (u32, usize),
        turn: Option<securevox_turn::TurnSnapshot>,
    ) -> String {
        if let Some(turn) = &turn {
            self.turn.update(turn);
        }
        let coalesced = &self.realtime.coalesced_wakeups;
        coalesced.inc_by(crate::realtime::coalesce::waits().saturating_sub(coalesced.get()));
        self.db_up.set(i64::from(report.is_some()));
        if let Some(report) = report {
            for u in &report.usage {
                self.usage.get_or_create(&NameLabel { name: u.name.clone() }).set(u.used as i64);
            }
            self.capacity_level.set(report.level as i64);
        }
        let (size, idle) = pool;
        self.db_pool.get_or_create(&StateLabel { state: "idle".into() }).set(idle as i64);
        self.db_pool
            .get_or_create(&StateLabel { state: "busy".into() })
            .set(i64::from(size) - idle as i64);
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Middleware: counts every request by its route template (not its raw path, which would let
/// clients create unbounded label values) and status, and records latency.
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    state.metrics.observe(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}
