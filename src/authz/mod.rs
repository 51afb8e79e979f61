//! The decision endpoint: proxies that already run in front of the API (nginx `auth_request`,
//! Traefik and Caddy `forward_auth`, Envoy `ext_authz`) ask for the decision and forward
//! themselves. Each caller names the original request in its own conventions
//! ([`original`]); the decision is the proxy's own (`Gateway::decide_with`: the same routes,
//! credentials, scopes, organizations, revocations, normalization and refusals), and its
//! answer ([`Answer`]) is mapped back to the caller's protocol by `proxy/decision.rs` (HTTP)
//! and `grpc.rs` (Envoy's gRPC API).
//!
//! The endpoint decides whatever URI its caller names, so only a trusted caller may ask: the
//! listener is on loopback or a unix socket, or every call carries the shared secret
//! ([`trusted`]). Identity headers in the call are never read: the decision reads the
//! credential, and the answer carries the identity the caller sets.

pub mod grpc;

use crate::answer::{Outcome, Rendered};
use crate::decision::Verdict;
use crate::generation::Generation;
use crate::otel;
use crate::request::{Connection, Head};
use crate::requestlog::{self, Entry};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri, Version};
use opentelemetry::context::FutureExt;
use std::net::{IpAddr, SocketAddr};

/// Who asks, by the conventions it follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrontEnd {
    /// nginx `auth_request`: `X-Original-Method`, `X-Original-URI` (set in its configuration).
    Nginx,
    /// Traefik `forwardAuth`, Caddy `forward_auth`: `X-Forwarded-Method`, `-Uri`, `-Host`,
    /// `-Proto`.
    ForwardAuth,
    /// Envoy `ext_authz` over HTTP: the original method, and the original path after the
    /// configured `path_prefix`.
    EnvoyHttp,
    /// Envoy `ext_authz` over gRPC (`envoy.service.auth.v3.Authorization/Check`).
    EnvoyGrpc,
}

impl FrontEnd {
    pub fn label(self) -> &'static str {
        match self {
            FrontEnd::Nginx => "nginx",
            FrontEnd::ForwardAuth => "forward_auth",
            FrontEnd::EnvoyHttp => "envoy_http",
            FrontEnd::EnvoyGrpc => "envoy_grpc",
        }
    }
}

/// The path prefix of each HTTP front end on the decision listener.
pub const NGINX_PATH: &str = "/nginx";
pub const FORWARD_AUTH_PATH: &str = "/forward-auth";
pub const ENVOY_PREFIX: &str = "/envoy";

/// A call that is not a question the endpoint answers: the caller's setup is at fault, not
/// the client, and nothing is decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallError {
    /// No or a wrong shared secret.
    Untrusted,
    /// The call's path names no front end.
    UnknownPath,
    /// The caller did not send this header of its convention.
    Missing(&'static str),
    /// The original request the caller names is not one (`X-Original-URI: http://…`).
    BadOriginal(&'static str),
}

impl CallError {
    /// The status and JSON body; 403 for an untrusted caller, so that a proxy passing it on
    /// refuses the client too.
    pub fn answer(self) -> (http::StatusCode, String) {
        let (status, error, description) = match self {
            CallError::Untrusted => (
                http::StatusCode::FORBIDDEN,
                "untrusted_caller",
                "the decision endpoint answers only callers with the shared secret".to_string(),
            ),
            CallError::UnknownPath => (
                http::StatusCode::NOT_FOUND,
                "unknown_front_end",
                format!(
                    "ask at {NGINX_PATH}, {FORWARD_AUTH_PATH} or {ENVOY_PREFIX}/<original path>"
                ),
            ),
            CallError::Missing(h) => (
                http::StatusCode::BAD_REQUEST,
                "caller_misconfigured",
                format!("the caller did not send {h}"),
            ),
            CallError::BadOriginal(h) => (
                http::StatusCode::BAD_REQUEST,
                "caller_misconfigured",
                format!("{h} is not an origin-form request target or method"),
            ),
        };
        let body = serde_json::json!({"error": error, "error_description": description});
        (status, body.to_string())
    }
}

/// The client's request as the caller names it.
pub struct Original {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub conn: Connection,
}

/// Whether the call carries the shared secret (constant-time), when one is configured.
pub fn trusted(headers: &HeaderMap, secret: Option<&(HeaderName, String)>) -> bool {
    let Some((name, secret)) = secret else {
        return true;
    };
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (Some(v), None) => {
            aws_lc_rs::constant_time::verify_slices_are_equal(v.as_bytes(), secret.as_bytes())
                .is_ok()
        }
        _ => false,
    }
}

/// Headers of the callers' conventions: they describe the call, not the client's request,
/// and are not part of what is decided.
const CONVENTION: [&str; 8] = [
    "x-original-uri",
    "x-original-method",
    "x-original-host",
    "x-forwarded-method",
    "x-forwarded-uri",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
];

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The original request of an HTTP call to the decision listener: which front end by the
/// call's path, then the method, target, host and client address by its conventions.
pub fn original(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
    secret: Option<&(HeaderName, String)>,
) -> Result<(FrontEnd, Original), CallError> {
    if !trusted(headers, secret) {
        return Err(CallError::Untrusted);
    }
    let path = uri.path();
    let (front_end, method, target, host) = if path == NGINX_PATH {
        let target =
            header(headers, "x-original-uri").ok_or(CallError::Missing("X-Original-URI"))?;
        let method = header(headers, "x-original-method").unwrap_or(method.as_str());
        let host = header(headers, "x-original-host");
        (FrontEnd::Nginx, method, target.to_string(), host)
    } else if path == FORWARD_AUTH_PATH {
        let target =
            header(headers, "x-forwarded-uri").ok_or(CallError::Missing("X-Forwarded-Uri"))?;
        let method = header(headers, "x-forwarded-method")
            .ok_or(CallError::Missing("X-Forwarded-Method"))?;
        let host = header(headers, "x-forwarded-host");
        (FrontEnd::ForwardAuth, method, target.to_string(), host)
    } else if let Some(rest) = path.strip_prefix(ENVOY_PREFIX)
        && (rest.is_empty() || rest.starts_with('/'))
    {
        let rest = if rest.is_empty() { "/" } else { rest };
        let target = match uri.query() {
            Some(q) => format!("{rest}?{q}"),
            None => rest.to_string(),
        };
        (FrontEnd::EnvoyHttp, method.as_str(), target, None)
    } else {
        return Err(CallError::UnknownPath);
    };
    let method = Method::from_bytes(method.as_bytes())
        .map_err(|_| CallError::BadOriginal("the original method"))?;
    let proto = header(headers, "x-forwarded-proto");
    let client = client_address(headers).or(peer.map(|p| p.ip()));
    let mut original = build(method, &target, headers, host, client, proto)
        .ok_or(CallError::BadOriginal("the original request target"))?;
    // What the caller added for this call is not the client's.
    for name in CONVENTION {
        original.headers.remove(name);
    }
    if let Some((name, _)) = secret {
        original.headers.remove(name);
    }
    Ok((front_end, original))
}

/// The original request from its parts; `None` when `target` is not origin-form (a path,
/// optionally with a query).
pub fn build(
    method: Method,
    target: &str,
    headers: &HeaderMap,
    host: Option<&str>,
    client: Option<IpAddr>,
    proto: Option<&str>,
) -> Option<Original> {
    if !target.starts_with('/') {
        return None;
    }
    let uri: Uri = target.parse().ok()?;
    let mut headers = headers.clone();
    if let Some(h) = host {
        headers.insert(http::header::HOST, HeaderValue::from_str(h).ok()?);
    }
    Some(Original {
        method,
        uri,
        headers,
        conn: Connection {
            // The port is not known (nor used by a decision).
            peer: client.map(|ip| SocketAddr::new(ip, 0)),
            tls: proto.is_some_and(|p| p.eq_ignore_ascii_case("https")),
            version: Version::HTTP_11,
            peer_certificate: None,
        },
    })
}

/// The client's address as the trusted caller saw it: the last `X-Forwarded-For` entry (the
/// one the caller appended), else `X-Real-IP`.
fn client_address(headers: &HeaderMap) -> Option<IpAddr> {
    // Only the last entry: the ones before it are what the client claimed.
    let last = headers
        .get_all("x-forwarded-for")
        .iter()
        .next_back()
        .and_then(|v| v.to_str().ok()?.rsplit(',').next());
    match last {
        Some(a) => a.trim().parse().ok(),
        None => header(headers, "x-real-ip")?.trim().parse().ok(),
    }
}

/// What the endpoint answers.
pub enum Answer {
    /// Forward: set these identity headers (replacing the client's copies), remove the
    /// client's copies of `remove`. `path` is the normalized target the decision matched.
    Allow {
        set: Vec<(HeaderName, HeaderValue)>,
        remove: Vec<HeaderName>,
        path: String,
        /// A public route that does not check credentials: the caller should not forward
        /// those the client presented.
        strip_credentials: bool,
    },
    /// Refuse with exactly what the proxy would have answered.
    Deny(Rendered),
}

/// Decides `original` with `generation`, counting it for `front_end`.
pub async fn decide(generation: &Generation, front_end: FrontEnd, original: &Original) -> Answer {
    let start = std::time::Instant::now();
    let head = Head {
        method: &original.method,
        uri: &original.uri,
        headers: &original.headers,
        conn: &original.conn,
    };
    // The caller is trusted: its request carries the client's trace context.
    let trace = otel::request_span(&original.headers, true, || {
        format!("decide {}", front_end.label())
    });
    let decided = generation.gateway.decide_with(&head, &generation.network);
    let decided = match &trace {
        Some(cx) => decided.with_context(cx.clone()).await,
        None => decided.await,
    };
    let mut entry = Entry {
        time: Some(std::time::SystemTime::now()),
        front_end: front_end.label(),
        trace_id: Entry::trace_id_of(original.headers.get("traceparent")),
        route: decided
            .route
            .map(|r| generation.gateway.rules.routes[r].name.clone()),
        method: Some(original.method.clone()),
        path: Some(original.uri.path().chars().take(256).collect()),
        status: 200,
        client: original.conn.peer.map(|p| p.ip()),
        ..Entry::default()
    };
    let (answer, outcome) = match decided.verdict {
        Verdict::Forward(f) => {
            entry.principal = f.principal.clone();
            entry.org = f.org.clone();
            let policy = &generation.gateway.rules.forward;
            let set: Vec<(HeaderName, HeaderValue)> = policy
                .identity_headers(f.principal.as_deref(), f.org.as_ref())
                .map(|(n, v)| (n.clone(), v))
                .collect();
            let remove = policy
                .identity_names()
                .into_iter()
                .filter(|n| !set.iter().any(|(s, _)| s == *n))
                .cloned()
                .collect();
            let outcome = Outcome::Allowed;
            let answer = Answer::Allow {
                set,
                remove,
                path: f.path_and_query,
                strip_credentials: f.strip_credentials,
            };
            (answer, outcome)
        }
        Verdict::Refuse(r) => {
            entry.refused(&r);
            let outcome = r.outcome();
            (Answer::Deny(r.render()), outcome)
        }
    };
    let metrics = &generation.decisions;
    metrics.count(front_end.label(), decided.route, outcome);
    metrics.seconds.observe(start.elapsed().as_secs_f64());
    entry.duration = Some(start.elapsed());
    if let Some(cx) = &trace {
        entry.trace_id = Some(otel::trace_id(cx));
        otel::annotate(
            cx,
            [("scopegate.reason", entry.refusal.unwrap_or("").into())],
        );
        otel::annotate_int(cx, "http.response.status_code", i64::from(entry.status));
        otel::end(cx);
    }
    requestlog::write(&generation.serving.log, &entry);
    answer
}

#[cfg(test)]
mod tests;
