//! What the gateway learns while it serves, shared between the request path and the sync
//! tasks: the token cache, the revocation index, the organization policies in force, each
//! issuer's keys, and what authentication counts. Each part is its own `Arc`, so a sync task
//! holds only the parts it writes.

use super::rules::Rules;
use crate::authn::AuthnMetrics;
use crate::balance::{Pool, RetryBudget};
use crate::policy::Organizations;
use crate::token::{IssuerState, Memberships, Revocations, TokenCache, Unshared};
use arc_swap::ArcSwapOption;
use std::sync::Arc;
use std::time::Duration;

pub struct State {
    pub cache: Arc<TokenCache>,
    /// Shared by every configuration generation: a reload never forgets a revocation, also
    /// one that arrives while the next generation gets ready.
    pub revocations: Arc<Revocations>,
    /// The organization policies in force; `None` until a URL source was read once (private
    /// organization resources are refused with 503 until then: fail closed).
    pub organizations: Arc<ArcSwapOption<Organizations>>,
    /// Per issuer, in the order of `Rules::issuers`.
    pub issuers: Arc<[IssuerState]>,
    /// Organization memberships asked of an issuer's API (GitHub), per token.
    pub memberships: Arc<Memberships>,
    /// Revocations applied here that Redis has not taken yet: like the index, one for the
    /// process, so a reload keeps what is still to be written.
    pub unshared: Arc<Unshared>,
    /// With `cluster:`: whether the revocations other replicas made before this one started
    /// were loaded (not ready before).
    pub shared_revocations_loaded: Option<Arc<std::sync::atomic::AtomicBool>>,
    pub metrics: AuthnMetrics,
    /// Per upstream, in the order of `Rules::upstreams`: its addresses and what the proxy
    /// and the health checks learnt of them.
    pub upstreams: Arc<[Arc<Pool>]>,
}

/// `tokens.cache` of the configuration.
#[derive(Debug, Clone, Copy)]
pub struct CacheSettings {
    pub max_entries: u64,
    pub max_ttl: Duration,
    pub negative_ttl: Duration,
}

impl State {
    /// Fresh state for `rules`; `organizations` are the policies in force at start (`None`
    /// while a URL source has not been read); metrics go into `registry`.
    pub fn new(
        rules: &Rules,
        cache: CacheSettings,
        organizations: Option<Organizations>,
        registry: &prometheus::Registry,
    ) -> State {
        let ids: Vec<&str> = rules.legacy.entries.iter().map(|c| c.id.as_str()).collect();
        let metrics = AuthnMetrics::new(registry, &ids);
        State {
            cache: Arc::new(TokenCache::new(
                cache.max_entries,
                cache.max_ttl,
                cache.negative_ttl,
                metrics.cache_evictions.clone(),
            )),
            revocations: Arc::default(),
            unshared: Arc::default(),
            organizations: Arc::new(ArcSwapOption::from_pointee(organizations)),
            issuers: rules.issuers.iter().map(IssuerState::for_issuer).collect(),
            memberships: Arc::new(Memberships::new(cache.max_entries)),
            shared_revocations_loaded: None,
            metrics,
            upstreams: rules
                .upstreams
                .iter()
                .map(|u| {
                    Arc::new(Pool::new(
                        u.addresses.clone(),
                        u.policy,
                        u.ejection,
                        RetryBudget::new(u.retry_ratio, 10),
                    ))
                })
                .collect(),
        }
    }

    /// Takes over what the state of the previous configuration learnt: the revocation index
    /// itself (one for the whole process) and the revocations still to share, the keys of
    /// issuers that fetch them from the same place, and — when nothing a cached answer
    /// depends on changed — the token cache and the memberships asked, so a reload during an
    /// authorization server's outage does not turn every known token away.
    pub fn inherit(&mut self, rules: &Rules, old: &State, old_rules: &Rules) {
        self.revocations = old.revocations.clone();
        self.unshared = old.unshared.clone();
        if rules.token_rules == old_rules.token_rules {
            self.memberships = old.memberships.clone();
            if rules.scope_rules == old_rules.scope_rules {
                self.cache = old.cache.clone();
            } else {
                // The scopes' bits changed: each valid answer's scopes granted again.
                self.cache
                    .carry_over(&old.cache, |p| rules.principals.rebase(p));
            }
        }
        // An upstream whose addresses come from the same place keeps what was learnt of
        // them (resolved again since, ejected, found down).
        for (i, u) in rules.upstreams.iter().enumerate() {
            let same = old_rules.upstreams.iter().position(|o| {
                o.name == u.name
                    && o.names == u.names
                    && (!u.names.is_empty() || o.addresses == u.addresses)
            });
            if let Some(o) = same {
                self.upstreams[i].inherit(&old.upstreams[o]);
            }
        }
        for (i, issuer) in rules.issuers.iter().enumerate() {
            let same = old_rules
                .issuers
                .iter()
                .position(|o| o.id == issuer.id && o.same_key_source(issuer));
            if let Some(o) = same {
                self.issuers[i].inherit(&old.issuers[o]);
            }
        }
    }
}
