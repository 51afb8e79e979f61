//! The compiled configuration and the pipeline every request goes through:
//! framing → path → route → credential → principal (cache or JWT) → policy → verdict.
//!
//! [`Gateway::decide`] is synchronous and does no I/O. What it cannot do alone — fetch keys
//! it has not seen, introspect an opaque token — it names in [`Decided::pending`];
//! [`Gateway::decide_with`] asks the [`Backend`] for it and decides again.

mod build;

pub use build::{org_policies, route_scopes};

use crate::answer::{Forbidden, Outcome, Refusal};
use crate::credential::{self, LegacyCredentials, Presentation, QUERY_PARAMETER, Source};
use crate::forward::ForwardPolicy;
use crate::metrics::Metrics;
use crate::policy::{Organizations, Requirement};
use crate::principal::Principal;
use crate::request::{self, Limits};
use crate::route::{Lookup, RouteTable};
use crate::token::{
    self, Answer, Issuer, Principals, Revocations, TokenCache, TokenError, TokenHash,
};
use http::{HeaderMap, Method, Uri};
use std::net::SocketAddr;
use std::sync::Arc;

pub struct RouteInfo {
    pub name: String,
    pub upstream: usize,
    /// `None` for a public route (`auth: none`).
    pub requirement: Option<Requirement>,
    /// The route's 403, rendered once (protected routes only).
    pub forbidden: Option<Arc<Forbidden>>,
    /// The organization the route is about, when it is bound to one.
    pub org: Option<OrgRule>,
    /// Issuers (indexes) whose credentials the route accepts; all when `None`.
    pub issuers: Option<Box<[usize]>>,
}

/// Where organization policies are re-read from, besides the inline `organizations:`.
#[derive(Debug, Clone)]
pub struct OrgSourceRules {
    pub location: OrgLocation,
    pub refresh: std::time::Duration,
    pub access_token: Option<String>,
}

#[derive(Debug, Clone)]
pub enum OrgLocation {
    File(std::path::PathBuf),
    Url(String),
}

pub enum OrgSource {
    /// A path parameter, by name.
    Param(String),
    Header(http::HeaderName),
    Name(String),
}

pub struct OrgRule {
    pub source: OrgSource,
    pub private: bool,
}

#[derive(Debug, Clone)]
pub struct Upstream {
    pub name: String,
    pub addr: SocketAddr,
    pub tls: bool,
    /// Host name for TLS (SNI and certificate check).
    pub host: String,
    /// `host:port` as written in the URL, put in front of the forwarded path.
    pub authority: http::uri::Authority,
}

pub struct Gateway {
    pub table: RouteTable,
    pub routes: Vec<RouteInfo>,
    pub upstreams: Vec<Upstream>,
    pub issuers: Vec<Issuer>,
    pub principals: Principals,
    pub cache: TokenCache,
    pub revocations: Revocations,
    /// The organization policies in force; `None` until a URL source was read once (private
    /// organization resources are refused with 503 until then: fail closed).
    pub organizations: arc_swap::ArcSwapOption<Organizations>,
    /// The inline `organizations:`, which a source's entries extend.
    pub inline_organizations: Organizations,
    pub org_source: Option<OrgSourceRules>,
    /// Static and legacy credentials.
    pub legacy: LegacyCredentials,
    /// Seconds a revoked subject or client stays revoked.
    pub revocation_retention: u64,
    /// Security Event Tokens accepted on the admin port, when configured.
    pub push: Option<token::SetRules>,
    /// A transmitter polled for Security Event Tokens, when configured.
    pub poll: Option<token::PollRules>,
    pub credentials: credential::Rules,
    pub limits: Limits,
    pub forward: ForwardPolicy,
    pub metrics: Metrics,
    pub listen: SocketAddr,
    pub admin_listen: SocketAddr,
    pub threads: usize,
    /// (certificate, key) paths when the listener speaks TLS.
    pub tls: Option<(String, String)>,
}

/// The request head, as any engine can show it.
pub struct Head<'a> {
    pub method: &'a Method,
    pub uri: &'a Uri,
    pub headers: &'a HeaderMap,
}

/// What to do with the request.
pub enum Verdict {
    Forward(Forward),
    Refuse(Refusal),
}

pub struct Forward {
    pub upstream: usize,
    /// The normalized path that was matched, with the query (minus a query token).
    pub path_and_query: String,
    /// `None` on a public route.
    pub principal: Option<Arc<Principal>>,
    /// The organization that was checked, for `X-Auth-Org`.
    pub org: Option<http::HeaderValue>,
}

pub struct Decided {
    /// The matched route, if any (for metrics and logs).
    pub route: Option<usize>,
    pub verdict: Verdict,
    /// Set when the refusal may go away once the backend did its part.
    pub pending: Option<Pending>,
}

impl Decided {
    fn refuse(route: Option<usize>, r: Refusal) -> Decided {
        Decided {
            route,
            verdict: Verdict::Refuse(r),
            pending: None,
        }
    }

    /// The refusal for a credential that did not authenticate, with what could change that.
    fn unauthenticated(route: usize, e: TokenError) -> Decided {
        let pending = match e {
            TokenError::UnknownKey(i) | TokenError::KeysUnavailable(i) => Some(Pending::Keys(i)),
            TokenError::NeedsIntrospection => Some(Pending::Introspection),
            _ => None,
        };
        let refusal = match e {
            TokenError::KeysUnavailable(_) | TokenError::NeedsIntrospection => {
                Refusal::Unavailable {
                    retry_after_secs: RETRY_AFTER_SECS,
                }
            }
            e => Refusal::InvalidToken(e),
        };
        Decided {
            route: Some(route),
            verdict: Verdict::Refuse(refusal),
            pending,
        }
    }

    pub fn outcome(&self) -> Outcome {
        match &self.verdict {
            Verdict::Forward(_) => Outcome::Allowed,
            Verdict::Refuse(r) => r.outcome(),
        }
    }
}

/// Seconds a client is told to wait when the authorization server is unreachable.
const RETRY_AFTER_SECS: u32 = 5;

/// What the decision waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pending {
    /// The issuer (index) may have published the token's key since the last fetch.
    Keys(usize),
    /// The token is opaque: only introspection can say what it is.
    Introspection,
}

/// The network side of a decision, provided by the sync tasks.
pub trait Backend {
    /// Fetches an issuer's keys now (rate-limited by the implementation).
    fn refresh_keys(&self, issuer: usize) -> impl Future<Output = ()> + Send;
    /// Introspects an opaque token (coalesced, cached by the implementation); `None` when
    /// the authorization server could not answer.
    fn introspect(&self, token: &str) -> impl Future<Output = Option<Answer>> + Send;
}

impl Gateway {
    /// Decides one request with the keys and cache at hand.
    pub fn decide(&self, head: &Head, now: u64) -> Decided {
        self.decide_knowing(head, now, None)
    }

    /// Decides with `known` as the token's answer instead of the cache (after introspection).
    fn decide_knowing(&self, head: &Head, now: u64, known: Option<&Answer>) -> Decided {
        let uri_len = head.uri.path_and_query().map_or(0, |p| p.as_str().len());
        if let Err(e) = request::check_framing(uri_len, head.headers, &self.limits) {
            return Decided::refuse(None, Refusal::BadFraming(e));
        }
        let path = match request::normalize(head.uri.path()) {
            Ok(p) => p,
            Err(e) => return Decided::refuse(None, Refusal::BadPath(e)),
        };
        let route_match = match self.table.lookup(head.method, &path) {
            Lookup::Found(m) => m,
            Lookup::MethodNotAllowed(allow) => {
                return Decided::refuse(None, Refusal::MethodNotAllowed(allow));
            }
            Lookup::NotFound => return Decided::refuse(None, Refusal::NotFound),
        };
        let index = route_match.route;
        let route = &self.routes[index];
        let query = head.uri.query();

        let Some(requirement) = &route.requirement else {
            // Public route: nothing is checked, the query goes on untouched.
            return Decided {
                route: Some(index),
                verdict: Verdict::Forward(Forward {
                    upstream: route.upstream,
                    path_and_query: join(path.as_str(), query.map(str::to_string)),
                    principal: None,
                    org: None,
                }),
                pending: None,
            };
        };

        let cred = match credential::extract(head.headers, query, &self.credentials) {
            Ok(Some(c)) => c,
            Ok(None) => return Decided::refuse(Some(index), Refusal::NoCredential),
            Err(e) => return Decided::refuse(Some(index), Refusal::InvalidRequest(e)),
        };
        let authenticated = if let Source::Legacy(presentation) = cred.source {
            self.legacy_principal(presentation, &cred.token, now)
        } else {
            self.bearer_principal(&cred.token, known, now)
        }
        .and_then(|p| match &route.issuers {
            Some(accepted) if !p.issuer.is_some_and(|i| accepted.contains(&i)) => {
                Err(TokenError::IssuerNotAccepted)
            }
            _ => Ok(p),
        });
        let principal = match authenticated {
            Ok(p) => p,
            Err(e) => return Decided::unauthenticated(index, e),
        };
        if !requirement.allows(&principal) {
            return Decided::refuse(
                Some(index),
                Refusal::InsufficientScope {
                    forbidden: route.forbidden.clone().expect("protected routes have one"),
                    granted: principal.grant.token_scopes.clone(),
                },
            );
        }
        let org = match &route.org {
            None => None,
            Some(rule) => {
                match self.check_organization(rule, &route_match.params, head, &principal) {
                    Ok(org) => org,
                    Err(refusal) => return Decided::refuse(Some(index), refusal),
                }
            }
        };
        let query = match (cred.source, query) {
            (Source::Query, Some(q)) => credential::without_param(q, QUERY_PARAMETER),
            (Source::Legacy(i), Some(q)) => match &self.credentials.legacy[i] {
                Presentation::Query(param) => credential::without_param(q, param),
                _ => Some(q.to_string()),
            },
            (_, q) => q.map(str::to_string),
        };
        Decided {
            route: Some(index),
            verdict: Verdict::Forward(Forward {
                upstream: route.upstream,
                path_and_query: join(path.as_str(), query),
                principal: Some(principal),
                org,
            }),
            pending: None,
        }
    }

    /// Takes over what `old` learnt while it served, so that a reloaded configuration does
    /// not forget a revocation or fetch again keys it already had.
    pub fn inherit(&self, old: &Gateway) {
        self.revocations.inherit(&old.revocations);
        for i in &self.issuers {
            if let Some(o) = old.issuers.iter().find(|o| o.id == i.id) {
                i.inherit_keys(o);
            }
        }
    }

    /// Ready to decide: every issuer's keys fetched and the organization policies read.
    /// `Err` says what is still missing.
    pub fn readiness(&self) -> Result<(), serde_json::Value> {
        let waiting: Vec<&str> = self
            .issuers
            .iter()
            .filter(|i| !i.has_fetched())
            .map(|i| i.id.as_str())
            .collect();
        if !waiting.is_empty() {
            return Err(
                serde_json::json!({"status": "waiting for issuer keys", "issuers": waiting}),
            );
        }
        if self.organizations.load().is_none() {
            return Err(serde_json::json!({"status": "waiting for organization policies"}));
        }
        Ok(())
    }

    /// Decides, doing first what the decision waits for: refreshing an issuer's keys for an
    /// unknown `kid` (then deciding again), or introspecting an opaque token. An
    /// authorization server that cannot answer leaves the 503 of the first decision.
    pub async fn decide_with(&self, head: &Head<'_>, backend: &impl Backend) -> Decided {
        let first = self.decide(head, token::unix_now());
        match first.pending {
            Some(Pending::Keys(issuer)) => {
                backend.refresh_keys(issuer).await;
                self.decide(head, token::unix_now())
            }
            Some(Pending::Introspection) => {
                let token =
                    match credential::extract(head.headers, head.uri.query(), &self.credentials) {
                        Ok(Some(c)) => c.token,
                        _ => return first,
                    };
                match backend.introspect(&token).await {
                    Some(answer) => self.decide_knowing(head, token::unix_now(), Some(&answer)),
                    None => first,
                }
            }
            None => first,
        }
    }

    /// The organization a request is about, checked when the resource is private; the
    /// value forwarded as `X-Auth-Org`.
    fn check_organization(
        &self,
        rule: &OrgRule,
        params: &[(&str, &str)],
        head: &Head,
        principal: &Principal,
    ) -> Result<Option<http::HeaderValue>, Refusal> {
        let name = match &rule.source {
            OrgSource::Param(p) => params.iter().find(|(k, _)| k == p).map(|(_, v)| *v),
            OrgSource::Header(h) => head.headers.get(h).and_then(|v| v.to_str().ok()),
            OrgSource::Name(n) => Some(n.as_str()),
        };
        let name = name
            .filter(|n| !n.is_empty())
            .ok_or(Refusal::MissingOrganization)?;
        if rule.private {
            // Policies from a URL not read yet: nothing private is decided without them.
            let orgs = self.organizations.load();
            let orgs = orgs.as_deref().ok_or(Refusal::Unavailable {
                retry_after_secs: RETRY_AFTER_SECS,
            })?;
            orgs.check_private(name, principal)
                .map_err(Refusal::Organization)?;
        }
        Ok(http::HeaderValue::from_str(name).ok())
    }

    /// The principal of a bearer token, unless a revocation names it, its subject or client.
    fn bearer_principal(
        &self,
        token: &str,
        known: Option<&Answer>,
        now: u64,
    ) -> Result<Arc<Principal>, TokenError> {
        // Hashed once: the cache key and the revocation index use the same digest.
        let key = token::hash(token);
        // Revocation is checked on every request, cached or not: it is not cache expiry.
        if self.revocations.is_token_revoked(&key) {
            return Err(TokenError::Revoked);
        }
        let p = match known {
            Some(Answer::Valid(p)) => p.clone(),
            Some(Answer::Invalid(e)) => return Err(*e),
            None => self.authenticate(key, token, now)?,
        };
        let revoked = p.issuer.is_some_and(|i| {
            self.revocations
                .is_principal_revoked(&p, &self.issuers[i].iss)
        });
        if revoked {
            return Err(TokenError::Revoked);
        }
        Ok(p)
    }

    /// The principal of a legacy credential; every use of a configured one is counted, also
    /// after its `not_after`, so operators see who still has to migrate.
    fn legacy_principal(
        &self,
        presentation: usize,
        secret: &str,
        now: u64,
    ) -> Result<Arc<Principal>, TokenError> {
        let m = self
            .legacy
            .find(presentation, secret, now)
            .ok_or(TokenError::Unknown)?;
        self.metrics.legacy_uses[m.index].inc();
        m.answer
    }

    /// The principal behind a token: from the cache, or verified and then cached.
    fn authenticate(
        &self,
        key: TokenHash,
        token: &str,
        now: u64,
    ) -> Result<Arc<Principal>, TokenError> {
        let jwt = token::looks_like_jwt(token);
        let kind = if jwt { 0 } else { 1 };
        if let Some(answer) = self.cache.get(&key) {
            self.metrics.cache_hits[kind].inc();
            return match answer {
                Answer::Valid(p) => Ok(p),
                Answer::Invalid(e) => Err(e),
            };
        }
        self.metrics.cache_misses[kind].inc();
        let verified = if jwt {
            token::verify(token, &self.issuers, now).and_then(|v| {
                self.principals
                    .build(v.issuer, &self.issuers[v.issuer], &v.claims)
            })
        } else if self.issuers.iter().any(|i| i.introspection.is_some()) {
            // Counted as a miss here; the introspection answer is cached by the backend.
            return Err(TokenError::NeedsIntrospection);
        } else {
            Err(TokenError::Unknown)
        };
        match verified {
            Ok(p) => {
                let p = Arc::new(p);
                self.cache.insert_valid(key, p.clone(), now);
                Ok(p)
            }
            Err(e) => {
                self.cache.insert_invalid(key, e);
                Err(e)
            }
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
mod tests {
    //! Decisions on static credentials, with no issuer reachable: the decision core alone.
    use super::*;

    const CONFIG: &str = r#"
server: { listen: "127.0.0.1:1" }
admin: { listen: "127.0.0.1:2" }
issuers:
  - { id: us1, issuer: "https://us1.example", audiences: [a], discovery: false, jwks_uri: "http://127.0.0.1:3/jwks" }
forward: { authorization: strip }
credentials:
  - { id: site-key, header: X-API-Key, sha256: SITE, subject: s1, issuer: us1, scopes: [read] }
  - { id: free-key, query: key, sha256: FREE, subject: s2, scopes: [read] }
upstreams:
  api: { url: "http://127.0.0.1:4" }
routes:
  - { name: any, match: { path: /any }, upstream: api, require: { scopes: read } }
  - { name: us1-only, match: { path: /us1 }, upstream: api, issuers: [us1], require: {} }
"#;

    fn gateway() -> Gateway {
        let yaml = CONFIG
            .replace("SITE", &credential::sha256_hex("site-secret"))
            .replace("FREE", &credential::sha256_hex("free-secret"));
        Gateway::build(&crate::config::parse(&yaml, "t").unwrap(), "t").unwrap()
    }

    fn decide(gw: &Gateway, uri: &str, headers: &HeaderMap) -> Verdict {
        let uri: Uri = uri.parse().unwrap();
        let head = Head {
            method: &Method::GET,
            uri: &uri,
            headers,
        };
        gw.decide(&head, token::unix_now()).verdict
    }

    fn api_key(secret: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-api-key", secret.parse().unwrap());
        h
    }

    #[test]
    fn a_query_credential_is_removed_from_the_forwarded_query() {
        let gw = gateway();
        match decide(&gw, "/any?a=1&key=free-secret&b=2", &HeaderMap::new()) {
            Verdict::Forward(f) => assert_eq!(f.path_and_query, "/any?a=1&b=2"),
            Verdict::Refuse(r) => panic!("refused: {:?}", r.outcome()),
        }
    }

    #[test]
    fn a_route_restricted_to_an_issuer_takes_only_credentials_of_that_issuer() {
        let gw = gateway();
        assert!(matches!(
            decide(&gw, "/us1", &api_key("site-secret")),
            Verdict::Forward(_)
        ));
        match decide(&gw, "/us1?key=free-secret", &HeaderMap::new()) {
            Verdict::Refuse(Refusal::InvalidToken(e)) => {
                assert_eq!(e, TokenError::IssuerNotAccepted)
            }
            _ => panic!("a credential of no issuer passed an issuer-restricted route"),
        }
    }

    #[test]
    fn an_unknown_secret_is_an_invalid_token_and_counts_for_no_credential() {
        let gw = gateway();
        match decide(&gw, "/any", &api_key("free-secret")) {
            Verdict::Refuse(Refusal::InvalidToken(e)) => assert_eq!(e, TokenError::Unknown),
            _ => panic!("a secret configured for the query was accepted in the header"),
        }
        assert!(gw.metrics.legacy_uses.iter().all(|c| c.get() == 0));
        decide(&gw, "/any", &api_key("site-secret"));
        assert_eq!(gw.metrics.legacy_uses[0].get(), 1);
    }

    #[test]
    fn strip_removes_a_legacy_credential_header_before_forwarding() {
        let gw = gateway();
        let Verdict::Forward(f) = decide(&gw, "/any", &api_key("site-secret")) else {
            panic!("refused");
        };
        let (out, _) = gw.forward.rewrite(
            api_key("site-secret"),
            None,
            false,
            f.principal.as_deref(),
            None,
        );
        assert!(!out.contains_key("x-api-key"));
        assert_eq!(out["x-auth-subject"], "s1");
        assert_eq!(out["x-auth-issuer"], "us1");
    }
}
