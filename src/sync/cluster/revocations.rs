//! Revocations shared through Redis. One applied on any replica (a pushed or polled SET) is
//! sealed, written to a sorted set scored by its expiry — durable until its retention ends
//! — and published on a channel; every replica follows the channel and applies what the
//! others revoked. A starting replica subscribes first, then loads the sorted set (bounded by
//! `max_revocations`, applied as one snapshot), so nothing published in between is missed;
//! `/readyz` waits for that load.
//!
//! Nothing acknowledged is lost: `share` says whether Redis took the revocations, and the
//! push receiver answers the transmitter 503 when it did not (it redelivers), the poller
//! holds its acknowledgement; what Redis did not take is also kept (the process's
//! `Unshared`, across reloads) and written every second until Redis takes it — whether
//! Redis is unreachable or refuses writes (OOM, `MISCONF`, `READONLY` after a failover)
//! while the subscription stays up.

use super::Cluster;
use crate::clock::unix_now;
use crate::token::{Applied, Revocations, Revoked, TokenCache};
use futures_util::StreamExt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How often what Redis did not take is tried again.
const RETRY_EVERY: Duration = Duration::from_secs(1);

impl Cluster {
    fn revocations_key(&self) -> String {
        self.key("revocations")
    }

    fn revocations_channel(&self) -> String {
        self.key("revocations:events")
    }

    /// Makes `applied` durable in Redis and tells the other replicas. `Err` when Redis did not
    /// take them: they are kept and written when it does (they are applied here all the
    /// same), and whoever delivered them should be told to deliver them again.
    pub async fn share(&self, applied: &[Applied]) -> Result<(), String> {
        match self.write(applied).await {
            Ok(()) => Ok(()),
            Err(e) => {
                tracing::warn!(
                    "cluster: Redis did not take a revocation ({e}); applied here, written when Redis takes it"
                );
                self.metrics.up.set(0);
                self.unshared.push(applied.iter().cloned());
                self.metrics.pending.set(self.unshared.len() as i64);
                Err(e)
            }
        }
    }

    /// Whether revocations applied here still wait to be written to Redis.
    pub fn has_unshared(&self) -> bool {
        !self.unshared.is_empty()
    }

    /// Durable first, then announced: a replica that misses the message finds it in the set
    /// when it (re)subscribes.
    async fn write(&self, applied: &[Applied]) -> Result<(), String> {
        if applied.is_empty() {
            return Ok(());
        }
        let (key, channel) = (self.revocations_key(), self.revocations_channel());
        let mut pipe = redis::pipe();
        pipe.atomic();
        // What expired goes on the way (reading never writes: a replica loads also while
        // Redis refuses writes).
        pipe.cmd("ZREMRANGEBYSCORE")
            .arg(&key)
            .arg("-inf")
            .arg(unix_now())
            .ignore();
        for a in applied {
            let body = serde_json::to_string(a).map_err(|e| e.to_string())?;
            let sealed = self.seal.seal(&key, super::seal::now_ms(), &body);
            pipe.cmd("ZADD")
                .arg(&key)
                .arg(a.expires())
                .arg(&sealed)
                .ignore();
            pipe.cmd("PUBLISH").arg(&channel).arg(&sealed).ignore();
        }
        let mut conn = self.connection().await?;
        pipe.query_async::<()>(&mut conn)
            .await
            .map_err(|e| e.to_string())
    }

    /// Writes what was kept; what still does not go is kept again.
    pub async fn write_unshared(&self) {
        let kept = self.unshared.take();
        if kept.is_empty() {
            return;
        }
        match self.write(&kept).await {
            Ok(()) => {
                self.metrics.up.set(1);
                tracing::info!(
                    "cluster: {} revocations Redis had not taken are written",
                    kept.len()
                );
            }
            Err(_) => {
                self.metrics.up.set(0);
                self.unshared.push(kept);
            }
        }
        self.metrics.pending.set(self.unshared.len() as i64);
    }

    /// Writes what Redis did not take, every second, until the task is stopped.
    pub async fn keep_writing(self: Arc<Self>) {
        loop {
            tokio::time::sleep(RETRY_EVERY).await;
            self.write_unshared().await;
        }
    }

    /// Follows the other replicas' revocations into the revocation index (evicting what
    /// they name from the cache), reconnecting after a failure (and catching up from the
    /// sorted set each time). Runs until the task is stopped.
    pub async fn follow(self: Arc<Self>, revocations: Arc<Revocations>, cache: Arc<TokenCache>) {
        loop {
            if let Err(e) = self.follow_once(&revocations, &cache).await {
                self.metrics.up.set(0);
                tracing::warn!(
                    "cluster: Redis unreachable, degraded: serving with this replica's state ({e}); retrying in 1 s"
                );
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    async fn follow_once(
        &self,
        revocations: &Revocations,
        cache: &TokenCache,
    ) -> Result<(), String> {
        let mut pubsub = self
            .client
            .get_async_pubsub()
            .await
            .map_err(|e| e.to_string())?;
        pubsub
            .subscribe(self.revocations_channel())
            .await
            .map_err(|e| e.to_string())?;
        self.write_unshared().await;
        let mut conn = self.connection().await?;
        let now = unix_now();
        let key = self.revocations_key();
        let stored: Vec<String> = redis::cmd("ZRANGEBYSCORE")
            .arg(&key)
            .arg(now)
            .arg("+inf")
            .arg("LIMIT")
            .arg(0)
            .arg(self.max_revocations)
            .query_async(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        let loaded: Vec<Applied> = stored.iter().filter_map(|t| self.record(t)).collect();
        apply(revocations, cache, &loaded);
        if stored.len() >= self.max_revocations {
            tracing::warn!(
                "cluster: {} shared revocations loaded: the cluster.max_revocations bound",
                stored.len()
            );
        }
        self.loaded.store(true, Ordering::Release);
        self.metrics.up.set(1);
        tracing::info!(
            "cluster: following Redis, {} shared revocations loaded",
            loaded.len()
        );
        let mut messages = pubsub.on_message();
        while let Some(msg) = messages.next().await {
            let Ok(text) = msg.get_payload::<String>() else {
                self.rejected("revocation", &self.revocations_channel(), "not text");
                continue;
            };
            if let Some(a) = self.record(&text) {
                apply(revocations, cache, std::slice::from_ref(&a));
            }
        }
        Err("the subscription ended".into())
    }

    /// A shared revocation, if it opens and reads.
    fn record(&self, text: &str) -> Option<Applied> {
        let key = self.revocations_key();
        match self.seal.open(&key, text) {
            Ok(opened) => match serde_json::from_str::<Applied>(&opened.body) {
                Ok(a) => Some(a),
                Err(e) => {
                    self.rejected("revocation", &key, e);
                    None
                }
            },
            Err(e) => {
                self.rejected("revocation", &key, e);
                None
            }
        }
    }
}

/// Applies shared revocations (also this replica's own, again: adding is idempotent), in one
/// snapshot.
fn apply(revocations: &Revocations, cache: &TokenCache, applied: &[Applied]) {
    if applied.is_empty() {
        return;
    }
    revocations.add_all(applied, unix_now());
    for a in applied {
        if let Revoked::Token(h) = &a.revoked {
            cache.invalidate(h);
        }
    }
}
