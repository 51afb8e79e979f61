//! Organization policies re-read from a file or URL every `refresh`, so that an approval made
//! at the authorization server (or by whoever writes the document) reaches the gateway
//! without a restart. A document that cannot be read or parsed changes nothing: the policies
//! last read stay in force, and the failure is logged and counted.

use crate::clock::unix_now;
use crate::compile::{OrgLocation, OrgSourceRules, org_policies};
use crate::metrics::{must, register};
use crate::policy::Organizations;
use arc_swap::ArcSwapOption;
use prometheus::{IntCounterVec, IntGauge, Opts, Registry};
use std::sync::Arc;
use std::time::Duration;

/// Longest a URL source may take to answer.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// A policy document as read, before parsing.
struct Document {
    text: String,
    /// Names it in errors.
    origin: String,
    etag: Option<http::HeaderValue>,
}

pub struct OrgSourceSync {
    rules: OrgSourceRules,
    /// The inline `organizations:`, which the document's entries extend.
    inline: Organizations,
    /// The policies in force, read by every request.
    in_force: Arc<ArcSwapOption<Organizations>>,
    client: reqwest::Client,
    /// The `ETag` of the URL document in force, sent as `If-None-Match`.
    etag: std::sync::Mutex<Option<http::HeaderValue>>,
    reloads: IntCounterVec,
    loaded_at: IntGauge,
    /// Replicas sharing the URL document: one fetches it, the others read it from Redis.
    cluster: Option<Arc<super::cluster::Cluster>>,
    /// The document last taken from Redis (another replica's fetch), to tell it unchanged.
    last_shared: std::sync::Mutex<Option<String>>,
}

impl OrgSourceSync {
    /// `read_at`: when a file source was read at load, the time of the policies in force.
    pub fn new(
        rules: OrgSourceRules,
        inline: Organizations,
        in_force: Arc<ArcSwapOption<Organizations>>,
        read_at: Option<u64>,
        registry: &Registry,
    ) -> OrgSourceSync {
        let reloads = must(IntCounterVec::new(
            Opts::new(
                "scopegate_organization_source_reloads_total",
                "Reads of the organization policy source, by result (ok, unchanged, error)",
            ),
            &["result"],
        ));
        let loaded_at = must(IntGauge::new(
            "scopegate_organization_source_last_success_timestamp_seconds",
            "When the organization policies in force were read from their source (Unix time)",
        ));
        register(
            registry,
            [Box::new(reloads.clone()), Box::new(loaded_at.clone())],
        );
        if let Some(t) = read_at {
            loaded_at.set(t as i64);
        }
        OrgSourceSync {
            rules,
            inline,
            in_force,
            client: super::http_client(),
            etag: std::sync::Mutex::default(),
            reloads,
            loaded_at,
            cluster: None,
            last_shared: std::sync::Mutex::default(),
        }
    }

    /// Shares the URL document with the other replicas through `cluster`.
    pub fn with_cluster(mut self, cluster: Option<Arc<super::cluster::Cluster>>) -> OrgSourceSync {
        self.cluster = cluster;
        self
    }

    /// With a cluster, the URL document as another replica fetched it (the lease holder
    /// fetches; the others read Redis). `None`: this replica fetches it itself (it holds the
    /// lease, or no replica wrote it yet, or Redis cannot say).
    async fn shared(&self, url: &str) -> Option<Result<Option<Document>, String>> {
        let cluster = self.cluster.as_ref()?;
        let refresh = self.rules.refresh;
        let lease = super::cluster::Lease {
            name: url,
            label: Some("organizations"),
            ttl: refresh * 3 + Duration::from_secs(5),
            stale_after: refresh * 3,
            interval: refresh,
        };
        if cluster.hold_lease(lease).await {
            return None;
        }
        let text = cluster
            .shared_text(url, refresh * 3 + Duration::from_secs(5))
            .await?;
        let mut last = self.last_shared.lock().unwrap_or_else(|p| p.into_inner());
        if last.as_deref() == Some(text.as_str()) {
            return Some(Ok(None));
        }
        *last = Some(text.clone());
        Some(Ok(Some(Document {
            text,
            origin: format!("{url} (shared by another replica)"),
            etag: None,
        })))
    }

    /// Reads the source now and then every `refresh`, forever. A URL source is read at once
    /// (private organization resources wait for it); a file was read at load.
    pub async fn run(self) {
        let mut first = matches!(self.rules.location, OrgLocation::Url(_));
        loop {
            if !first {
                tokio::time::sleep(self.rules.refresh).await;
            }
            first = false;
            if let Err(e) = self.read_once().await {
                tracing::warn!("organization policies not updated (the last ones stay): {e}");
            }
        }
    }

    /// Reads the source and puts its policies in force; on error the last ones stay.
    pub async fn read_once(&self) -> Result<(), String> {
        let result = match self.read().await {
            Ok(Some(doc)) => org_policies(&doc.text, &doc.origin)
                .map(|p| Some((p, doc.etag)))
                .map_err(|e| e.to_string()),
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        };
        let label = match &result {
            Ok(Some(_)) => "ok",
            Ok(None) => "unchanged",
            Err(_) => "error",
        };
        self.reloads.with_label_values(&[label]).inc();
        if let Some((policies, etag)) = result? {
            let mut orgs = self.inline.clone();
            orgs.extend(policies);
            self.in_force.store(Some(Arc::new(orgs)));
            // Only the tag of a document in force: a bad one is fetched again in full.
            *self.etag.lock().unwrap_or_else(|p| p.into_inner()) = etag;
        }
        // Unchanged is as fresh as re-read.
        self.loaded_at.set(unix_now() as i64);
        Ok(())
    }

    /// The document and its name for errors; `None` when a URL answered 304 Not Modified to
    /// the `ETag` of the document in force.
    async fn read(&self) -> Result<Option<Document>, String> {
        match &self.rules.location {
            OrgLocation::File(path) => {
                let name = path.display().to_string();
                let path = path.clone();
                // A small local file: read on the blocking pool, off the async workers.
                tokio::task::spawn_blocking(move || std::fs::read_to_string(path))
                    .await
                    .map_err(|e| e.to_string())?
                    .map(|text| {
                        Some(Document {
                            text,
                            origin: name.clone(),
                            etag: None,
                        })
                    })
                    .map_err(|e| format!("{name}: cannot read: {e}"))
            }
            OrgLocation::Url(url) => {
                if let Some(shared) = self.shared(url).await {
                    return shared;
                }
                let mut req = self.client.get(url).timeout(FETCH_TIMEOUT);
                if let Some(t) = &self.rules.access_token {
                    req = req.bearer_auth(t);
                }
                let known = self.etag.lock().unwrap_or_else(|p| p.into_inner()).clone();
                if let Some(tag) = known {
                    req = req.header(http::header::IF_NONE_MATCH, tag);
                }
                let resp = req.send().await.map_err(|e| format!("{url}: {e}"))?;
                if resp.status() == http::StatusCode::NOT_MODIFIED {
                    return Ok(None);
                }
                if !resp.status().is_success() {
                    return Err(format!("{url}: HTTP {}", resp.status()));
                }
                let etag = resp.headers().get(http::header::ETAG).cloned();
                let body = super::read_body(resp)
                    .await
                    .map_err(|e| format!("{url}: {e}"))?;
                let text = String::from_utf8(body.to_vec())
                    .map_err(|_| format!("{url}: the document is not UTF-8"))?;
                if let Some(cluster) = &self.cluster {
                    cluster.keep_text(url, &text).await;
                }
                Ok(Some(Document {
                    text,
                    origin: url.clone(),
                    etag,
                }))
            }
        }
    }
}
