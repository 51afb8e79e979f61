//! An issuer at run time: its rules from the configuration and its current keys.

use super::introspection::IntrospectionRules;
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
    /// `introspection_endpoint` found by discovery (when none is configured).
    discovered_introspection: OnceLock<String>,
    /// Prebuilt validation per allowed algorithm.
    validations: Vec<(Algorithm, Validation)>,
    keys: ArcSwap<KeySet>,
    fetched: AtomicBool,
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
            keys: ArcSwap::from_pointee(KeySet::default()),
            fetched: AtomicBool::new(false),
            introspection: None,
            token_prefix: None,
            discovered_introspection: OnceLock::new(),
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

    /// Where to introspect: the configured endpoint, else the discovered one.
    pub fn introspection_endpoint(&self) -> Option<&str> {
        let rules = self.introspection.as_ref()?;
        rules
            .endpoint
            .as_deref()
            .or_else(|| self.discovered_introspection.get().map(String::as_str))
    }

    /// Records the `introspection_endpoint` of the discovery document.
    pub fn set_discovered_introspection(&self, endpoint: String) {
        let _ = self.discovered_introspection.set(endpoint);
    }

    pub fn validation(&self, alg: Algorithm) -> Option<&Validation> {
        self.validations
            .iter()
            .find(|(a, _)| *a == alg)
            .map(|(_, v)| v)
    }

    pub fn keys(&self) -> arc_swap::Guard<Arc<KeySet>> {
        self.keys.load()
    }

    /// Installs freshly fetched keys (the previous set stays until this is called).
    pub fn set_keys(&self, keys: KeySet) {
        self.keys.store(Arc::new(keys));
        self.fetched.store(true, Ordering::Release);
    }

    /// Takes the keys `old` fetched when it is the same issuer at the same place, so that a
    /// reload does not wait for, or lose, keys already known.
    pub fn inherit_keys(&self, old: &Issuer) {
        let same =
            old.iss == self.iss && old.jwks_uri == self.jwks_uri && old.discovery == self.discovery;
        if same && old.has_fetched() {
            self.keys.store(old.keys.load_full());
            self.fetched.store(true, Ordering::Release);
            if let Some(e) = old.discovered_introspection.get() {
                self.set_discovered_introspection(e.clone());
            }
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
