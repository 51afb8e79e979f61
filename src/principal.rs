//! The caller, as established by a verified credential. Values here were checked: nothing
//! builds a `Principal` from unverified input.
//!
//! Kept compact because the token cache holds one per distinct token: the subject is the only
//! value of its own; scopes, client and issuer are shared between all tokens that have the
//! same ones (see `token::claims::Interner`).

use crate::bits::BitSet;
use crate::scope::ScopeSet;
use http::HeaderValue;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A user acting through an application.
    User,
    /// An application acting as itself (client credentials, service account).
    App,
}

impl Kind {
    pub fn header(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Kind::User => "user",
            Kind::App => "app",
        })
    }
}

/// The caller. Its size is what a cached token costs (`cargo bench --bench memory`), so what
/// is shared between tokens is behind an `Arc`, and what few tokens carry is behind one
/// pointer ([`Extras`]).
#[derive(Debug)]
pub struct Principal {
    /// Index of the issuer in the configuration; `None` for a static credential of no issuer.
    pub issuer: Option<usize>,
    pub kind: Kind,
    /// Unix seconds after which the credential is no longer valid.
    pub expires_at: u64,
    /// `iat`, 0 when the credential does not say: revocations of a subject or client compare
    /// it, and a credential without one cannot show it came after them.
    pub issued_at: u64,
    /// `jti`, when the credential has one (revocation by token id).
    pub jti: Option<Box<str>>,
    /// Header values built once when the credential was verified, reused on every request.
    pub subject: HeaderValue,
    /// Shared by every token of the same client.
    pub client_id: Option<Arc<HeaderValue>>,
    /// Shared by every token of the same issuer (or static credential).
    pub issuer_id: Arc<HeaderValue>,
    pub grant: Arc<Grant>,
    /// The configuration's claim conditions its claims meet (bits of `claim::Conditions`),
    /// answered once when the credential was verified. Empty for a static credential.
    pub conditions: BitSet,
    /// `None` when the credential carries none of them and no assertion is minted.
    pub extras: Option<Box<Extras>>,
}

/// What only some principals carry: organizations, the claims a configuration forwards or
/// copies into an identity assertion, and the assertion minted for it.
#[derive(Debug, Default)]
pub struct Extras {
    /// Organizations the subject belongs to (`orgs` claim), compared exactly.
    pub orgs: Box<[Box<str>]>,
    /// Organizations with an active SSO session (`sso_orgs` claim).
    pub sso_orgs: Box<[Box<str>]>,
    /// The claim values the configuration uses (`forward.claim_headers`, then the claims
    /// rate limits are keyed by), rendered for this token; `None` where its claims give none.
    pub claim_values: Box<[Option<HeaderValue>]>,
    /// Claims copied into the signed identity assertion (`forward.identity_assertion.claims`).
    pub assertion_claims: Box<[(Box<str>, serde_json::Value)]>,
    /// The signed identity assertion minted for this principal, and until when (Unix
    /// seconds) it is reused.
    pub minted: std::sync::Mutex<Option<(u64, HeaderValue)>>,
}

impl Extras {
    fn is_empty(&self) -> bool {
        self.orgs.is_empty()
            && self.sso_orgs.is_empty()
            && self.claim_values.is_empty()
            && self.assertion_claims.is_empty()
    }

    /// Boxed when there is anything to carry, or a slot for minted assertions is wanted.
    pub fn boxed(self, mints: bool) -> Option<Box<Extras>> {
        (mints || !self.is_empty()).then(|| Box::new(self))
    }

    /// The same values, without the minted assertion (made for another configuration).
    fn copy(&self) -> Extras {
        Extras {
            orgs: self.orgs.clone(),
            sso_orgs: self.sso_orgs.clone(),
            claim_values: self.claim_values.clone(),
            assertion_claims: self.assertion_claims.clone(),
            minted: Default::default(),
        }
    }
}

impl Principal {
    pub fn orgs(&self) -> &[Box<str>] {
        self.extras.as_deref().map_or(&[], |e| &e.orgs)
    }

    pub fn sso_orgs(&self) -> &[Box<str>] {
        self.extras.as_deref().map_or(&[], |e| &e.sso_orgs)
    }

    pub fn claim_values(&self) -> &[Option<HeaderValue>] {
        self.extras.as_deref().map_or(&[], |e| &e.claim_values)
    }

    pub fn assertion_claims(&self) -> &[(Box<str>, serde_json::Value)] {
        self.extras.as_deref().map_or(&[], |e| &e.assertion_claims)
    }

    /// The same principal with another grant (its scopes for another configuration).
    pub fn with_grant(&self, grant: Arc<Grant>) -> Principal {
        Principal {
            issuer: self.issuer,
            kind: self.kind,
            expires_at: self.expires_at,
            issued_at: self.issued_at,
            jti: self.jti.clone(),
            subject: self.subject.clone(),
            client_id: self.client_id.clone(),
            issuer_id: self.issuer_id.clone(),
            grant,
            conditions: self.conditions.clone(),
            extras: self.extras.as_deref().map(|e| Box::new(e.copy())),
        }
    }
}

#[cfg(test)]
impl Principal {
    /// A user of issuer 0 with placeholder values (`x`), no scopes, for tests to override
    /// what they are about with struct update syntax.
    pub fn for_tests() -> Principal {
        let v = HeaderValue::from_static("x");
        Principal {
            issuer: Some(0),
            kind: Kind::User,
            subject: v.clone(),
            issuer_id: Arc::new(v.clone()),
            grant: Arc::new(Grant {
                scopes: ScopeSet::default(),
                effective: v.clone(),
                token_scopes: v,
            }),
            ..Principal::for_signing_check()
        }
    }
}

impl Principal {
    /// A principal with nothing in it: what a signing key is tried with when it is loaded.
    pub fn for_signing_check() -> Principal {
        let v = HeaderValue::from_static("-");
        Principal {
            issuer: None,
            kind: Kind::App,
            expires_at: u64::MAX,
            issued_at: 0,
            jti: None,
            subject: v.clone(),
            client_id: None,
            issuer_id: Arc::new(v.clone()),
            grant: Arc::new(Grant {
                scopes: ScopeSet::default(),
                effective: v.clone(),
                token_scopes: v,
            }),
            conditions: BitSet::default(),
            extras: None,
        }
    }
}

/// What a set of token scopes amounts to; shared by every token with the same `scope` claim.
#[derive(Debug)]
pub struct Grant {
    /// Token scopes expanded through the implications, as bits of the configured scopes.
    pub scopes: ScopeSet,
    /// Effective scopes (implications expanded), sorted, space-delimited.
    pub effective: HeaderValue,
    /// The token's own scopes, comma-separated, for `X-OAuth-Scopes` on a 403.
    pub token_scopes: HeaderValue,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_principal_stays_within_144_bytes_and_extras_are_boxed_only_when_carried() {
        // With the `Arc` counts, 160 bytes: one of the allocator's size classes.
        assert!(std::mem::size_of::<Principal>() <= 144);
        assert!(Extras::default().boxed(false).is_none());
        assert!(
            Extras::default().boxed(true).is_some(),
            "a slot to mint into"
        );
        let orgs = Extras {
            orgs: vec!["acme".into()].into(),
            ..Extras::default()
        };
        assert!(orgs.boxed(false).is_some());
    }
}
