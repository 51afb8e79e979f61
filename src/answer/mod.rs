//! The gateway's own answers: one [`Refusal`] per row of the answers table of the design,
//! each rendered to a status, RFC 6750 headers and a JSON body. No variant carries the token.

use crate::credential::CredentialError;
use crate::policy::OrgDenial;
use crate::request::{FramingError, PathError};
use crate::route::MethodSet;
use crate::token::TokenError;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode};
use std::sync::Arc;

mod grpc;
pub use grpc::is_grpc;

/// Why the gateway answers itself instead of forwarding.
#[derive(Debug, Clone)]
pub enum Refusal {
    BadPath(PathError),
    BadFraming(FramingError),
    NotFound,
    MethodNotAllowed(MethodSet),
    NoCredential,
    InvalidRequest(CredentialError),
    InvalidToken(TokenError),
    /// A legacy credential presented at or after its `not_after`.
    RetiredCredential,
    /// A valid credential of an issuer that the route does not accept.
    IssuerNotAccepted,
    InsufficientScope {
        /// The route's part of the answer, rendered once at load.
        forbidden: Arc<Forbidden>,
        /// The token's scopes (`X-OAuth-Scopes`).
        granted: HeaderValue,
    },
    /// The token has the scopes but not the claims the route's conditions ask for (a
    /// group, a role, a tenant…): no scope would help, so this is not `insufficient_scope`.
    ClaimsNotSatisfied,
    /// An organization's restrictions refuse the caller.
    Organization(OrgDenial),
    /// A route bound to an organization by a header, and the header is missing.
    MissingOrganization,
    /// The organization header is given more than once.
    AmbiguousOrganization,
    /// What the decision needed could not be reached and nothing was cached.
    Unavailable(Unreachable),
    /// The request body is larger than the route takes.
    PayloadTooLarge,
    /// The request body stalled longer than `server.timeouts.body`.
    BodyTimeout,
    /// Over `server.limits.max_connections`.
    Overloaded,
    /// A CORS preflight the route's rules refuse (origin, method or header).
    CorsRefused(&'static str),
    /// A WebSocket handshake the route does not tunnel (no `websocket:`), or one that cannot
    /// be (not a body-less HTTP/1.1 request).
    WebSocketRefused(&'static str),
    /// Over a rate limit: 429 with `Retry-After` and the RateLimit header fields.
    RateLimited(Box<crate::policy::Exceeded>),
    BadGateway,
    /// The upstream did not answer within `server.timeouts.upstream_response`.
    GatewayTimeout,
}

/// What a 503 could not reach: the client's answer is the same, the log's and the metrics'
/// reason says which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreachable {
    /// An issuer's keys were never fetched.
    IssuerKeys,
    /// The introspection endpoint failed (a timeout, a 5xx, a connection error).
    Introspection,
    /// Its circuit breaker is open after failures (calls paused, one probe at a time).
    IntrospectionCircuitOpen,
    /// It asked to slow down (429): not asked before its `Retry-After`.
    IntrospectionThrottled,
    /// New tokens over the introspection budgets (per client, in all, calls in flight).
    IntrospectionBudget,
    /// An issuer's membership API (GitHub).
    Membership,
    /// Organization policies from a URL never read yet.
    OrganizationPolicies,
}

impl Unreachable {
    pub fn reason(self) -> &'static str {
        match self {
            Unreachable::IssuerKeys => "issuer_keys_unavailable",
            Unreachable::Introspection => "introspection_unavailable",
            Unreachable::IntrospectionCircuitOpen => "introspection_circuit_open",
            Unreachable::IntrospectionThrottled => "introspection_throttled",
            Unreachable::IntrospectionBudget => "introspection_budget",
            Unreachable::Membership => "membership_unavailable",
            Unreachable::OrganizationPolicies => "organization_policies_unavailable",
        }
    }

    /// The authorization server failed (rather than the gateway's own bounds holding): an
    /// answer that was active may be served stale (`serve_stale_on_error`).
    pub fn is_server_failure(self) -> bool {
        matches!(
            self,
            Unreachable::Introspection
                | Unreachable::IntrospectionCircuitOpen
                | Unreachable::IntrospectionThrottled
        )
    }
}

/// The part of a route's 403 that does not depend on the token: built once per route, so a
/// refusal costs a few reference-count increments.
#[derive(Debug)]
pub struct Forbidden {
    challenge: HeaderValue,
    accepted: Option<HeaderValue>,
    body: Bytes,
}

impl Forbidden {
    /// `accepted`: the acceptable scopes, space-delimited; `accepted_header` the same
    /// comma-separated; `needs`: what would be enough, in words.
    pub fn new(accepted: &str, accepted_header: &str, needs: &str) -> Forbidden {
        let description = format!("this request needs {needs}");
        Forbidden {
            challenge: challenge("insufficient_scope", &description, Some(accepted)),
            accepted: HeaderValue::from_str(accepted_header).ok(),
            body: json_body("insufficient_scope", &description),
        }
    }
}

/// Counted outcome of a request, for `scopegate_requests_total{outcome=…}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Allowed,
    Status(u16),
}

impl Outcome {
    pub const ALL: [Outcome; 15] = [
        Outcome::Allowed,
        Outcome::Status(400),
        Outcome::Status(401),
        Outcome::Status(403),
        Outcome::Status(404),
        Outcome::Status(405),
        Outcome::Status(408),
        Outcome::Status(413),
        Outcome::Status(414),
        Outcome::Status(431),
        Outcome::Status(501),
        Outcome::Status(502),
        Outcome::Status(503),
        Outcome::Status(504),
        Outcome::Status(0),
    ];

    pub fn label(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::Status(400) => "400",
            Outcome::Status(401) => "401",
            Outcome::Status(403) => "403",
            Outcome::Status(404) => "404",
            Outcome::Status(405) => "405",
            Outcome::Status(408) => "408",
            Outcome::Status(413) => "413",
            Outcome::Status(414) => "414",
            Outcome::Status(431) => "431",
            Outcome::Status(501) => "501",
            Outcome::Status(502) => "502",
            Outcome::Status(503) => "503",
            Outcome::Status(504) => "504",
            Outcome::Status(_) => "other",
        }
    }

    pub fn index(self) -> usize {
        Outcome::ALL
            .iter()
            .position(|o| o.label() == self.label())
            .unwrap_or(Outcome::ALL.len() - 1)
    }
}

/// Seconds a client is told to wait when the authorization server is unreachable.
pub const RETRY_AFTER_SECS: u32 = 5;

/// A rendered answer, ready for any HTTP engine.
#[derive(Debug)]
pub struct Rendered {
    pub status: StatusCode,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
    /// Close the connection after answering (the framing could not be trusted).
    pub close: bool,
}

const REALM: &str = "Bearer realm=\"scopegate\"";

impl Rendered {
    /// Adds `parameter` (RFC 9728 §5.1 `resource_metadata="…"`) to every challenge.
    pub fn with_challenge_parameter(mut self, parameter: &str) -> Rendered {
        for (name, value) in &mut self.headers {
            if *name == http::header::WWW_AUTHENTICATE
                && let Ok(v) = value.to_str()
                && let Ok(with) = HeaderValue::from_str(&format!("{v}, {parameter}"))
            {
                *value = with;
            }
        }
        self
    }
}

/// A refusal body made of two literals, rendered at compile time: the frequent refusals (no
/// token, no route) then cost no serialization. The literals must need no JSON escaping; a
/// unit test holds every use equal to `json_body`'s output.
macro_rules! static_body {
    ($error:literal, $description:literal) => {
        Bytes::from_static(
            concat!(
                "{\"error\":\"",
                $error,
                "\",\"error_description\":\"",
                $description,
                "\"}"
            )
            .as_bytes(),
        )
    };
}

fn json_body(error: &str, description: &str) -> Bytes {
    let v = serde_json::json!({ "error": error, "error_description": description });
    Bytes::from(v.to_string())
}

/// RFC 6750 §3 quoted-string content must not contain `"` or `\`.
fn quoted(s: &str) -> String {
    s.chars()
        .filter(|c| *c != '"' && *c != '\\' && !c.is_control())
        .collect()
}

fn challenge(error: &str, description: &str, scope: Option<&str>) -> HeaderValue {
    let mut v = format!(
        "{REALM}, error=\"{error}\", error_description=\"{}\"",
        quoted(description)
    );
    if let Some(scope) = scope {
        v.push_str(&format!(", scope=\"{}\"", quoted(scope)));
    }
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static(REALM))
}

/// A 401 `invalid_token` with `description` in the challenge and the body.
fn invalid_token(headers: &mut Vec<(HeaderName, HeaderValue)>, description: &str) -> Bytes {
    headers.push((
        http::header::WWW_AUTHENTICATE,
        challenge("invalid_token", description, None),
    ));
    json_body("invalid_token", description)
}

impl Refusal {
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::InvalidRequest(e) if e.is_unsupported_method() => StatusCode::UNAUTHORIZED,
            Refusal::BadPath(_) | Refusal::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            Refusal::BadFraming(FramingError::UriTooLong) => StatusCode::URI_TOO_LONG,
            Refusal::BadFraming(FramingError::HeadersTooLarge) => {
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
            }
            Refusal::BadFraming(FramingError::UnsupportedTransferCoding) => {
                StatusCode::NOT_IMPLEMENTED
            }
            Refusal::BadFraming(_) => StatusCode::BAD_REQUEST,
            Refusal::NotFound => StatusCode::NOT_FOUND,
            Refusal::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Refusal::NoCredential
            | Refusal::InvalidToken(_)
            | Refusal::RetiredCredential
            | Refusal::IssuerNotAccepted => StatusCode::UNAUTHORIZED,
            Refusal::InsufficientScope { .. }
            | Refusal::CorsRefused(_)
            | Refusal::ClaimsNotSatisfied
            | Refusal::Organization(_) => StatusCode::FORBIDDEN,
            Refusal::MissingOrganization
            | Refusal::AmbiguousOrganization
            | Refusal::WebSocketRefused(_) => StatusCode::BAD_REQUEST,
            Refusal::Unavailable(_) | Refusal::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            Refusal::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Refusal::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Refusal::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Refusal::BadGateway => StatusCode::BAD_GATEWAY,
            Refusal::GatewayTimeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// A refusal about who the caller is or what it may do (credential, issuer, scopes,
    /// claims, organization, an authorization server that cannot say), as opposed to one
    /// about the request itself (framing, path, route, body): what a route in report mode
    /// forwards instead.
    pub fn is_about_the_caller(&self) -> bool {
        matches!(
            self,
            Refusal::NoCredential
                | Refusal::InvalidToken(_)
                | Refusal::RetiredCredential
                | Refusal::IssuerNotAccepted
                | Refusal::InsufficientScope { .. }
                | Refusal::ClaimsNotSatisfied
                | Refusal::Organization(_)
                | Refusal::MissingOrganization
                | Refusal::Unavailable(_)
        )
    }

    pub fn outcome(&self) -> Outcome {
        Outcome::Status(self.status().as_u16())
    }

    /// The `error` code of the answer's JSON body, for logs: why, in one word.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::BadPath(_)
            | Refusal::BadFraming(_)
            | Refusal::MissingOrganization
            | Refusal::AmbiguousOrganization => "invalid_request",
            Refusal::InvalidRequest(e) if e.is_unsupported_method() => "unauthorized",
            Refusal::InvalidRequest(_) => "invalid_request",
            Refusal::NotFound => "not_found",
            Refusal::MethodNotAllowed(_) => "method_not_allowed",
            Refusal::NoCredential => "unauthorized",
            Refusal::InvalidToken(_) | Refusal::RetiredCredential | Refusal::IssuerNotAccepted => {
                "invalid_token"
            }
            Refusal::InsufficientScope { .. } => "insufficient_scope",
            Refusal::ClaimsNotSatisfied => "claims_not_satisfied",
            Refusal::Organization(d) => d.error(),
            Refusal::Unavailable(u) => u.reason(),
            Refusal::BadGateway => "bad_gateway",
            Refusal::GatewayTimeout => "gateway_timeout",
            Refusal::PayloadTooLarge => "payload_too_large",
            Refusal::BodyTimeout => "request_timeout",
            Refusal::Overloaded => "overloaded",
            Refusal::RateLimited(_) => "rate_limited",
            Refusal::CorsRefused(_) => "cors_refused",
            Refusal::WebSocketRefused(_) => "websocket_refused",
        }
    }

    pub fn render(&self) -> Rendered {
        let mut headers = Vec::new();
        let mut close = false;
        let body = match self {
            Refusal::BadPath(e) => json_body("invalid_request", e.description()),
            Refusal::BadFraming(e) => {
                close = true;
                json_body("invalid_request", e.description())
            }
            Refusal::NotFound => static_body!("not_found", "no route matches this request"),
            Refusal::MethodNotAllowed(allow) => {
                if let Ok(v) = HeaderValue::from_str(&allow.allow_header()) {
                    headers.push((http::header::ALLOW, v));
                }
                static_body!(
                    "method_not_allowed",
                    "this path does not accept this method"
                )
            }
            Refusal::NoCredential => {
                headers.push((
                    http::header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(REALM),
                ));
                static_body!("unauthorized", "this resource needs a bearer token")
            }
            // RFC 6750 §3.1: an unsupported method gets the bare challenge; the body says why.
            Refusal::InvalidRequest(e) if e.is_unsupported_method() => {
                headers.push((
                    http::header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(REALM),
                ));
                json_body("unauthorized", e.description())
            }
            Refusal::InvalidRequest(e) => {
                headers.push((
                    http::header::WWW_AUTHENTICATE,
                    challenge("invalid_request", e.description(), None),
                ));
                json_body("invalid_request", e.description())
            }
            Refusal::InvalidToken(e) => invalid_token(&mut headers, e.description()),
            Refusal::RetiredCredential => invalid_token(
                &mut headers,
                "this legacy credential is no longer accepted: use an OAuth 2.0 access token",
            ),
            Refusal::IssuerNotAccepted => invalid_token(
                &mut headers,
                "the token's issuer is not accepted for this resource",
            ),
            Refusal::InsufficientScope { forbidden, granted } => {
                headers.push((http::header::WWW_AUTHENTICATE, forbidden.challenge.clone()));
                if let Some(v) = &forbidden.accepted {
                    headers.push((
                        HeaderName::from_static("x-accepted-oauth-scopes"),
                        v.clone(),
                    ));
                }
                headers.push((HeaderName::from_static("x-oauth-scopes"), granted.clone()));
                forbidden.body.clone()
            }
            // Which condition failed stays in the log: the policy is not the client's to read.
            Refusal::ClaimsNotSatisfied => static_body!(
                "claims_not_satisfied",
                "the token's claims do not meet this resource's conditions"
            ),
            Refusal::Organization(d) => json_body(d.error(), &d.description()),
            Refusal::MissingOrganization => static_body!(
                "invalid_request",
                "the request does not name the organization"
            ),
            Refusal::AmbiguousOrganization => static_body!(
                "invalid_request",
                "the request names the organization more than once"
            ),
            Refusal::Unavailable(_) => {
                headers.push((
                    http::header::RETRY_AFTER,
                    HeaderValue::from(RETRY_AFTER_SECS),
                ));
                static_body!(
                    "temporarily_unavailable",
                    "the authorization server cannot be reached; try again later"
                )
            }
            Refusal::BadGateway => static_body!("bad_gateway", "the upstream cannot be reached"),
            Refusal::GatewayTimeout => {
                static_body!("gateway_timeout", "the upstream did not answer in time")
            }
            Refusal::PayloadTooLarge => {
                close = true;
                static_body!(
                    "payload_too_large",
                    "the request body is larger than this resource takes"
                )
            }
            Refusal::BodyTimeout => {
                close = true;
                static_body!("request_timeout", "the request body stopped arriving")
            }
            Refusal::CorsRefused(why) => json_body(
                "cors_refused",
                &format!("this cross-origin request is not allowed: {why}"),
            ),
            Refusal::WebSocketRefused(why) => json_body("websocket_refused", why),
            Refusal::RateLimited(e) => {
                headers.push((http::header::RETRY_AFTER, HeaderValue::from(e.retry_after)));
                headers.push((
                    HeaderName::from_static("ratelimit-policy"),
                    e.policy.clone(),
                ));
                headers.push((HeaderName::from_static("ratelimit"), e.state.clone()));
                json_body(
                    "rate_limited",
                    &format!("too many requests; retry after {} s", e.retry_after),
                )
            }
            Refusal::Overloaded => {
                close = true;
                headers.push((http::header::RETRY_AFTER, HeaderValue::from(1u32)));
                static_body!(
                    "overloaded",
                    "the gateway serves as many connections as it may"
                )
            }
        };
        headers.push((
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        ));
        headers.push((
            http::header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ));
        Rendered {
            status: self.status(),
            headers,
            body,
            close,
        }
    }
}

#[cfg(test)]
mod tests;
