//! Who is calling: one authenticator per credential kind (a JWT verified locally, an opaque
//! token vouched for by introspection, a legacy key), each turning a presented secret into a
//! principal, a refusal, or what it needs from the network first. Synchronous and free of
//! I/O: the network part is done by `sync/` and handed back to [`resume`].
//!
//! Adding a credential kind: a file here with a type that implements [`Authenticator`], and
//! one arm in [`authenticate`] that picks it (see `docs/architecture.md`).

mod bearer;
mod jwt;
pub mod legacy;
mod metrics;
mod opaque;

pub use jwt::Jwt;
pub use legacy::{LegacyCredential, LegacyCredentials, LegacyKeys, parse_digest, sha256_hex};
pub use metrics::AuthnMetrics;
pub use opaque::Opaque;

use crate::answer::Refusal;
use crate::credential::{Credential, Source};
use crate::principal::Principal;
use crate::request::Connection;
use crate::token::{Cached, Issuer, IssuerState, Principals, Revocations, TokenCache};
use std::sync::Arc;

/// What authenticating a credential came to.
#[derive(Debug)]
pub enum Authn {
    Authenticated(Arc<Principal>),
    Refused(Refusal),
    /// Only the network can tell: do what [`Need`] says, then [`resume`].
    Needs(Need),
}

/// What an authenticator needs from the network before it can answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// The issuer (index) has no key for the token: it may have published it since the last
    /// fetch (`ever_fetched`), or its keys were never fetched.
    Keys { issuer: usize, ever_fetched: bool },
    /// An opaque token: only introspection can say what it is.
    Introspection,
    /// The issuer (index) is asked whether the token's user is a member of the organization
    /// the request names (GitHub); asked by the organization stage, after authentication.
    Membership { issuer: usize },
}

impl Need {
    /// The answer when the network cannot help: a key the issuer does not publish is the
    /// token's fault (401); an authorization server never reached is not (503).
    pub fn refusal(self) -> Refusal {
        match self {
            Need::Keys {
                ever_fetched: true, ..
            } => Refusal::InvalidToken(crate::token::TokenError::UnknownKey),
            Need::Keys { .. } | Need::Introspection | Need::Membership { .. } => {
                Refusal::Unavailable
            }
        }
    }
}

/// What the network found for a [`Need`].
pub enum Found {
    /// The issuer's keys were fetched again (or the fetch was skipped by the rate limit).
    Keys,
    /// The introspection answer; `None` when the authorization server could not answer.
    Introspection(Option<Cached>),
}

/// What every authenticator reads: the compiled rules it needs, the shared state, and the
/// request's connection and time.
pub struct Context<'a> {
    pub issuers: &'a [Issuer],
    pub issuer_states: &'a [IssuerState],
    pub principals: &'a Principals,
    pub cache: &'a TokenCache,
    pub revocations: &'a Revocations,
    pub metrics: &'a AuthnMetrics,
    pub conn: &'a Connection,
    pub now: u64,
}

/// One kind of credential.
pub trait Authenticator {
    /// Authenticates `secret` with the keys, cache and revocations at hand.
    fn authenticate(&self, secret: &str, ctx: &Context) -> Authn;
}

/// Authenticates an extracted credential with the authenticator of its kind.
pub fn authenticate(cred: &Credential, legacy: &LegacyCredentials, ctx: &Context) -> Authn {
    match cred.source {
        Source::Legacy(presentation) => LegacyKeys {
            table: legacy,
            presentation,
        }
        .authenticate(&cred.token, ctx),
        Source::Header | Source::Query => {
            // An issuer's token prefix or pattern comes first: a dotted opaque token (Zoho's
            // `1000.x.y`) is its issuer's, whatever it looks like.
            let claimed = ctx
                .issuers
                .iter()
                .any(|i| i.introspection.is_some() && i.opaque_tokens.claims(&cred.token));
            if !claimed && crate::token::looks_like_jwt(&cred.token) {
                Jwt.authenticate(&cred.token, ctx)
            } else {
                Opaque.authenticate(&cred.token, ctx)
            }
        }
    }
}

/// Finishes authenticating once the network did what `need` asked; what it still cannot
/// tell is refused (see [`Need::refusal`]).
pub fn resume(cred: &Credential, need: Need, found: Found, ctx: &Context) -> Authn {
    match (need, found) {
        (Need::Keys { .. }, Found::Keys) => match Jwt.authenticate(&cred.token, ctx) {
            Authn::Needs(still) => Authn::Refused(still.refusal()),
            done => done,
        },
        (Need::Introspection, Found::Introspection(answer)) => {
            Opaque::introspected(&cred.token, answer, ctx)
        }
        (need, _) => Authn::Refused(need.refusal()),
    }
}
