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

/// What a front end (the proxy engine) counts per request: the outcome by route, the time
/// to decide, and the upstream's time. Per-route counters are resolved once at load, so the
/// request path increments a handle instead of hashing label values.
pub struct RequestMetrics {
    /// `[route][outcome]`; the last row is for requests that matched no route.
    by_route: Vec<Vec<IntCounter>>,
    /// Refusals by reason (the answer's `error` code).
    refusals: IntCounterVec,
    pub decision_seconds: Histogram,
    by_upstream: Vec<Histogram>,
}

impl RequestMetrics {
    pub fn new(registry: &Registry, routes: &[&str], upstreams: &[&str]) -> RequestMetrics {
        let requests = must(IntCounterVec::new(
            Opts::new("scopegate_requests_total", "Requests by route and outcome"),
            &["route", "outcome"],
        ));
        let by_route = routes
            .iter()
            .copied()
            .chain([NO_ROUTE])
            .map(|r| {
                Outcome::ALL
                    .iter()
                    .map(|o| requests.with_label_values(&[r, o.label()]))
                    .collect()
            })
            .collect();
        let decision_seconds = must(Histogram::with_opts(
            HistogramOpts::new(
                "scopegate_decision_duration_seconds",
                "Time to decide a request (route, credential, token, policy)",
            )
            .buckets(DECISION_BUCKETS.to_vec()),
        ));
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
        let refusals = must(IntCounterVec::new(
            Opts::new(
                "scopegate_refusals_total",
                "Refused requests by reason (the answer's error code: insufficient_scope, not_a_member, …)",
            ),
            &["reason"],
        ));
        register(
            registry,
            [
                Box::new(refusals.clone()) as Box<dyn Collector>,
                Box::new(requests),
                Box::new(decision_seconds.clone()),
                Box::new(upstream_seconds),
            ],
        );
        RequestMetrics {
            by_route,
            refusals,
            decision_seconds,
            by_upstream,
        }
    }

    /// Counts one request; `route` is `None` when nothing matched.
    pub fn count(&self, route: Option<usize>, outcome: Outcome) {
        let row = route.unwrap_or(self.by_route.len() - 1);
        self.by_route[row][outcome.index()].inc();
    }

    /// Counts one refused request: by route and status, and by reason.
    pub fn refused(&self, route: Option<usize>, refusal: &crate::answer::Refusal) {
        self.count(route, refusal.outcome());
        self.refusals.with_label_values(&[refusal.reason()]).inc();
    }

    pub fn observe_upstream(&self, upstream: usize, seconds: f64) {
        self.by_upstream[upstream].observe(seconds);
    }
}

/// What the decision endpoint counts: answers by front end, route and outcome, and the time
/// to answer. Series appear as they are first counted (a configuration without the endpoint
/// exposes none).
pub struct DecisionMetrics {
    answers: IntCounterVec,
    routes: Vec<String>,
    pub seconds: Histogram,
}

impl DecisionMetrics {
    pub fn new(registry: &Registry, routes: &[&str]) -> DecisionMetrics {
        let answers = must(IntCounterVec::new(
            Opts::new(
                "scopegate_decision_endpoint_requests_total",
                "Decision-endpoint answers by front end (nginx, forward_auth, envoy_http, envoy_grpc), route and outcome",
            ),
            &["front_end", "route", "outcome"],
        ));
        let seconds = must(Histogram::with_opts(
            HistogramOpts::new(
                "scopegate_decision_endpoint_duration_seconds",
                "Time to answer a decision-endpoint call (network half included)",
            )
            .buckets(DECISION_BUCKETS.to_vec()),
        ));
        register(
            registry,
            [
                Box::new(answers.clone()) as Box<dyn Collector>,
                Box::new(seconds.clone()),
            ],
        );
        DecisionMetrics {
            answers,
            routes: routes.iter().map(|r| r.to_string()).collect(),
            seconds,
        }
    }

    /// Counts one answer to `front_end`; `route` is `None` when nothing matched.
    pub fn count(&self, front_end: &str, route: Option<usize>, outcome: Outcome) {
        let route = route.map_or(NO_ROUTE, |r| self.routes[r].as_str());
        self.answers
            .with_label_values(&[front_end, route, outcome.label()])
            .inc();
    }
}
