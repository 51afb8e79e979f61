//! What authentication counts: the token cache's hits, misses, evictions and size by token
//! kind, and every use of each legacy credential.

use crate::metrics::{must, register};
use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};

pub struct AuthnMetrics {
    /// By token kind: `[jwt, opaque]`.
    pub cache_hits: [IntCounter; 2],
    pub cache_misses: [IntCounter; 2],
    pub cache_evictions: IntCounter,
    pub cache_entries: IntGauge,
    /// Entries of the revocation index (read when `/metrics` is rendered).
    pub revocation_entries: IntGauge,
    /// Decisions made on an answer served stale, by issuer.
    stale: IntCounterVec,
    /// Uses of each legacy credential (by index), accepted or refused as retired.
    pub legacy_uses: Vec<IntCounter>,
    /// Uses of each legacy credential at or after its `not_after` (refused).
    pub legacy_retired_uses: Vec<IntCounter>,
}

/// Token kinds, the index of `cache_hits` and `cache_misses`.
const KINDS: [&str; 2] = ["jwt", "opaque"];

impl AuthnMetrics {
    /// Registers in `registry`; `credentials` are the legacy credential ids in order.
    pub fn new(registry: &Registry, credentials: &[&str]) -> AuthnMetrics {
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
        let cache_evictions = must(IntCounter::new(
            "scopegate_token_cache_evictions_total",
            "Entries the token cache dropped to stay within max_entries",
        ));
        let cache_entries = must(IntGauge::new(
            "scopegate_token_cache_entries",
            "Entries held by the token cache (an ended one until looked up or evicted)",
        ));
        let revocation_entries = must(IntGauge::new(
            "scopegate_revocation_entries",
            "Entries of the revocation index (token digests, token ids, subjects, clients) in force",
        ));
        let stale = must(IntCounterVec::new(
            Opts::new(
                "scopegate_introspection_stale_total",
                "Requests decided on an introspection answer past its cache time, while the authorization server failed (serve_stale_on_error), by issuer",
            ),
            &["issuer"],
        ));
        let legacy = must(IntCounterVec::new(
            Opts::new(
                "scopegate_legacy_credential_requests_total",
                "Requests presenting a legacy credential, by credential id (also after not_after)",
            ),
            &["id"],
        ));
        let retired = must(IntCounterVec::new(
            Opts::new(
                "scopegate_legacy_credential_retired_requests_total",
                "Requests presenting a legacy credential at or after its not_after (refused), by credential id",
            ),
            &["id"],
        ));
        register(
            registry,
            [
                Box::new(retired.clone()) as Box<dyn prometheus::core::Collector>,
                Box::new(hits.clone()),
                Box::new(misses.clone()),
                Box::new(cache_evictions.clone()),
                Box::new(cache_entries.clone()),
                Box::new(revocation_entries.clone()),
                Box::new(stale.clone()),
                Box::new(legacy.clone()),
            ],
        );
        AuthnMetrics {
            cache_hits: KINDS.map(|k| hits.with_label_values(&[k])),
            cache_misses: KINDS.map(|k| misses.with_label_values(&[k])),
            cache_evictions,
            cache_entries,
            revocation_entries,
            stale,
            legacy_uses: credentials
                .iter()
                .map(|id| legacy.with_label_values(&[id]))
                .collect(),
            legacy_retired_uses: credentials
                .iter()
                .map(|id| retired.with_label_values(&[id]))
                .collect(),
        }
    }

    /// Counts a decision made on a stale answer of `issuer`.
    pub fn served_stale(&self, issuer: &str) {
        self.stale.with_label_values(&[issuer]).inc();
    }
}
