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

#[derive(Debug)]
pub struct Principal {
    /// Index of the issuer in the configuration; `None` for a static credential of no issuer.
    pub issuer: Option<usize>,
    pub kind: Kind,
    /// Unix seconds after which the credential is no longer valid.
    pub expires_at: u64,
    /// `iat`, when the credential says (revocations of a subject or client compare it).
    pub issued_at: Option<u64>,
    /// `jti`, when the credential has one (revocation by token id).
    pub jti: Option<Box<str>>,
    /// Header values built once when the credential was verified, reused on every request.
    pub subject: HeaderValue,
    pub client_id: Option<HeaderValue>,
    pub issuer_id: HeaderValue,
    pub grant: Arc<Grant>,
    /// Organizations the subject belongs to (`orgs` claim), compared exactly.
    pub orgs: Box<[Box<str>]>,
    /// Organizations with an active SSO session (`sso_orgs` claim).
    pub sso_orgs: Box<[Box<str>]>,
    /// The configuration's claim conditions its claims meet (bits of `claim::Conditions`),
    /// answered once when the credential was verified. None for a static credential.
    pub conditions: BitSet,
    /// The claim values the configuration uses (`forward.claim_headers`, then the claims
    /// rate limits are keyed by), rendered for this token; `None` where its claims give none.
    pub claim_values: Box<[Option<HeaderValue>]>,
    /// Claims copied into the signed identity assertion (`forward.identity_assertion.claims`).
    pub assertion_claims: Box<[(Box<str>, serde_json::Value)]>,
    /// The signed identity assertion minted for this principal, and until when (Unix
    /// seconds) it is reused. Boxed: most configurations mint none, and every cached token
    /// carries the slot.
    pub minted: std::sync::Mutex<Option<Box<(u64, HeaderValue)>>>,
}

impl Principal {
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
            orgs: self.orgs.clone(),
            sso_orgs: self.sso_orgs.clone(),
            conditions: self.conditions.clone(),
            claim_values: self.claim_values.clone(),
            assertion_claims: self.assertion_claims.clone(),
            minted: Default::default(),
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
            issuer_id: v.clone(),
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
            issued_at: None,
            jti: None,
            subject: v.clone(),
            client_id: None,
            issuer_id: v.clone(),
            grant: Arc::new(Grant {
                scopes: ScopeSet::default(),
                effective: v.clone(),
                token_scopes: v,
            }),
            orgs: Box::default(),
            sso_orgs: Box::default(),
            conditions: BitSet::default(),
            claim_values: Box::default(),
            assertion_claims: Box::default(),
            minted: Default::default(),
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
