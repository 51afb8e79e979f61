//! Keeping each issuer's keys current: discovery, the first fetch, periodic refresh, and the
//! on-demand refresh when a token names a key the gateway has not seen (rate-limited, so a
//! flood of made-up `kid`s cannot turn the gateway into a JWKS hammer).

use crate::metrics::{must, register};
use crate::token::{Issuer, IssuerState, KeySet};
use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};
use serde::Deserialize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, mpsc, oneshot};

/// At most one on-demand fetch per issuer in this interval.
pub const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(30);
/// After a failed fetch, try again this soon (the regular interval can be long).
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5);

/// Per issuer: where its keys are and when they were last fetched.
#[derive(Default)]
struct Fetches {
    jwks_uri: Option<String>,
    /// Last fetch of any kind: concurrent callers that waited for it need no other.
    last_attempt: Option<Instant>,
    /// Last fetch asked for by an unknown `kid`, for the rate limit.
    last_on_demand: Option<Instant>,
}

/// What the key sync counts.
#[derive(Clone)]
pub struct KeyMetrics {
    refreshes: IntCounterVec,
    keys: IntGaugeVec,
    /// When each issuer's keys were last fetched successfully (stale keys alert on it).
    fetched_at: IntGaugeVec,
}

impl KeyMetrics {
    pub fn new(registry: &Registry) -> KeyMetrics {
        let refreshes = must(IntCounterVec::new(
            Opts::new(
                "scopegate_jwks_refreshes_total",
                "JWKS fetches by issuer and result",
            ),
            &["issuer", "result"],
        ));
        let keys = must(IntGaugeVec::new(
            Opts::new("scopegate_jwks_keys", "Verification keys held per issuer"),
            &["issuer"],
        ));
        let fetched_at = must(IntGaugeVec::new(
            Opts::new(
                "scopegate_jwks_last_success_timestamp_seconds",
                "Unix time of the last successful JWKS fetch per issuer",
            ),
            &["issuer"],
        ));
        register(
            registry,
            [
                Box::new(refreshes.clone()),
                Box::new(keys.clone()),
                Box::new(fetched_at.clone()),
            ],
        );
        KeyMetrics {
            refreshes,
            keys,
            fetched_at,
        }
    }
}

pub struct KeySync {
    issuers: Arc<[Issuer]>,
    /// Where fetched keys go (read by every request).
    states: Arc<[IssuerState]>,
    metrics: KeyMetrics,
    client: reqwest::Client,
    fetches: Vec<Mutex<Fetches>>,
}

/// A refresh request: the issuer, and who to tell when it is done.
type Request = (usize, oneshot::Sender<()>);

/// The handle the proxy uses to ask for a refresh; answered once the fetch is done.
///
/// The rate limit is checked here, on the request path, before anything is sent: a flood of
/// made-up `kid`s costs a lock and a clock read each, not a message and a task on the
/// runtime that also serves `/events` and `/readyz`. Requests that come while a fetch is in
/// flight wait for it instead of asking again.
#[derive(Clone)]
pub struct RefreshHandle {
    tx: mpsc::Sender<Request>,
    gates: Arc<[Gate]>,
}

/// Per issuer: when an on-demand fetch was last asked for, and who waits for the one in
/// flight.
#[derive(Default)]
struct Gate {
    asked: std::sync::Mutex<(Option<Instant>, bool)>,
    done: tokio::sync::Notify,
}

impl RefreshHandle {
    /// Asks for a refresh of the issuer's keys; returns once it is done, or at once when
    /// one was asked for less than [`MIN_REFRESH_INTERVAL`] ago.
    pub async fn refresh(&self, issuer: usize) {
        let gate = &self.gates[issuer];
        let notified = gate.done.notified();
        tokio::pin!(notified);
        let wait_for_fetch = {
            let mut asked = gate.asked.lock().unwrap_or_else(|p| p.into_inner());
            match *asked {
                (_, true) => {
                    // Registered before the lock is released: the end of the fetch cannot
                    // slip between the check and the wait.
                    notified.as_mut().enable();
                    true
                }
                (Some(t), false) if t.elapsed() < MIN_REFRESH_INTERVAL => return,
                _ => {
                    *asked = (Some(Instant::now()), true);
                    false
                }
            }
        };
        if wait_for_fetch {
            let _ = tokio::time::timeout(Duration::from_secs(6), notified).await;
            return;
        }
        let (done, wait) = oneshot::channel();
        if self.tx.try_send((issuer, done)).is_ok() {
            let _ = wait.await;
        }
        gate.asked.lock().unwrap_or_else(|p| p.into_inner()).1 = false;
        gate.done.notify_waiters();
    }
}

#[derive(Deserialize)]
struct Metadata {
    issuer: Option<String>,
    jwks_uri: Option<String>,
    introspection_endpoint: Option<String>,
}

pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("HTTP client")
}

impl KeySync {
    /// The key sync of `gateway`'s issuers, counting in `registry`.
    pub fn for_gateway(
        gateway: &crate::decision::Gateway,
        registry: &Registry,
    ) -> (Arc<KeySync>, RefreshHandle, mpsc::Receiver<Request>) {
        KeySync::new(
            gateway.rules.issuers.clone(),
            gateway.state.issuers.clone(),
            KeyMetrics::new(registry),
        )
    }

    pub fn new(
        issuers: Arc<[Issuer]>,
        states: Arc<[IssuerState]>,
        metrics: KeyMetrics,
    ) -> (Arc<KeySync>, RefreshHandle, mpsc::Receiver<Request>) {
        let fetches = issuers
            .iter()
            .map(|i| {
                Mutex::new(Fetches {
                    jwks_uri: i.jwks_uri.clone(),
                    ..Fetches::default()
                })
            })
            .collect();
        // One request per issuer at a time passes the gate; a few slots are plenty.
        let (tx, rx) = mpsc::channel(issuers.len().max(1) * 2);
        let gates = issuers.iter().map(|_| Gate::default()).collect();
        let sync = Arc::new(KeySync {
            issuers,
            states,
            metrics,
            client: http_client(),
            fetches,
        });
        (sync, RefreshHandle { tx, gates }, rx)
    }

    /// Runs forever: the first fetch and periodic refresh of every issuer, and on-demand
    /// refreshes asked through the [`RefreshHandle`].
    pub async fn run(self: Arc<Self>, mut requests: mpsc::Receiver<Request>) {
        // Owned by this task: stopping it (a reloaded configuration) stops the refreshes.
        let mut periodic = tokio::task::JoinSet::new();
        // An issuer that only vouches for opaque tokens has no keys to fetch.
        for i in (0..self.issuers.len()).filter(|&i| self.issuers[i].has_keys()) {
            let me = self.clone();
            periodic.spawn(async move { me.periodic(i).await });
        }
        while let Some((issuer, done)) = requests.recv().await {
            let me = self.clone();
            let asked = Instant::now();
            tokio::spawn(async move {
                me.refresh_on_demand(issuer, asked).await;
                let _ = done.send(());
            });
        }
    }

    async fn periodic(&self, issuer: usize) {
        let every = self.issuers[issuer].jwks_refresh;
        loop {
            let mut state = self.fetches[issuer].lock().await;
            let ok = self.refresh(issuer, &mut state).await;
            drop(state);
            let pause = if ok {
                every
            } else {
                RETRY_AFTER_FAILURE.min(every)
            };
            tokio::time::sleep(pause).await;
        }
    }

    /// A refresh for a token whose key is unknown, asked at `asked`. A request that waited
    /// behind a fetch started after it asked is answered by that fetch; otherwise at most one
    /// on-demand fetch per [`MIN_REFRESH_INTERVAL`].
    async fn refresh_on_demand(&self, issuer: usize, asked: Instant) {
        if !self.issuers[issuer].has_keys() {
            return;
        }
        let mut state = self.fetches[issuer].lock().await;
        if state.last_attempt.is_some_and(|t| t >= asked) {
            return;
        }
        if state
            .last_on_demand
            .is_some_and(|t| t.elapsed() < MIN_REFRESH_INTERVAL)
        {
            return;
        }
        state.last_on_demand = Some(Instant::now());
        self.refresh(issuer, &mut state).await;
    }

    /// Fetches every issuer's keys once (for one-shot commands such as `explain`).
    pub async fn fetch_all_once(&self) {
        for issuer in (0..self.issuers.len()).filter(|&i| self.issuers[i].has_keys()) {
            let mut state = self.fetches[issuer].lock().await;
            self.refresh(issuer, &mut state).await;
        }
    }

    /// Fetches now; on failure the last good keys stay in place.
    async fn refresh(&self, issuer: usize, state: &mut Fetches) -> bool {
        state.last_attempt = Some(Instant::now());
        let id = &self.issuers[issuer].id;
        let m = &self.metrics;
        match self.fetch(issuer, state).await {
            Ok((keys, skipped)) => {
                for s in skipped {
                    tracing::warn!(issuer = %id, "JWKS key skipped: {s}");
                }
                m.refreshes.with_label_values(&[id, "ok"]).inc();
                m.keys.with_label_values(&[id]).set(keys.len() as i64);
                m.fetched_at
                    .with_label_values(&[id])
                    .set(crate::clock::unix_now() as i64);
                tracing::debug!(issuer = %id, keys = keys.len(), "JWKS fetched");
                self.states[issuer].set_keys(keys);
                true
            }
            Err(e) => {
                // The last good keys stay in place.
                m.refreshes.with_label_values(&[id, "error"]).inc();
                tracing::warn!(issuer = %id, "JWKS refresh failed: {e}");
                false
            }
        }
    }

    async fn get(&self, url: &str) -> Result<bytes::Bytes, String> {
        let resp = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("{url}: HTTP {}", resp.status()));
        }
        super::read_body(resp)
            .await
            .map_err(|e| format!("{url}: {e}"))
    }

    async fn fetch(
        &self,
        issuer: usize,
        state: &mut Fetches,
    ) -> Result<(KeySet, Vec<String>), String> {
        if state.jwks_uri.is_none() {
            state.jwks_uri = Some(self.discover(issuer).await?);
        }
        let uri = state.jwks_uri.clone().unwrap_or_default();
        let body = self.get(&uri).await?;
        let (keys, skipped) = KeySet::from_jwks(&body)?;
        if keys.is_empty() {
            return Err(format!("{uri}: no usable key"));
        }
        Ok((keys, skipped))
    }

    /// OpenID Connect discovery, then RFC 8414 metadata; the `issuer` in the document must be
    /// the configured one (OpenID Connect Discovery §4.3).
    async fn discover(&self, issuer: usize) -> Result<String, String> {
        let iss = self.issuers[issuer].iss.trim_end_matches('/');
        let oidc = format!("{iss}/.well-known/openid-configuration");
        let rfc8414 = match iss.split_once("://").and_then(|(s, rest)| {
            rest.split_once('/').map(|(host, path)| {
                format!("{s}://{host}/.well-known/oauth-authorization-server/{path}")
            })
        }) {
            Some(u) => u,
            None => format!("{iss}/.well-known/oauth-authorization-server"),
        };
        let mut last_err = String::new();
        for url in [oidc, rfc8414] {
            match self.get(&url).await {
                Ok(body) => {
                    let m: Metadata = serde_json::from_slice(&body)
                        .map_err(|e| format!("{url}: not a metadata document: {e}"))?;
                    if m.issuer.as_deref().map(|i| i.trim_end_matches('/')) != Some(iss) {
                        return Err(format!("{url}: the metadata is for another issuer"));
                    }
                    // Discovered URLs meet the rule configured ones meet.
                    let allow_http = self.issuers[issuer].allow_http;
                    let secure = |u: &String| crate::compile::is_secure_url(u, allow_http);
                    if let Some(e) = m.introspection_endpoint.filter(secure) {
                        self.states[issuer].set_discovered_introspection(e);
                    }
                    let jwks = m.jwks_uri.ok_or_else(|| format!("{url}: no jwks_uri"))?;
                    if !secure(&jwks) {
                        return Err(format!(
                            "{url}: jwks_uri `{jwks}` is not https (set `allow_http: true` to accept it)"
                        ));
                    }
                    return Ok(jwks);
                }
                Err(e) => last_err = e,
            }
        }
        Err(last_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handle() -> (RefreshHandle, mpsc::Receiver<Request>) {
        let issuers: Arc<[Issuer]> = vec![crate::token::testing::issuer()].into();
        let states: Arc<[IssuerState]> = vec![IssuerState::default()].into();
        let (_, handle, rx) = KeySync::new(
            issuers,
            states,
            KeyMetrics::new(&prometheus::Registry::new()),
        );
        (handle, rx)
    }

    #[test]
    fn a_flood_of_unknown_kids_sends_one_refresh_per_interval_and_waits_for_the_one_in_flight() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (handle, mut rx) = handle();
            let first = tokio::spawn({
                let h = handle.clone();
                async move { h.refresh(0).await }
            });
            // The fetch is in flight: others wait for it and send nothing.
            let (issuer, done) = rx.recv().await.unwrap();
            assert_eq!(issuer, 0);
            let waiters: Vec<_> = (0..100)
                .map(|_| {
                    let h = handle.clone();
                    tokio::spawn(async move { h.refresh(0).await })
                })
                .collect();
            tokio::task::yield_now().await;
            assert!(
                rx.try_recv().is_err(),
                "nothing sent while one is in flight"
            );
            done.send(()).unwrap();
            first.await.unwrap();
            for w in waiters {
                w.await.unwrap();
            }
            // Within the interval: answered at once, nothing sent.
            for _ in 0..1000 {
                handle.refresh(0).await;
            }
            assert!(rx.try_recv().is_err(), "rate-limited before sending");
        });
    }
}
