//! The decision core: the pipeline every request goes through, once —
//! framing → path → route → credential → authentication → route's issuers → requirement →
//! organization → verdict.
//!
//! [`Gateway::decide`] is synchronous and does no I/O. What authentication cannot do alone
//! (fetch keys it has not seen, introspect an opaque token) it names as a [`Need`];
//! [`Gateway::decide_with`] asks the [`Backend`] for it and resumes the authentication where
//! it stopped, without running the rest of the pipeline again.

mod after;
mod organization;
mod rules;
mod state;
mod verdict;

pub use rules::{
    HealthCheck, HostHeader, OrgRule, OrgSource, RouteRules, Rules, Upstream, UpstreamTls,
};
pub use state::{CacheSettings, State};
pub use verdict::{Ask, Backend, Decided, Forward, NO_WEBSOCKET, Verdict};

use crate::answer::Refusal;
use crate::authn::{self, Authn, Context, Found, Need, Presented};
use crate::clock::unix_now;
use crate::credential::{self, Credential, Presentation, QUERY_PARAMETER, Source};
use crate::policy::Shortfall;
use crate::principal::Principal;
use crate::request::{self, Head, NormalizedPath};
use crate::route::Lookup;
use std::sync::Arc;

/// The compiled rules and the state they are applied with.
pub struct Gateway {
    pub rules: Rules,
    pub state: State,
}

/// A request that passed the stages before authentication.
struct Begun<'h> {
    route: usize,
    path: NormalizedPath,
    /// The path to forward when the route rewrites it.
    forwarded: Option<String>,
    query: Option<&'h str>,
    /// The organization the request names, for routes bound to one.
    org: Option<String>,
    cred: Credential<'h>,
}

impl Gateway {
    /// Decides one request with the keys and cache at hand.
    pub fn decide(&self, head: &Head, now: u64) -> Decided {
        let begun = match self.begin(head) {
            Ok(b) => b,
            Err(decided) => return self.settled(head, decided),
        };
        let presented = Presented::new(&begun.cred, head);
        let authn = authn::authenticate(&presented, &self.context(now));
        self.settled(head, self.finish(&begun, &presented, authn))
    }

    /// Decides, doing first what authentication needs from the network: refreshing an
    /// issuer's keys for an unknown `kid`, or introspecting an opaque token. An authorization
    /// server that cannot answer gives a 503, never a 401.
    pub async fn decide_with(&self, head: &Head<'_>, backend: &impl Backend) -> Decided {
        let decided = self.enforce_with(head, backend).await;
        self.settled(head, decided)
    }

    async fn enforce_with(&self, head: &Head<'_>, backend: &impl Backend) -> Decided {
        let begun = match self.begin(head) {
            Ok(b) => b,
            Err(decided) => return decided,
        };
        let presented = Presented::new(&begun.cred, head);
        let authn = match authn::authenticate(&presented, &self.context(unix_now())) {
            Authn::Needs(need) => {
                let found = match need {
                    Need::Keys { issuer, .. } => {
                        backend.refresh_keys(issuer).await;
                        Found::Keys
                    }
                    Need::Introspection => {
                        let client = head.conn.peer.map(|p| p.ip());
                        let answer = backend
                            .introspect(presented.secret, presented.digest, client)
                            .await;
                        Found::Introspection(answer)
                    }
                };
                authn::resume(&presented, need, found, &self.context(unix_now()))
            }
            done => done,
        };
        let (principal, stale) = match authn {
            Authn::Authenticated(p) => (p, false),
            Authn::Stale(p) => (p, true),
            other => return self.finish(&begun, &presented, other),
        };
        let mut decided = self.authorize(&begun, &presented, principal.clone());
        decided.stale = stale;
        // The organization stage asked the issuer's API for a membership: ask once, then
        // decide again (what is still unknown is a 503).
        if let Some(Ask::Membership { issuer }) = decided.need {
            let org = begun.org.as_deref().unwrap_or_default();
            backend
                .membership(presented.secret, presented.digest, issuer, org)
                .await;
            let mut decided = self.authorize(&begun, &presented, principal);
            decided.stale = stale;
            return decided;
        }
        decided
    }

    /// Ready to decide: every issuer's keys fetched and the organization policies read.
    /// `Err` says what is still missing.
    pub fn readiness(&self) -> Result<(), serde_json::Value> {
        let waiting: Vec<&str> = self
            .rules
            .issuers
            .iter()
            .zip(self.state.issuers.iter())
            .filter(|(_, s)| !s.has_fetched())
            .map(|(i, _)| i.id.as_str())
            .collect();
        if !waiting.is_empty() {
            return Err(
                serde_json::json!({"status": "waiting for issuer keys", "issuers": waiting}),
            );
        }
        if self.state.organizations.load().is_none() {
            return Err(serde_json::json!({"status": "waiting for organization policies"}));
        }
        if self
            .state
            .shared_revocations_loaded
            .as_ref()
            .is_some_and(|l| !l.load(std::sync::atomic::Ordering::Acquire))
        {
            return Err(
                serde_json::json!({"status": "waiting for the revocations shared in Redis"}),
            );
        }
        Ok(())
    }

    fn context(&self, now: u64) -> Context<'_> {
        Context {
            issuers: &self.rules.issuers,
            issuer_states: &self.state.issuers,
            principals: &self.rules.principals,
            legacy: &self.rules.legacy,
            cache: &self.state.cache,
            revocations: &self.state.revocations,
            metrics: &self.state.metrics,
            now,
        }
    }

    /// Framing, path, route and credential extraction; `Err` is the decision already made
    /// (a refusal, or a public route forwarded as it is).
    // The decision is moved, not boxed: refusals are a hot path too.
    #[allow(clippy::result_large_err)]
    fn begin<'h>(&self, head: &'h Head) -> Result<Begun<'h>, Decided> {
        let rules = &self.rules;
        request::check_framing(head, &rules.limits)
            .map_err(|e| Decided::refuse(None, Refusal::BadFraming(e)))?;
        let path = request::normalize(head.uri.path())
            .map_err(|e| Decided::refuse(None, Refusal::BadPath(e)))?;
        // The host is read only when some route names one.
        let host = if rules.table.by_host() {
            head.host()
        } else {
            None
        };
        let (index, org, forwarded) = match rules.table.lookup(host, head.method, &path) {
            Lookup::Found(m) => {
                let route = &rules.routes[m.route];
                let org = match &route.org {
                    Some(rule) => organization::named(rule, &m.params, head.headers)
                        .map_err(|r| Decided::refuse(Some(m.route), r))?,
                    None => None,
                };
                let forwarded = route
                    .rewrite
                    .as_ref()
                    .map(|r| r.apply(path.as_str(), &m.params));
                (m.route, org, forwarded)
            }
            Lookup::MethodNotAllowed(allow) => {
                return Err(Decided::refuse(None, Refusal::MethodNotAllowed(allow)));
            }
            Lookup::NotFound => return Err(Decided::refuse(None, Refusal::NotFound)),
        };
        let route = &rules.routes[index];
        let query = head.uri.query();
        // A declared length over the limit is refused before anything else is read.
        let max_body = route.max_body_bytes.unwrap_or(rules.max_body_bytes);
        let declared = head
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|n| n > max_body) {
            return Err(Decided::refuse(Some(index), Refusal::PayloadTooLarge));
        }
        // Every way in refuses a tunnel the route does not allow, the decision endpoint too
        // (its caller would tunnel it).
        if route.websocket.is_none() && crate::websocket::asks_for_websocket(head.headers) {
            return Err(Decided::refuse(
                Some(index),
                Refusal::WebSocketRefused(NO_WEBSOCKET),
            ));
        }
        let public = route.requirement.is_none();
        let cred = match credential::extract(head.headers, query, &rules.credentials) {
            Ok(Some(c)) if !public || rules.verify_public_credentials => c,
            // A public route: nothing to check (or nothing presented to verify). What was
            // presented is removed unless the route verifies it.
            Ok(_) if public => return Err(self.public(index, &path, forwarded, query)),
            Err(_) if public && !rules.verify_public_credentials => {
                return Err(self.public(index, &path, forwarded, query));
            }
            Ok(_) => return Err(Decided::refuse(Some(index), Refusal::NoCredential)),
            Err(e) => return Err(Decided::refuse(Some(index), Refusal::InvalidRequest(e))),
        };
        Ok(Begun {
            route: index,
            path,
            forwarded,
            query,
            org,
            cred,
        })
    }

    /// A public route's request, forwarded without identity; credentials it presents are
    /// removed (`forward.public_route_credentials: strip`) from the headers and the query.
    fn public(
        &self,
        index: usize,
        path: &NormalizedPath,
        forwarded: Option<String>,
        query: Option<&str>,
    ) -> Decided {
        let rules = &self.rules;
        let strip = !rules.verify_public_credentials;
        let query = match query {
            Some(q) if strip => {
                let params = std::iter::once(QUERY_PARAMETER).chain(
                    rules.credentials.legacy.iter().filter_map(|p| match p {
                        Presentation::Query(name) => Some(name.as_str()),
                        _ => None,
                    }),
                );
                let mut q = Some(q.to_string());
                for name in params {
                    q = q.and_then(|q| credential::without_param(&q, name));
                }
                q
            }
            q => q.map(str::to_string),
        };
        Decided {
            route: Some(index),
            verdict: Verdict::Forward(Forward {
                upstream: rules.routes[index].upstream,
                path: path.as_str().to_string(),
                path_and_query: join(forwarded.as_deref().unwrap_or(path.as_str()), query),
                principal: None,
                org: None,
                strip_credentials: strip,
                query_credential: false,
                max_body_bytes: rules.routes[index]
                    .max_body_bytes
                    .unwrap_or(rules.max_body_bytes),
                credential: None,
            }),
            need: None,
            principal: None,
            stale: false,
            would_refuse: None,
        }
    }

    /// The stages after authentication.
    fn finish(&self, begun: &Begun, presented: &Presented, authn: Authn) -> Decided {
        let index = begun.route;
        match authn {
            Authn::Authenticated(p) => self.authorize(begun, presented, p),
            Authn::Stale(p) => Decided {
                stale: true,
                ..self.authorize(begun, presented, p)
            },
            Authn::Refused(r) => Decided::refuse(Some(index), r),
            Authn::Needs(need) => Decided::needs(index, Ask::Authn(need)),
        }
    }

    /// What an authenticated principal may do: the route's issuers, its requirement, its
    /// organization; then what is forwarded.
    fn authorize(
        &self,
        begun: &Begun,
        presented: &Presented,
        principal: Arc<Principal>,
    ) -> Decided {
        let mut decided = self.authorize_as(begun, presented, &principal);
        decided.principal = Some(principal);
        decided
    }

    fn authorize_as(
        &self,
        begun: &Begun,
        presented: &Presented,
        principal: &Arc<Principal>,
    ) -> Decided {
        let index = begun.route;
        let route = &self.rules.routes[index];
        if let Some(accepted) = &route.issuers
            && !principal.issuer.is_some_and(|i| accepted.contains(&i))
        {
            return Decided::refuse(Some(index), Refusal::IssuerNotAccepted);
        }
        // A public route that verifies a presented credential requires nothing more of it.
        if let Some(requirement) = &route.requirement
            && let Err(short) = requirement.check(principal)
        {
            let refusal = match short {
                Shortfall::Scopes => Refusal::InsufficientScope {
                    forbidden: route.forbidden.clone().expect("protected routes have one"),
                    granted: principal.grant.token_scopes.clone(),
                },
                Shortfall::Claims => Refusal::ClaimsNotSatisfied,
            };
            return Decided::refuse(Some(index), refusal);
        }
        let org = match &route.org {
            None => None,
            Some(rule) => {
                let name = begun.org.as_deref();
                let member = match self.asked_membership(rule, name, principal, presented) {
                    Ok(member) => member,
                    Err(need) => return Decided::needs(index, need),
                };
                match organization::check(rule, name, &self.state, principal, member) {
                    Ok(org) => org,
                    Err(refusal) => return Decided::refuse(Some(index), refusal),
                }
            }
        };
        let query = match (begun.cred.source, begun.query) {
            (Source::Query, Some(q)) => credential::without_param(q, QUERY_PARAMETER),
            (Source::Legacy(i), Some(q)) => match &self.rules.credentials.legacy[i] {
                Presentation::Query(param) => credential::without_param(q, param),
                _ => Some(q.to_string()),
            },
            (_, q) => q.map(str::to_string),
        };
        Decided {
            route: Some(index),
            verdict: Verdict::Forward(Forward {
                upstream: route.upstream,
                path: begun.path.as_str().to_string(),
                path_and_query: join(
                    begun.forwarded.as_deref().unwrap_or(begun.path.as_str()),
                    query,
                ),
                principal: Some(principal.clone()),
                org,
                strip_credentials: false,
                query_credential: begun.cred.source == Source::Query,
                max_body_bytes: route.max_body_bytes.unwrap_or(self.rules.max_body_bytes),
                credential: Some(presented.digest),
            }),
            need: None,
            principal: None,
            stale: false,
            would_refuse: None,
        }
    }
}

impl Gateway {
    /// For a principal whose issuer answers membership per organization (GitHub) on a private
    /// resource: the answer known for this token, or the [`Need`] to ask it. `Ok(None)`: the
    /// token's claims say.
    fn asked_membership(
        &self,
        rule: &OrgRule,
        name: Option<&str>,
        principal: &Principal,
        presented: &Presented,
    ) -> Result<Option<crate::token::Membership>, Ask> {
        let Some(issuer) = principal.issuer else {
            return Ok(None);
        };
        let (Some(name), true) = (name, rule.private) else {
            return Ok(None);
        };
        if !self.rules.issuers[issuer].asks_membership() {
            return Ok(None);
        }
        match self.state.memberships.get(&presented.digest, name) {
            Some(member) => Ok(Some(member)),
            None => Err(Ask::Membership { issuer }),
        }
    }
}

fn join(path: &str, query: Option<String>) -> String {
    match query {
        Some(q) => format!("{path}?{q}"),
        None => path.to_string(),
    }
}

#[cfg(test)]
mod tests;
