//! Who is calling: one authenticator per credential kind (a JWT verified locally, an opaque
//! token vouched for by introspection, a legacy key), each turning a presented secret into a
//! principal, a refusal, or what it needs from the network first. Synchronous and free of
//! I/O: the network part is done by `sync/` and handed back to [`resume`].
//!
//! Each authenticator gets the whole presented credential — the secret, where it was, its
//! digest (computed once per request), and the request head with its connection — and says
//! whether the credential is its kind ("not mine" lets the next one try). Adding a kind: a
//! file here with a type that implements [`Authenticator`], and its place in
//! [`AUTHENTICATORS`] (see `docs/architecture.md`).

mod bearer;
mod jwt;
pub mod legacy;
mod metrics;
mod opaque;

pub use jwt::Jwt;
pub use legacy::{LegacyCredential, LegacyCredentials, LegacyKeys, parse_digest, sha256_hex};
pub use metrics::AuthnMetrics;
pub use opaque::Opaque;

use crate::answer::{Refusal, Unreachable};
use crate::credential::{Credential, Source};
use crate::principal::Principal;
use crate::request::Head;
use crate::token::{Cached, Issuer, IssuerState, Principals, Revocations, TokenCache, TokenHash};
use std::sync::Arc;

/// What authenticating a credential came to.
#[derive(Debug)]
pub enum Authn {
    Authenticated(Arc<Principal>),
    /// Authenticated by an answer past its freshness, while the authorization server fails
    /// (`serve_stale_on_error`): logged and counted as such.
    Stale(Arc<Principal>),
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
}

impl Need {
    /// The answer when the network cannot help: a key the issuer does not publish is the
    /// token's fault (401); an authorization server never reached is not (503).
    pub fn refusal(self) -> Refusal {
        match self {
            Need::Keys {
                ever_fetched: true, ..
            } => Refusal::InvalidToken(crate::token::TokenError::UnknownKey),
            Need::Keys { .. } => Refusal::Unavailable(Unreachable::IssuerKeys),
            Need::Introspection => Refusal::Unavailable(Unreachable::Introspection),
        }
    }
}

/// A credential as a request presents it, with what every authenticator may read: the
/// secret, where it was, its SHA-256 (computed once per request: the cache and revocation
/// key, and a legacy credential's digest), and the request head with its connection (a
/// proof-of-possession kind reads its proof header, or the client certificate).
pub struct Presented<'a> {
    pub secret: &'a str,
    pub source: Source,
    pub digest: TokenHash,
    pub head: &'a Head<'a>,
    /// A bearer token with a JWS's shape ([`crate::token::looks_like_jwt`]): read once here,
    /// as both the opaque and the JWT authenticator ask.
    pub jwt_shaped: bool,
}

impl<'a> Presented<'a> {
    /// `cred`, extracted from `head`; hashed here, once.
    pub fn new(cred: &'a Credential<'a>, head: &'a Head<'a>) -> Presented<'a> {
        let mut presented = Presented {
            secret: &cred.token,
            source: cred.source,
            digest: crate::token::hash(&cred.token),
            head,
            jwt_shaped: false,
        };
        presented.jwt_shaped = presented.is_bearer() && crate::token::looks_like_jwt(&cred.token);
        presented
    }

    /// A bearer token (the `Authorization` header or `?access_token=`), not a legacy key.
    pub fn is_bearer(&self) -> bool {
        matches!(self.source, Source::Header | Source::Query)
    }
}

/// What the network found for a [`Need`].
pub enum Found {
    /// The issuer's keys were fetched again (or the fetch was skipped by the rate limit).
    Keys,
    /// The introspection answer, or what could not be reached.
    Introspection(Result<Cached, Unreachable>),
}

/// What every authenticator reads: the compiled rules it needs, the shared state, and the
/// time.
pub struct Context<'a> {
    pub issuers: &'a [Issuer],
    pub issuer_states: &'a [IssuerState],
    pub principals: &'a Principals,
    pub legacy: &'a LegacyCredentials,
    pub cache: &'a TokenCache,
    pub revocations: &'a Revocations,
    pub metrics: &'a AuthnMetrics,
    pub now: u64,
}

/// One kind of credential.
pub trait Authenticator: Sync {
    /// Whether `presented` is this kind's; "not mine" (`false`) lets the next one try.
    fn claims(&self, presented: &Presented, ctx: &Context) -> bool;
    /// Authenticates a credential it claims, with the keys, cache and revocations at hand.
    fn authenticate(&self, presented: &Presented, ctx: &Context) -> Authn;
}

/// The credential kinds, asked in this order: legacy keys (by where they are presented),
/// opaque tokens (an introspecting issuer's prefix or pattern comes first, so a dotted
/// opaque token such as Zoho's `1000.x.y` is its issuer's whatever it looks like; then every
/// bearer token that is no JWT), JWTs.
pub const AUTHENTICATORS: [&dyn Authenticator; 3] = [&LegacyKeys, &Opaque, &Jwt];

/// Authenticates a presented credential with the first authenticator that claims it.
pub fn authenticate(presented: &Presented, ctx: &Context) -> Authn {
    AUTHENTICATORS
        .iter()
        .find(|a| a.claims(presented, ctx))
        .map_or(
            Authn::Refused(Refusal::InvalidToken(crate::token::TokenError::Unknown)),
            |a| a.authenticate(presented, ctx),
        )
}

/// Finishes authenticating once the network did what `need` asked; what it still cannot
/// tell is refused (see [`Need::refusal`]).
pub fn resume(presented: &Presented, need: Need, found: Found, ctx: &Context) -> Authn {
    match (need, found) {
        (Need::Keys { .. }, Found::Keys) => match Jwt.authenticate(presented, ctx) {
            Authn::Needs(still) => Authn::Refused(still.refusal()),
            done => done,
        },
        (Need::Introspection, Found::Introspection(answer)) => {
            Opaque::introspected(presented, answer, ctx)
        }
        (need, _) => Authn::Refused(need.refusal()),
    }
}
