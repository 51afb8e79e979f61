//! `scopegate explain`: one decision, dry-run, with the reason — what the gateway would do
//! with a request, without starting it. The token is never printed.

use crate::answer::Unreachable;
use crate::compile::Compiled;
use crate::decision::{Backend, Rules, Verdict};
use crate::principal::Principal;
use crate::request::{Connection, Head};
use crate::sync::{Introspector, KeySync, OrgSourceSync};
use crate::token::{Cached, TokenHash};
use http::{HeaderMap, HeaderValue, Method, Uri};

/// Decides `method path` with `token` and `extra` headers (`Name: value`, e.g. a legacy
/// credential), fetching the issuers' keys and the organization policy source first, and
/// describes it. Returns the text and whether the request would be forwarded.
pub fn explain(
    compiled: Compiled,
    token: Option<&str>,
    extra: &[String],
    method: &str,
    path: &str,
) -> Result<(String, bool), String> {
    let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes())
        .map_err(|_| format!("`{method}` is not an HTTP method"))?;
    let uri: Uri = path
        .parse()
        .map_err(|_| format!("`{path}` is not a request path"))?;
    let mut headers = HeaderMap::new();
    // As a client would send it; `--header 'Host: …'` replaces it.
    headers.insert(
        http::header::HOST,
        HeaderValue::from_static("scopegate.explain"),
    );
    if let Some(t) = token {
        let v = HeaderValue::from_str(&format!("Bearer {t}"))
            .map_err(|_| "the token has characters no header can carry".to_string())?;
        headers.insert(http::header::AUTHORIZATION, v);
    }
    for h in extra {
        let (name, value) = h
            .split_once(':')
            .ok_or_else(|| format!("`--header {h}`: write `Name: value`"))?;
        let name = http::HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| format!("`{}` is not a header name", name.trim()))?;
        let value = HeaderValue::from_str(value.trim())
            .map_err(|_| format!("the value of `{name}` has characters no header can carry"))?;
        if name == http::header::HOST {
            headers.insert(name, value);
        } else {
            headers.append(name, value);
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    // Metrics of a dry run go nowhere.
    let registry = prometheus::Registry::new();
    let (gateway, _, plan) = compiled.gateway(&registry);
    let (rules, state) = (&gateway.rules, &gateway.state);
    let (keys, _, _) = KeySync::for_gateway(&gateway, &registry);
    rt.block_on(keys.fetch_all_once());
    let mut out = String::new();
    if let Some(source) = plan.org_source {
        let sync = OrgSourceSync::new(
            source,
            plan.inline_organizations,
            state.organizations.clone(),
            plan.org_read_at,
            &registry,
        );
        if let Err(e) = rt.block_on(sync.read_once()) {
            out.push_str(&format!(
                "note: the organization policy source could not be read: {e}\n"
            ));
        }
    }
    for (i, s) in rules.issuers.iter().zip(state.issuers.iter()) {
        if !s.has_fetched() {
            out.push_str(&format!(
                "note: the keys of issuer `{}` could not be fetched\n",
                i.id
            ));
        }
    }
    let conn = Connection::local();
    let head = Head {
        method: &method,
        uri: &uri,
        headers: &headers,
        conn: &conn,
    };
    let backend = Once(Introspector::for_gateway(
        &gateway,
        &registry,
        plan.introspection_limits,
    ));
    let decided = rt.block_on(gateway.decide_with(&head, &backend));
    let route = decided.route.map(|r| rules.routes[r].name.as_str());
    out.push_str(&format!("route: {}\n", route.unwrap_or("(none)")));
    if let (Some(r), Some(p)) = (decided.route, &decided.principal) {
        claim_conditions(&mut out, rules, r, p);
    }
    if let Some(r) = &decided.would_refuse {
        out.push_str(&format!(
            "report mode: forwarded below; enforced, it would be refused: {} {}\n",
            r.status(),
            r.reason()
        ));
    }
    let allowed = match decided.verdict {
        Verdict::Forward(f) => {
            let upstream = &rules.upstreams[f.upstream];
            out.push_str(&format!(
                "decision: allowed, forwarded to `{}` as {} {}{}\n",
                upstream.name, method, upstream.base_path, f.path_and_query
            ));
            if f.path_and_query.split('?').next() != Some(f.path.as_str()) {
                out.push_str(&format!("  matched {} (the route rewrites it)\n", f.path));
            }
            if let Some(p) = f.principal {
                let show = |v: &HeaderValue| v.to_str().unwrap_or("?").to_string();
                out.push_str(&format!("  subject: {}\n", show(&p.subject)));
                if let Some(c) = &p.client_id {
                    out.push_str(&format!("  client: {}\n", show(c)));
                }
                out.push_str(&format!("  principal: {}\n", show(&p.kind.header())));
                out.push_str(&format!("  issuer: {}\n", show(&p.issuer_id)));
                out.push_str(&format!(
                    "  effective scopes: {}\n",
                    show(&p.grant.effective)
                ));
            } else {
                out.push_str("  public route: no credential checked\n");
            }
            out.push_str(&format!(
                "decision endpoint: 200 with these identity headers and x-scopegate-target: {}\n",
                f.path_and_query
            ));
            true
        }
        Verdict::Refuse(r) => {
            let a = r.render();
            out.push_str(&format!("decision: refused, {}\n", a.status));
            for (name, value) in &a.headers {
                if name != http::header::CONTENT_TYPE && name != http::header::CACHE_CONTROL {
                    out.push_str(&format!("  {name}: {}\n", value.to_str().unwrap_or("?")));
                }
            }
            out.push_str(&format!("  body: {}\n", String::from_utf8_lossy(&a.body)));
            out.push_str(&format!(
                "decision endpoint: the same answer; {}\n",
                through_nginx(a.status)
            ));
            false
        }
    };
    Ok((out, allowed))
}

/// Each claim condition the route names, and whether the token meets it.
fn claim_conditions(out: &mut String, rules: &Rules, route: usize, p: &Principal) {
    let Some(requirement) = &rules.routes[route].requirement else {
        return;
    };
    let mut named = Vec::new();
    for e in requirement
        .alternatives
        .iter()
        .filter_map(|a| a.claims.as_ref())
    {
        e.conditions_into(&mut named);
    }
    for i in named {
        let met = if p.conditions.contains(i) {
            "met"
        } else {
            "not met"
        };
        let condition = rules.principals.conditions.get(i).describe();
        out.push_str(&format!("claim condition {condition}: {met}\n"));
    }
}

/// What a refusal becomes through nginx `auth_request`, which passes only 401 and 403 (and
/// 2xx) from the decision; Caddy, Traefik and Envoy pass the answer as it is.
fn through_nginx(status: http::StatusCode) -> String {
    match status.as_u16() {
        401 | 403 => format!("nginx auth_request passes {status} and WWW-Authenticate"),
        _ => format!("nginx auth_request turns {status} into 500 (it passes only 401 and 403)"),
    }
}

/// The network half of one decision: keys were fetched up front; opaque tokens are
/// introspected like `run` does.
struct Once(Introspector);

impl Backend for Once {
    async fn refresh_keys(&self, _issuer: usize) {}

    async fn introspect(
        &self,
        token: &str,
        digest: TokenHash,
        client: Option<std::net::IpAddr>,
    ) -> Result<Cached, Unreachable> {
        self.0.introspect(token, digest, client).await
    }

    async fn membership(&self, token: &str, digest: TokenHash, issuer: usize, org: &str) {
        self.0.membership(token, digest, issuer, org).await
    }
}
