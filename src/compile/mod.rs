//! Compiling a parsed configuration: every cross-reference resolved and every value checked
//! once, so the request path never meets an invalid setting. One file per section; what the
//! compile step needs from outside the file (DNS, a policy file) is gathered first
//! ([`Inputs`]), so compiling itself does no I/O.

mod changes;
mod claims;
mod cluster;
mod cors;
mod credentials;
mod decision;
mod forwarding;
mod inputs;
mod issuers;
mod lint;
mod listener;
mod observe;
mod organizations;
mod rate_limits;
mod resources;
mod revocation;
mod routes;
mod serving;
mod upstream_tls;
mod upstreams;

pub use changes::summary as changes;
pub use cluster::{ClusterSettings, HmacKeys};
pub use decision::{Bind, CallerSecret, DecisionServing};
pub use inputs::{Inputs, Unresolved};
pub use lint::lint;
pub use organizations::{OrgLocation, OrgSourceRules, org_policies};
pub use serving::{AdminListener, AtStart, Connections, ProxyListener, Serving, SideListener};
pub use upstream_tls::client_config as upstream_tls_config;

use crate::config::{ConfigError, File};
use crate::decision::{CacheSettings, Gateway, Rules, State};
use crate::policy::Organizations;
use crate::request::Limits;
use crate::token::{PollRules, Principals, SetRules};
use http::HeaderName;
use jsonwebtoken::Algorithm;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

/// A configuration, compiled: the rules, how the state starts, how it is served, and what
/// the sync tasks keep current.
pub struct Compiled {
    pub rules: Rules,
    pub cache: CacheSettings,
    /// The organization policies in force at start (`None` while a URL source is unread).
    pub organizations: Option<Organizations>,
    pub serving: Serving,
    pub sync: SyncPlan,
}

/// `tokens.introspection_limits`.
#[derive(Debug, Clone, Copy)]
pub struct IntrospectionLimits {
    pub concurrent: usize,
    pub per_client_per_second: u32,
    pub per_second: u32,
    pub per_client_ipv6_prefix: u8,
}

/// What the background tasks of a configuration do.
pub struct SyncPlan {
    pub introspection_limits: IntrospectionLimits,
    /// Security Event Tokens accepted on the admin port, when configured.
    pub push: Option<SetRules>,
    /// A transmitter polled for Security Event Tokens, when configured.
    pub poll: Option<PollRules>,
    /// Seconds a revocation stays in force.
    pub revocation_retention: u64,
    pub org_source: Option<OrgSourceRules>,
    /// The inline `organizations:`, which a source's entries extend.
    pub inline_organizations: Organizations,
    /// When a file source was read at load (Unix seconds).
    pub org_read_at: Option<u64>,
}

impl Compiled {
    /// The gateway of this configuration, its metrics in `registry`.
    pub fn gateway(self, registry: &prometheus::Registry) -> (Gateway, Serving, SyncPlan) {
        let state = State::new(&self.rules, self.cache, self.organizations, registry);
        let gateway = Gateway {
            rules: self.rules,
            state,
        };
        (gateway, self.serving, self.sync)
    }
}

/// Reads, gathers the inputs of and compiles the configuration at `path`.
pub fn load(path: &Path) -> Result<(File, Compiled), ConfigError> {
    let origin = path.display().to_string();
    let text = crate::config::read(path)?;
    let file = crate::config::parse(&text, &origin)?;
    let located = |e: ConfigError| e.located(&text);
    let inputs = Inputs::gather(&file, &origin).map_err(located)?;
    let compiled = compile(&file, &inputs, &origin).map_err(located)?;
    Ok((file, compiled))
}

/// What `scopegate check` does: [`load`], reporting every error it finds (each bad value,
/// and every section's mistakes, with their positions) rather than the first; upstream host
/// names that do not resolve here are warnings (a configuration for a cluster names its
/// services), beside the [`lint`] warnings.
pub fn check(path: &Path) -> Result<(File, Compiled, Vec<String>), ConfigError> {
    let origin = path.display().to_string();
    let text = crate::config::read(path)?;
    let (file, mut errors) = crate::config::parse_all(&text, &origin)?;
    let located = |errors: Vec<ConfigError>| {
        ConfigError::many(errors)
            .expect("called with errors")
            .located(&text)
    };
    let (inputs, mut warnings) = match Inputs::gather_with(&file, &origin, Unresolved::Warn) {
        Ok(gathered) => gathered,
        Err(e) => {
            errors.push(e);
            return Err(located(errors));
        }
    };
    match compile(&file, &inputs, &origin) {
        Ok(compiled) if errors.is_empty() => {
            warnings.extend(lint(&file));
            Ok((file, compiled, warnings))
        }
        Ok(_) => Err(located(errors)),
        Err(e) => {
            errors.push(e);
            Err(located(errors))
        }
    }
}

/// Parses, gathers the inputs of and compiles a configuration given as text (the embedded
/// `dev` configuration, tests, benchmarks).
pub fn from_text(text: &str, origin: &str) -> Result<Compiled, ConfigError> {
    let file = crate::config::parse(text, origin)?;
    let inputs = Inputs::gather(&file, origin)?;
    compile(&file, &inputs, origin)
}

/// Compiles `file` (named `origin` in errors) with what was gathered for it. Every section
/// is compiled even when another fails, so the error lists every mistake found (each with
/// the key it is about, for its position).
pub fn compile(file: &File, inputs: &Inputs, origin: &str) -> Result<Compiled, ConfigError> {
    let mut errors = Vec::new();
    let limits = &file.server.limits;
    let timeouts = &file.server.timeouts;
    let listen = kept(
        &mut errors,
        socket_addr(origin, "server.listen", &file.server.listen),
    );
    let admin_listen = kept(
        &mut errors,
        socket_addr(origin, "admin.listen", &file.admin.listen),
    );
    let decision = kept(&mut errors, decision::compile(file, origin));
    let traces = kept(&mut errors, observe::traces(file, origin));
    let log = kept(&mut errors, observe::log(file, origin));
    let cluster = kept(&mut errors, cluster::compile(file, inputs, origin));
    let upstreams = kept(&mut errors, upstreams::compile(file, inputs, origin));
    let universe = routes::universe(file);
    let mut conditions = crate::claim::Conditions::default();
    let issuers = kept(&mut errors, issuers::compile(file, &mut conditions, origin));
    let routes = kept(
        &mut errors,
        routes::compile(file, &universe, &mut conditions, origin),
    );
    let forward = kept(&mut errors, forwarding::compile(file, inputs, origin));
    let revocation = kept(&mut errors, revocation::compile(file, origin));
    let orgs = kept(&mut errors, organizations::compile(file, inputs, origin));
    let templates = kept(&mut errors, claim_templates(file, origin));
    let global_cors = kept(
        &mut errors,
        file.cors
            .as_ref()
            .map(cors::compile)
            .transpose()
            .map_err(|e| ConfigError::new(origin, format!("cors: {e}")).key("cors")),
    );
    let global_limits = kept(
        &mut errors,
        rate_limits::global(file)
            .map_err(|e| ConfigError::new(origin, format!("rate_limits: {e}")).key("rate_limits")),
    );
    // What needs the issuers, once they compiled.
    let principals_universe_debug = format!("{universe:?}");
    let conditions_fingerprint = conditions.fingerprint();
    let (resources, credentials, principals) = match &issuers {
        Some(issuers) => {
            let principals = Principals::new(universe, conditions, issuers);
            (
                kept(&mut errors, resources::compile(file, issuers, origin)),
                kept(&mut errors, credentials::compile(file, origin, &principals)),
                Some(principals),
            )
        }
        None => (None, None, None),
    };
    let (
        Some(listen),
        Some(admin_listen),
        Some(decision),
        Some(traces),
        Some(log),
        Some(cluster),
        Some(upstreams),
        Some(issuers),
        Some((table, route_rules)),
        Some(forward),
        Some((push, poll)),
        Some(orgs),
        Some(resources),
        Some((credentials, legacy)),
        Some(mut principals),
        Some(templates),
        Some(global_limits),
        Some(global_cors),
    ) = (
        listen,
        admin_listen,
        decision,
        traces,
        log,
        cluster,
        upstreams,
        issuers,
        routes,
        forward,
        revocation,
        orgs,
        resources,
        credentials,
        principals,
        templates,
        global_limits,
        global_cors,
    )
    else {
        return Err(ConfigError::many(errors).expect("a section that failed said why"));
    };
    let serving = Serving {
        at_start: AtStart {
            server: ProxyListener {
                listen,
                tls: file
                    .server
                    .tls
                    .as_ref()
                    .map(|t| (t.cert.0.clone(), t.key.0.clone())),
                connections: Connections {
                    max_connections: limits.max_connections.max(1),
                    header: timeouts.header.0,
                    idle: timeouts.idle.0,
                    tls_handshake: timeouts.tls_handshake.0,
                },
            },
            admin: AdminListener {
                listen: admin_listen,
                bounds: SideListener::compile(
                    SideListener::ADMIN,
                    &file.admin.limits,
                    &file.admin.timeouts,
                    limits.max_uri_bytes,
                ),
            },
            decision,
            threads: file.server.threads.max(1),
            shutdown_grace: file.server.shutdown_grace.0,
            traces,
        },
        body_timeout: timeouts.body.0,
        upstream_response: timeouts.upstream_response.0,
        log,
        cluster,
        watch_config: {
            let r = &file.server.reload;
            (r.on_file_change && !r.check_every.0.is_zero()).then_some(r.check_every.0)
        },
    };
    principals.claim_templates = templates;
    principals.mints = file.forward.identity_assertion.is_some();
    principals.assertion_claims = file
        .forward
        .identity_assertion
        .as_ref()
        .map(|a| a.claims.clone())
        .unwrap_or_default();
    let t = &file.tokens;
    Ok(Compiled {
        rules: Rules {
            table,
            reports_or_limits: !global_limits.is_empty()
                || route_rules
                    .iter()
                    .any(|r| r.report_only || !r.rate_limits.is_empty()),
            routes: route_rules,
            cors: global_cors,
            rate_limits: global_limits,
            upstreams,
            issuers: issuers.into(),
            principals: Arc::new(principals),
            legacy,
            credentials,
            limits: Limits {
                max_uri_bytes: file.server.limits.max_uri_bytes,
                max_header_bytes: file.server.limits.max_header_bytes,
            },
            max_body_bytes: file.server.limits.max_body_bytes,
            forward,
            verify_public_credentials: file.forward.public_route_credentials
                == crate::config::schema::StripOrVerify::Verify,
            resources,
            token_rules: digest(&[
                format!("{:?}", file.issuers),
                format!("{:?}", file.tokens.cache),
                format!("{:?}{:?}", file.tokens.schemes, file.tokens.query_parameter),
                conditions_fingerprint,
                format!("{:?}", file.forward.claim_headers),
                format!("{:?}", rate_limits::claim_keys(file)),
                format!("{:?}", file.forward.identity_assertion),
                // Assertions minted with a key replaced in place are not reused.
                format!(
                    "{:?}",
                    inputs.assertion_keys.as_ref().map(|(k, p)| (
                        crate::token::hash(&String::from_utf8_lossy(k)),
                        p.as_ref()
                            .map(|p| crate::token::hash(&String::from_utf8_lossy(p)))
                    ))
                ),
            ]),
            scope_rules: digest(&[principals_universe_debug]),
        },
        cache: CacheSettings {
            max_entries: t.cache.max_entries,
            max_ttl: t.cache.max_ttl.0,
            negative_ttl: t.cache.negative_ttl.0,
        },
        organizations: orgs.in_force,
        serving,
        sync: SyncPlan {
            introspection_limits: {
                let l = &t.introspection_limits;
                IntrospectionLimits {
                    concurrent: l.concurrent.max(1),
                    per_client_per_second: l.per_client_per_second,
                    per_second: l.per_second,
                    per_client_ipv6_prefix: l.per_client_ipv6_prefix.min(128),
                }
            },
            push,
            poll,
            revocation_retention: t.revocation.retention.0.as_secs(),
            org_source: orgs.source,
            inline_organizations: orgs.inline,
            org_read_at: orgs.read_at,
        },
    })
}

/// The claim values principals carry: `forward.claim_headers` templates in the order of
/// their names (as `forward` has them), then the claims rate limits are keyed by.
fn claim_templates(
    file: &File,
    origin: &str,
) -> Result<Vec<crate::claim::HeaderTemplate>, ConfigError> {
    let mut out = file
        .forward
        .claim_headers
        .iter()
        .map(|(name, t)| {
            crate::claim::HeaderTemplate::parse(t).map_err(|e| {
                ConfigError::new(origin, format!("forward.claim_headers.{name}: {e}"))
                    .key(format!("forward.claim_headers.{name}"))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    for path in rate_limits::claim_keys(file) {
        out.push(
            crate::claim::HeaderTemplate::parse(&format!("{{{path}}}")).map_err(|e| {
                ConfigError::new(origin, format!("rate limit `per: claim:{path}`: {e}"))
            })?,
        );
    }
    Ok(out)
}

/// A SHA-256 of `parts` (what a reload compares).
fn digest(parts: &[String]) -> [u8; 32] {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for part in parts {
        ctx.update(part.as_bytes());
        ctx.update(&[0]);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// The value of a section that compiled; the error of one that did not goes to `errors`.
fn kept<T>(errors: &mut Vec<ConfigError>, r: Result<T, ConfigError>) -> Option<T> {
    r.map_err(|e| errors.push(e)).ok()
}

/// Compiles each item with `one`, keeping every item's error (keyed `{list}[n]`).
fn each<'a, I: 'a, T>(
    list: &str,
    items: impl IntoIterator<Item = &'a I>,
    mut one: impl FnMut(&'a I) -> Result<T, ConfigError>,
) -> Result<Vec<T>, ConfigError> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (n, item) in items.into_iter().enumerate() {
        match one(item) {
            Ok(v) => out.push(v),
            Err(e) => errors.push(e.key(format!("{list}[{n}]"))),
        }
    }
    match ConfigError::many(errors) {
        Some(e) => Err(e),
        None => Ok(out),
    }
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
        .key(what)
    })
}

/// Whether a URL the gateway fetches security data from is acceptable: https, or http to a
/// loopback address, or http where the configuration says `allow_http: true`.
pub fn is_secure_url(url: &str, allow_http: bool) -> bool {
    let Ok(uri) = url.parse::<http::Uri>() else {
        return false;
    };
    match uri.scheme_str() {
        Some("https") => true,
        Some("http") => {
            allow_http
                || uri.host().is_some_and(|h| {
                    let h = h.trim_start_matches('[').trim_end_matches(']');
                    h.eq_ignore_ascii_case("localhost")
                        || h.parse::<std::net::IpAddr>()
                            .is_ok_and(|ip| ip.is_loopback())
                })
        }
        _ => false,
    }
}

/// Refuses a security URL that [`is_secure_url`] does not accept; `what` names it.
fn secure_url(origin: &str, what: &str, url: &str, allow_http: bool) -> Result<(), ConfigError> {
    if is_secure_url(url, allow_http) {
        return Ok(());
    }
    Err(ConfigError::new(
        origin,
        format!(
            "{what} `{url}`: use https (http only for loopback addresses, or with `allow_http: true`)"
        ),
    ))
}

/// A JWS algorithm of an allow-list; `what` names the list in errors.
fn algorithm(origin: &str, what: &str, name: &str) -> Result<Algorithm, ConfigError> {
    let alg: Algorithm = name
        .parse()
        .map_err(|_| ConfigError::new(origin, format!("{what}: unknown algorithm `{name}`")))?;
    if matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
        return Err(ConfigError::new(
            origin,
            format!(
                "{what}: `{name}` is a shared-secret algorithm and is never accepted with JWKS keys"
            ),
        ));
    }
    Ok(alg)
}

#[cfg(test)]
mod tests;
