//! Opaque access tokens: only the authorization server can say what they are (RFC 7662
//! introspection, called by `sync::introspect`); its answers are cached like verified JWTs.

use super::bearer::{self, Kind};
use super::{Authenticator, Authn, Context, Need, Presented};
use crate::answer::Refusal;
use crate::token::{self, Cached, TokenError};

/// An opaque token: cache, else introspection.
pub struct Opaque;

impl Authenticator for Opaque {
    /// A bearer token an introspecting issuer claims by its prefix or pattern, or one that is
    /// no JWT.
    fn claims(&self, p: &Presented, ctx: &Context) -> bool {
        p.is_bearer()
            && (ctx
                .issuers
                .iter()
                .any(|i| i.introspection.is_some() && i.opaque_tokens.claims(p.secret))
                || !token::looks_like_jwt(p.secret))
    }

    fn authenticate(&self, p: &Presented, ctx: &Context) -> Authn {
        let key = p.digest;
        if let Some(known) = bearer::known(&key, Kind::Opaque, ctx) {
            return known;
        }
        if ctx.issuers.iter().any(|i| i.introspection.is_some()) {
            // The introspector caches the answer it gets.
            return Authn::Needs(Need::Introspection);
        }
        ctx.cache.insert_invalid(key, TokenError::Unknown);
        bearer::refused(TokenError::Unknown)
    }
}

impl Opaque {
    /// The decision on an introspected token; `None`: the authorization server could not
    /// answer and nothing was cached (fail closed, 503).
    pub fn introspected(p: &Presented, answer: Option<Cached>, ctx: &Context) -> Authn {
        match answer {
            // Revoked while the call was in flight: the index has the last word.
            Some(_) if ctx.revocations.is_token_revoked(&p.digest) => {
                bearer::refused(TokenError::Revoked)
            }
            Some(c) => bearer::answer(c, ctx),
            None => Authn::Refused(Refusal::Unavailable),
        }
    }
}
