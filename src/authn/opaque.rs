//! Opaque access tokens: only the authorization server can say what they are (RFC 7662
//! introspection, called by `sync::introspect`); its answers are cached like verified JWTs.

use super::bearer::{self, Kind};
use super::{Authenticator, Authn, Context, Need, Presented};
use crate::answer::{Refusal, Unreachable};
use crate::token::{Cached, TokenError};

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
                || !p.jwt_shaped)
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
    /// The decision on an introspected token. When the authorization server could not
    /// answer, nothing was cached: fail closed (503) — unless its issuer serves an answer
    /// that was active stale on a server failure (never on a definite "inactive", never past
    /// `exp`, never for a revoked token).
    pub fn introspected(
        p: &Presented,
        answer: Result<Cached, Unreachable>,
        ctx: &Context,
    ) -> Authn {
        // Revoked while the call was in flight: the index has the last word.
        if ctx.revocations.is_token_revoked(&p.digest) {
            return bearer::refused(TokenError::Revoked);
        }
        match answer {
            Ok(c) => bearer::answer(c, ctx),
            Err(why) => match stale(p, why, ctx) {
                Some(principal) => match bearer::admit(principal, ctx) {
                    Authn::Authenticated(principal) => {
                        ctx.metrics
                            .served_stale(principal.issuer_id.to_str().unwrap_or("?"));
                        Authn::Stale(principal)
                    }
                    refused => refused,
                },
                None => Authn::Refused(Refusal::Unavailable(why)),
            },
        }
    }
}

/// The answer that was active, kept past its freshness by its issuer's
/// `serve_stale_on_error`, when the server failed.
fn stale(
    p: &Presented,
    why: Unreachable,
    ctx: &Context,
) -> Option<std::sync::Arc<crate::principal::Principal>> {
    if !why.is_server_failure() {
        return None;
    }
    let principal = ctx.cache.get_stale(&p.digest, ctx.now)?;
    let issuer = &ctx.issuers[principal.issuer?];
    issuer.introspection.as_ref()?.serve_stale_on_error?;
    Some(principal)
}
