//! Introspection calls: one HTTP client per issuer with its timeouts, in the issuer's dialect
//! (`dialect.rs`: RFC 7662, Google's tokeninfo, GitHub's token check; `membership.rs`:
//! GitHub's organization membership), and request coalescing, so that any number of
//! concurrent requests carrying the same new token cause one call to the authorization
//! server. Answers go into the gateway's token cache; a failure of the authorization server
//! is never cached.

mod coalesce;
mod dialect;
mod membership;
mod metrics;

use super::breaker::{self, Breaker};
use super::budget::{Budget, Spent};
use super::cluster::{IssuerIdentity, Lease};
use crate::answer::Unreachable;
use crate::clock::unix_now;
use crate::compile::IntrospectionLimits;
use crate::token::{
    self, Cached, Dialect, IntrospectionStatus, Issuer, IssuerState, Memberships, Principals,
    TokenCache, TokenError, TokenHash,
};
use coalesce::Coalescer;
pub use metrics::IntrospectionMetrics;
use prometheus::Registry;
use serde_json::{Map, Value};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// The answer for a token, or `None` when no authorization server could give one.
/// An answer, or what could not be reached.
type Introspected = Result<Cached, Unreachable>;

pub struct Introspector {
    issuers: Arc<[Issuer]>,
    /// For the discovered introspection endpoints.
    issuer_states: Arc<[IssuerState]>,
    principals: Arc<Principals>,
    /// Where answers go.
    cache: Arc<TokenCache>,
    /// Where membership answers go.
    memberships: Arc<Memberships>,
    metrics: IntrospectionMetrics,
    /// One client per issuer (index), `None` for issuers without introspection.
    clients: Vec<Option<reqwest::Client>>,
    in_flight: Coalescer<TokenHash, Introspected>,
    /// Membership calls in flight, by token and organization (lowercase).
    memberships_in_flight: Coalescer<(TokenHash, String), ()>,
    breakers: Vec<Mutex<Breaker>>,
    /// Calls in flight per issuer, bounded.
    slots: Vec<Semaphore>,
    /// Per issuer: no call before this (a 429's `Retry-After`).
    throttled_until: Vec<Mutex<Option<Instant>>>,
    /// Calls new tokens may cause, per client address and in total.
    budget: Budget,
    /// Replicas sharing introspection answers (`cluster.share_introspection`).
    shared: Option<Arc<super::cluster::Cluster>>,
}

/// How long a replica waits for the answer another replica is getting for the same token.
const SHARED_WAIT: Duration = Duration::from_secs(2);

/// Why one call gave no answer.
enum CallError {
    Timeout,
    Failed,
    /// The breaker is open, or half-open with its probe out: no call.
    CircuitOpen,
    /// The server asked for a pause (429), or is still in it: not an outage, so the breaker
    /// does not count it.
    Throttled,
    /// As many calls as allowed are in flight.
    Busy,
}

impl CallError {
    fn unreachable(self) -> Unreachable {
        match self {
            CallError::Timeout | CallError::Failed => Unreachable::Introspection,
            CallError::CircuitOpen => Unreachable::IntrospectionCircuitOpen,
            CallError::Throttled => Unreachable::IntrospectionThrottled,
            CallError::Busy => Unreachable::IntrospectionBudget,
        }
    }
}

/// Longest pause a 429's `Retry-After` can ask for (and the pause when it gives none: 1 s).
const MAX_THROTTLE: Duration = Duration::from_secs(60);

impl Introspector {
    /// The introspector of `gateway`'s issuers, answers going into its cache.
    pub fn for_gateway(
        gateway: &crate::decision::Gateway,
        registry: &Registry,
        limits: IntrospectionLimits,
    ) -> Introspector {
        let (rules, state) = (&gateway.rules, &gateway.state);
        Introspector::new(
            rules.issuers.clone(),
            state.issuers.clone(),
            rules.principals.clone(),
            (state.cache.clone(), state.memberships.clone()),
            IntrospectionMetrics::new(registry),
            limits,
        )
    }

    /// `answers`: where token and membership answers go.
    pub fn new(
        issuers: Arc<[Issuer]>,
        issuer_states: Arc<[IssuerState]>,
        principals: Arc<Principals>,
        answers: (Arc<TokenCache>, Arc<Memberships>),
        metrics: IntrospectionMetrics,
        limits: IntrospectionLimits,
    ) -> Introspector {
        let clients = issuers
            .iter()
            .map(|i| {
                i.introspection.as_ref().map(|r| {
                    reqwest::Client::builder()
                        .connect_timeout(r.connect_timeout)
                        .timeout(r.timeout)
                        .redirect(reqwest::redirect::Policy::none())
                        // GitHub's API refuses requests without one.
                        .user_agent(concat!("scopegate/", env!("CARGO_PKG_VERSION")))
                        .build()
                        .expect("HTTP client")
                })
            })
            .collect();
        Introspector {
            breakers: issuers.iter().map(|_| Mutex::default()).collect(),
            slots: issuers
                .iter()
                .map(|_| Semaphore::new(limits.concurrent.max(1)))
                .collect(),
            throttled_until: issuers.iter().map(|_| Mutex::default()).collect(),
            budget: Budget::new(
                limits.per_client_per_second,
                limits.per_second,
                limits.per_client_ipv6_prefix,
            ),
            issuers,
            issuer_states,
            principals,
            cache: answers.0,
            memberships: answers.1,
            metrics,
            clients,
            in_flight: Coalescer::default(),
            memberships_in_flight: Coalescer::default(),
            shared: None,
        }
    }

    /// The answer for `token` (whose SHA-256 is `key`), asking the authorization server at
    /// most once for all concurrent callers; `None` when no issuer could answer.
    pub async fn introspect(
        &self,
        token: &str,
        key: TokenHash,
        client: Option<IpAddr>,
    ) -> Introspected {
        self.in_flight
            .run(
                key,
                || self.ask(token, key, client),
                || self.metrics.coalesced.inc(),
            )
            .await
    }

    /// Shares answers with the other replicas through `cluster`: one provider call per new
    /// token for all of them.
    pub fn with_cluster(mut self, cluster: Option<Arc<super::cluster::Cluster>>) -> Introspector {
        self.shared = cluster;
        self
    }

    /// [`Introspector::call`], or the answer another replica got or is getting: the replica
    /// that takes the token's lease asks the provider; the others wait for its answer (up to
    /// [`SHARED_WAIT`], then ask themselves).
    async fn shared_call(
        &self,
        issuer: usize,
        token: &str,
        key: TokenHash,
    ) -> Result<Option<Map<String, Value>>, CallError> {
        let i = &self.issuers[issuer];
        let endpoint = i.introspection_endpoint(&self.issuer_states[issuer]);
        let (Some(cluster), Some(endpoint)) = (&self.shared, endpoint) else {
            return self.call(issuer, token).await;
        };
        // The answer is the issuer's (its `iss` and the endpoint that answered), for this
        // token; never older than this replica's cache would keep it.
        let who = IssuerIdentity {
            iss: &i.iss,
            endpoint,
        };
        let digest: String = key.iter().map(|b| format!("{b:02x}")).collect();
        let max_age = self.cache.max_ttl();
        if let Some(answer) = cluster.shared_answer(&who, &digest, max_age).await {
            self.metrics.shared.inc();
            return Ok(answer);
        }
        let lease = Lease {
            name: &format!("introspection:{}:{digest}", i.iss),
            label: None,
            ttl: SHARED_WAIT,
            stale_after: SHARED_WAIT,
            interval: SHARED_WAIT,
        };
        if !cluster.hold_lease(lease).await {
            let waited = Instant::now();
            while waited.elapsed() < SHARED_WAIT {
                tokio::time::sleep(Duration::from_millis(10)).await;
                if let Some(answer) = cluster.shared_answer(&who, &digest, max_age).await {
                    self.metrics.shared.inc();
                    return Ok(answer);
                }
            }
        }
        let result = self.call(issuer, token).await;
        if let Ok(answer) = &result {
            let now = unix_now();
            let ttl = match answer {
                // As long as this replica's cache keeps it: until `exp`, at most `max_ttl`.
                Some(a) => a
                    .get("exp")
                    .and_then(Value::as_u64)
                    .map(|exp| Duration::from_secs(exp.saturating_sub(now)))
                    .unwrap_or(self.cache.max_ttl())
                    .min(self.cache.max_ttl()),
                None => Duration::from_secs(5),
            };
            cluster.keep_answer(&who, &digest, answer, ttl).await;
        }
        result
    }

    /// Issuers that may own an opaque token: those whose prefix or pattern it has, else
    /// those with neither, in configuration order.
    fn candidates(&self, token: &str) -> Vec<usize> {
        let issuers = &self.issuers;
        let with_introspection =
            || (0..issuers.len()).filter(|&i| issuers[i].introspection.is_some());
        let claimed: Vec<usize> = with_introspection()
            .filter(|&i| issuers[i].opaque_tokens.claims(token))
            .collect();
        if !claimed.is_empty() {
            return claimed;
        }
        with_introspection()
            .filter(|&i| !issuers[i].opaque_tokens.is_set())
            .collect()
    }

    async fn ask(&self, token: &str, key: TokenHash, client: Option<IpAddr>) -> Introspected {
        // A new token spends the budget of its client and of everybody; when it is spent,
        // the answer is a 503 without a call (fail closed), and nothing is remembered.
        if let Err(spent) = self.budget.take(client, Instant::now()) {
            let reason = match spent {
                Spent::Client => "client_budget",
                Spent::Total => "total_budget",
                Spent::Clients => "client_table_full",
            };
            self.metrics.refused.with_label_values(&[reason]).inc();
            return Err(Unreachable::IntrospectionBudget);
        }
        let mut unreachable = None;
        let mut refusal = TokenError::Inactive;
        for i in self.candidates(token) {
            let now = unix_now();
            match self.shared_call(i, token, key).await {
                // The provider does not know the token.
                Ok(None) => {}
                Ok(Some(answer)) => {
                    let max_ttl = self.cache.max_ttl().as_secs();
                    match token::judge_introspection(
                        &answer,
                        i,
                        &self.issuers[i],
                        &self.principals,
                        now,
                        max_ttl,
                    ) {
                        Ok(p) => {
                            let p = Arc::new(p);
                            let stale = self.issuers[i]
                                .introspection
                                .as_ref()
                                .and_then(|r| r.serve_stale_on_error);
                            self.cache.insert_valid(key, p.clone(), now, stale);
                            return Ok(Cached::Valid(p));
                        }
                        Err(TokenError::Inactive) => {}
                        Err(e) => refusal = e,
                    }
                }
                Err(e) => unreachable = Some(e.unreachable()),
            }
        }
        if let (Some(why), TokenError::Inactive) = (unreachable, refusal) {
            // Some issuer could not say: fail closed with a 503, and remember nothing.
            return Err(why);
        }
        self.cache.insert_invalid(key, refusal);
        Ok(Cached::Invalid(refusal))
    }

    /// One call in the issuer's dialect: its answer, `None` when the provider does not know
    /// the token, or why there is no answer.
    async fn call(
        &self,
        issuer: usize,
        token: &str,
    ) -> Result<Option<Map<String, Value>>, CallError> {
        let i = &self.issuers[issuer];
        let rules = i.introspection.as_ref().ok_or(CallError::Failed)?;
        let client = self.clients[issuer].as_ref().ok_or(CallError::Failed)?;
        let count = |result: &str| self.metrics.calls.with_label_values(&[&i.id, result]).inc();
        let breaker = &self.breakers[issuer];
        let lock = || breaker.lock().unwrap_or_else(|p| p.into_inner());
        let (allowed, state) = {
            let mut b = lock();
            (b.allows(Instant::now()), b.state())
        };
        self.metrics
            .circuit
            .with_label_values(&[&i.id])
            .set(state as i64);
        if !allowed {
            count("circuit_open");
            return Err(CallError::CircuitOpen);
        }
        let throttled = *self.throttled_until[issuer]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if throttled.is_some_and(|t| Instant::now() < t) {
            self.metrics.refused.with_label_values(&["throttled"]).inc();
            return Err(CallError::Throttled);
        }
        let Ok(_slot) = self.slots[issuer].try_acquire() else {
            self.metrics
                .refused
                .with_label_values(&["concurrency"])
                .inc();
            // A half-open probe that could not go out leaves the breaker to the next one.
            return Err(CallError::Busy);
        };
        let Some(endpoint) = i.introspection_endpoint(&self.issuer_states[issuer]) else {
            count("error");
            tracing::warn!(issuer = %i.id, "no introspection endpoint (not configured, not discovered yet)");
            return Err(CallError::Failed);
        };
        let start = Instant::now();
        let req = dialect::request(client, rules, endpoint, token);
        let retry = req.try_clone();
        let mut sent = req.send().await;
        // A pooled connection that the server closed while idle fails before anything was
        // answered: retried once (asking about a token is safe to repeat).
        if let (Err(e), Some(again)) = (&sent, retry)
            && !e.is_timeout()
            && (e.is_connect() || e.is_request())
        {
            sent = again.send().await;
        }
        let result = match sent {
            Ok(resp) if resp.status() != http::StatusCode::TOO_MANY_REQUESTS => {
                match rules.dialect.status(resp.status().as_u16()) {
                    // Read up to the same cap as every other answer of an authorization server.
                    IntrospectionStatus::Answer => match super::read_body(resp).await {
                        Ok(body) => serde_json::from_slice::<Map<String, Value>>(&body)
                            .map(Some)
                            .map_err(|_| CallError::Failed),
                        Err(e) => {
                            tracing::warn!(issuer = %i.id, "introspection answer: {e}");
                            Err(CallError::Failed)
                        }
                    },
                    IntrospectionStatus::Inactive => Ok(None),
                    IntrospectionStatus::Failed => {
                        tracing::warn!(issuer = %i.id, status = %resp.status(), "introspection refused");
                        Err(CallError::Failed)
                    }
                }
            }
            Ok(resp) => {
                let pause = resp
                    .headers()
                    .get(http::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
                    .map_or(Duration::from_secs(1), Duration::from_secs)
                    .clamp(Duration::from_secs(1), MAX_THROTTLE);
                tracing::warn!(issuer = %i.id, "introspection throttled for {pause:?} (429)");
                *self.throttled_until[issuer]
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = Some(Instant::now() + pause);
                Err(CallError::Throttled)
            }
            Err(e) if e.is_timeout() => Err(CallError::Timeout),
            Err(e) => {
                tracing::warn!(issuer = %i.id, "introspection failed: {e}");
                Err(CallError::Failed)
            }
        };
        self.metrics
            .seconds
            .with_label_values(&[&i.id])
            .observe(start.elapsed().as_secs_f64());
        match &result {
            Ok(Some(a))
                if rules.dialect != Dialect::Rfc7662
                    || a.get("active") == Some(&Value::Bool(true)) =>
            {
                count("active")
            }
            Ok(_) => count("inactive"),
            Err(CallError::Timeout) => count("timeout"),
            Err(CallError::Failed) => count("error"),
            Err(CallError::Throttled) => count("throttled"),
            Err(CallError::CircuitOpen | CallError::Busy) => {}
        }
        let state = match result {
            Ok(_) => {
                lock().success();
                breaker::State::Closed
            }
            // Asked to slow down: not an outage, and proof that the server answers (its
            // `Retry-After` pauses the calls instead).
            Err(CallError::Throttled) => {
                lock().success();
                breaker::State::Closed
            }
            Err(_) => lock().failure(Instant::now()),
        };
        self.metrics
            .circuit_open
            .with_label_values(&[&i.id])
            .set(i64::from(state == breaker::State::Open));
        self.metrics
            .circuit
            .with_label_values(&[&i.id])
            .set(state as i64);
        result
    }
}
