//! Applying Security Event Tokens (RFC 8417) delivered by push (RFC 8935, the admin port's
//! `POST /events`) or poll (RFC 8936): the transmitter's keys fetched when needed, the SET
//! checked by `token::set`, replays refused, and the revocations added to the index that
//! every later request is checked against.

use crate::clock::unix_now;
use crate::metrics::{must, register};
use crate::token::set::{self, refuse};
use crate::token::{
    Applied, Issuer, IssuerState, KeySet, Revocations, Revoked, SetError, SetKeys, SetRules,
    TokenCache,
};
use arc_swap::ArcSwap;
use prometheus::{IntCounter, IntCounterVec, Opts, Registry};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// At most one key fetch per this interval for a SET with an unknown `kid`.
const MIN_KEY_FETCH: Duration = Duration::from_secs(30);
/// While no key was ever fetched (a SET racing the first fetch), at most one per this.
const MIN_FIRST_KEY_FETCH: Duration = Duration::from_secs(1);

/// What SET delivery counts (one set per configuration, shared by push and poll).
#[derive(Clone)]
pub struct SetMetrics {
    events: IntCounterVec,
    evicted: IntCounter,
    rejected: IntCounterVec,
}

impl SetMetrics {
    pub fn new(registry: &Registry) -> SetMetrics {
        let events = must(IntCounterVec::new(
            Opts::new(
                "scopegate_revocation_events_total",
                "Revocation events applied, by event type and source (push, poll)",
            ),
            &["type", "source"],
        ));
        let evicted = must(IntCounter::new(
            "scopegate_revocation_evicted_total",
            "Cached token answers removed by revocation events",
        ));
        let rejected = must(IntCounterVec::new(
            Opts::new(
                "scopegate_sets_rejected_total",
                "Security Event Tokens refused, by RFC 8935 error code",
            ),
            &["reason"],
        ));
        register(
            registry,
            [
                Box::new(events.clone()),
                Box::new(evicted.clone()),
                Box::new(rejected.clone()),
            ],
        );
        SetMetrics {
            events,
            evicted,
            rejected,
        }
    }
}

/// Where revocations go: the index every request reads, and the cache they evict from.
#[derive(Clone)]
pub struct RevocationSink {
    pub revocations: Arc<Revocations>,
    pub cache: Arc<TokenCache>,
    /// Seconds a revocation stays in force.
    pub retention: u64,
    /// The other replicas, told of every revocation applied here (`cluster:`).
    pub cluster: Option<Arc<super::cluster::Cluster>>,
}

/// Why a SET delivered again is refused (the poller acknowledges it: it was applied).
pub const ALREADY_RECEIVED: &str = "this jti was already received";

/// The error of a SET applied here that Redis did not take: the push is answered 503 so the
/// transmitter delivers it again; the poller does not acknowledge it.
pub const NOT_DURABLE: &str = "temporarily_unavailable";

pub struct SetReceiver {
    rules: SetRules,
    /// `push` or `poll`, for metrics.
    source: &'static str,
    /// The configured issuers: a SET about any other is refused.
    issuers: Arc<[Issuer]>,
    /// The issuers' keys, for `SetKeys::Issuer`.
    issuer_states: Arc<[IssuerState]>,
    sink: RevocationSink,
    metrics: SetMetrics,
    own_keys: ArcSwap<KeySet>,
    last_fetch: Mutex<Option<Instant>>,
    client: reqwest::Client,
    /// `jti`s already processed → until when they are remembered.
    seen: Mutex<HashMap<String, u64>>,
}

impl SetReceiver {
    /// The replicas it tells of what it applies (`cluster:`).
    pub fn cluster(&self) -> Option<&Arc<super::cluster::Cluster>> {
        self.sink.cluster.as_ref()
    }

    /// A receiver of SETs verified with `rules`, delivered by `source` (`push`, `poll`).
    pub fn new(
        rules: SetRules,
        source: &'static str,
        (issuers, issuer_states): (Arc<[Issuer]>, Arc<[IssuerState]>),
        sink: RevocationSink,
        metrics: SetMetrics,
    ) -> SetReceiver {
        SetReceiver {
            rules,
            source,
            issuers,
            issuer_states,
            sink,
            metrics,
            own_keys: ArcSwap::from_pointee(KeySet::default()),
            last_fetch: Mutex::default(),
            client: super::http_client(),
            seen: Mutex::default(),
        }
    }

    /// Fetches the transmitter's own keys (no-op when it shares an issuer's).
    pub async fn fetch_keys(&self) -> Result<(), String> {
        let SetKeys::Own(uri) = &self.rules.keys else {
            return Ok(());
        };
        *self.last_fetch.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        let resp = self
            .client
            .get(uri)
            .send()
            .await
            .map_err(|e| format!("{uri}: {e}"))?;
        let body = super::read_body(resp)
            .await
            .map_err(|e| format!("{uri}: {e}"))?;
        let (keys, _) = KeySet::from_jwks(&body)?;
        self.own_keys.store(Arc::new(keys));
        Ok(())
    }

    fn keys(&self) -> Arc<KeySet> {
        match self.rules.keys {
            SetKeys::Issuer(i) => self.issuer_states[i].keys().clone(),
            SetKeys::Own(_) => self.own_keys.load_full(),
        }
    }

    /// Verifies and applies one pushed SET; returns how many revocations it carried.
    pub async fn receive(
        &self,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<usize, SetError> {
        if content_type.map(|c| c.split(';').next().unwrap_or("").trim())
            != Some("application/secevent+jwt")
        {
            let e = refuse(
                "invalid_request",
                "the body must be application/secevent+jwt",
            );
            self.metrics.rejected.with_label_values(&[e.err]).inc();
            return Err(e);
        }
        match std::str::from_utf8(body) {
            Ok(set) => self.apply(set.trim()).await,
            Err(_) => Err(refuse("invalid_request", "the SET is not text")),
        }
    }

    /// Verifies and applies one SET (as text); counts a refusal by its error code.
    pub async fn apply(&self, set: &str) -> Result<usize, SetError> {
        let result = self.verify_and_apply(set).await;
        if let Err(e) = &result {
            self.metrics.rejected.with_label_values(&[e.err]).inc();
        }
        result
    }

    async fn verify_and_apply(&self, set: &str) -> Result<usize, SetError> {
        let header = set::check_header(set, &self.rules)?;
        let mut keys = self.keys();
        if keys.find(header.kid.as_deref(), header.alg).is_none()
            && matches!(self.rules.keys, SetKeys::Own(_))
        {
            // Rate-limited; more often while no key was ever fetched (a SET racing the first
            // fetch), but never once per SET.
            let every = if keys.is_empty() {
                MIN_FIRST_KEY_FETCH
            } else {
                MIN_KEY_FETCH
            };
            let due = self
                .last_fetch
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_none_or(|t| t.elapsed() >= every);
            if due {
                let _ = self.fetch_keys().await;
                keys = self.keys();
            }
        }
        let key = keys
            .find(header.kid.as_deref(), header.alg)
            .ok_or_else(|| refuse("invalid_key", "unknown signing key"))?;
        let verified = set::verify(set, &header, key, &self.rules)?;
        // A revocation about an issuer the gateway does not know would change nothing: the
        // transmitter is told, rather than answered 202 as if it had.
        if let Some(iss) = verified
            .revoked
            .iter()
            .filter_map(|(_, r)| r.issuer())
            .find(|iss| !self.issuers.iter().any(|i| i.iss == *iss))
        {
            return Err(refuse(
                "invalid_request",
                format!("the subject's issuer {iss} is not an issuer of this gateway"),
            ));
        }
        let now = unix_now();
        let retention = self.sink.retention;
        {
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            seen.retain(|_, until| *until > now);
            if seen.contains_key(&verified.jti) {
                return Err(refuse("invalid_request", ALREADY_RECEIVED));
            }
            seen.insert(verified.jti.clone(), now + retention);
        }
        let revoked: Vec<Revoked> = verified.revoked.iter().map(|(_, r)| r.clone()).collect();
        self.sink
            .revocations
            .add(&revoked, now, now + retention, retention);
        for (event_type, r) in &verified.revoked {
            self.metrics
                .events
                .with_label_values(&[event_type, self.source])
                .inc();
            if let Revoked::Token(h) = r
                && self.sink.cache.invalidate(h)
            {
                self.metrics.evicted.inc();
            }
        }
        // Applied here at once; acknowledged only once the other replicas can have it too.
        if let Some(cluster) = &self.sink.cluster {
            let applied: Vec<Applied> = revoked
                .iter()
                .map(|r| Applied {
                    revoked: r.clone(),
                    at: now,
                    until: now + retention,
                    retention,
                })
                .collect();
            if cluster.share(&applied).await.is_err() {
                // Delivered again, it is processed again (applying is idempotent).
                self.seen
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&verified.jti);
                return Err(refuse(
                    NOT_DURABLE,
                    "applied here, but not yet shared with the other replicas: deliver it again",
                ));
            }
        }
        Ok(revoked.len())
    }
}
