//! `credentials:` and `tokens:` — where credentials are presented, and the legacy
//! credentials with the principal each stands for, built once.

use super::header_name;
use super::routes::kind;
use crate::authn::{self, LegacyCredential, LegacyCredentials};
use crate::config::{ConfigError, File};
use crate::credential::{self, Presentation};
use crate::principal::{Extras, Principal};
use crate::token::Principals;
use http::HeaderValue;
use std::sync::Arc;

/// The extraction rules and the legacy credentials.
pub fn compile(
    file: &File,
    origin: &str,
    principals: &Principals,
) -> Result<(credential::Rules, LegacyCredentials), ConfigError> {
    let t = &file.tokens;
    if t.schemes.is_empty() {
        return Err(ConfigError::new(
            origin,
            "tokens.schemes must name at least one scheme",
        ));
    }
    for s in &t.schemes {
        if s.is_empty() || s.contains(' ') {
            return Err(ConfigError::new(
                origin,
                format!("tokens.schemes: `{s}` is not a scheme"),
            ));
        }
    }
    let (legacy, presentations) = legacy(file, origin, principals)?;
    let rules = credential::Rules {
        schemes: t.schemes.clone(),
        query_parameter: t.query_parameter,
        legacy: presentations,
    };
    Ok((rules, legacy))
}

/// The static and legacy credentials, with the distinct ways they are presented.
fn legacy(
    file: &File,
    origin: &str,
    principals: &Principals,
) -> Result<(LegacyCredentials, Vec<Presentation>), ConfigError> {
    let mut presentations: Vec<Presentation> = Vec::new();
    let mut entries: Vec<LegacyCredential> = Vec::new();
    for c in &file.credentials {
        let here = |msg: String| ConfigError::new(origin, format!("credential `{}`: {msg}", c.id));
        if entries.iter().any(|e| e.id == c.id) {
            return Err(here("the id appears twice".into()));
        }
        let presentation = match (&c.header, &c.scheme, &c.query) {
            (Some(h), None, None) => {
                let name = header_name(origin, &format!("credential `{}`: header", c.id), h)?;
                if name == http::header::AUTHORIZATION {
                    return Err(here(
                        "an Authorization header is presented with a `scheme:`".into(),
                    ));
                }
                Presentation::Header(name)
            }
            (None, Some(s), None) => {
                if s.is_empty() || !s.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(here(format!("`{s}` is not a scheme")));
                }
                if file
                    .tokens
                    .schemes
                    .iter()
                    .any(|t| t.eq_ignore_ascii_case(s))
                {
                    return Err(here(format!(
                        "scheme `{s}` is also in tokens.schemes: a scheme carries either OAuth tokens or legacy credentials"
                    )));
                }
                Presentation::Scheme(s.to_ascii_lowercase())
            }
            (None, None, Some(q)) => {
                if q.is_empty() || q == credential::QUERY_PARAMETER {
                    return Err(here(format!("`{q}` cannot be a legacy query parameter")));
                }
                Presentation::Query(q.clone())
            }
            _ => {
                return Err(here(
                    "set exactly one of `header`, `scheme` or `query` (how it is presented)".into(),
                ));
            }
        };
        let presentation = match presentations.iter().position(|p| *p == presentation) {
            Some(i) => i,
            None => {
                presentations.push(presentation);
                presentations.len() - 1
            }
        };
        let digest = authn::parse_digest(&c.sha256).ok_or_else(|| {
            here("`sha256` must be 64 hex digits (see `scopegate hash-credential`)".into())
        })?;
        if entries
            .iter()
            .any(|e| e.digest == digest && e.presentation == presentation)
        {
            return Err(here(
                "another credential has the same secret and presentation".into(),
            ));
        }
        let issuer = c
            .issuer
            .as_ref()
            .map(|id| {
                file.issuers
                    .iter()
                    .position(|i| &i.id == id)
                    .ok_or_else(|| here(format!("issuer `{id}` is not defined")))
            })
            .transpose()?;
        let value = |what: &str, s: &str| {
            HeaderValue::from_str(s)
                .map_err(|_| here(format!("{what} `{s}` is not a header value")))
        };
        let scopes: Vec<&str> = c.scopes.iter().map(String::as_str).collect();
        let grant = principals
            .grant(&scopes)
            .map_err(|_| here("a scope is not a header value".into()))?;
        let principal = Principal {
            issuer,
            kind: kind(c.principal),
            expires_at: c.not_after.map_or(u64::MAX, |t| t.0),
            issued_at: 0,
            jti: None,
            subject: value("subject", &c.subject)?,
            client_id: c
                .client_id
                .as_deref()
                .map(|s| value("client_id", s).map(Arc::new))
                .transpose()?,
            issuer_id: match issuer {
                Some(i) => principals.issuer_id(i),
                None => Arc::new(value("id", &format!("credential:{}", c.id))?),
            },
            grant,
            // No claims: a static credential meets no claim condition.
            conditions: Default::default(),
            // One principal per credential, kept for the configuration's life: always with
            // a slot for its minted assertion.
            extras: Some(Box::new(Extras {
                orgs: c.orgs.iter().map(|o| o.as_str().into()).collect(),
                ..Extras::default()
            })),
        };
        entries.push(LegacyCredential {
            id: c.id.clone(),
            presentation,
            digest,
            principal: Arc::new(principal),
            not_after: c.not_after.map(|t| t.0),
        });
    }
    Ok((LegacyCredentials { entries }, presentations))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(credentials: &str) -> String {
        let yaml = format!(
            "server: {{ listen: 127.0.0.1:1 }}\nupstreams: {{}}\nroutes: []\ncredentials:\n{credentials}"
        );
        let file = crate::config::parse(&yaml, "t").unwrap();
        let principals = Principals::new(
            super::super::routes::universe(&file),
            Default::default(),
            &[],
        );
        compile(&file, "t", &principals)
            .map(|_| ())
            .unwrap_err()
            .to_string()
    }

    const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    #[test]
    fn a_credential_needs_exactly_one_presentation() {
        let e = error(&format!("  - {{ id: k, sha256: {HASH}, subject: s }}"));
        assert!(
            e.contains("credential `k`: set exactly one of `header`, `scheme` or `query`"),
            "{e}"
        );
        let e = error(&format!(
            "  - {{ id: k, header: X-Key, query: key, sha256: {HASH}, subject: s }}"
        ));
        assert!(e.contains("set exactly one of"), "{e}");
    }

    #[test]
    fn a_digest_that_is_not_sha256_hex_is_refused() {
        let e = error("  - { id: k, header: X-Key, sha256: abc, subject: s }");
        assert!(e.contains("`sha256` must be 64 hex digits"), "{e}");
    }

    #[test]
    fn ids_and_secrets_per_presentation_are_unique() {
        let e = error(&format!(
            "  - {{ id: k, header: X-Key, sha256: {HASH}, subject: s }}\n  - {{ id: k, header: X-Other, sha256: {HASH}, subject: s }}"
        ));
        assert!(e.contains("credential `k`: the id appears twice"), "{e}");
        let e = error(&format!(
            "  - {{ id: a, header: X-Key, sha256: {HASH}, subject: s }}\n  - {{ id: b, header: X-Key, sha256: {HASH}, subject: s }}"
        ));
        assert!(e.contains("the same secret and presentation"), "{e}");
    }

    #[test]
    fn authorization_access_token_and_bearer_schemes_are_not_legacy_presentations() {
        let e = error(&format!(
            "  - {{ id: k, header: Authorization, sha256: {HASH}, subject: s }}"
        ));
        assert!(e.contains("presented with a `scheme:`"), "{e}");
        let e = error(&format!(
            "  - {{ id: k, query: access_token, sha256: {HASH}, subject: s }}"
        ));
        assert!(e.contains("cannot be a legacy query parameter"), "{e}");
        let e = error(&format!(
            "  - {{ id: k, scheme: bearer, sha256: {HASH}, subject: s }}"
        ));
        assert!(e.contains("is also in tokens.schemes"), "{e}");
    }

    #[test]
    fn a_credential_of_an_unknown_issuer_is_refused() {
        let e = error(&format!(
            "  - {{ id: k, header: X-Key, sha256: {HASH}, subject: s, issuer: nope }}"
        ));
        assert!(e.contains("issuer `nope` is not defined"), "{e}");
    }
}
