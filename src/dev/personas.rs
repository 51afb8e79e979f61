//! The callers `dev` prints a curl line for: personas of the embedded configuration, each
//! with the answer it gets; or, with the user's own file, one caller per route holding what
//! the route's first alternative asks for.

use super::TokenRequest;
use crate::config::schema::{Auth, File, Principal, Route, ScopeExpr};

pub struct Persona {
    pub what: String,
    /// The answer it gets, when known (always for the embedded configuration's personas).
    pub expect: Option<u16>,
    pub method: String,
    pub path: String,
    pub token: Option<TokenRequest>,
    /// A legacy credential header instead of a token.
    pub header: Option<(&'static str, &'static str)>,
}

/// The `jti` of the token `dev` revokes at start.
pub(super) const REVOKED_JTI: &str = "dev-revoked-token";

fn token(sub: &str, client: &str, scope: &str, expires_in: i64) -> Option<TokenRequest> {
    Some(TokenRequest {
        sub: sub.into(),
        client_id: Some(client.into()),
        scope: scope.into(),
        expires_in,
        orgs: vec!["acme".into()],
        jti: None,
    })
}

/// The callers the banner shows, each with the answer it gets.
pub fn personas() -> Vec<Persona> {
    let persona = |what: &str, expect, path: &str, token| Persona {
        what: what.into(),
        expect: Some(expect),
        method: "GET".into(),
        path: path.into(),
        token,
        header: None,
    };
    let mut revoked = token("alice", "dev-dashboard", "repo", 3600);
    if let Some(t) = revoked.as_mut() {
        t.jti = Some(REVOKED_JTI.into());
    }
    vec![
        persona(
            "member of acme through an app acme approved (repo)",
            200,
            "/orgs/acme/repos",
            token("alice", "dev-dashboard", "repo read:org", 3600),
        ),
        persona(
            "the same member through a third-party app acme did not approve",
            403,
            "/orgs/acme/repos",
            token("alice", "third-party-app", "repo", 3600),
        ),
        persona(
            "app token (client credentials) with chat.bot",
            200,
            "/v1/spaces/AAAA",
            token("chat-bot", "chat-bot", "chat.bot", 3600),
        ),
        persona(
            "caller missing the scope (only read:org)",
            403,
            "/orgs/acme/repos",
            token("bob", "dev-dashboard", "read:org", 3600),
        ),
        persona("no token", 401, "/orgs/acme/repos", None),
        persona(
            "expired token",
            401,
            "/orgs/acme/repos",
            token("alice", "dev-dashboard", "repo", -300),
        ),
        persona(
            "token revoked by a Security Event Token pushed at start",
            401,
            "/orgs/acme/repos",
            revoked,
        ),
        Persona {
            header: Some(("X-API-Key", "dev-api-key-not-a-secret")),
            ..persona(
                "legacy API key (credentials: in the config)",
                200,
                "/orgs/acme/repos",
                None,
            )
        },
    ]
}

/// At most this many routes of a user's file get a line.
const MAX_ROUTES: usize = 12;

/// One caller per route of the user's file that takes tokens: a dev token with the scopes
/// (and kind of principal) of the route's first alternative, on a path made from its
/// pattern (`acme` for each parameter, `example` for a catch-all).
pub fn for_routes(file: &File) -> Vec<Persona> {
    file.routes
        .iter()
        .filter(|r| r.auth == Auth::Token)
        .take(MAX_ROUTES)
        .map(|route| {
            let (principal, scopes) = first_alternative(route);
            let (sub, client) = match principal {
                Some(Principal::App) => ("dev-app", "dev-app"),
                _ => ("alice", "dev-dashboard"),
            };
            let only_others = route
                .issuers
                .as_ref()
                .is_some_and(|ids| !ids.iter().any(|i| i == super::setup::ISSUER_ID));
            let what = format!(
                "route `{}`{}{}",
                route.name,
                if scopes.is_empty() {
                    String::new()
                } else {
                    format!(" with {}", scopes.join(" "))
                },
                if only_others {
                    " (it takes only its own issuers' tokens: refused)"
                } else {
                    ""
                }
            );
            Persona {
                what,
                expect: only_others.then_some(401),
                method: route
                    .matcher
                    .methods
                    .as_ref()
                    .and_then(|m| m.first().cloned())
                    .unwrap_or_else(|| "GET".into()),
                path: sample_path(&route.matcher.path),
                token: token(sub, client, &scopes.join(" "), 3600),
                header: None,
            }
        })
        .collect()
}

/// The kind of principal and the scopes that satisfy the route's first alternative.
fn first_alternative(route: &Route) -> (Option<Principal>, Vec<String>) {
    let Some(require) = &route.require else {
        return (None, Vec::new());
    };
    let (principal, scopes) = match require.any.as_ref().and_then(|a| a.first()) {
        Some(alt) => (alt.principal, alt.scopes.as_ref()),
        None => (require.principal, require.scopes.as_ref()),
    };
    let mut out = Vec::new();
    if let Some(e) = scopes {
        satisfy(e, &mut out);
    }
    (principal, out)
}

/// Scopes that satisfy `e`: every one of `all`, the first of `any`.
fn satisfy(e: &ScopeExpr, out: &mut Vec<String>) {
    match e {
        ScopeExpr::Scope(s) if !out.contains(s) => out.push(s.clone()),
        ScopeExpr::Scope(_) => {}
        ScopeExpr::All(xs) => xs.iter().for_each(|x| satisfy(x, out)),
        ScopeExpr::Any(xs) => xs.iter().take(1).for_each(|x| satisfy(x, out)),
    }
}

/// A path the pattern matches.
fn sample_path(pattern: &str) -> String {
    pattern
        .split('/')
        .map(
            |seg| match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) if name.starts_with('*') => "example",
                Some(_) => "acme",
                None => seg,
            },
        )
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes(yaml: &str) -> Vec<Persona> {
        let text = format!(
            "server: {{ listen: 127.0.0.1:1 }}\nupstreams: {{ api: {{ url: http://127.0.0.1:2 }} }}\nroutes:\n{yaml}"
        );
        for_routes(&crate::config::parse(&text, "t").unwrap())
    }

    #[test]
    fn each_route_gets_a_caller_with_what_its_first_alternative_asks() {
        let p = routes(
            "  - { name: open, match: { path: /health }, upstream: api, auth: none }
  - { name: repos, match: { methods: [POST], path: \"/orgs/{org}/repos/{*rest}\" }, upstream: api, require: { scopes: { all: [repo, { any: [admin, write] }] } } }
  - { name: bot, match: { path: /chat }, upstream: api, require: { any: [{ principal: app, scopes: chat.bot }, { scopes: chat }] } }
  - { name: theirs, match: { path: /t }, upstream: api, issuers: [corp], require: {} }",
        );
        assert_eq!(p.len(), 3, "public routes need no caller");
        assert_eq!(p[0].method, "POST");
        assert_eq!(p[0].path, "/orgs/acme/repos/example");
        assert_eq!(p[0].token.as_ref().unwrap().scope, "repo admin");
        assert_eq!(p[0].expect, None);
        let bot = p[1].token.as_ref().unwrap();
        assert_eq!(
            (bot.sub.as_str(), bot.scope.as_str()),
            ("dev-app", "chat.bot")
        );
        assert_eq!(p[2].expect, Some(401), "{}", p[2].what);
    }
}
