//! `issuers:` — who may sign or vouch for tokens, and how each is checked.

use super::{algorithm, secure_url};
use crate::claim::Conditions;
use crate::config::schema::{self, ClientAuth};
use crate::config::{ConfigError, File};
use crate::token::{AppRule, ClaimNames, Dialect, IntrospectionRules, Issuer, OpaqueTokens};
use std::collections::HashSet;

/// `conditions` gains the claim conditions of each issuer's `app_tokens`.
pub fn compile(
    file: &File,
    conditions: &mut Conditions,
    origin: &str,
) -> Result<Vec<Issuer>, ConfigError> {
    let mut seen = HashSet::new();
    super::each("issuers", &file.issuers, |i| {
        if !seen.insert(i.id.as_str()) {
            return Err(ConfigError::new(
                origin,
                format!("issuer id `{}` appears twice", i.id),
            ));
        }
        issuer(i, conditions, origin)
    })
}

/// The longest `serve_stale_on_error`.
const MAX_STALE_WINDOW: std::time::Duration = std::time::Duration::from_secs(3600);

fn issuer(
    i: &schema::Issuer,
    conditions: &mut Conditions,
    origin: &str,
) -> Result<Issuer, ConfigError> {
    let here = |msg: &str| ConfigError::new(origin, format!("issuer `{}`: {msg}", i.id));
    // GitHub answers only for the app's own tokens: there is no audience to check.
    let github = i
        .introspection
        .as_ref()
        .is_some_and(|x| x.dialect == schema::Dialect::Github);
    if i.audiences.is_empty() && !github {
        return Err(here("`audiences` must name at least one audience"));
    }
    if i.introspection
        .as_ref()
        .is_some_and(|x| x.endpoint.is_none() && dialect(x.dialect).default_endpoint().is_none())
        && !i.discovery
    {
        return Err(here("set `introspection.endpoint` or leave `discovery` on"));
    }
    if let Some(x) = &i.introspection
        && dialect(x.dialect).needs_client_credentials()
        && (x.client_id.is_none() || x.client_secret.is_none())
    {
        return Err(here(
            "`introspection` needs `client_id` and `client_secret` in this dialect",
        ));
    }
    if (i.token_prefix.is_some() || i.token_pattern.is_some()) && i.introspection.is_none() {
        return Err(here(
            "`token_prefix` and `token_pattern` route opaque tokens, which need `introspection`",
        ));
    }
    // An issuer that only vouches for opaque tokens (GitHub) publishes no keys.
    if !i.discovery && i.jwks_uri.is_none() && i.introspection.is_none() {
        return Err(here(
            "set `jwks_uri`, leave `discovery` on, or configure `introspection`",
        ));
    }
    let pattern = match &i.token_pattern {
        None => None,
        Some(p) => Some(
            regex::Regex::new(&format!("^(?:{p})$"))
                .map_err(|e| here(&format!("`token_pattern` is not a regular expression: {e}")))?,
        ),
    };
    let what = |field: &str| format!("issuer `{}`: {field}", i.id);
    if i.discovery {
        secure_url(origin, &what("issuer"), &i.issuer, i.allow_http)?;
    }
    if let Some(u) = &i.jwks_uri {
        secure_url(origin, &what("jwks_uri"), u, i.allow_http)?;
    }
    if let Some(e) = i.introspection.as_ref().and_then(|x| x.endpoint.as_ref()) {
        secure_url(origin, &what("introspection.endpoint"), e, i.allow_http)?;
    }
    // A window is a bet that the token was not revoked meanwhile: kept short on purpose.
    if let Some(d) = i
        .introspection
        .as_ref()
        .and_then(|x| x.serve_stale_on_error)
        && (d.0.is_zero() || d.0 > MAX_STALE_WINDOW)
    {
        return Err(here(
            "`introspection.serve_stale_on_error` must be between 1s and 1h (leave it out for none)",
        ));
    }
    let algorithms = i
        .algorithms
        .iter()
        .map(|a| algorithm(origin, &format!("issuer `{}`", i.id), a))
        .collect::<Result<Vec<_>, _>>()?;
    let text =
        |v: &Option<crate::config::EnvString>| v.as_ref().map(|v| v.0.clone()).unwrap_or_default();
    let introspection = i.introspection.as_ref().map(|x| IntrospectionRules {
        dialect: dialect(x.dialect),
        endpoint: x.endpoint.as_ref().map(|e| e.0.clone()),
        client_id: text(&x.client_id),
        client_secret: text(&x.client_secret),
        post_credentials: x.auth == ClientAuth::ClientSecretPost,
        timeout: x.timeout.0,
        connect_timeout: x.connect_timeout.0,
        expires_in_field: x.expires_in_field.clone(),
        membership_ttl: x.membership_ttl.0,
        serve_stale_on_error: x.serve_stale_on_error.map(|d| d.0),
    });
    let mut issuer = Issuer::new(
        i.id.clone(),
        i.issuer.0.clone(),
        i.audiences.iter().map(|a| a.0.clone()).collect(),
        algorithms,
        i.typ.clone(),
        i.clock_skew.0,
        ClaimNames {
            scope: i.claims.scope.clone(),
            orgs: i.claims.orgs.clone(),
            sso_orgs: i.claims.sso_orgs.clone(),
            client_id: i.claims.client_id.clone(),
        },
        i.jwks_uri.as_ref().map(|u| u.0.clone()),
        i.discovery,
        i.jwks_refresh.0,
    )
    .with_introspection(
        introspection,
        OpaqueTokens {
            prefix: i.token_prefix.clone(),
            pattern,
        },
    );
    issuer.allow_http = i.allow_http;
    let schema::AppPrincipal::SubIsClientId = i.app_principal;
    let app = &i.app_tokens;
    issuer.app_rule = AppRule {
        sub_is_client_id: app.sub_is_client_id,
        without_subject: app.without_subject,
        claims: app
            .claims
            .as_ref()
            .map(|c| super::claims::expr(c, conditions))
            .transpose()
            .map_err(|e| here(&format!("app_tokens.claims: {e}")))?,
    };
    Ok(issuer)
}

fn dialect(d: schema::Dialect) -> Dialect {
    match d {
        schema::Dialect::Rfc7662 => Dialect::Rfc7662,
        schema::Dialect::GoogleTokeninfo => Dialect::GoogleTokeninfo,
        schema::Dialect::Github => Dialect::Github,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(issuer: &str) -> String {
        let yaml = format!(
            "server: {{ listen: 127.0.0.1:1 }}\nupstreams: {{}}\nroutes: []\nissuers:\n  - {issuer}"
        );
        let file = crate::config::parse(&yaml, "t").unwrap();
        compile(&file, &mut Conditions::default(), "t")
            .map(|_| ())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn an_issuer_without_audiences_is_refused() {
        let e = error("{ id: a, issuer: https://a, audiences: [] }");
        assert!(
            e.contains("`audiences` must name at least one audience"),
            "{e}"
        );
    }

    #[test]
    fn shared_secret_and_unknown_algorithms_are_refused() {
        let e = error("{ id: a, issuer: https://a, audiences: [x], algorithms: [HS256] }");
        assert!(e.contains("shared-secret algorithm"), "{e}");
        let e = error("{ id: a, issuer: https://a, audiences: [x], algorithms: [XY999] }");
        assert!(e.contains("unknown algorithm `XY999`"), "{e}");
    }

    #[test]
    fn a_stale_window_is_between_a_second_and_an_hour() {
        let with = |w: &str| {
            format!(
                "{{ id: a, issuer: https://a, audiences: [x], introspection: {{ endpoint: https://a/i, client_id: c, client_secret: s, serve_stale_on_error: {w} }} }}"
            )
        };
        for bad in ["0s", "2h"] {
            let e = error(&with(bad));
            assert!(e.contains("must be between 1s and 1h"), "{bad}: {e}");
        }
    }

    #[test]
    fn keys_need_a_source_and_a_token_prefix_needs_introspection() {
        let e = error("{ id: a, issuer: https://a, audiences: [x], discovery: false }");
        assert!(e.contains("set `jwks_uri`, leave `discovery` on"), "{e}");
        let e = error("{ id: a, issuer: https://a, audiences: [x], token_prefix: \"1000.\" }");
        assert!(
            e.contains("`token_prefix` and `token_pattern` route opaque"),
            "{e}"
        );
        let e = error("{ id: a, issuer: https://a, audiences: [x], token_pattern: \"gho_.*\" }");
        assert!(
            e.contains("`token_prefix` and `token_pattern` route opaque"),
            "{e}"
        );
        let e = error(
            "{ id: a, issuer: https://a, audiences: [x], discovery: false, jwks_uri: http://k, introspection: { client_id: c, client_secret: s } }",
        );
        assert!(e.contains("set `introspection.endpoint`"), "{e}");
    }

    #[test]
    fn dialects_say_what_they_need() {
        // RFC 7662 and GitHub authenticate the gateway (or the app); Google's tokeninfo not.
        for dialect in ["rfc7662", "github"] {
            let e = error(&format!(
                "{{ id: a, issuer: https://a, audiences: [x], discovery: false, introspection: {{ dialect: {dialect}, endpoint: https://i }} }}"
            ));
            assert!(
                e.contains("needs `client_id` and `client_secret`"),
                "{dialect}: {e}"
            );
        }
        let ok = |issuer: &str| {
            let yaml = format!(
                "server: {{ listen: 127.0.0.1:1 }}\nupstreams: {{}}\nroutes: []\nissuers:\n  - {issuer}"
            );
            compile(
                &crate::config::parse(&yaml, "t").unwrap(),
                &mut Conditions::default(),
                "t",
            )
            .unwrap()
        };
        // Provider dialects need neither keys nor an endpoint: they have their own.
        let google = ok(
            "{ id: g, issuer: https://accounts.google.com, audiences: [c1], discovery: false, introspection: { dialect: google_tokeninfo }, token_prefix: ya29. }",
        );
        assert!(!google[0].has_keys());
        assert_eq!(
            google[0].introspection_endpoint(&Default::default()),
            Some("https://oauth2.googleapis.com/tokeninfo")
        );
        let github = ok(
            "{ id: gh, issuer: https://github.com, audiences: [api], discovery: false, introspection: { dialect: github, client_id: Iv1.abc, client_secret: s }, token_pattern: \"gh[ou]_[A-Za-z0-9]{36}\" }",
        );
        assert!(github[0].asks_membership());
        let tokens = &github[0].opaque_tokens;
        assert!(tokens.claims("gho_16C7e42F292c6912E7710c838347Ae178B4a"));
        assert!(
            !tokens.claims("xgho_16C7e42F292c6912E7710c838347Ae178B4a"),
            "the whole token must match"
        );
        assert!(!tokens.claims("ghp_16C7e42F292c6912E7710c838347Ae178B4a"));
        let e = error(
            "{ id: a, issuer: https://a, audiences: [x], introspection: { client_id: c, client_secret: s }, token_pattern: \"(\" }",
        );
        assert!(
            e.contains("`token_pattern` is not a regular expression"),
            "{e}"
        );
    }

    #[test]
    fn an_issuer_id_given_twice_is_refused() {
        let e = error(
            "{ id: a, issuer: https://a, audiences: [x] }\n  - { id: a, issuer: https://b, audiences: [x] }",
        );
        assert!(e.contains("issuer id `a` appears twice"), "{e}");
    }
}
