//! RFC 8936 polling: ask the transmitter for Security Event Tokens every `interval`,
//! acknowledge the ones applied, report the ones refused, and back off when the endpoint fails.
//! With `cluster:`, one replica polls a stream at a time (a lease in Redis).

use super::cluster::Lease;
use super::events::SetReceiver;
use crate::metrics::must;
use crate::token::PollRules;
use prometheus::{IntCounter, Registry};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Longest pause between polls after repeated failures.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Beyond three poll intervals: how long a silent lease holder keeps the others waiting (and a
/// holder that has not polled for three intervals is taken over).
const LEASE_MARGIN: Duration = Duration::from_secs(5);

#[derive(Deserialize)]
struct PollResponse {
    #[serde(default)]
    sets: BTreeMap<String, String>,
    #[serde(default, rename = "moreAvailable")]
    more_available: bool,
}

pub struct Poller {
    rules: PollRules,
    /// Verifies and applies what the transmitter returns.
    receiver: Arc<SetReceiver>,
    client: reqwest::Client,
    failures: IntCounter,
}

impl Poller {
    pub fn new(rules: PollRules, receiver: Arc<SetReceiver>, registry: &Registry) -> Poller {
        let failures = must(IntCounter::new(
            "scopegate_set_poll_failures_total",
            "Failed polls of the SET transmitter (RFC 8936), retried with backoff",
        ));
        must(registry.register(Box::new(failures.clone())));
        Poller {
            rules,
            receiver,
            client: super::http_client(),
            failures,
        }
    }

    /// Polls forever.
    pub async fn run(self) {
        if let Err(e) = self.receiver.fetch_keys().await {
            tracing::warn!("SET poll transmitter keys: {e}");
        }
        let mut ack: Vec<String> = Vec::new();
        // Applied here but not yet durable in Redis (it was unreachable): acknowledged once
        // they are, so that the transmitter does not forget what the other replicas miss.
        let mut held: Vec<String> = Vec::new();
        let mut errs = Map::new();
        let mut pause = self.rules.interval;
        loop {
            // Across replicas sharing Redis, one polls (the lease holder) and the others
            // get what it applies through Redis; the transmitter sees one consumer.
            let lease = Lease {
                name: &self.rules.endpoint,
                label: Some("poll"),
                ttl: self.rules.interval * 3 + LEASE_MARGIN,
                stale_after: self.rules.interval * 3,
                interval: self.rules.interval,
            };
            if let Some(cluster) = self.receiver.cluster()
                && !cluster.hold_lease(lease).await
            {
                tokio::time::sleep(self.rules.interval).await;
                continue;
            }
            match self.poll_once(&ack, &errs).await {
                Ok((applied, refused, more)) => {
                    held.extend(applied);
                    ack = if self.receiver.cluster().is_some_and(|c| c.has_unshared()) {
                        Vec::new()
                    } else {
                        std::mem::take(&mut held)
                    };
                    errs = refused;
                    pause = self.rules.interval;
                    if more {
                        continue;
                    }
                }
                Err(e) => {
                    // What was processed is acknowledged with the next successful poll.
                    self.failures.inc();
                    tracing::warn!("SET poll failed: {e}");
                    pause = (pause * 2).min(MAX_BACKOFF);
                }
            }
            tokio::time::sleep(pause).await;
        }
    }

    /// One request: acknowledges `ack`, reports `errs`, applies what comes back.
    async fn poll_once(
        &self,
        ack: &[String],
        errs: &Map<String, Value>,
    ) -> Result<(Vec<String>, Map<String, Value>, bool), String> {
        let mut body =
            json!({"ack": ack, "maxEvents": self.rules.max_events, "returnImmediately": true});
        if !errs.is_empty() {
            body["setErrs"] = Value::Object(errs.clone());
        }
        let mut req = self.client.post(&self.rules.endpoint).json(&body);
        if let Some(t) = &self.rules.access_token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("HTTP {}", resp.status()));
        }
        let body = super::read_body(resp).await?;
        let answer: PollResponse = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        let mut applied = Vec::new();
        let mut refused = Map::new();
        for (jti, set) in answer.sets {
            match self.receiver.apply(&set).await {
                Ok(_) => applied.push(jti),
                // Delivered again because its acknowledgement was held: it was applied.
                Err(e) if e.description == super::events::ALREADY_RECEIVED => applied.push(jti),
                // Applied here, not yet in Redis: its acknowledgement is held until it is.
                Err(e) if e.err == super::events::NOT_DURABLE => applied.push(jti),
                Err(e) => {
                    refused.insert(jti, json!({"err": e.err, "description": e.description}));
                }
            }
        }
        Ok((applied, refused, answer.more_available))
    }
}
