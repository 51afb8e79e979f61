//! What introspection counts: calls and their latency per issuer, the tokens refused without
//! a call, coalesced waits, the circuit breaker, membership answers, answers shared by
//! another replica.

use crate::metrics::{must, register};
use prometheus::{
    HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
};

/// What introspection counts.
#[derive(Clone)]
pub struct IntrospectionMetrics {
    pub(super) calls: IntCounterVec,
    /// New tokens not introspected: budget spent, server throttling, calls at the bound.
    pub(super) refused: IntCounterVec,
    pub(super) seconds: HistogramVec,
    pub(super) coalesced: IntCounter,
    pub(super) circuit_open: IntGaugeVec,
    pub(super) circuit: IntGaugeVec,
    pub(super) memberships: IntCounterVec,
    /// Answers taken from another replica (Redis) instead of a call.
    pub(super) shared: IntCounter,
}

impl IntrospectionMetrics {
    pub fn new(registry: &Registry) -> IntrospectionMetrics {
        let calls = must(IntCounterVec::new(
            Opts::new(
                "scopegate_introspection_requests_total",
                "Introspection calls by issuer and result (active, inactive, error, timeout)",
            ),
            &["issuer", "result"],
        ));
        let seconds = must(HistogramVec::new(
            HistogramOpts::new(
                "scopegate_introspection_duration_seconds",
                "Introspection call latency",
            )
            .buckets(vec![
                1e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["issuer"],
        ));
        let refused = must(IntCounterVec::new(
            Opts::new(
                "scopegate_introspection_refused_total",
                "New opaque tokens answered 503 without a call, by reason (client_budget, total_budget, client_table_full, throttled, concurrency)",
            ),
            &["reason"],
        ));
        let coalesced = must(IntCounter::new(
            "scopegate_introspection_coalesced_total",
            "Requests that waited for an introspection already in flight for the same token",
        ));
        let circuit_open = must(IntGaugeVec::new(
            Opts::new(
                "scopegate_introspection_circuit_open",
                "1 while calls to the issuer's introspection endpoint are paused after failures",
            ),
            &["issuer"],
        ));
        let circuit = must(IntGaugeVec::new(
            Opts::new(
                "scopegate_introspection_circuit",
                "The circuit breaker of the issuer's introspection endpoint: 0 closed, 1 open (calls paused after failures), 2 half-open (one call probes)",
            ),
            &["issuer"],
        ));
        let memberships = must(IntCounterVec::new(
            Opts::new(
                "scopegate_membership_requests_total",
                "Organization-membership answers by issuer and result (member, not_member, app_not_approved, sso_required, error, circuit_open)",
            ),
            &["issuer", "result"],
        ));
        let shared = must(IntCounter::new(
            "scopegate_introspection_shared_total",
            "Introspection answers taken from another replica through Redis instead of a call",
        ));
        register(
            registry,
            [
                Box::new(shared.clone()),
                Box::new(memberships.clone()),
                Box::new(calls.clone()),
                Box::new(refused.clone()),
                Box::new(seconds.clone()),
                Box::new(coalesced.clone()),
                Box::new(circuit_open.clone()),
                Box::new(circuit.clone()),
            ],
        );
        IntrospectionMetrics {
            calls,
            refused,
            seconds,
            coalesced,
            circuit_open,
            circuit,
            memberships,
            shared,
        }
    }
}
