//! What bearer tokens of every kind go through around their own check: the revocation index
//! (on every request, cache hits included: revocation is not cache expiry) and the cache.

use super::{Authn, Context};
use crate::answer::Refusal;
use crate::principal::Principal;
use crate::token::{Cached, TokenError, TokenHash};
use std::sync::Arc;

/// Token kinds, the index of the cache metrics.
#[derive(Clone, Copy)]
pub enum Kind {
    Jwt = 0,
    Opaque = 1,
}

/// The answer the cache or the revocation index already has for the token hashed to `key`.
pub fn known(key: &TokenHash, kind: Kind, ctx: &Context) -> Option<Authn> {
    if ctx.revocations.is_token_revoked(key) {
        return Some(refused(TokenError::Revoked));
    }
    let cached = ctx.cache.get(key, ctx.now);
    let counter = match cached {
        Some(_) => &ctx.metrics.cache_hits[kind as usize],
        None => &ctx.metrics.cache_misses[kind as usize],
    };
    counter.inc();
    cached.map(|c| answer(c, ctx))
}

/// A cached or freshly learnt answer, unless a revocation names the principal since.
pub fn answer(c: Cached, ctx: &Context) -> Authn {
    match c {
        Cached::Valid(p) => admit(p, ctx),
        Cached::Invalid(e) => refused(e),
    }
}

/// The principal, unless its token id, subject or client was revoked.
pub fn admit(p: Arc<Principal>, ctx: &Context) -> Authn {
    let revoked = p.issuer.is_some_and(|i| {
        ctx.revocations
            .is_principal_revoked(&p, &ctx.issuers[i].iss)
    });
    if revoked {
        return refused(TokenError::Revoked);
    }
    Authn::Authenticated(p)
}

pub fn refused(e: TokenError) -> Authn {
    Authn::Refused(Refusal::InvalidToken(e))
}
