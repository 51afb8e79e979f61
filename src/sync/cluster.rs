//! Several replicas, one truth: revocations shared through Redis. A revocation applied on any
//! replica (pushed or polled SET) is written to a sorted set scored by its expiry — durable
//! until its retention ends — and published; every replica follows the channel and applies
//! what others revoked. A starting replica subscribes first, then loads the sorted set, so
//! nothing published in between is missed; `/readyz` waits for that load.
//!
//! Stored values are the revocations themselves: token digests, `jti`s, subjects, clients —
//! never a token. Nothing of this is on the request path: revocations land in each replica's
//! memory.

use super::events::RevocationSink;
use crate::clock::unix_now;
use crate::compile::ClusterSettings;
use crate::token::Revoked;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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
    /// Set once this replica has loaded what the others revoked before it started.
    pub loaded: Arc<AtomicBool>,
}

impl Cluster {
    pub fn new(settings: &ClusterSettings) -> Result<Cluster, String> {
        let client = redis::Client::open(settings.redis.as_str())
            .map_err(|e| format!("cluster.redis: {e}"))?;
        Ok(Cluster {
            client,
            key: format!("{}revocations", settings.key_prefix),
            channel: format!("{}revocations:events", settings.key_prefix),
            loaded: Arc::default(),
        })
    }

    /// Makes `revoked` durable and tells the other replicas; an error means Redis did not
    /// take it (it is applied here all the same).
    pub async fn share(
        &self,
        revoked: &[Revoked],
        at: u64,
        until: u64,
        retention: u64,
    ) -> Result<(), String> {
        let mut conn = self
            .client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| e.to_string())?;
        for r in revoked {
            let record = Record {
                revoked: r.clone(),
                at,
                until,
                retention,
            };
            let text = serde_json::to_string(&record).map_err(|e| e.to_string())?;
            // Durable first, then announced: a replica that misses the message finds it in
            // the set when it (re)subscribes.
            redis::pipe()
                .cmd("ZADD")
                .arg(&self.key)
                .arg(until.max(at + retention))
                .arg(&text)
                .ignore()
                .cmd("PUBLISH")
                .arg(&self.channel)
                .arg(&text)
                .ignore()
                .query_async::<()>(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Follows the other replicas' revocations into `sink`, reconnecting after a failure
    /// (and catching up from the sorted set each time). Runs until the task is stopped.
    pub async fn follow(self: Arc<Self>, sink: RevocationSink) {
        loop {
            if let Err(e) = self.follow_once(&sink).await {
                tracing::warn!("cluster: {e}; retrying in 1 s");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    async fn follow_once(&self, sink: &RevocationSink) -> Result<(), String> {
        let mut pubsub = self
            .client
            .get_async_pubsub()
            .await
            .map_err(|e| e.to_string())?;
        pubsub
            .subscribe(&self.channel)
            .await
            .map_err(|e| e.to_string())?;
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
        if !self.loaded.swap(true, Ordering::AcqRel) {
            tracing::info!("cluster: {} shared revocations loaded", stored.len());
        }
        let mut messages = pubsub.on_message();
        while let Some(msg) = messages.next().await {
            if let Ok(text) = msg.get_payload::<String>() {
                apply(sink, &text);
            }
        }
        Err("the subscription ended".into())
    }
}

/// Applies one shared revocation (also this replica's own, again: adding is idempotent).
fn apply(sink: &RevocationSink, text: &str) {
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
