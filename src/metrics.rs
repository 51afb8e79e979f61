//! Prometheus plumbing. Each stage defines the metrics it counts next to its code
//! (`authn::AuthnMetrics`, the sync tasks' own) and registers them in the registry of the
//! configuration generation it serves; `/metrics` renders that registry. What front ends
//! count per request ([`RequestMetrics`]) is here, shared by every front end.

use crate::answer::Outcome;
use prometheus::core::Collector;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry, TextEncoder,
};

/// Configuration reloads by result: process-wide, so the count survives the reloads it
/// counts (every other metric belongs to one loaded configuration and restarts with it).
pub static CONFIG_RELOADS: std::sync::LazyLock<IntCounterVec> = std::sync::LazyLock::new(|| {
    must(IntCounterVec::new(
        Opts::new(
            "scopegate_config_reloads_total",
            "Configuration reloads (SIGHUP or a changed file) by result: ok, error (the previous one kept serving)",
        ),
        &["result"],
    ))
});

/// Request log lines dropped because its writer fell behind: process-wide, like the writer.
pub static REQUEST_LOG_DROPPED: std::sync::LazyLock<IntCounter> = std::sync::LazyLock::new(|| {
    must(IntCounter::new(
        "scopegate_request_log_dropped_total",
        "Request log lines dropped because the writer fell behind (the request was not held up)",
    ))
});

/// Connections a listener could not take, by listener (`server.listen`, ...) and reason:
/// `max_connections` (answered 503 and closed), `accept_failed` (out of file descriptors or
/// the like: the listener pauses instead of spinning, and the connection waits in the queue).
/// Process-wide, like the listeners.
pub static CONNECTIONS_NOT_TAKEN: std::sync::LazyLock<IntCounterVec> = std::sync::LazyLock::new(
    || {
        must(IntCounterVec::new(
            Opts::new(
                "scopegate_connections_not_taken_total",
                "Connections a listener could not take: max_connections (answered 503), accept_failed (e.g. out of file descriptors; the listener pauses)",
            ),
            &["listener", "reason"],
        ))
    },
);

/// A metric definition; fails only on an invalid name or a duplicate registration, which are
/// programming errors.
pub fn must<T>(r: prometheus::Result<T>) -> T {
    r.expect("metric definition")
}

/// Registers every collector of one stage.
pub fn register<const N: usize>(registry: &Registry, collectors: [Box<dyn Collector>; N]) {
    for c in collectors {
        must(registry.register(c));
    }
}

/// A fresh registry for one configuration generation, with the process-wide metrics in it.
pub fn registry() -> Registry {
    let r = Registry::new();
    must(r.register(Box::new(CONFIG_RELOADS.clone())));
    must(r.register(Box::new(REQUEST_LOG_DROPPED.clone())));
    must(r.register(Box::new(CONNECTIONS_NOT_TAKEN.clone())));
    must(r.register(Box::new(WEBSOCKET_TUNNELS.clone())));
    must(r.register(Box::new(WEBSOCKET_CLOSED.clone())));
    r
}

/// The text exposition of `registry`.
pub fn render(registry: &Registry) -> String {
    TextEncoder::new()
        .encode_to_string(&registry.gather())
        .unwrap_or_default()
}

/// Seconds to decide: a cached decision takes microseconds, one that waits for the network
/// up to a second.
const DECISION_BUCKETS: [f64; 12] = [
    1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 1e-3, 1e-2, 0.1, 1.0,
];

/// Route label for requests that matched no route.
pub const NO_ROUTE: &str = "-";

/// Every way in: the proxy, each caller convention of the decision endpoint, and the admin
/// port. The `front_end` label of the request metrics and the request log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrontEnd {
    /// The gateway forwards the request itself.
    Proxy,
    /// nginx `auth_request`: `X-Original-Method`, `X-Original-URI` (set in its configuration).
    Nginx,
    /// Traefik `forwardAuth`, Caddy `forward_auth`: `X-Forwarded-Method`, `-Uri`, `-Host`,
    /// `-Proto`.
    ForwardAuth,
    /// Envoy `ext_authz` over HTTP: the original method, and the original path after the
    /// configured `path_prefix`.
    EnvoyHttp,
    /// Envoy `ext_authz` over gRPC (`envoy.service.auth.v3.Authorization/Check`).
    EnvoyGrpc,
    /// A call to the decision listener that names no caller convention.
    Decision,
    /// The admin port (`/events`, `/metrics`, probes).
    Admin,
}

impl FrontEnd {
    pub const ALL: [FrontEnd; 7] = [
        FrontEnd::Proxy,
        FrontEnd::Nginx,
        FrontEnd::ForwardAuth,
        FrontEnd::EnvoyHttp,
        FrontEnd::EnvoyGrpc,
        FrontEnd::Decision,
        FrontEnd::Admin,
    ];

    pub fn label(self) -> &'static str {
        match self {
            FrontEnd::Proxy => "proxy",
            FrontEnd::Nginx => "nginx",
            FrontEnd::ForwardAuth => "forward_auth",
            FrontEnd::EnvoyHttp => "envoy_http",
            FrontEnd::EnvoyGrpc => "envoy_grpc",
            FrontEnd::Decision => "decision",
            FrontEnd::Admin => "admin",
        }
    }
}

/// What every front end counts per request, each under its `front_end` label: the outcome
/// by route, refusals by reason, the time to decide, and the upstream's time. The proxy's
/// per-route counters are resolved once at load, so its request path increments a handle
/// instead of hashing label values; the decision endpoint's series appear as they are first
/// counted (a configuration without it exposes none).
pub struct RequestMetrics {
    requests: IntCounterVec,
    /// The proxy's `[route][outcome]`; the last row is for requests that matched no route.
    proxy_by_route: Vec<Vec<IntCounter>>,
    routes: Vec<String>,
    /// Refusals by front end and reason (the answer's `error` code).
    refusals: IntCounterVec,
    would_refuse: IntCounterVec,
    decision_seconds: [Histogram; FrontEnd::ALL.len()],
    by_upstream: Vec<Histogram>,
    /// Per upstream: requests tried again on another address, and addresses ejected.
    retries: Vec<IntCounter>,
    ejections: Vec<IntCounter>,
}

impl RequestMetrics {
    pub fn new(registry: &Registry, routes: &[&str], upstreams: &[&str]) -> RequestMetrics {
        let requests = must(IntCounterVec::new(
            Opts::new(
                "scopegate_requests_total",
                "Requests by front end (proxy, nginx, forward_auth, envoy_http, envoy_grpc, admin), route and outcome",
            ),
            &["front_end", "route", "outcome"],
        ));
        let proxy = FrontEnd::Proxy.label();
        let proxy_by_route = routes
            .iter()
            .copied()
            .chain([NO_ROUTE])
            .map(|r| {
                Outcome::ALL
                    .iter()
                    .map(|o| requests.with_label_values(&[proxy, r, o.label()]))
                    .collect()
            })
            .collect();
        let decision = must(HistogramVec::new(
            HistogramOpts::new(
                "scopegate_decision_duration_seconds",
                "Time to decide a request (route, credential, token, policy, and the network calls they need), by front end",
            )
            .buckets(DECISION_BUCKETS.to_vec()),
            &["front_end"],
        ));
        let decision_seconds = FrontEnd::ALL.map(|f| decision.with_label_values(&[f.label()]));
        let upstream_seconds = must(HistogramVec::new(
            HistogramOpts::new(
                "scopegate_upstream_duration_seconds",
                "Time from forwarding to the end of the upstream response",
            )
            .buckets(vec![
                1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2, 0.1, 0.5, 1.0, 5.0, 30.0,
            ]),
            &["upstream"],
        ));
        let by_upstream = upstreams
            .iter()
            .map(|u| upstream_seconds.with_label_values(&[u]))
            .collect();
        let per_upstream = |name: &str, help: &str| {
            let vec = must(IntCounterVec::new(Opts::new(name, help), &["upstream"]));
            let each: Vec<IntCounter> = upstreams
                .iter()
                .map(|u| vec.with_label_values(&[u]))
                .collect();
            (vec, each)
        };
        let (retries_vec, retries) = per_upstream(
            "scopegate_upstream_retries_total",
            "Requests tried again on another address after a connection failed or was reset before any answer",
        );
        let (ejections_vec, ejections) = per_upstream(
            "scopegate_upstream_ejections_total",
            "Addresses left alone for a while after consecutive failures",
        );
        let refusals = must(IntCounterVec::new(
            Opts::new(
                "scopegate_refusals_total",
                "Refused requests by front end and reason (the answer's error code: insufficient_scope, not_a_member, …)",
            ),
            &["front_end", "reason"],
        ));
        let would_refuse = must(IntCounterVec::new(
            Opts::new(
                "scopegate_would_refuse_total",
                "Requests a route in report mode forwarded although it would have refused them, by front end, route and reason",
            ),
            &["front_end", "route", "reason"],
        ));
        register(
            registry,
            [
                Box::new(refusals.clone()) as Box<dyn Collector>,
                Box::new(would_refuse.clone()),
                Box::new(requests.clone()),
                Box::new(decision),
                Box::new(upstream_seconds),
                Box::new(retries_vec),
                Box::new(ejections_vec),
            ],
        );
        RequestMetrics {
            requests,
            proxy_by_route,
            routes: routes.iter().map(|r| r.to_string()).collect(),
            refusals,
            would_refuse,
            decision_seconds,
            by_upstream,
            retries,
            ejections,
        }
    }

    /// Counts one request of `front_end`; `route` is `None` when nothing matched.
    pub fn count(&self, front_end: FrontEnd, route: Option<usize>, outcome: Outcome) {
        if front_end == FrontEnd::Proxy {
            let row = route.unwrap_or(self.proxy_by_route.len() - 1);
            self.proxy_by_route[row][outcome.index()].inc();
        } else {
            let route = route.map_or(NO_ROUTE, |r| self.routes[r].as_str());
            self.requests
                .with_label_values(&[front_end.label(), route, outcome.label()])
                .inc();
        }
    }

    /// Counts a request a route in report mode forwarded instead of refusing it.
    pub fn would_refuse(&self, front_end: FrontEnd, route: usize, reason: &str) {
        self.would_refuse
            .with_label_values(&[front_end.label(), self.routes[route].as_str(), reason])
            .inc();
    }

    /// Counts one refused request: by route and status, and by reason.
    pub fn refused(
        &self,
        front_end: FrontEnd,
        route: Option<usize>,
        outcome: Outcome,
        reason: &str,
    ) {
        self.count(front_end, route, outcome);
        self.refusals
            .with_label_values(&[front_end.label(), reason])
            .inc();
    }

    pub fn observe_decision(&self, front_end: FrontEnd, seconds: f64) {
        self.decision_seconds[front_end as usize].observe(seconds);
    }

    pub fn observe_upstream(&self, upstream: usize, seconds: f64) {
        self.by_upstream[upstream].observe(seconds);
    }

    pub fn retried(&self, upstream: usize) {
        self.retries[upstream].inc();
    }

    pub fn ejected(&self, upstream: usize) {
        self.ejections[upstream].inc();
    }
}

/// WebSocket tunnels open now (process-wide: a tunnel outlives a reload).
pub static WEBSOCKET_TUNNELS: std::sync::LazyLock<prometheus::IntGauge> =
    std::sync::LazyLock::new(|| {
        must(prometheus::IntGauge::new(
            "scopegate_websocket_tunnels",
            "WebSocket tunnels open now",
        ))
    });

/// WebSocket tunnels closed, by route and by why: `client`, `upstream` (that side closed),
/// `revoked`, `expired`, `lifetime`, `idle`, `shutdown` (the gateway closed it).
pub static WEBSOCKET_CLOSED: std::sync::LazyLock<IntCounterVec> = std::sync::LazyLock::new(|| {
    must(IntCounterVec::new(
        Opts::new(
            "scopegate_websocket_tunnels_closed_total",
            "WebSocket tunnels closed, by route and reason: client or upstream (that side closed), revoked, expired, lifetime, idle, shutdown (the gateway closed it)",
        ),
        &["route", "reason"],
    ))
});
