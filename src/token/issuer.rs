//! An issuer: its rules from the configuration ([`Issuer`], immutable), and what the gateway
//! learnt from it while running ([`IssuerState`]: its keys, its discovered endpoints).

use super::dialect::Dialect;
use super::keys::KeySet;
use crate::claim::ClaimExpr;
use arc_swap::ArcSwap;
use jsonwebtoken::{Algorithm, Validation};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

pub struct Issuer {
    pub id: String,
    /// The exact `iss`.
    pub iss: String,
    pub audiences: Vec<String>,
    pub algorithms: Vec<Algorithm>,
    /// Accepted `typ` values, lower-case, without an `application/` prefix.
    pub typ: Vec<String>,
    pub clock_skew: Duration,
    pub claims: ClaimNames,
    /// Where to find the JWKS: explicit, or discovered from `iss`.
    pub jwks_uri: Option<String>,
    pub discovery: bool,
    pub jwks_refresh: Duration,
    /// Introspection of opaque tokens, when configured.
    pub introspection: Option<IntrospectionRules>,
    /// Which opaque tokens are this issuer's (and only this issuer's).
    pub opaque_tokens: OpaqueTokens,
    /// How an application's own token is told from a user's.
    pub app_rule: AppRule,
    /// URLs of this issuer (also discovered ones) may be `http://` beyond loopback.
    pub allow_http: bool,
    /// Prebuilt validation per allowed algorithm.
    validations: Vec<(Algorithm, Validation)>,
}

/// How an application's own token (client credentials, a service account) is told from a
/// token a user granted to an application: any rule that holds makes it an app token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRule {
    /// RFC 9068 §2.2: a client-credentials token has the client as its subject.
    pub sub_is_client_id: bool,
    /// A token without `sub` is its client's own, the client id its subject.
    pub without_subject: bool,
    /// Claim conditions that mark an app token (`gty`, `idtyp`, a subject pattern…).
    pub claims: Option<ClaimExpr>,
}

impl Default for AppRule {
    fn default() -> Self {
        AppRule {
            sub_is_client_id: true,
            without_subject: false,
            claims: None,
        }
    }
}

/// Opaque tokens an issuer claims by their shape: they go to its introspection only, before
/// any guess that a dotted token is a JWT.
#[derive(Debug, Clone, Default)]
pub struct OpaqueTokens {
    pub prefix: Option<String>,
    /// Matched against the whole token.
    pub pattern: Option<regex::Regex>,
}

impl OpaqueTokens {
    /// Whether a prefix or pattern is set (otherwise the issuer is asked about any opaque
    /// token no other issuer claims).
    pub fn is_set(&self) -> bool {
        self.prefix.is_some() || self.pattern.is_some()
    }

    pub fn claims(&self, token: &str) -> bool {
        self.prefix.as_deref().is_some_and(|p| token.starts_with(p))
            || self.pattern.as_ref().is_some_and(|r| r.is_match(token))
    }
}

/// How an issuer's introspection endpoint is called and read.
#[derive(Debug, Clone)]
pub struct IntrospectionRules {
    pub dialect: Dialect,
    /// Configured endpoint (for GitHub: the API root); otherwise the dialect's, or for RFC
    /// 7662 the discovered `introspection_endpoint`.
    pub endpoint: Option<String>,
    pub client_id: String,
    pub client_secret: String,
    /// `client_secret_post` instead of HTTP Basic.
    pub post_credentials: bool,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Non-standard lifetime in seconds from now, used when there is no `exp`.
    pub expires_in_field: Option<String>,
    /// How long an organization-membership answer is trusted (dialects that ask for it).
    pub membership_ttl: Duration,
    /// How long past its cache time an active answer may serve while the authorization
    /// server fails (`serve_stale_on_error`); `None`: not at all.
    pub serve_stale_on_error: Option<Duration>,
}

impl IntrospectionRules {
    #[cfg(test)]
    pub fn for_tests(dialect: Dialect) -> IntrospectionRules {
        IntrospectionRules {
            dialect,
            endpoint: Some("http://127.0.0.1:1/introspect".into()),
            client_id: "gw".into(),
            client_secret: "s".into(),
            post_credentials: false,
            timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(1),
            expires_in_field: None,
            membership_ttl: Duration::from_secs(60),
            serve_stale_on_error: None,
        }
    }
}

/// What the gateway learnt from an issuer while running: its current keys and the endpoints
/// its metadata named. Shared state, written by the key sync and read on every request.
#[derive(Default)]
pub struct IssuerState {
    keys: ArcSwap<KeySet>,
    fetched: AtomicBool,
    /// `introspection_endpoint` found by discovery (when none is configured).
    discovered_introspection: OnceLock<String>,
}

#[derive(Debug, Clone)]
pub struct ClaimNames {
    pub scope: String,
    pub orgs: String,
    pub sso_orgs: String,
    pub client_id: String,
}

impl Issuer {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: String,
        iss: String,
        audiences: Vec<String>,
        algorithms: Vec<Algorithm>,
        typ: Vec<String>,
        clock_skew: Duration,
        claims: ClaimNames,
        jwks_uri: Option<String>,
        discovery: bool,
        jwks_refresh: Duration,
    ) -> Issuer {
        let validations = algorithms
            .iter()
            .map(|&alg| {
                let mut v = Validation::new(alg);
                // jsonwebtoken's default leeway is 60 s; ours is the configured skew.
                v.leeway = clock_skew.as_secs();
                v.validate_nbf = true;
                v.validate_exp = true;
                v.set_issuer(&[&iss]);
                v.set_audience(&audiences);
                v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
                (alg, v)
            })
            .collect();
        Issuer {
            id,
            iss,
            audiences,
            algorithms,
            typ: typ.iter().map(|t| normalize_typ(t)).collect(),
            clock_skew,
            claims,
            jwks_uri,
            discovery,
            jwks_refresh,
            validations,
            introspection: None,
            opaque_tokens: OpaqueTokens::default(),
            app_rule: AppRule::default(),
            allow_http: false,
        }
    }

    /// Adds introspection of opaque tokens, and which ones are this issuer's alone.
    pub fn with_introspection(
        mut self,
        rules: Option<IntrospectionRules>,
        opaque_tokens: OpaqueTokens,
    ) -> Issuer {
        self.introspection = rules;
        self.opaque_tokens = opaque_tokens;
        self
    }

    /// Whether the issuer publishes keys (an issuer that only vouches for opaque tokens, such
    /// as GitHub, has none: its JWKS is never fetched).
    pub fn has_keys(&self) -> bool {
        self.discovery || self.jwks_uri.is_some()
    }

    /// Whether organization membership is asked of the issuer's API per organization,
    /// instead of read from the token's claims.
    pub fn asks_membership(&self) -> bool {
        self.introspection
            .as_ref()
            .is_some_and(|r| r.dialect == Dialect::Github)
    }

    /// Where to introspect: the configured endpoint, else the dialect's, else the one
    /// discovery found.
    pub fn introspection_endpoint<'a>(&'a self, state: &'a IssuerState) -> Option<&'a str> {
        let rules = self.introspection.as_ref()?;
        rules
            .endpoint
            .as_deref()
            .or(rules.dialect.default_endpoint())
            .or_else(|| state.discovered_introspection.get().map(String::as_str))
    }

    pub fn validation(&self, alg: Algorithm) -> Option<&Validation> {
        self.validations
            .iter()
            .find(|(a, _)| *a == alg)
            .map(|(_, v)| v)
    }

    /// Whether `other` fetches its keys from the same place (a reload may keep its keys).
    pub fn same_key_source(&self, other: &Issuer) -> bool {
        other.iss == self.iss
            && other.jwks_uri == self.jwks_uri
            && other.discovery == self.discovery
    }
}

impl IssuerState {
    /// The state of `issuer`: one without keys has nothing to fetch and counts as fetched.
    pub fn for_issuer(issuer: &Issuer) -> IssuerState {
        let state = IssuerState::default();
        if !issuer.has_keys() {
            state.fetched.store(true, Ordering::Release);
        }
        state
    }

    /// Records the `introspection_endpoint` of the discovery document.
    pub fn set_discovered_introspection(&self, endpoint: String) {
        let _ = self.discovered_introspection.set(endpoint);
    }

    pub fn keys(&self) -> arc_swap::Guard<Arc<KeySet>> {
        self.keys.load()
    }

    /// Installs freshly fetched keys (the previous set stays until this is called).
    pub fn set_keys(&self, keys: KeySet) {
        self.keys.store(Arc::new(keys));
        self.fetched.store(true, Ordering::Release);
    }

    /// Takes what `old` learnt, so that a reload does not wait for, or lose, keys already
    /// known. The caller checks that both are the same issuer at the same place.
    pub fn inherit(&self, old: &IssuerState) {
        if old.has_fetched() {
            self.keys.store(old.keys.load_full());
            self.fetched.store(true, Ordering::Release);
        }
        if let Some(e) = old.discovered_introspection.get() {
            self.set_discovered_introspection(e.clone());
        }
    }

    /// Whether keys were ever fetched (for `/readyz` and the 503 of a never-reached issuer).
    pub fn has_fetched(&self) -> bool {
        self.fetched.load(Ordering::Acquire)
    }
}

/// `typ` comparison per RFC 7515 §4.1.9: case-insensitive, `application/` may be omitted.
pub fn normalize_typ(t: &str) -> String {
    let lower = t.to_ascii_lowercase();
    lower
        .strip_prefix("application/")
        .map(str::to_string)
        .unwrap_or(lower)
}
