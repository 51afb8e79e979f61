//! JWT access tokens (RFC 9068), verified locally with the issuer's keys and cached.

use super::bearer::{self, Kind};
use super::{Authenticator, Authn, Context, Need, Presented};
use crate::token::{self, VerifyError};
use std::sync::Arc;

/// A JWT: cache, else signature, claims and times against its issuer's rules.
pub struct Jwt;

impl Authenticator for Jwt {
    fn claims(&self, p: &Presented, _: &Context) -> bool {
        p.jwt_shaped
    }

    fn authenticate(&self, p: &Presented, ctx: &Context) -> Authn {
        let key = p.digest;
        if let Some(known) = bearer::known(&key, Kind::Jwt, ctx) {
            return known;
        }
        let verified = token::verify(p.secret, ctx.issuers, ctx.issuer_states, ctx.now);
        let principal = match verified {
            Ok(v) => ctx
                .principals
                .build(v.issuer, &ctx.issuers[v.issuer], &v.claims),
            Err(VerifyError::Invalid(e)) => Err(e),
            Err(VerifyError::NoKey {
                issuer,
                ever_fetched,
            }) => {
                return Authn::Needs(Need::Keys {
                    issuer,
                    ever_fetched,
                });
            }
        };
        match principal {
            Ok(p) => {
                let p = Arc::new(p);
                ctx.cache.insert_valid(key, p.clone(), ctx.now, None);
                bearer::admit(p, ctx)
            }
            Err(e) => {
                ctx.cache.insert_invalid(key, e);
                bearer::refused(e)
            }
        }
    }
}
