//! Warnings of `scopegate check`: things that are valid but almost certainly not meant.

use crate::config::File;
use crate::route::{MethodSet, Pattern};
use crate::scope::ScopeUniverse;

/// Warnings for a configuration that compiled; they do not fail `check`.
pub fn lint(file: &File) -> Vec<String> {
    let mut warnings = Vec::new();
    if let Some(c) = &file.cluster
        && c.key_prefix == crate::config::schema::DEFAULT_KEY_PREFIX
    {
        warnings.push(format!(
            "cluster.key_prefix is the default `{}`: give each deployment its own, so that two sharing a Redis never read each other's state",
            c.key_prefix
        ));
    }
    let compiled: Vec<Option<(Pattern, MethodSet)>> = file
        .routes
        .iter()
        .map(|r| {
            let p = Pattern::parse(&r.matcher.path).ok()?;
            let m = match &r.matcher.methods {
                Some(m) => MethodSet::parse(m).ok()?,
                None => MethodSet::ALL,
            };
            Some((p, m))
        })
        .collect();
    for (j, later) in compiled.iter().enumerate() {
        let Some((pj, mj)) = later else { continue };
        if let Some(i) = compiled[..j].iter().position(|earlier| {
            earlier
                .as_ref()
                .is_some_and(|(pi, mi)| pi.covers(pj) && mi.is_superset(*mj))
        }) {
            warnings.push(format!(
                "route `{}` is never reached: route `{}` before it matches every request it would",
                file.routes[j].name, file.routes[i].name
            ));
        }
    }

    // Only knowable when every issuer says what it can grant.
    let supported: Option<Vec<&String>> = file
        .issuers
        .iter()
        .map(|i| i.scopes_supported.as_ref())
        .collect::<Option<Vec<_>>>()
        .map(|lists| lists.into_iter().flatten().collect());
    if let Some(supported) = supported.filter(|_| !file.issuers.is_empty()) {
        let used: Vec<&str> = file.routes.iter().flat_map(|r| r.scopes()).collect();
        let universe = ScopeUniverse::build(&file.scopes.implies, used.iter().copied());
        let grantable = universe.grant(supported.iter().map(|s| s.as_str()));
        for r in &file.routes {
            for s in r.scopes() {
                if !grantable.effective.iter().any(|g| g == s) {
                    warnings.push(format!(
                        "route `{}` accepts scope `{s}`, which no issuer grants (scopes_supported), directly or by implication",
                        r.name
                    ));
                }
            }
        }
    }

    // Kept on purpose during a migration, but worth saying: they only produce 401s now.
    // Each opaque token would be sent to every one of them in turn: one provider would see
    // another's tokens.
    let unrouted: Vec<&str> = file
        .issuers
        .iter()
        .filter(|i| {
            i.introspection.is_some() && i.token_prefix.is_none() && i.token_pattern.is_none()
        })
        .map(|i| i.id.as_str())
        .collect();
    if unrouted.len() > 1 {
        warnings.push(format!(
            "issuers `{}` introspect opaque tokens without `token_prefix` or `token_pattern`: each such token is sent to all of them in turn, so one provider sees the others' tokens",
            unrouted.join("`, `")
        ));
    }

    let now = crate::clock::unix_now();
    for c in &file.credentials {
        if c.not_after.is_some_and(|t| t.0 <= now) {
            warnings.push(format!(
                "credential `{}` is past its not_after: every use is refused (remove it once its uses stop)",
                c.id
            ));
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warnings(routes: &str, issuers: &str) -> Vec<String> {
        let yaml = format!(
            "server: {{ listen: 127.0.0.1:1 }}\nupstreams: {{ api: {{ url: http://127.0.0.1:2 }} }}\n{issuers}\nroutes:\n{routes}"
        );
        lint(&crate::config::parse(&yaml, "t").unwrap())
    }

    #[test]
    fn a_route_after_a_broader_one_is_reported_as_shadowed() {
        let w = warnings(
            "  - { name: all, match: { path: \"/{*x}\" }, upstream: api, auth: none }\n  - { name: health, match: { path: /health }, upstream: api, auth: none }\n",
            "",
        );
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("`health` is never reached"), "{w:?}");
    }

    #[test]
    fn a_narrower_method_set_first_does_not_shadow() {
        let w = warnings(
            "  - { name: get, match: { methods: [GET], path: /r }, upstream: api, auth: none }\n  - { name: any, match: { path: /r }, upstream: api, auth: none }\n",
            "",
        );
        assert!(w.is_empty(), "{w:?}");
    }

    #[test]
    fn a_scope_no_issuer_grants_is_reported_when_issuers_say_what_they_grant() {
        let issuers =
            "issuers:\n  - { id: a, issuer: https://a, audiences: [x], scopes_supported: [repo] }";
        let w = warnings(
            "  - { name: r, match: { path: /r }, upstream: api, require: { scopes: { any: [repo:status, admin] } } }\n",
            &format!("{issuers}\nscopes: {{ implies: {{ repo: [repo:status] }} }}"),
        );
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("scope `admin`"), "{w:?}");
    }

    #[test]
    fn introspecting_issuers_that_do_not_route_their_tokens_are_reported() {
        let issuer = |id: &str, routed: &str| {
            format!(
                "  - {{ id: {id}, issuer: https://{id}, audiences: [x], introspection: {{ endpoint: https://{id}/i, client_id: c, client_secret: s }}{routed} }}\n"
            )
        };
        let route = "  - { name: h, match: { path: /h }, upstream: api, auth: none }\n";
        let w = warnings(
            route,
            &format!("issuers:\n{}{}", issuer("a", ""), issuer("b", "")),
        );
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].contains("issuers `a`, `b` introspect opaque tokens"),
            "{w:?}"
        );
        // One of them routed by prefix, the other by pattern: nothing to say.
        let w = warnings(
            route,
            &format!(
                "issuers:\n{}{}",
                issuer("a", ", token_prefix: \"1000.\""),
                issuer("b", ", token_pattern: \"gh[ou]_.*\"")
            ),
        );
        assert!(w.is_empty(), "{w:?}");
        // A single unrouted one is asked about every opaque token: that is its job.
        let w = warnings(
            route,
            &format!(
                "issuers:\n{}{}",
                issuer("a", ""),
                issuer("b", ", token_prefix: x")
            ),
        );
        assert!(w.is_empty(), "{w:?}");
    }

    #[test]
    fn a_credential_past_its_not_after_is_reported() {
        let hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        let credentials = format!(
            "credentials:\n  - {{ id: old, header: X-Key, sha256: {hash}, subject: s, not_after: 2020-01-01T00:00:00Z }}\n  - {{ id: new, header: X-Key2, sha256: {hash}, subject: s, not_after: 2999-01-01T00:00:00Z }}"
        );
        let w = warnings(
            "  - { name: h, match: { path: /h }, upstream: api, auth: none }\n",
            &credentials,
        );
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].contains("credential `old` is past its not_after"),
            "{w:?}"
        );
    }
}
