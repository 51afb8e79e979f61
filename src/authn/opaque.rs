//! Opaque access tokens: only the authorization server can say what they are (RFC 7662
//! introspection, called by `sync::introspect`); its answers are cached like verified JWTs.

use super::bearer::{self, Kind};
use super::{Authenticator, Authn, Context, Need};
use crate::answer::Refusal;
use crate::token::{self, Cached, TokenError};

/// An opaque token: cache, else introspection.
pub struct Opaque;

impl Authenticator for Opaque {
    fn authenticate(&self, secret: &str, ctx: &Context) -> Authn {
        let key = token::hash(secret);
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
    pub fn introspected(secret: &str, answer: Option<Cached>, ctx: &Context) -> Authn {
        match answer {
            // Revoked while the call was in flight: the index has the last word.
            Some(_) if ctx.revocations.is_token_revoked(&token::hash(secret)) => {
                bearer::refused(TokenError::Revoked)
            }
            Some(c) => bearer::answer(c, ctx),
            None => Authn::Refused(Refusal::Unavailable),
        }
    }
}
