//! A configuration generation: one compiled configuration and everything that serves it —
//! the gateway (rules and state), its metrics registry, and the sync tasks that keep its
//! state current, each given only the handles it uses. The proxy and the admin listener
//! read the generation in force per request; a reload starts the next one beside it.

use crate::compile::{Compiled, Serving};
use crate::decision::Gateway;
use crate::metrics::{self, RequestMetrics};
use crate::sync::{
    Cluster, Introspector, KeySync, Network, OrgSourceSync, Poller, RevocationSink, SetMetrics,
    SetReceiver,
};
use arc_swap::ArcSwap;
use prometheus::Registry;
use std::sync::Arc;
use tokio::runtime::Handle;
use tokio::task::AbortHandle;

pub struct Generation {
    pub gateway: Arc<Gateway>,
    pub serving: Serving,
    /// Every metric of this generation (and the process-wide ones), for `/metrics`.
    pub registry: Registry,
    /// What every front end counts per request.
    pub requests: RequestMetrics,
    /// The network half of decisions (key refresh, introspection), for the proxy.
    pub network: Network,
    /// The RFC 8935 receiver of `POST /events`, when push is configured.
    pub sets: Option<Arc<SetReceiver>>,
    /// Its sync tasks, stopped when it is replaced.
    tasks: Vec<AbortHandle>,
}

/// The generation in force, read by the proxy and the admin listener on every request.
pub type Current = Arc<ArcSwap<Generation>>;

impl Generation {
    /// Starts the sync tasks of `compiled` on `sidecar`; what `previous` learnt (revocations,
    /// keys) carries over.
    /// A `cluster:` that cannot be built is an error (the process does not start, a reload
    /// is refused): a cluster never switches itself off.
    pub fn start(
        compiled: Compiled,
        previous: Option<&Generation>,
        sidecar: &Handle,
    ) -> Result<Generation, String> {
        let registry = metrics::registry();
        let (mut gateway, serving, plan) = compiled.gateway(&registry);
        if let Some(old) = previous {
            let old = &old.gateway;
            gateway
                .state
                .inherit(&gateway.rules, &old.state, &old.rules);
        }
        let cluster = match &serving.cluster {
            Some(c) => Some(Arc::new(Cluster::new(
                c,
                gateway.state.unshared.clone(),
                &registry,
            )?)),
            None => None,
        };
        if let Some(c) = &cluster {
            // The index is the process's: once it followed Redis, a reload has nothing to
            // load before it is ready.
            let followed = previous.is_some_and(|p| {
                p.gateway
                    .state
                    .shared_revocations_loaded
                    .as_ref()
                    .is_some_and(|l| l.load(std::sync::atomic::Ordering::Acquire))
            });
            if followed {
                c.loaded.store(true, std::sync::atomic::Ordering::Release);
            }
            gateway.state.shared_revocations_loaded = Some(c.loaded.clone());
        }
        let gateway = Arc::new(gateway);
        let (rules, state) = (&gateway.rules, &gateway.state);
        let mut tasks = Vec::new();
        let mut spawn = |f: SyncTask| tasks.push(sidecar.spawn(f).abort_handle());

        let (key_sync, keys, refreshes) = KeySync::for_gateway(&gateway, &registry);
        spawn(Box::pin(key_sync.run(refreshes)));

        let sink = RevocationSink {
            revocations: state.revocations.clone(),
            cache: state.cache.clone(),
            retention: plan.revocation_retention,
            cluster: cluster.clone(),
        };
        if let Some(c) = cluster.clone() {
            spawn(Box::pin(
                c.clone()
                    .follow(state.revocations.clone(), state.cache.clone()),
            ));
            spawn(Box::pin(c.keep_writing()));
        }
        let set_metrics = SetMetrics::new(&registry);
        let receiver = |rules, source| {
            Arc::new(SetReceiver::new(
                rules,
                source,
                (gateway.rules.issuers.clone(), state.issuers.clone()),
                sink.clone(),
                set_metrics.clone(),
            ))
        };
        let sets = plan.push.map(|r| receiver(r, "push"));
        if let Some(sets) = sets.clone() {
            spawn(Box::pin(async move {
                if let Err(e) = sets.fetch_keys().await {
                    tracing::warn!("SET transmitter keys: {e}");
                }
            }));
        }
        if let Some(poll) = plan.poll {
            let poller = Poller::new(poll.clone(), receiver(poll.set, "poll"), &registry);
            spawn(Box::pin(poller.run()));
        }
        if let Some(source) = plan.org_source {
            let sync = OrgSourceSync::new(
                source,
                plan.inline_organizations,
                state.organizations.clone(),
                plan.org_read_at,
                &registry,
            )
            .with_cluster(cluster.clone());
            spawn(Box::pin(sync.run()));
        }
        let shares_answers = serving
            .cluster
            .as_ref()
            .is_some_and(|c| c.share_introspection);
        let introspector =
            Introspector::for_gateway(&gateway, &registry, plan.introspection_limits)
                .with_cluster(cluster.clone().filter(|_| shares_answers));
        let upstream_metrics = crate::sync::UpstreamMetrics::new(&registry);
        for (u, pool) in rules.upstreams.iter().zip(state.upstreams.iter()) {
            let sync = crate::sync::UpstreamSync::new(u, pool.clone(), upstream_metrics.clone());
            if crate::sync::UpstreamSync::needed(u) {
                spawn(Box::pin(sync.run()));
            }
        }
        let routes: Vec<&str> = rules.routes.iter().map(|r| r.name.as_str()).collect();
        let upstreams: Vec<&str> = rules.upstreams.iter().map(|u| u.name.as_str()).collect();
        let requests = RequestMetrics::new(&registry, &routes, &upstreams);
        Ok(Generation {
            network: Network {
                keys,
                introspector: Arc::new(introspector),
            },
            requests,
            registry,
            gateway,
            serving,
            sets,
            tasks,
        })
    }

    pub fn stop_tasks(&self) {
        self.tasks.iter().for_each(AbortHandle::abort);
    }

    /// `/metrics`: the registry, with the gauges that are read rather than counted.
    pub fn render_metrics(&self) -> String {
        let state = &self.gateway.state;
        state
            .metrics
            .cache_entries
            .set(state.cache.entry_count() as i64);
        state
            .metrics
            .revocation_entries
            .set(state.revocations.len() as i64);
        metrics::render(&self.registry)
    }
}

type SyncTask = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;
