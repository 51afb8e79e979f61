//! An issuer: its rules from the configuration ([`Issuer`], immutable), and what the gateway
//! learnt from it while running ([`IssuerState`]: its keys, its discovered endpoints).

use super::keys::KeySet;
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
    /// Opaque tokens with this prefix belong to this issuer.
    pub token_prefix: Option<String>,
    /// How an application's own token is told from a user's.
    pub app_rule: AppRule,
    /// URLs of this issuer (also discovered ones) may be `http://` beyond loopback.
    pub allow_http: bool,
    /// Prebuilt validation per allowed algorithm.
    validations: Vec<(Algorithm, Validation)>,
}

/// How an application's own token (client credentials, a service account) is told from a
/// token a user granted to an application.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AppRule {
    /// RFC 9068 §2.2: a client-credentials token has the client as its subject.
    #[default]
    SubIsClientId,
}

/// How an issuer's introspection endpoint is called and read.
#[derive(Debug, Clone)]
pub struct IntrospectionRules {
    /// Configured endpoint; otherwise the discovered `introspection_endpoint` is used.
    pub endpoint: Option<String>,
    pub client_id: String,
    pub client_secret: String,
    /// `client_secret_post` instead of HTTP Basic.
    pub post_credentials: bool,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Non-standard lifetime in seconds from now, used when there is no `exp`.
    pub expires_in_field: Option<String>,
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
            token_prefix: None,
            app_rule: AppRule::default(),
            allow_http: false,
        }
    }

    /// Adds introspection of opaque tokens.
    pub fn with_introspection(
        mut self,
        rules: Option<IntrospectionRules>,
        token_prefix: Option<String>,
    ) -> Issuer {
        self.introspection = rules;
        self.token_prefix = token_prefix;
        self
    }

    /// Where to introspect: the configured endpoint, else the one discovery found.
    pub fn introspection_endpoint<'a>(&'a self, state: &'a IssuerState) -> Option<&'a str> {
        let rules = self.introspection.as_ref()?;
        rules
            .endpoint
            .as_deref()
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
