//! Compiling a parsed configuration into a [`Gateway`]: every cross-reference resolved and
//! every value checked once, so the request path never meets an invalid setting.

use super::{Gateway, OrgLocation, OrgRule, OrgSource, OrgSourceRules, RouteInfo, Upstream};
use crate::answer::Forbidden;
use crate::config::EnvString;
use crate::config::schema::{self, Auth, KeepOrStrip};
use crate::config::{ConfigError, File};
use crate::credential::{self, LegacyCredential, LegacyCredentials, Presentation};
use crate::forward::{ForwardPolicy, IdentityNames};
use crate::metrics::Metrics;
use crate::policy::{Alternative, OrgPolicy, Organizations, Requirement, ScopeExpr, ScopeUniverse};
use crate::principal::{Kind, Principal};
use crate::request::Limits;
use crate::route::{MethodSet, Pattern, RouteTable, Segment};
use crate::token::{
    ClaimNames, IntrospectionRules, Issuer, PollRules, Principals, Revocations, SetKeys, SetRules,
    TokenCache,
};
use http::{HeaderName, HeaderValue};
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
        authority: uri.authority().cloned().ok_or_else(|| err("no host"))?,
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

type OrgMap = std::collections::BTreeMap<String, schema::Organization>;

fn policies(map: &OrgMap) -> Vec<(String, OrgPolicy)> {
    map.iter().map(|(n, o)| (n.clone(), policy(o))).collect()
}

/// The policies of an organization source document (JSON or YAML shaped like
/// `organizations:`); `origin` names it in errors.
pub fn org_policies(text: &str, origin: &str) -> Result<Vec<(String, OrgPolicy)>, ConfigError> {
    crate::config::parse_organizations(text, origin).map(|m| policies(&m))
}

fn org_source(origin: &str, s: &schema::OrganizationSource) -> Result<OrgSourceRules, ConfigError> {
    let location = match (&s.file, &s.url) {
        (Some(f), None) => OrgLocation::File(f.0.clone().into()),
        (None, Some(u)) if u.starts_with("http://") || u.starts_with("https://") => {
            OrgLocation::Url(u.0.clone())
        }
        (None, Some(u)) => {
            return Err(ConfigError::new(
                origin,
                format!(
                    "organization_policy.source.url: `{}` is not an http(s) URL",
                    u.0
                ),
            ));
        }
        _ => {
            return Err(ConfigError::new(
                origin,
                "organization_policy.source: set exactly one of `file` and `url`",
            ));
        }
    };
    if s.refresh.0 < std::time::Duration::from_secs(1) {
        return Err(ConfigError::new(
            origin,
            "organization_policy.source.refresh: at least 1s",
        ));
    }
    Ok(OrgSourceRules {
        location,
        refresh: s.refresh.0,
        access_token: s.access_token.as_ref().map(|t| t.0.clone()),
    })
}

/// The static and legacy credentials, with the distinct ways they are presented.
fn legacy_credentials(
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
        let digest = credential::parse_digest(&c.sha256).ok_or_else(|| {
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
            kind: kind(Some(c.principal)).expect("given"),
            expires_at: c.not_after.map_or(u64::MAX, |t| t.0),
            issued_at: None,
            jti: None,
            subject: value("subject", &c.subject)?,
            client_id: c
                .client_id
                .as_deref()
                .map(|s| value("client_id", s))
                .transpose()?,
            issuer_id: match issuer {
                Some(i) => principals.issuer_id(i),
                None => value("id", &format!("credential:{}", c.id))?,
            },
            grant,
            orgs: c.orgs.iter().map(|o| o.as_str().into()).collect(),
            sso_orgs: Box::default(),
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
        let used: Vec<&str> = file
            .routes
            .iter()
            .flat_map(route_scopes)
            .chain(
                file.credentials
                    .iter()
                    .flat_map(|c| c.scopes.iter().map(String::as_str)),
            )
            .collect();
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
            let route_issuers = r
                .issuers
                .as_ref()
                .map(|ids| {
                    if requirement.is_none() {
                        return Err(here("`issuers` on a public route checks nothing".into()));
                    }
                    if ids.is_empty() {
                        return Err(here("`issuers: []` accepts no credential".into()));
                    }
                    ids.iter()
                        .map(|id| {
                            file.issuers
                                .iter()
                                .position(|i| &i.id == id)
                                .ok_or_else(|| {
                                    here(format!("issuers: `{id}` is not a configured issuer"))
                                })
                        })
                        .collect::<Result<Box<[usize]>, _>>()
                })
                .transpose()?;
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
                issuers: route_issuers,
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
        // `authorization: strip` covers legacy credential headers too (checked with them).
        let legacy_headers = file
            .credentials
            .iter()
            .filter_map(|c| c.header.as_ref())
            .filter_map(|h| HeaderName::from_bytes(h.as_bytes()).ok())
            .filter(|_| f.authorization == KeepOrStrip::Strip);
        let strip: Vec<HeaderName> = strip.into_iter().chain(legacy_headers).collect();
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
        let principals = Principals::new(universe, &issuers);
        let (legacy, presentations) = legacy_credentials(file, origin, &principals)?;
        let route_names: Vec<&str> = routes.iter().map(|r| r.name.as_str()).collect();
        let credential_ids: Vec<&str> = legacy.entries.iter().map(|c| c.id.as_str()).collect();
        let metrics = Metrics::new(&route_names, &upstream_names, &credential_ids);

        let op = &file.organization_policy;
        let case_insensitive = op.compare == schema::NameComparison::CaseInsensitive;
        let inline_organizations =
            Organizations::new(policies(&file.organizations), case_insensitive);
        let org_source = op
            .source
            .as_ref()
            .map(|s| org_source(origin, s))
            .transpose()?;
        // A file source is read now, so that `check` and a start report its errors; a URL is
        // read by the sync task, and private organization resources wait for it.
        let organizations = match &org_source {
            None => Some(inline_organizations.clone()),
            // Read at load: its time is the time of the policies in force.
            Some(OrgSourceRules {
                location: OrgLocation::File(path),
                ..
            }) => {
                let name = path.display().to_string();
                let text = std::fs::read_to_string(path)
                    .map_err(|e| ConfigError::new(&name, format!("cannot read: {e}")))?;
                let mut o = inline_organizations.clone();
                o.extend(org_policies(&text, &name)?);
                metrics
                    .org_source_loaded_at
                    .set(crate::token::unix_now() as i64);
                Some(o)
            }
            Some(_) => None,
        };
        Ok(Gateway {
            table: RouteTable::build(&patterns),
            routes,
            upstreams,
            principals,
            issuers,
            cache: TokenCache::new(
                t.cache.max_entries,
                t.cache.max_ttl.0,
                t.cache.negative_ttl.0,
                metrics.cache_evictions.clone(),
            ),
            revocations: Revocations::default(),
            organizations: arc_swap::ArcSwapOption::from_pointee(organizations),
            inline_organizations,
            org_source,
            legacy,
            revocation_retention: t.revocation.retention.0.as_secs(),
            push,
            poll,
            credentials: credential::Rules {
                schemes: t.schemes.clone(),
                query_parameter: t.query_parameter,
                legacy: presentations,
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
