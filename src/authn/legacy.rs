//! Static and legacy credentials (API keys, Zoho authtokens during a migration to OAuth).
//!
//! The configuration holds only a SHA-256 of each secret. A presented secret is hashed and
//! compared in constant time with every digest configured for the same presentation, without
//! stopping at a match, so neither the answer's timing nor its content says how close a guess
//! was. The principal of each credential is built once, at load.

use super::{Authenticator, Authn, Context, Presented};
use crate::answer::Refusal;
use crate::credential::Source;
use crate::principal::Principal;
use crate::token::TokenError;
use std::sync::Arc;

pub type Digest = [u8; 32];

pub struct LegacyCredential {
    /// The operator's name for it (metrics label, `X-Auth-Issuer` when it has no issuer).
    pub id: String,
    /// Index into `credential::Rules::legacy`.
    pub presentation: usize,
    pub digest: Digest,
    pub principal: Arc<Principal>,
    /// Unix seconds from which the credential is refused.
    pub not_after: Option<u64>,
}

/// A configured credential that a presented secret is.
#[derive(Debug, PartialEq, Eq)]
pub struct LegacyMatch {
    /// Which credential it was (for the per-id counter).
    pub index: usize,
    /// Presented at or after its `not_after`.
    pub retired: bool,
}

#[derive(Default)]
pub struct LegacyCredentials {
    pub entries: Vec<LegacyCredential>,
}

impl LegacyCredentials {
    /// The credential whose secret has `digest` (its SHA-256), among those presented the way
    /// `presentation` says; `None` when it is none of them.
    pub fn find(&self, presentation: usize, digest: &Digest, now: u64) -> Option<LegacyMatch> {
        let mut found = None;
        for (i, c) in self.entries.iter().enumerate() {
            let same = aws_lc_rs::constant_time::verify_slices_are_equal(&c.digest, digest);
            if c.presentation == presentation && same.is_ok() {
                found = Some(i);
            }
        }
        let index = found?;
        let retired = self.entries[index].not_after.is_some_and(|t| now >= t);
        Some(LegacyMatch { index, retired })
    }
}

/// The legacy credentials, each presented its own way (a header, a scheme, a query
/// parameter).
pub struct LegacyKeys;

impl Authenticator for LegacyKeys {
    fn claims(&self, p: &Presented, _: &Context) -> bool {
        matches!(p.source, Source::Legacy(_))
    }

    /// Every use of a configured credential is counted, also after its `not_after`, so
    /// operators see who still has to migrate.
    fn authenticate(&self, p: &Presented, ctx: &Context) -> Authn {
        let Source::Legacy(presentation) = p.source else {
            return Authn::Refused(Refusal::InvalidToken(TokenError::Unknown));
        };
        let Some(m) = ctx.legacy.find(presentation, &p.digest, ctx.now) else {
            return Authn::Refused(Refusal::InvalidToken(TokenError::Unknown));
        };
        ctx.metrics.legacy_uses[m.index].inc();
        if m.retired {
            ctx.metrics.legacy_retired_uses[m.index].inc();
            return Authn::Refused(Refusal::RetiredCredential);
        }
        Authn::Authenticated(ctx.legacy.entries[m.index].principal.clone())
    }
}

/// The lowercase hex SHA-256 of a secret, as written in `credentials[].sha256`.
pub fn sha256_hex(secret: &str) -> String {
    crate::token::hash(secret)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Parses 64 hex digits (either case).
pub fn parse_digest(hex: &str) -> Option<Digest> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::principal::Kind;
    use http::HeaderValue;

    fn principal(subject: &'static str) -> Arc<Principal> {
        Arc::new(Principal {
            issuer: None,
            kind: Kind::App,
            subject: HeaderValue::from_static(subject),
            ..Principal::for_tests()
        })
    }

    fn table() -> LegacyCredentials {
        let entry = |id: &str, presentation, secret: &str, not_after| LegacyCredential {
            id: id.into(),
            presentation,
            digest: parse_digest(&sha256_hex(secret)).unwrap(),
            principal: principal("p"),
            not_after,
        };
        LegacyCredentials {
            entries: vec![
                entry("reporting", 0, "s3cret", None),
                entry("old", 0, "retired-key", Some(1_000)),
                entry("zoho", 1, "s3cret", None),
            ],
        }
    }

    #[test]
    fn a_configured_secret_is_found_with_its_presentation_only() {
        let t = table();
        let m = t.find(0, &crate::token::hash("s3cret"), 10).unwrap();
        assert_eq!(m.index, 0);
        assert!(!m.retired);
        // The same secret presented the other way is the other credential.
        assert_eq!(
            t.find(1, &crate::token::hash("s3cret"), 10).unwrap().index,
            2
        );
        assert!(t.find(0, &crate::token::hash("s3cret "), 10).is_none());
        assert!(t.find(0, &crate::token::hash("S3CRET"), 10).is_none());
        assert!(t.find(2, &crate::token::hash("s3cret"), 10).is_none());
    }

    #[test]
    fn a_credential_is_refused_from_its_not_after_on() {
        let t = table();
        assert!(
            !t.find(0, &crate::token::hash("retired-key"), 999)
                .unwrap()
                .retired
        );
        let late = t
            .find(0, &crate::token::hash("retired-key"), 1_000)
            .unwrap();
        assert_eq!(
            late,
            LegacyMatch {
                index: 1,
                retired: true
            }
        );
    }

    #[test]
    fn digests_are_written_and_read_as_64_hex_digits() {
        // The SHA-256 test vector of "test" (and of the design's example credential).
        let hex = sha256_hex("test");
        assert_eq!(
            hex,
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        );
        assert_eq!(parse_digest(&hex.to_uppercase()), parse_digest(&hex));
        assert!(parse_digest(&hex[1..]).is_none());
        assert!(parse_digest(&format!("{}zz", &hex[2..])).is_none());
    }
}
