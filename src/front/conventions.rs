//! The decision endpoint: proxies that already run in front of the API (nginx `auth_request`,
//! Traefik and Caddy `forward_auth`, Envoy `ext_authz`) ask for the decision and forward
//! themselves. Each caller names the original request in its own conventions
//! ([`original`]); the decision is the proxy's own (the same exchange, routes, credentials,
//! scopes, organizations, revocations, normalization and refusals), and its answer
//! ([`CallerAnswer`]) carries everything the caller must do to forward what the proxy would
//! have forwarded: the identity to set (every header, empty when unset), the client headers
//! to drop, the decided target. `callers.rs` renders it to HTTP, `grpc.rs` to Envoy's API.
//!
//! The endpoint decides whatever request its caller names, so only a trusted caller may
//! ask: the listener is on loopback or a unix socket, or every call carries the shared
//! secret ([`trusted`]). Identity headers in the call are never read: the decision reads the
//! credential, and the answer carries the identity the caller sets.

use super::exchange::Exchange;
use crate::answer::{Outcome, Rendered};
use crate::compile::CallerSecret;
use crate::decision::Verdict;
use crate::metrics::FrontEnd;
use crate::request::{Connection, Head};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri, Version};
use std::net::{IpAddr, SocketAddr};

/// The path prefix of each HTTP front end on the decision listener.
pub const NGINX_PATH: &str = "/nginx";
pub const FORWARD_AUTH_PATH: &str = "/forward-auth";
pub const ENVOY_PREFIX: &str = "/envoy";

/// The length of the client's body, as a caller that does not pass the body says it.
pub const ORIGINAL_CONTENT_LENGTH: HeaderName =
    HeaderName::from_static("x-original-content-length");

// The conventions' headers as names, not strings: a `&str` lookup parses the name on every
// call.
const X_ORIGINAL_URI: HeaderName = HeaderName::from_static("x-original-uri");
const X_ORIGINAL_METHOD: HeaderName = HeaderName::from_static("x-original-method");
const X_ORIGINAL_HOST: HeaderName = HeaderName::from_static("x-original-host");
const X_FORWARDED_METHOD: HeaderName = HeaderName::from_static("x-forwarded-method");
const X_FORWARDED_URI: HeaderName = HeaderName::from_static("x-forwarded-uri");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

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
    /// The status, the reason (the JSON `error`) and its description; 403 for an untrusted
    /// caller, so that a proxy passing it on refuses the client too.
    pub fn parts(self) -> (http::StatusCode, &'static str, String) {
        match self {
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
        }
    }

    /// The JSON body.
    pub fn body(self) -> String {
        let (_, error, description) = self.parts();
        serde_json::json!({"error": error, "error_description": description}).to_string()
    }

    /// Counts and logs the refused call in `exchange`.
    pub fn record(self, exchange: &mut Exchange) {
        let (status, reason, _) = self.parts();
        exchange.refused_as(
            None,
            Outcome::Status(status.as_u16()),
            status.as_u16(),
            reason,
        );
    }
}

/// The client's request as the caller names it.
pub struct Original {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub conn: Connection,
}

/// Whether the call carries the shared secret exactly once (compared in constant time), when
/// one is configured.
pub fn trusted(headers: &HeaderMap, secret: Option<&CallerSecret>) -> bool {
    let Some(secret) = secret else {
        return true;
    };
    let mut values = headers.get_all(&secret.header).iter();
    match (values.next(), values.next()) {
        (Some(v), None) => {
            aws_lc_rs::constant_time::verify_slices_are_equal(v.as_bytes(), secret.value.as_bytes())
                .is_ok()
        }
        _ => false,
    }
}

/// Headers of the callers' conventions: they describe the call, not the client's request,
/// and are not part of what is decided.
const CONVENTION: [HeaderName; 9] = [
    X_ORIGINAL_URI,
    X_ORIGINAL_METHOD,
    X_ORIGINAL_HOST,
    X_FORWARDED_METHOD,
    X_FORWARDED_URI,
    X_FORWARDED_HOST,
    X_FORWARDED_PROTO,
    X_REAL_IP,
    ORIGINAL_CONTENT_LENGTH,
];

fn header<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The front end a call to the decision listener names by its path.
pub fn front_end_for(path: &str) -> Option<FrontEnd> {
    match path {
        NGINX_PATH => Some(FrontEnd::Nginx),
        FORWARD_AUTH_PATH => Some(FrontEnd::ForwardAuth),
        p if p
            .strip_prefix(ENVOY_PREFIX)
            .is_some_and(|r| r.is_empty() || r.starts_with('/')) =>
        {
            Some(FrontEnd::EnvoyHttp)
        }
        _ => None,
    }
}

/// The original request of an HTTP call to the decision listener: which front end by the
/// call's path, then the method, target, host, body length and client address by its
/// conventions. A convention's method is required: a caller that forgot it would otherwise
/// have every request decided as the call's own GET.
pub fn original(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
    secret: Option<&CallerSecret>,
) -> Result<(FrontEnd, Original), CallError> {
    if !trusted(headers, secret) {
        return Err(CallError::Untrusted);
    }
    let path = uri.path();
    let (front_end, method, target, host) = if path == NGINX_PATH {
        let target =
            header(headers, &X_ORIGINAL_URI).ok_or(CallError::Missing("X-Original-URI"))?;
        let method =
            header(headers, &X_ORIGINAL_METHOD).ok_or(CallError::Missing("X-Original-Method"))?;
        let host = header(headers, &X_ORIGINAL_HOST);
        (FrontEnd::Nginx, method, target.to_string(), host)
    } else if path == FORWARD_AUTH_PATH {
        let target =
            header(headers, &X_FORWARDED_URI).ok_or(CallError::Missing("X-Forwarded-Uri"))?;
        let method =
            header(headers, &X_FORWARDED_METHOD).ok_or(CallError::Missing("X-Forwarded-Method"))?;
        let host = header(headers, &X_FORWARDED_HOST);
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
    let proto = header(headers, &X_FORWARDED_PROTO);
    let client = client_address(headers).or(peer.map(|p| p.ip()));
    let length = header(headers, &ORIGINAL_CONTENT_LENGTH).map(str::to_string);
    let mut original = build(method, &target, headers, host, client, proto)
        .ok_or(CallError::BadOriginal("the original request target"))?;
    // What the caller added for this call is not the client's.
    for name in &CONVENTION {
        original.headers.remove(name);
    }
    if let Some(s) = secret {
        original.headers.remove(&s.header);
    }
    // The call has no body; the client's request may have had one.
    original.headers.remove(http::header::CONTENT_LENGTH);
    original.headers.remove(http::header::TRANSFER_ENCODING);
    if let Some(n) = length.filter(|n| !n.is_empty()) {
        let bad = CallError::BadOriginal("X-Original-Content-Length");
        let n: u64 = n.parse().map_err(|_| bad)?;
        original
            .headers
            .insert(http::header::CONTENT_LENGTH, HeaderValue::from(n));
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
        .get_all(X_FORWARDED_FOR)
        .iter()
        .next_back()
        .and_then(|v| v.to_str().ok()?.rsplit(',').next());
    match last {
        Some(a) => a.trim().parse().ok(),
        None => header(headers, &X_REAL_IP)?.trim().parse().ok(),
    }
}

/// What a caller must do to forward the request as the proxy would have.
pub struct Allowance {
    /// Every identity header, each set to the gateway's value or empty when the gateway sets
    /// none (so no caller leaves a client's copy, or invents one).
    pub identity: Vec<(HeaderName, HeaderValue)>,
    /// The client's headers to drop: the strip list and prefixes, underscore spellings,
    /// credentials on a public route (and `Authorization` under `forward.authorization:
    /// strip`).
    pub remove: Vec<HeaderName>,
    /// The decided target: the normalized path that was matched, and the query without a
    /// credential. The caller forwards it instead of the client's spelling.
    pub target: String,
    pub request_id: HeaderValue,
    /// The answer must not be stored by shared caches (authenticated by `?access_token=`,
    /// RFC 6750 §2.3): `Cache-Control: private`.
    pub private: bool,
}

/// What the endpoint answers.
pub enum CallerAnswer {
    Allow(Allowance),
    /// Refuse with exactly what the proxy would have answered.
    Deny(Rendered),
}

/// Decides `original` in `exchange`.
pub async fn decide(exchange: &mut Exchange, original: &Original) -> CallerAnswer {
    let head = Head {
        method: &original.method,
        uri: &original.uri,
        headers: &original.headers,
        conn: &original.conn,
    };
    let decided = exchange.decide(&head).await;
    let generation = exchange.generation().clone();
    match decided.verdict {
        Verdict::Forward(f) => {
            exchange.allowed(decided.route);
            let policy = &generation.gateway.rules.forward;
            let set: Vec<(&HeaderName, HeaderValue)> = policy
                .identity_headers(f.principal.as_deref(), f.org.as_ref())
                .collect();
            let identity = policy
                .identity_names()
                .map(|name| {
                    let value = set.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone());
                    (name.clone(), value.unwrap_or(HeaderValue::from_static("")))
                })
                .collect();
            CallerAnswer::Allow(Allowance {
                identity,
                remove: policy.for_caller(&original.headers, f.strip_credentials),
                target: f.path_and_query,
                request_id: exchange.request_id().clone(),
                private: f.query_credential,
            })
        }
        Verdict::Refuse(r) => {
            exchange.refused(decided.route, &r);
            CallerAnswer::Deny(exchange.render(&r))
        }
    }
}

#[cfg(test)]
#[path = "conventions_tests.rs"]
mod tests;
