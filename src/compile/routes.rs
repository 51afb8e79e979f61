//! `routes:` — the route table, each route's requirement, organization binding, issuers and
//! its 403 rendered once.

use super::header_name;
use crate::answer::Forbidden;
use crate::claim::Conditions;
use crate::config::schema::{self, Auth};
use crate::config::{ConfigError, File};
use crate::decision::{OrgRule, OrgSource, RouteRules};
use crate::policy::{Alternative, Requirement};
use crate::principal::Kind;
use crate::route::{HostMatch, HostTable, MethodSet, Pattern, Rewrite, Segment};
use crate::scope::{ScopeExpr, ScopeUniverse};
use std::collections::HashSet;
use std::sync::Arc;

/// Every scope named in implications, routes and legacy credentials gets a bit.
pub fn universe(file: &File) -> ScopeUniverse {
    let used = file.routes.iter().flat_map(schema::Route::scopes).chain(
        file.credentials
            .iter()
            .flat_map(|c| c.scopes.iter().map(String::as_str)),
    );
    ScopeUniverse::build(&file.scopes.implies, used)
}

pub fn kind(p: schema::Principal) -> Kind {
    match p {
        schema::Principal::User => Kind::User,
        schema::Principal::App => Kind::App,
    }
}

fn expr(e: &schema::ScopeExpr, u: &ScopeUniverse) -> ScopeExpr {
    match e {
        schema::ScopeExpr::Scope(s) => ScopeExpr::Scope(u.id(s).expect("interned by universe()")),
        schema::ScopeExpr::Any(xs) => ScopeExpr::Any(xs.iter().map(|x| expr(x, u)).collect()),
        schema::ScopeExpr::All(xs) => ScopeExpr::All(xs.iter().map(|x| expr(x, u)).collect()),
    }
}

pub fn compile(
    file: &File,
    universe: &ScopeUniverse,
    conditions: &mut Conditions,
    origin: &str,
) -> Result<(HostTable, Vec<RouteRules>), ConfigError> {
    let upstreams: Vec<&str> = file.upstreams.keys().map(String::as_str).collect();
    let mut names = HashSet::new();
    let mut n = 0;
    // Its errors are reported by the global section's compile.
    let global_cors = file
        .cors
        .as_ref()
        .and_then(|c| super::cors::compile(c).ok());
    let compiled = super::each("routes", &file.routes, |r| {
        let index = n;
        n += 1;
        let key = |field: &str| format!("routes[{index}].{field}");
        let here = |msg: String| ConfigError::new(origin, format!("route `{}`: {msg}", r.name));
        if !names.insert(r.name.as_str()) {
            return Err(here("the name appears twice".into()).key(key("name")));
        }
        let pattern =
            Pattern::parse(&r.matcher.path).map_err(|e| here(e).key(key("match.path")))?;
        let rewrite = match (&r.strip_prefix, &r.rewrite) {
            (Some(_), Some(_)) => {
                return Err(
                    here("`strip_prefix` or `rewrite`, not both".into()).key(key("rewrite"))
                );
            }
            (Some(p), None) => {
                Some(Rewrite::strip(p, &pattern).map_err(|e| here(e).key(key("strip_prefix")))?)
            }
            (None, Some(t)) => {
                Some(Rewrite::template(t, &pattern).map_err(|e| here(e).key(key("rewrite")))?)
            }
            (None, None) => None,
        };
        let host = match &r.matcher.host {
            Some(h) => HostMatch::parse(h).map_err(|e| here(e).key(key("match.host")))?,
            None => HostMatch::Any,
        };
        let methods = match &r.matcher.methods {
            Some(m) => MethodSet::parse(m).map_err(|e| here(e).key(key("match.methods")))?,
            None => MethodSet::ALL,
        };
        let upstream = upstreams
            .iter()
            .position(|u| *u == r.upstream)
            .ok_or_else(|| {
                here(format!(
                    "upstream `{}` is not defined (known: {})",
                    r.upstream,
                    upstreams.join(", ")
                ))
                .key(key("upstream"))
            })?;
        let requirement =
            requirement(r, universe, conditions).map_err(|e| here(e).key(key("require")))?;
        if requirement.is_some() && file.issuers.is_empty() {
            return Err(here(
                "a protected route needs at least one entry in `issuers`".into(),
            ));
        }
        let org = match r.require.as_ref().and_then(|q| q.org.as_ref()) {
            None => None,
            Some(b) => Some(org_rule(b, &pattern, origin).map_err(|e| match e {
                Bad::Here(m) => here(m).key(key("require.org")),
                Bad::Config(e) => e,
            })?),
        };
        let issuers = r
            .issuers
            .as_ref()
            .map(|ids| route_issuers(file, ids, requirement.is_some()))
            .transpose()
            .map_err(|e| here(e).key(key("issuers")))?;
        let forbidden = requirement.as_ref().map(|q| {
            Arc::new(Forbidden::new(
                &q.accepted_scopes,
                &q.accepted_header,
                &q.needs,
            ))
        });
        Ok((
            (host, pattern, methods),
            RouteRules {
                cors: match &r.cors {
                    Some(c) => Some(super::cors::compile(c).map_err(|e| here(e).key(key("cors")))?),
                    None => global_cors.clone(),
                },
                rate_limits: r
                    .rate_limits
                    .iter()
                    .map(|l| super::rate_limits::compile(file, l, &r.name))
                    .collect::<Result<_, _>>()
                    .map_err(|e| here(e).key(key("rate_limits")))?,
                report_only: r.mode == schema::RouteMode::Report,
                name: r.name.clone(),
                upstream,
                requirement,
                forbidden,
                org,
                issuers,
                max_body_bytes: r.max_body_bytes,
                rewrite,
                retry: r.retry,
                websocket: r
                    .websocket
                    .as_ref()
                    .map(|w| websocket(w, &file.upstreams[&r.upstream]))
                    .transpose()
                    .map_err(|e| here(e).key(key("websocket")))?,
            },
        ))
    })?;
    let (patterns, routes): (Vec<_>, Vec<_>) = compiled.into_iter().unzip();
    Ok((HostTable::build(&patterns), routes))
}

/// A route's WebSocket rules; its upstream must speak HTTP/1.1, where the handshake is an
/// `Upgrade` (RFC 8441's extended CONNECT to an HTTP/2 upstream is not done).
fn websocket(
    w: &schema::WebSocket,
    upstream: &schema::Upstream,
) -> Result<crate::websocket::Rules, String> {
    if upstream.protocol != schema::UpstreamProtocol::Http1 {
        return Err(
            "WebSocket is tunnelled to an `http1` upstream only: this route's upstream speaks HTTP/2"
                .into(),
        );
    }
    Ok(crate::websocket::Rules {
        close_on_revoke: w.close_on_revoke,
        close_at_token_expiry: w.close_at_token_expiry,
        max_lifetime: w.max_lifetime.as_ref().map(|d| d.0),
        idle_timeout: w.idle_timeout.as_ref().map(|d| d.0),
    })
}

fn requirement(
    r: &schema::Route,
    universe: &ScopeUniverse,
    conditions: &mut Conditions,
) -> Result<Option<Requirement>, String> {
    let req = match (r.auth, &r.require) {
        (Auth::None, Some(_)) => {
            return Err("`auth: none` and `require` contradict each other".into());
        }
        (Auth::None, None) => return Ok(None),
        (Auth::Token, None) => {
            return Err("a protected route needs `require:` (write `require: {}` to accept any valid token, or `auth: none` for a public route)".into());
        }
        (Auth::Token, Some(req)) => req,
    };
    let mut alternative = |principal: Option<schema::Principal>,
                           scopes: &Option<schema::ScopeExpr>,
                           claims: &Option<schema::ClaimRule>|
     -> Result<Alternative, String> {
        Ok(Alternative {
            principal: principal.map(kind),
            scopes: scopes.as_ref().map(|e| expr(e, universe)),
            claims: claims
                .as_ref()
                .map(|c| super::claims::expr(c, conditions))
                .transpose()
                .map_err(|e| format!("claims: {e}"))?,
        })
    };
    let alternatives = match &req.any {
        Some(_) if req.scopes.is_some() || req.principal.is_some() || req.claims.is_some() => {
            return Err(
                "`require` takes either `any:` alternatives or `scopes`/`principal`/`claims`, not both"
                    .into(),
            );
        }
        Some(alts) if alts.is_empty() => {
            return Err("`require: { any: [] }` can never be satisfied".into());
        }
        Some(alts) => alts
            .iter()
            .map(|a| alternative(a.principal, &a.scopes, &a.claims))
            .collect::<Result<_, _>>()?,
        None => vec![alternative(req.principal, &req.scopes, &req.claims)?],
    };
    Ok(Some(Requirement::new(alternatives, universe)))
}

/// An organization binding's error: about the route, or a header name.
enum Bad {
    Here(String),
    Config(ConfigError),
}

fn org_rule(b: &schema::OrgBinding, pattern: &Pattern, origin: &str) -> Result<OrgRule, Bad> {
    let source = match (&b.param, &b.header, &b.name) {
        (Some(p), None, None) => {
            let named = pattern
                .segments
                .iter()
                .any(|s| matches!(s, Segment::Param(n) | Segment::CatchAll(n) if n == p));
            if !named {
                return Err(Bad::Here(format!(
                    "`org: {{ param: {p} }}`: the path has no `{{{p}}}`"
                )));
            }
            OrgSource::Param(p.clone())
        }
        (None, Some(h), None) => {
            OrgSource::Header(header_name(origin, "require.org.header", h).map_err(Bad::Config)?)
        }
        (None, None, Some(n)) => OrgSource::Name(n.clone()),
        _ => {
            return Err(Bad::Here(
                "`org` takes exactly one of `param`, `header` or `name`".into(),
            ));
        }
    };
    Ok(OrgRule {
        source,
        private: b.visibility == schema::Visibility::Private,
    })
}

fn route_issuers(file: &File, ids: &[String], protected: bool) -> Result<Box<[usize]>, String> {
    if !protected {
        return Err("`issuers` on a public route checks nothing".into());
    }
    if ids.is_empty() {
        return Err("`issuers: []` accepts no credential".into());
    }
    ids.iter()
        .map(|id| {
            file.issuers
                .iter()
                .position(|i| &i.id == id)
                .ok_or_else(|| format!("issuers: `{id}` is not a configured issuer"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(routes: &str) -> String {
        let yaml = format!(
            "server: {{ listen: 127.0.0.1:1 }}\nissuers: [{{ id: corp, issuer: https://a, audiences: [x] }}]\nupstreams: {{ api: {{ url: http://127.0.0.1:2 }} }}\nroutes:\n{routes}"
        );
        let file = crate::config::parse(&yaml, "t").unwrap();
        compile(&file, &universe(&file), &mut Conditions::default(), "t")
            .map(|_| ())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_protected_route_without_require_is_refused_with_the_fix() {
        let e = error("  - { name: r, match: { path: /r }, upstream: api }");
        assert!(
            e.contains("route `r`: a protected route needs `require:`"),
            "{e}"
        );
    }

    #[test]
    fn contradictions_in_require_are_refused() {
        let e =
            error("  - { name: r, match: { path: /r }, upstream: api, auth: none, require: {} }");
        assert!(e.contains("`auth: none` and `require` contradict"), "{e}");
        let e = error(
            "  - { name: r, match: { path: /r }, upstream: api, require: { scopes: a, any: [{ scopes: b }] } }",
        );
        assert!(e.contains("either `any:` alternatives or `scopes`"), "{e}");
        let e = error("  - { name: r, match: { path: /r }, upstream: api, require: { any: [] } }");
        assert!(e.contains("can never be satisfied"), "{e}");
    }

    #[test]
    fn unknown_upstreams_issuers_and_path_parameters_are_named() {
        let e = error("  - { name: r, match: { path: /r }, upstream: nope, require: {} }");
        assert!(
            e.contains("upstream `nope` is not defined (known: api)"),
            "{e}"
        );
        let e = error(
            "  - { name: r, match: { path: /r }, upstream: api, issuers: [us9], require: {} }",
        );
        assert!(
            e.contains("issuers: `us9` is not a configured issuer"),
            "{e}"
        );
        let e = error(
            "  - { name: r, match: { path: /r }, upstream: api, require: { org: { param: org } } }",
        );
        assert!(e.contains("the path has no `{org}`"), "{e}");
    }

    #[test]
    fn route_names_are_unique_and_issuers_only_on_protected_routes() {
        let e = error(
            "  - { name: r, match: { path: /a }, upstream: api, auth: none }\n  - { name: r, match: { path: /b }, upstream: api, auth: none }",
        );
        assert!(e.contains("route `r`: the name appears twice"), "{e}");
        let e = error(
            "  - { name: r, match: { path: /a }, upstream: api, auth: none, issuers: [corp] }",
        );
        assert!(
            e.contains("`issuers` on a public route checks nothing"),
            "{e}"
        );
    }

    #[test]
    fn a_bad_pattern_or_method_is_refused_with_the_route_name() {
        let e =
            error("  - { name: r, match: { path: \"/a/{*x}/b\" }, upstream: api, require: {} }");
        assert!(e.contains("route `r`: path pattern"), "{e}");
        let e = error(
            "  - { name: r, match: { path: /a, methods: [FETCH] }, upstream: api, require: {} }",
        );
        assert!(e.contains("unknown method `FETCH`"), "{e}");
    }
}
