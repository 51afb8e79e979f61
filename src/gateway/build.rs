//! Compiling a parsed configuration into a [`Gateway`]: every cross-reference resolved and
//! every value checked once, so the request path never meets an invalid setting.

use super::{Gateway, OrgRule, OrgSource, RouteInfo, Upstream};
use crate::answer::Forbidden;
use crate::config::EnvString;
use crate::config::schema::{self, Auth, KeepOrStrip};
use crate::config::{ConfigError, File};
use crate::credential;
use crate::forward::{ForwardPolicy, IdentityNames};
use crate::metrics::Metrics;
use crate::policy::{Alternative, OrgPolicy, Organizations, Requirement, ScopeExpr, ScopeUniverse};
use crate::principal::Kind;
use crate::request::Limits;
use crate::route::{MethodSet, Pattern, RouteTable, Segment};
use crate::token::{
    ClaimNames, IntrospectionRules, Issuer, PollRules, Principals, Revocations, SetKeys, SetRules,
    TokenCache,
};
use http::HeaderName;
use jsonwebtoken::Algorithm;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;

fn scope_names<'a>(e: &'a schema::ScopeExpr, out: &mut Vec<&'a str>) {
    match e {
        schema::ScopeExpr::Scope(s) => out.push(s),
        schema::ScopeExpr::Any(xs) | schema::ScopeExpr::All(xs) => {
            xs.iter().for_each(|x| scope_names(x, out))
        }
    }
}

/// Every scope a route names, for interning and for the lint.
pub fn route_scopes(r: &schema::Route) -> Vec<&str> {
    let mut out = Vec::new();
    if let Some(req) = &r.require {
        if let Some(e) = &req.scopes {
            scope_names(e, &mut out);
        }
        for alt in req.any.iter().flatten() {
            if let Some(e) = &alt.scopes {
                scope_names(e, &mut out);
            }
        }
    }
    out
}

fn compile_expr(e: &schema::ScopeExpr, u: &ScopeUniverse) -> ScopeExpr {
    match e {
        schema::ScopeExpr::Scope(s) => ScopeExpr::Scope(u.id(s).expect("interned at build")),
        schema::ScopeExpr::Any(xs) => {
            ScopeExpr::Any(xs.iter().map(|x| compile_expr(x, u)).collect())
        }
        schema::ScopeExpr::All(xs) => {
            ScopeExpr::All(xs.iter().map(|x| compile_expr(x, u)).collect())
        }
    }
}

fn kind(p: Option<schema::Principal>) -> Option<Kind> {
    p.map(|p| match p {
        schema::Principal::User => Kind::User,
        schema::Principal::App => Kind::App,
    })
}

fn header_name(origin: &str, what: &str, s: &str) -> Result<HeaderName, ConfigError> {
    HeaderName::from_bytes(s.as_bytes())
        .map_err(|_| ConfigError::new(origin, format!("{what}: `{s}` is not a valid header name")))
}

fn socket_addr(origin: &str, what: &str, s: &str) -> Result<SocketAddr, ConfigError> {
    s.parse().map_err(|_| {
        ConfigError::new(
            origin,
            format!("{what}: `{s}` is not an address such as 127.0.0.1:8080"),
        )
    })
}

fn upstream(origin: &str, name: &str, url: &str) -> Result<Upstream, ConfigError> {
    let err = |why: &str| ConfigError::new(origin, format!("upstreams.{name}.url `{url}`: {why}"));
    let uri: http::Uri = url.parse().map_err(|_| err("not a URL"))?;
    let tls = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => return Err(err("the scheme must be http or https")),
    };
    if uri.path() != "/" && !uri.path().is_empty() {
        return Err(err(
            "a path prefix is not supported: the matched path is forwarded as is",
        ));
    }
    let host = uri.host().ok_or_else(|| err("no host"))?.to_string();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    // Resolved once at load: upstream addresses are part of the configuration.
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| err("the host does not resolve"))?;
    Ok(Upstream {
        name: name.to_string(),
        addr,
        tls,
        authority: uri
            .authority()
            .map(|a| a.to_string())
            .unwrap_or_else(|| host.clone()),
        host,
    })
}

fn algorithm(origin: &str, issuer: &str, name: &str) -> Result<Algorithm, ConfigError> {
    let alg: Algorithm = name.parse().map_err(|_| {
        ConfigError::new(
            origin,
            format!("issuer `{issuer}`: unknown algorithm `{name}`"),
        )
    })?;
    if matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
        return Err(ConfigError::new(
            origin,
            format!(
                "issuer `{issuer}`: `{name}` is a shared-secret algorithm and is never accepted with JWKS keys"
            ),
        ));
    }
    Ok(alg)
}

fn policy(o: &schema::Organization) -> OrgPolicy {
    OrgPolicy {
        restrict_third_party_apps: o.restrict_third_party_apps,
        approved_clients: o.approved_clients.clone(),
        require_sso: o.require_sso,
    }
}

/// The `organizations:` map, with its `default` entry apart.
fn organizations(map: &std::collections::BTreeMap<String, schema::Organization>) -> Organizations {
    Organizations {
        by_name: map
            .iter()
            .filter(|(name, _)| name.as_str() != "default")
            .map(|(name, o)| (name.clone(), policy(o)))
            .collect(),
        default: map.get("default").map(policy).unwrap_or_default(),
    }
}

impl Gateway {
    /// Compiles `file` (named `origin` in errors).
    pub fn build(file: &File, origin: &str) -> Result<Gateway, ConfigError> {
        let listen = socket_addr(origin, "server.listen", &file.server.listen)?;
        let admin_listen = socket_addr(origin, "admin.listen", &file.admin.listen)?;

        let mut upstream_names = Vec::new();
        let mut upstreams = Vec::new();
        for (name, u) in &file.upstreams {
            upstreams.push(upstream(origin, name, &u.url)?);
            upstream_names.push(name.as_str());
        }

        // Scopes: everything named in implications and routes gets a bit.
        let used: Vec<&str> = file.routes.iter().flat_map(route_scopes).collect();
        let universe = ScopeUniverse::build(&file.scopes.implies, used.iter().copied());

        let mut issuers = Vec::new();
        let mut seen = HashSet::new();
        for i in &file.issuers {
            if !seen.insert(i.id.as_str()) {
                return Err(ConfigError::new(
                    origin,
                    format!("issuer id `{}` appears twice", i.id),
                ));
            }
            if i.audiences.is_empty() {
                return Err(ConfigError::new(
                    origin,
                    format!(
                        "issuer `{}`: `audiences` must name at least one audience",
                        i.id
                    ),
                ));
            }
            if i.introspection
                .as_ref()
                .is_some_and(|x| x.endpoint.is_none())
                && !i.discovery
            {
                return Err(ConfigError::new(
                    origin,
                    format!(
                        "issuer `{}`: set `introspection.endpoint` or leave `discovery` on",
                        i.id
                    ),
                ));
            }
            if i.token_prefix.is_some() && i.introspection.is_none() {
                return Err(ConfigError::new(
                    origin,
                    format!(
                        "issuer `{}`: `token_prefix` routes opaque tokens, which need `introspection`",
                        i.id
                    ),
                ));
            }
            if !i.discovery && i.jwks_uri.is_none() {
                return Err(ConfigError::new(
                    origin,
                    format!("issuer `{}`: set `jwks_uri` or leave `discovery` on", i.id),
                ));
            }
            let algorithms = i
                .algorithms
                .iter()
                .map(|a| algorithm(origin, &i.id, a))
                .collect::<Result<Vec<_>, _>>()?;
            issuers.push(
                Issuer::new(
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
                    i.introspection.as_ref().map(|x| IntrospectionRules {
                        endpoint: x.endpoint.as_ref().map(|e| e.0.clone()),
                        client_id: x.client_id.0.clone(),
                        client_secret: x.client_secret.0.clone(),
                        post_credentials: x.auth == schema::ClientAuth::ClientSecretPost,
                        timeout: x.timeout.0,
                        connect_timeout: x.connect_timeout.0,
                        expires_in_field: x.expires_in_field.clone(),
                    }),
                    i.token_prefix.clone(),
                ),
            );
        }

        let mut patterns = Vec::new();
        let mut routes = Vec::new();
        let mut names = HashSet::new();
        for r in &file.routes {
            let here = |msg: String| ConfigError::new(origin, format!("route `{}`: {msg}", r.name));
            if !names.insert(r.name.as_str()) {
                return Err(here("the name appears twice".into()));
            }
            let pattern = Pattern::parse(&r.matcher.path).map_err(here)?;
            let methods = match &r.matcher.methods {
                Some(m) => MethodSet::parse(m).map_err(here)?,
                None => MethodSet::ALL,
            };
            let upstream = upstream_names
                .iter()
                .position(|u| *u == r.upstream)
                .ok_or_else(|| {
                    here(format!(
                        "upstream `{}` is not defined (known: {})",
                        r.upstream,
                        upstream_names.join(", ")
                    ))
                })?;
            let requirement = match (r.auth, &r.require) {
                (Auth::None, Some(_)) => {
                    return Err(here(
                        "`auth: none` and `require` contradict each other".into(),
                    ));
                }
                (Auth::None, None) => None,
                (Auth::Token, None) => {
                    return Err(here(
                        "a protected route needs `require:` (write `require: {}` to accept any valid token, or `auth: none` for a public route)".into(),
                    ));
                }
                (Auth::Token, Some(req)) => {
                    let alternatives = match &req.any {
                        Some(_) if req.scopes.is_some() || req.principal.is_some() => {
                            return Err(here(
                                "`require` takes either `any:` alternatives or `scopes`/`principal`, not both".into(),
                            ));
                        }
                        Some(alts) if alts.is_empty() => {
                            return Err(here(
                                "`require: { any: [] }` can never be satisfied".into(),
                            ));
                        }
                        Some(alts) => alts
                            .iter()
                            .map(|a| Alternative {
                                principal: kind(a.principal),
                                scopes: a.scopes.as_ref().map(|e| compile_expr(e, &universe)),
                            })
                            .collect(),
                        None => vec![Alternative {
                            principal: kind(req.principal),
                            scopes: req.scopes.as_ref().map(|e| compile_expr(e, &universe)),
                        }],
                    };
                    Some(Requirement::new(alternatives, &universe))
                }
            };
            if requirement.is_some() && issuers.is_empty() {
                return Err(here(
                    "a protected route needs at least one entry in `issuers`".into(),
                ));
            }
            let org = match r.require.as_ref().and_then(|q| q.org.as_ref()) {
                None => None,
                Some(b) => {
                    let source = match (&b.param, &b.header, &b.name) {
                        (Some(p), None, None) => {
                            let named = pattern.segments.iter().any(
                                |s| matches!(s, Segment::Param(n) | Segment::CatchAll(n) if n == p),
                            );
                            if !named {
                                return Err(here(format!(
                                    "`org: {{ param: {p} }}`: the path has no `{{{p}}}`"
                                )));
                            }
                            OrgSource::Param(p.clone())
                        }
                        (None, Some(h), None) => {
                            OrgSource::Header(header_name(origin, "require.org.header", h)?)
                        }
                        (None, None, Some(n)) => OrgSource::Name(n.clone()),
                        _ => {
                            return Err(here(
                                "`org` takes exactly one of `param`, `header` or `name`".into(),
                            ));
                        }
                    };
                    Some(OrgRule {
                        source,
                        private: b.visibility == schema::Visibility::Private,
                    })
                }
            };
            patterns.push((pattern, methods));
            let forbidden = requirement.as_ref().map(|q| {
                Arc::new(Forbidden::new(
                    &q.accepted_scopes,
                    &q.accepted_header,
                    &q.needs,
                ))
            });
            routes.push(RouteInfo {
                name: r.name.clone(),
                upstream,
                requirement,
                forbidden,
                org,
            });
        }

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
        let f = &file.forward;
        let ih = &f.identity_headers;
        let id = |what: &str, s: &str| {
            header_name(origin, &format!("forward.identity_headers.{what}"), s)
        };
        let identity = IdentityNames {
            subject: id("subject", &ih.subject)?,
            client_id: id("client_id", &ih.client_id)?,
            scopes: id("scopes", &ih.scopes)?,
            org: id("org", &ih.org)?,
            principal: id("principal", &ih.principal)?,
            issuer: id("issuer", &ih.issuer)?,
        };
        let strip = f
            .strip_headers
            .iter()
            .map(|h| header_name(origin, "forward.strip_headers", h))
            .collect::<Result<Vec<_>, _>>()?;
        let forward = ForwardPolicy::new(
            identity,
            strip,
            f.authorization == KeepOrStrip::Strip,
            header_name(origin, "forward.request_id_header", &f.request_id_header)?,
            file.server.trusted_proxies.clone(),
        );

        let set_rules = |what: &str,
                         transmitter: &EnvString,
                         jwks_uri: &Option<EnvString>,
                         issuer: &Option<String>,
                         audience: &EnvString,
                         algorithms: &[String]|
         -> Result<SetRules, ConfigError> {
            let keys = match (jwks_uri, issuer) {
                (Some(uri), None) => SetKeys::Own(uri.0.clone()),
                (None, Some(id)) => {
                    SetKeys::Issuer(file.issuers.iter().position(|i| &i.id == id).ok_or_else(
                        || {
                            ConfigError::new(
                                origin,
                                format!("tokens.revocation.{what}.issuer: no issuer `{id}`"),
                            )
                        },
                    )?)
                }
                _ => {
                    return Err(ConfigError::new(
                        origin,
                        format!(
                            "tokens.revocation.{what}: set exactly one of `jwks_uri` and `issuer`"
                        ),
                    ));
                }
            };
            Ok(SetRules {
                transmitter: transmitter.0.clone(),
                audience: audience.0.clone(),
                algorithms: algorithms
                    .iter()
                    .map(|a| algorithm(origin, what, a))
                    .collect::<Result<_, _>>()?,
                keys,
            })
        };
        let push = t
            .revocation
            .push
            .as_ref()
            .map(|p| {
                set_rules(
                    "push",
                    &p.transmitter,
                    &p.jwks_uri,
                    &p.issuer,
                    &p.audience,
                    &p.algorithms,
                )
            })
            .transpose()?;
        let poll = t
            .revocation
            .poll
            .as_ref()
            .map(|p| {
                Ok::<_, ConfigError>(PollRules {
                    set: set_rules(
                        "poll",
                        &p.transmitter,
                        &p.jwks_uri,
                        &p.issuer,
                        &p.audience,
                        &p.algorithms,
                    )?,
                    endpoint: p.endpoint.0.clone(),
                    interval: p.interval.0,
                    access_token: p.access_token.as_ref().map(|a| a.0.clone()),
                    max_events: p.max_events,
                })
            })
            .transpose()?;
        let route_names: Vec<&str> = routes.iter().map(|r| r.name.as_str()).collect();
        let metrics = Metrics::new(&route_names, &upstream_names);
        Ok(Gateway {
            table: RouteTable::build(&patterns),
            routes,
            upstreams,
            principals: Principals::new(universe, &issuers),
            issuers,
            cache: TokenCache::new(
                t.cache.max_entries,
                t.cache.max_ttl.0,
                t.cache.negative_ttl.0,
                metrics.cache_evictions.clone(),
            ),
            revocations: Revocations::default(),
            organizations: organizations(&file.organizations),
            revocation_retention: t.revocation.retention.0.as_secs(),
            push,
            poll,
            credentials: credential::Rules {
                schemes: t.schemes.clone(),
                query_parameter: t.query_parameter,
            },
            limits: Limits {
                max_uri_bytes: file.server.limits.max_uri_bytes,
                max_header_bytes: file.server.limits.max_header_bytes,
            },
            forward,
            metrics,
            listen,
            admin_listen,
            threads: file.server.threads.max(1),
            tls: file
                .server
                .tls
                .as_ref()
                .map(|t| (t.cert.0.clone(), t.key.0.clone())),
        })
    }
}
