//! Keeps each upstream's addresses current: its names resolved again every `resolve_every`
//! (a changed record takes effect without a restart; a name that stops resolving keeps its
//! last addresses, and says so), and, when configured, each address asked for a health path
//! (one found down is not picked until it answers again).

use crate::balance::Pool;
use crate::decision::Upstream;
use crate::metrics::{must, register};
use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone)]
pub struct UpstreamMetrics {
    resolve_failures: IntCounterVec,
    addresses: IntGaugeVec,
}

impl UpstreamMetrics {
    pub fn new(registry: &Registry) -> UpstreamMetrics {
        let resolve_failures = must(IntCounterVec::new(
            Opts::new(
                "scopegate_upstream_resolve_failures_total",
                "Resolutions of an upstream's names that failed (its last addresses stay)",
            ),
            &["upstream"],
        ));
        let addresses = must(IntGaugeVec::new(
            Opts::new(
                "scopegate_upstream_addresses",
                "An upstream's addresses by state: usable, ejected (failures in a row), down (health check)",
            ),
            &["upstream", "state"],
        ));
        register(
            registry,
            [
                Box::new(resolve_failures.clone()),
                Box::new(addresses.clone()),
            ],
        );
        UpstreamMetrics {
            resolve_failures,
            addresses,
        }
    }

    /// Sets the address gauges of `name` from `pool`.
    pub fn count(&self, name: &str, pool: &Pool) {
        let now = Instant::now();
        let all = pool.endpoints();
        let ejected = all.iter().filter(|e| e.ejected(now)).count();
        let usable = all.iter().filter(|e| e.usable(now)).count();
        let down = all.len() - usable - ejected.min(all.len() - usable);
        for (state, n) in [("usable", usable), ("ejected", ejected), ("down", down)] {
            self.addresses
                .with_label_values(&[name, state])
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }
}

/// The sync work of one upstream.
pub struct UpstreamSync {
    upstream: Upstream,
    pool: Arc<Pool>,
    metrics: UpstreamMetrics,
}

impl UpstreamSync {
    pub fn new(upstream: &Upstream, pool: Arc<Pool>, metrics: UpstreamMetrics) -> UpstreamSync {
        metrics.count(&upstream.name, &pool);
        UpstreamSync {
            upstream: upstream.clone(),
            pool,
            metrics,
        }
    }

    /// Whether there is anything to do for this upstream.
    pub fn needed(upstream: &Upstream) -> bool {
        (upstream.resolve_every.is_some() && !upstream.names.is_empty()) || upstream.check.is_some()
    }

    pub async fn run(self) {
        let resolve_every = self
            .upstream
            .resolve_every
            .filter(|_| !self.upstream.names.is_empty());
        let check_every = self.upstream.check.as_ref().map(|c| c.interval);
        let mut next_resolve = resolve_every.map(|d| tokio::time::Instant::now() + d);
        let mut next_check = check_every.map(|_| tokio::time::Instant::now());
        loop {
            let wake = [next_resolve, next_check].into_iter().flatten().min();
            let Some(wake) = wake else { return };
            tokio::time::sleep_until(wake).await;
            let now = tokio::time::Instant::now();
            if let (Some(at), Some(every)) = (next_resolve, resolve_every)
                && at <= now
            {
                self.resolve().await;
                next_resolve = Some(now + every);
            }
            if let (Some(at), Some(every)) = (next_check, check_every)
                && at <= now
            {
                self.check().await;
                next_check = Some(now + every);
            }
            self.metrics.count(&self.upstream.name, &self.pool);
        }
    }

    /// Resolves every name again (the addresses given as IPs stay); on any failure the
    /// addresses in force stay.
    async fn resolve(&self) {
        let names = self.upstream.names.clone();
        let resolved = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            for (host, port, weight) in &names {
                let addrs = crate::dns::resolve(host, *port).map_err(|e| format!("{host}: {e}"))?;
                if addrs.is_empty() {
                    return Err(format!("{host}: no address"));
                }
                out.extend(addrs.into_iter().map(|a| (a, *weight)));
            }
            Ok::<_, String>(out)
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        match resolved {
            Ok(mut addrs) => {
                addrs.extend(self.upstream.fixed.iter().copied());
                let before: Vec<SocketAddr> =
                    self.pool.endpoints().iter().map(|e| e.addr).collect();
                let after: Vec<SocketAddr> = addrs.iter().map(|(a, _)| *a).collect();
                if before != after {
                    tracing::info!(
                        upstream = %self.upstream.name,
                        "upstream addresses now {after:?} (were {before:?})"
                    );
                    self.pool.set_addresses(&addrs);
                }
            }
            Err(e) => {
                self.metrics
                    .resolve_failures
                    .with_label_values(&[&self.upstream.name])
                    .inc();
                tracing::warn!(
                    upstream = %self.upstream.name,
                    "upstream names not resolved ({e}): the last addresses stay"
                );
            }
        }
    }

    /// Asks each address for the health path; a change is logged once.
    async fn check(&self) {
        let Some(check) = &self.upstream.check else {
            return;
        };
        let u = &self.upstream;
        for endpoint in self.pool.endpoints().iter() {
            let up = probe(u, &check.path, endpoint.addr, check.timeout).await;
            if endpoint.is_down() == up {
                let state = if up { "up" } else { "down" };
                tracing::info!(upstream = %u.name, address = %endpoint.addr, "health check: {state}");
            }
            self.pool.set_down(endpoint.addr, !up);
        }
    }
}

/// One health request to `addr`: 2xx or 3xx within `timeout` is up.
async fn probe(u: &Upstream, path: &str, addr: SocketAddr, timeout: Duration) -> bool {
    let scheme = if u.tls { "https" } else { "http" };
    // The upstream's name (its certificate's), connected to this address.
    let named = u.server_name.parse::<std::net::IpAddr>().is_err();
    let host = match named {
        true => format!("{}:{}", u.server_name, addr.port()),
        false => addr.to_string(),
    };
    let url = format!("{scheme}://{host}{}{path}", u.base_path);
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none());
    if named {
        builder = builder.resolve(&u.server_name, addr);
    }
    if let Some(files) = &u.tls_files {
        match crate::compile::upstream_tls_config(files) {
            Ok(config) => builder = builder.tls_backend_preconfigured(config),
            Err(_) => return false,
        }
    }
    let Ok(client) = builder.build() else {
        return false;
    };
    client
        .get(&url)
        .send()
        .await
        .is_ok_and(|r| r.status().is_success() || r.status().is_redirection())
}
