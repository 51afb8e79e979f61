//! Prometheus metrics, one registry per gateway instance. Per-route counters are resolved
//! once at load so the request path increments a handle instead of hashing label values.

use crate::answer::Outcome;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

pub struct Metrics {
    pub registry: Registry,
    /// `[route][outcome]`; the last row is for requests that matched no route.
    by_route: Vec<Vec<IntCounter>>,
    pub decision_seconds: Histogram,
    by_upstream: Vec<Histogram>,
    /// By token kind: `[jwt, opaque]`.
    pub cache_hits: [IntCounter; 2],
    pub cache_misses: [IntCounter; 2],
    pub cache_evictions: IntCounter,
    pub cache_entries: IntGauge,
    pub jwks_refreshes: IntCounterVec,
    pub introspections: IntCounterVec,
    pub introspection_seconds: HistogramVec,
    pub introspection_coalesced: IntCounter,
    pub introspection_circuit_open: IntGaugeVec,
    pub revocation_events: IntCounterVec,
    pub revocation_evicted: IntCounter,
    pub sets_rejected: IntCounterVec,
    pub set_poll_failures: IntCounter,
    pub jwks_keys: IntGaugeVec,
    /// Uses of each legacy credential (by index), accepted or refused as retired.
    pub legacy_uses: Vec<IntCounter>,
    /// Reads of the organization policy source, by result.
    pub org_source_reloads: IntCounterVec,
    /// When the policies in force were read (Unix seconds), for staleness alerts.
    pub org_source_loaded_at: IntGauge,
}

/// Configuration reloads by result: process-wide, so the count survives the reloads it
/// counts (every other metric belongs to one loaded configuration and restarts with it).
pub static CONFIG_RELOADS: std::sync::LazyLock<IntCounterVec> = std::sync::LazyLock::new(|| {
    must(IntCounterVec::new(
        Opts::new(
            "scopegate_config_reloads_total",
            "Configuration reloads (SIGHUP) by result: ok, error (the previous one kept serving)",
        ),
        &["result"],
    ))
});

/// Token kinds, the index of `cache_hits` and `cache_misses`.
pub const KINDS: [&str; 2] = ["jwt", "opaque"];

/// Route label for requests that matched no route.
pub const NO_ROUTE: &str = "-";

fn must<T>(r: prometheus::Result<T>) -> T {
    // Only fails on invalid names or duplicate registration: programming errors.
    r.expect("metric definition")
}

impl Metrics {
    pub fn new(routes: &[&str], upstreams: &[&str], credentials: &[&str]) -> Metrics {
        let registry = Registry::new();
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
            .buckets(vec![
                1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 1e-3, 1e-2, 0.1, 1.0,
            ]),
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
        let hits = must(IntCounterVec::new(
            Opts::new(
                "scopegate_token_cache_hits_total",
                "Token checks answered from the cache",
            ),
            &["kind"],
        ));
        let misses = must(IntCounterVec::new(
            Opts::new(
                "scopegate_token_cache_misses_total",
                "Token checks that had to verify or introspect the token",
            ),
            &["kind"],
        ));
        let cache_hits = KINDS.map(|k| hits.with_label_values(&[k]));
        let cache_misses = KINDS.map(|k| misses.with_label_values(&[k]));
        let cache_evictions = must(IntCounter::new(
            "scopegate_token_cache_evictions_total",
            "Entries the token cache dropped to stay within max_entries",
        ));
        let cache_entries = must(IntGauge::new(
            "scopegate_token_cache_entries",
            "Entries in the token cache",
        ));
        let jwks_refreshes = must(IntCounterVec::new(
            Opts::new(
                "scopegate_jwks_refreshes_total",
                "JWKS fetches by issuer and result",
            ),
            &["issuer", "result"],
        ));
        let jwks_keys = must(IntGaugeVec::new(
            Opts::new("scopegate_jwks_keys", "Verification keys held per issuer"),
            &["issuer"],
        ));
        let introspections = must(IntCounterVec::new(
            Opts::new(
                "scopegate_introspection_requests_total",
                "Introspection calls by issuer and result (active, inactive, error, timeout)",
            ),
            &["issuer", "result"],
        ));
        let introspection_seconds = must(HistogramVec::new(
            HistogramOpts::new(
                "scopegate_introspection_duration_seconds",
                "Introspection call latency",
            )
            .buckets(vec![
                1e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["issuer"],
        ));
        let introspection_coalesced = must(IntCounter::new(
            "scopegate_introspection_coalesced_total",
            "Requests that waited for an introspection already in flight for the same token",
        ));
        let introspection_circuit_open = must(IntGaugeVec::new(
            Opts::new(
                "scopegate_introspection_circuit_open",
                "1 while calls to the issuer's introspection endpoint are paused after failures",
            ),
            &["issuer"],
        ));
        let revocation_events = must(IntCounterVec::new(
            Opts::new(
                "scopegate_revocation_events_total",
                "Revocation events applied, by event type and source (push, poll)",
            ),
            &["type", "source"],
        ));
        let revocation_evicted = must(IntCounter::new(
            "scopegate_revocation_evicted_total",
            "Cached token answers removed by revocation events",
        ));
        let sets_rejected = must(IntCounterVec::new(
            Opts::new(
                "scopegate_sets_rejected_total",
                "Security Event Tokens refused, by RFC 8935 error code",
            ),
            &["reason"],
        ));
        let set_poll_failures = must(IntCounter::new(
            "scopegate_set_poll_failures_total",
            "Failed polls of the SET transmitter (RFC 8936), retried with backoff",
        ));
        let legacy = must(IntCounterVec::new(
            Opts::new(
                "scopegate_legacy_credential_requests_total",
                "Requests presenting a legacy credential, by credential id (also after not_after)",
            ),
            &["id"],
        ));
        let legacy_uses = credentials
            .iter()
            .map(|id| legacy.with_label_values(&[id]))
            .collect();
        let org_source_reloads = must(IntCounterVec::new(
            Opts::new(
                "scopegate_organization_source_reloads_total",
                "Reads of the organization policy source, by result (ok, unchanged, error)",
            ),
            &["result"],
        ));
        let org_source_loaded_at = must(IntGauge::new(
            "scopegate_organization_source_last_success_timestamp_seconds",
            "When the organization policies in force were read from their source (Unix time)",
        ));
        for c in [
            Box::new(CONFIG_RELOADS.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(legacy.clone()),
            Box::new(org_source_loaded_at.clone()),
            Box::new(org_source_reloads.clone()),
            Box::new(introspections.clone()),
            Box::new(introspection_seconds.clone()),
            Box::new(introspection_coalesced.clone()),
            Box::new(introspection_circuit_open.clone()),
            Box::new(revocation_events.clone()),
            Box::new(revocation_evicted.clone()),
            Box::new(sets_rejected.clone()),
            Box::new(set_poll_failures.clone()),
            Box::new(requests.clone()),
            Box::new(decision_seconds.clone()),
            Box::new(upstream_seconds.clone()),
            Box::new(hits.clone()),
            Box::new(misses.clone()),
            Box::new(cache_evictions.clone()),
            Box::new(cache_entries.clone()),
            Box::new(jwks_refreshes.clone()),
            Box::new(jwks_keys.clone()),
        ] {
            must(registry.register(c));
        }
        Metrics {
            registry,
            by_route,
            decision_seconds,
            by_upstream,
            cache_hits,
            cache_misses,
            cache_evictions,
            cache_entries,
            jwks_refreshes,
            jwks_keys,
            introspections,
            introspection_seconds,
            introspection_coalesced,
            introspection_circuit_open,
            revocation_events,
            revocation_evicted,
            sets_rejected,
            set_poll_failures,
            legacy_uses,
            org_source_reloads,
            org_source_loaded_at,
        }
    }

    /// Counts one request; `route` is `None` when nothing matched.
    pub fn count(&self, route: Option<usize>, outcome: Outcome) {
        let row = route.unwrap_or(self.by_route.len() - 1);
        self.by_route[row][outcome.index()].inc();
    }

    pub fn observe_upstream(&self, upstream: usize, seconds: f64) {
        self.by_upstream[upstream].observe(seconds);
    }

    pub fn render(&self) -> String {
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_default()
    }
}
