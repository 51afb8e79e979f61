//! Several replicas, one truth: revocations shared through Redis. A revocation applied on any
//! replica (pushed or polled SET) is written to a sorted set scored by its expiry — durable
//! until its retention ends — and published; every replica follows the channel and applies
//! what others revoked. A starting replica subscribes first, then loads the sorted set, so
//! nothing published in between is missed; `/readyz` waits for that load.
//!
//! Stored values are the revocations themselves: token digests, `jti`s, subjects, clients —
//! never a token. Nothing of this is on the request path: revocations land in each replica's
//! memory.

use crate::clock::unix_now;
use crate::compile::ClusterSettings;
use crate::metrics::{must, register};
use crate::token::{Revocations, Revoked, TokenCache};
use futures_util::StreamExt;
use prometheus::{IntGauge, Registry};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One shared revocation, as stored and published.
#[derive(Serialize, Deserialize)]
struct Record {
    revoked: Revoked,
    /// When it was applied, and until when a named token stays refused (Unix seconds).
    at: u64,
    until: u64,
    retention: u64,
}

pub struct Cluster {
    client: redis::Client,
    key: String,
    channel: String,
    /// Set once this replica has loaded what the others revoked before it started (at once
    /// with `start_without_redis`: it serves with what it knows).
    pub loaded: Arc<AtomicBool>,
    /// Revocations applied here while Redis could not take them (score, record), written
    /// when it is back.
    pending: Mutex<Vec<(u64, String)>>,
    metrics: ClusterMetrics,
    prefix: String,
    /// This replica, as a lease holder.
    id: String,
    /// One multiplexed connection for every command, opened again after a failure.
    conn: tokio::sync::Mutex<Option<redis::aio::MultiplexedConnection>>,
}

#[derive(Clone)]
struct ClusterMetrics {
    up: IntGauge,
    pending: IntGauge,
}

impl Cluster {
    pub fn new(settings: &ClusterSettings, registry: &Registry) -> Result<Cluster, String> {
        let client = redis::Client::open(settings.redis.as_str())
            .map_err(|e| format!("cluster.redis: {e}"))?;
        let up = must(IntGauge::new(
            "scopegate_cluster_redis_up",
            "1 while the shared Redis answers; 0: degraded, serving with this replica's state",
        ));
        let pending = must(IntGauge::new(
            "scopegate_cluster_pending_revocations",
            "Revocations applied here and not yet written to Redis (it was unreachable)",
        ));
        register(registry, [Box::new(up.clone()), Box::new(pending.clone())]);
        Ok(Cluster {
            client,
            key: format!("{}revocations", settings.key_prefix),
            channel: format!("{}revocations:events", settings.key_prefix),
            loaded: Arc::new(AtomicBool::new(settings.start_without_redis)),
            pending: Mutex::default(),
            metrics: ClusterMetrics { up, pending },
            prefix: settings.key_prefix.clone(),
            conn: tokio::sync::Mutex::default(),
            id: format!(
                "{}-{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_nanos()
            ),
        })
    }

    /// Makes `revoked` durable and tells the other replicas. When Redis cannot take it, it
    /// is kept and written when Redis is back (it is applied here all the same).
    /// The shared connection (a clone: commands on it are pipelined by the client).
    async fn connection(&self) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
        let mut held = self.conn.lock().await;
        if let Some(c) = held.as_ref() {
            return Ok(c.clone());
        }
        let c = self.client.get_multiplexed_async_connection().await?;
        *held = Some(c.clone());
        Ok(c)
    }

    /// Forgets the connection after a failure, so that the next command opens a new one.
    async fn reset(&self) {
        *self.conn.lock().await = None;
    }

    /// Whether revocations applied here still wait to be written to Redis.
    pub fn has_pending(&self) -> bool {
        !self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }

    pub async fn share(&self, revoked: &[Revoked], at: u64, until: u64, retention: u64) {
        let records: Vec<(u64, String)> = revoked
            .iter()
            .filter_map(|r| {
                let record = Record {
                    revoked: r.clone(),
                    at,
                    until,
                    retention,
                };
                Some((
                    until.max(at + retention),
                    serde_json::to_string(&record).ok()?,
                ))
            })
            .collect();
        if let Err(e) = self.write(&records).await {
            tracing::warn!(
                "cluster: Redis did not take a revocation ({e}); applied here, written when Redis is back"
            );
            self.metrics.up.set(0);
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            pending.extend(records);
            self.metrics.pending.set(pending.len() as i64);
        }
    }

    /// Durable first, then announced: a replica that misses the message finds it in the set
    /// when it (re)subscribes.
    async fn write(&self, records: &[(u64, String)]) -> Result<(), String> {
        let mut conn = self.connection().await.map_err(|e| e.to_string())?;
        let mut pipe = redis::pipe();
        for (score, text) in records {
            pipe.cmd("ZADD")
                .arg(&self.key)
                .arg(*score)
                .arg(text)
                .ignore();
            pipe.cmd("PUBLISH").arg(&self.channel).arg(text).ignore();
        }
        let written = pipe.query_async::<()>(&mut conn).await;
        if written.is_err() {
            self.reset().await;
        }
        written.map_err(|e| e.to_string())
    }

    /// Writes what was kept while Redis was unreachable.
    async fn write_pending(&self) -> Result<(), String> {
        let kept = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()));
        if kept.is_empty() {
            return Ok(());
        }
        match self.write(&kept).await {
            Ok(()) => {
                tracing::info!(
                    "cluster: {} revocations kept during the outage written",
                    kept.len()
                );
                self.metrics.pending.set(0);
                Ok(())
            }
            Err(e) => {
                let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
                pending.extend(kept);
                Err(e)
            }
        }
    }

    /// Whether this replica holds (or now takes, or renews) the lease named `name` for
    /// `ttl`. When Redis cannot say, every replica acts on its own (better twice than never).
    pub async fn hold_lease(&self, name: &str, ttl: Duration) -> bool {
        let key = format!("{}lease:{name}", self.prefix);
        let ms = ttl.as_millis() as u64;
        let attempt = async {
            let mut conn = self.connection().await?;
            let taken: Option<String> = redis::cmd("SET")
                .arg(&key)
                .arg(&self.id)
                .arg("NX")
                .arg("PX")
                .arg(ms)
                .query_async(&mut conn)
                .await?;
            if taken.is_some() {
                return Ok::<bool, redis::RedisError>(true);
            }
            let holder: Option<String> = redis::cmd("GET").arg(&key).query_async(&mut conn).await?;
            if holder.as_deref() == Some(self.id.as_str()) {
                redis::cmd("PEXPIRE")
                    .arg(&key)
                    .arg(ms)
                    .query_async::<()>(&mut conn)
                    .await?;
                return Ok(true);
            }
            Ok(false)
        };
        match attempt.await {
            Ok(held) => held,
            Err(_) => {
                self.reset().await;
                true
            }
        }
    }

    /// An introspection answer another replica got for the token digest `name` (`Some(None)`:
    /// the provider did not know the token); `None` when there is none (or Redis cannot say).
    pub async fn shared_answer(&self, name: &str) -> Option<Option<Map<String, Value>>> {
        let key = format!("{}introspection:{name}", self.prefix);
        let mut conn = self.connection().await.ok()?;
        let text: Option<String> = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .ok()?;
        let stored: Value = serde_json::from_str(&text?).ok()?;
        match stored.get("answer")? {
            Value::Object(m) => Some(Some(m.clone())),
            _ => Some(None),
        }
    }

    /// Shares an introspection answer for `ttl` (never the token: a provider that echoes it,
    /// as GitHub does, has it removed first).
    pub async fn keep_answer(
        &self,
        name: &str,
        answer: &Option<Map<String, Value>>,
        ttl: Duration,
    ) {
        let answer = answer.as_ref().map(|a| {
            let mut a = a.clone();
            a.remove("token");
            Value::Object(a)
        });
        let text = serde_json::json!({ "answer": answer }).to_string();
        let key = format!("{}introspection:{name}", self.prefix);
        if let Ok(mut conn) = self.connection().await {
            let _ = redis::cmd("SET")
                .arg(&key)
                .arg(text)
                .arg("PX")
                .arg(ttl.as_millis().max(1) as u64)
                .query_async::<()>(&mut conn)
                .await;
        }
    }

    /// A document another replica shared under `name`.
    pub async fn shared_text(&self, name: &str) -> Option<String> {
        let mut conn = self.connection().await.ok()?;
        redis::cmd("GET")
            .arg(format!("{}shared:{name}", self.prefix))
            .query_async::<Option<String>>(&mut conn)
            .await
            .ok()?
    }

    /// Shares a document under `name` (the last one written is the one read).
    pub async fn keep_text(&self, name: &str, text: &str) {
        if let Ok(mut conn) = self.connection().await {
            let _ = redis::cmd("SET")
                .arg(format!("{}shared:{name}", self.prefix))
                .arg(text)
                .query_async::<()>(&mut conn)
                .await;
        }
    }

    /// Follows the other replicas' revocations into the revocation index (evicting what
    /// they name from the cache), reconnecting after a failure (and catching up from the
    /// sorted set each time). Runs until the task is stopped.
    pub async fn follow(self: Arc<Self>, revocations: Arc<Revocations>, cache: Arc<TokenCache>) {
        let sink = Local { revocations, cache };
        loop {
            if let Err(e) = self.follow_once(&sink).await {
                self.metrics.up.set(0);
                tracing::warn!(
                    "cluster: Redis unreachable, degraded: serving with this replica's state ({e}); retrying in 1 s"
                );
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    async fn follow_once(&self, sink: &Local) -> Result<(), String> {
        let mut pubsub = self
            .client
            .get_async_pubsub()
            .await
            .map_err(|e| e.to_string())?;
        pubsub
            .subscribe(&self.channel)
            .await
            .map_err(|e| e.to_string())?;
        self.write_pending().await?;
        let mut conn = self
            .client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| e.to_string())?;
        let now = unix_now();
        let stored: Vec<String> = redis::pipe()
            .cmd("ZREMRANGEBYSCORE")
            .arg(&self.key)
            .arg("-inf")
            .arg(now)
            .ignore()
            .cmd("ZRANGEBYSCORE")
            .arg(&self.key)
            .arg(now)
            .arg("+inf")
            .query_async::<(Vec<String>,)>(&mut conn)
            .await
            .map_err(|e| e.to_string())?
            .0;
        for text in &stored {
            apply(sink, text);
        }
        self.loaded.store(true, Ordering::Release);
        self.metrics.up.set(1);
        tracing::info!(
            "cluster: following Redis, {} shared revocations loaded",
            stored.len()
        );
        let mut messages = pubsub.on_message();
        while let Some(msg) = messages.next().await {
            if let Ok(text) = msg.get_payload::<String>() {
                apply(sink, &text);
            }
        }
        Err("the subscription ended".into())
    }
}

/// Where shared revocations are applied: this replica's index and cache.
struct Local {
    revocations: Arc<Revocations>,
    cache: Arc<TokenCache>,
}

/// Applies one shared revocation (also this replica's own, again: adding is idempotent).
fn apply(sink: &Local, text: &str) {
    let Ok(r) = serde_json::from_str::<Record>(text) else {
        tracing::warn!("cluster: a revocation record that does not read");
        return;
    };
    sink.revocations
        .add(std::slice::from_ref(&r.revoked), r.at, r.until, r.retention);
    if let Revoked::Token(h) = &r.revoked {
        sink.cache.invalidate(h);
    }
}
