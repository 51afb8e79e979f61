//! Several replicas, one truth, through Redis — which is a trust boundary: whatever sits
//! there could have been written by someone other than a replica. So every value and message
//! is sealed (`seal.rs`, an HMAC keyed by `cluster.hmac_key` and bound to its key name and
//! what it is about), and what does not open is refused, counted
//! (`scopegate_cluster_rejected_total{kind}`) and logged, never applied. Someone with write
//! access to Redis can delay and deny (delete, withhold, flood what is refused), but cannot
//! admit: no forged introspection answer, organization document, revocation or lease is
//! believed.
//!
//! - `revocations.rs`: revocations written durably (a sorted set scored by expiry) and
//!   published; followed by every replica; loaded at start in O(N); those Redis did not take
//!   are kept process-wide and retried every second.
//! - `lease.rs`: one replica does a job at a time (polling a SET stream, fetching a policy
//!   document, introspecting a new token): an atomic Lua lease, fenced takeover of a forged
//!   or stale one.
//! - `shared.rs`: introspection answers and policy documents shared between replicas.
//!
//! Nothing of this is on the request path, except, with `share_introspection`, for a new
//! opaque token (a few commands; see the README).

mod lease;
mod revocations;
mod seal;
mod shared;

pub use lease::Lease;
pub use shared::IssuerIdentity;

use crate::compile::ClusterSettings;
use crate::metrics::{must, register};
use crate::token::Unshared;
use prometheus::core::Collector;
use prometheus::{GaugeVec, IntCounterVec, IntGauge, Opts, Registry};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use seal::{Seal, SealError};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

pub struct Cluster {
    client: redis::Client,
    /// One reconnecting, multiplexed connection for every command (made on first use, inside
    /// the runtime).
    conn: tokio::sync::OnceCell<ConnectionManager>,
    seal: Seal,
    prefix: String,
    /// This replica, as a lease holder.
    id: String,
    /// Set once this replica has loaded what the others revoked before it started (at once
    /// with `start_without_redis`: it serves with what it knows).
    pub loaded: Arc<AtomicBool>,
    /// Revocations applied here that Redis has not taken yet (the process's, kept across
    /// reloads).
    unshared: Arc<Unshared>,
    max_revocations: usize,
    metrics: ClusterMetrics,
}

#[derive(Clone)]
struct ClusterMetrics {
    up: IntGauge,
    pending: IntGauge,
    rejected: IntCounterVec,
    lease_age: GaugeVec,
    lease_interval: GaugeVec,
}

impl ClusterMetrics {
    fn new(registry: &Registry) -> ClusterMetrics {
        let up = must(IntGauge::new(
            "scopegate_cluster_redis_up",
            "1 while the shared Redis answers; 0: degraded, serving with this replica's state",
        ));
        let pending = must(IntGauge::new(
            "scopegate_cluster_pending_revocations",
            "Revocations applied here and not yet written to Redis (it did not take them)",
        ));
        let rejected = must(IntCounterVec::new(
            Opts::new(
                "scopegate_cluster_rejected_total",
                "Values and messages read from Redis and refused (not sealed with the cluster key, altered, moved, too large or too old), by kind: revocation, lease, answer, document",
            ),
            &["kind"],
        ));
        // Every kind counted from 0, so an alert on its increase sees the first one.
        for kind in ["revocation", "lease", "answer", "document"] {
            rejected.with_label_values(&[kind]);
        }
        let lease_age = must(GaugeVec::new(
            Opts::new(
                "scopegate_cluster_lease_age_seconds",
                "Since the holder of a lease last renewed it, as this replica last saw it (poll: the SET stream poller; organizations: the policy source fetcher)",
            ),
            &["lease"],
        ));
        let lease_interval = must(GaugeVec::new(
            Opts::new(
                "scopegate_cluster_lease_interval_seconds",
                "How often the holder of a lease renews it (its job's interval)",
            ),
            &["lease"],
        ));
        register(
            registry,
            [
                Box::new(up.clone()) as Box<dyn Collector>,
                Box::new(pending.clone()),
                Box::new(rejected.clone()),
                Box::new(lease_age.clone()),
                Box::new(lease_interval.clone()),
            ],
        );
        ClusterMetrics {
            up,
            pending,
            rejected,
            lease_age,
            lease_interval,
        }
    }
}

/// How long a command may take before Redis is taken for unreachable.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

impl Cluster {
    /// The cluster of `settings` (its metrics registered now, before any connection);
    /// `unshared` is the process's list of revocations still to write.
    pub fn new(
        settings: &ClusterSettings,
        unshared: Arc<Unshared>,
        registry: &Registry,
    ) -> Result<Cluster, String> {
        let client = settings.client()?;
        let metrics = ClusterMetrics::new(registry);
        metrics.pending.set(unshared.len() as i64);
        Ok(Cluster {
            client,
            conn: tokio::sync::OnceCell::new(),
            seal: Seal::new(&settings.hmac.current, settings.hmac.previous.as_deref()),
            prefix: settings.key_prefix.clone(),
            id: format!(
                "{}-{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_nanos()
            ),
            loaded: Arc::new(AtomicBool::new(settings.start_without_redis)),
            unshared,
            max_revocations: settings.max_revocations,
            metrics,
        })
    }

    /// The shared connection (a clone: commands on it are pipelined by the client, which
    /// reconnects after a failure).
    async fn connection(&self) -> Result<ConnectionManager, String> {
        self.conn
            .get_or_try_init(|| async {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(COMMAND_TIMEOUT))
                    .set_response_timeout(Some(COMMAND_TIMEOUT))
                    .set_max_delay(Duration::from_secs(1));
                ConnectionManager::new_lazy_with_config(self.client.clone(), config)
            })
            .await
            .cloned()
            .map_err(|e| e.to_string())
    }

    /// The full name of a key or channel.
    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Counts and logs a value read from Redis that did not open.
    fn rejected(&self, kind: &'static str, key: &str, why: impl std::fmt::Display) {
        self.metrics.rejected.with_label_values(&[kind]).inc();
        tracing::warn!("cluster: a {kind} in Redis under {key} refused: {why}");
    }

    /// A string value, at most [`seal::MAX_SEALED`] bytes of it read (`Err(TooLarge)` beyond).
    async fn get_bounded(&self, key: &str) -> Result<Option<Result<String, SealError>>, String> {
        let mut conn = self.connection().await?;
        let text: Option<String> = redis::cmd("GETRANGE")
            .arg(key)
            .arg(0)
            .arg(seal::MAX_SEALED)
            .query_async(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        Ok(text.filter(|t| !t.is_empty()).map(|t| {
            if t.len() > seal::MAX_SEALED {
                Err(SealError::TooLarge)
            } else {
                Ok(t)
            }
        }))
    }
}

/// The first 16 hex digits of the SHA-256 of `parts` joined by NUL: a key name for what must
/// not be one itself (a URL that may carry credentials, an issuer's identity).
fn digest(parts: &[&str]) -> String {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for p in parts {
        ctx.update(p.as_bytes());
        ctx.update(&[0]);
    }
    ctx.finish().as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
