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
    /// An organization's restrictions refuse the caller.
    Organization(OrgDenial),
    /// A route bound to an organization by a header, and the header is missing.
    MissingOrganization,
    /// The organization header is given more than once.
    AmbiguousOrganization,
    /// The authorization server could not be asked and nothing was cached.
    Unavailable,
    /// The request body is larger than the route takes.
    PayloadTooLarge,
    /// The request body stalled longer than `server.timeouts.body`.
    BodyTimeout,
    /// Over `server.limits.max_connections`.
    Overloaded,
    BadGateway,
    /// The upstream did not answer within `server.timeouts.upstream_response`.
    GatewayTimeout,
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
            Refusal::InsufficientScope { .. } | Refusal::Organization(_) => StatusCode::FORBIDDEN,
            Refusal::MissingOrganization | Refusal::AmbiguousOrganization => {
                StatusCode::BAD_REQUEST
            }
            Refusal::Unavailable | Refusal::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            Refusal::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Refusal::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Refusal::BadGateway => StatusCode::BAD_GATEWAY,
            Refusal::GatewayTimeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    pub fn outcome(&self) -> Outcome {
        Outcome::Status(self.status().as_u16())
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
            Refusal::NotFound => json_body("not_found", "no route matches this request"),
            Refusal::MethodNotAllowed(allow) => {
                if let Ok(v) = HeaderValue::from_str(&allow.allow_header()) {
                    headers.push((http::header::ALLOW, v));
                }
                json_body(
                    "method_not_allowed",
                    "this path does not accept this method",
                )
            }
            Refusal::NoCredential => {
                headers.push((
                    http::header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(REALM),
                ));
                json_body("unauthorized", "this resource needs a bearer token")
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
            Refusal::Organization(d) => json_body(d.error(), &d.description()),
            Refusal::MissingOrganization => json_body(
                "invalid_request",
                "the request does not name the organization",
            ),
            Refusal::AmbiguousOrganization => json_body(
                "invalid_request",
                "the request names the organization more than once",
            ),
            Refusal::Unavailable => {
                headers.push((
                    http::header::RETRY_AFTER,
                    HeaderValue::from(RETRY_AFTER_SECS),
                ));
                json_body(
                    "temporarily_unavailable",
                    "the authorization server cannot be reached; try again later",
                )
            }
            Refusal::BadGateway => json_body("bad_gateway", "the upstream cannot be reached"),
            Refusal::GatewayTimeout => {
                json_body("gateway_timeout", "the upstream did not answer in time")
            }
            Refusal::PayloadTooLarge => {
                close = true;
                json_body(
                    "payload_too_large",
                    "the request body is larger than this resource takes",
                )
            }
            Refusal::BodyTimeout => {
                close = true;
                json_body("request_timeout", "the request body stopped arriving")
            }
            Refusal::Overloaded => {
                close = true;
                headers.push((http::header::RETRY_AFTER, HeaderValue::from(1u32)));
                json_body(
                    "overloaded",
                    "the gateway serves as many connections as it may",
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
mod tests {
    use super::*;

    fn header<'a>(a: &'a Rendered, name: &str) -> Option<&'a str> {
        a.headers
            .iter()
            .find(|(n, _)| n.as_str() == name)
            .map(|(_, v)| v.to_str().unwrap())
    }

    fn body(a: &Rendered) -> serde_json::Value {
        serde_json::from_slice(&a.body).unwrap()
    }

    #[test]
    fn no_credential_is_401_with_a_bare_challenge() {
        let a = Refusal::NoCredential.render();
        assert_eq!(a.status, 401);
        assert_eq!(
            header(&a, "www-authenticate"),
            Some("Bearer realm=\"scopegate\"")
        );
        assert_eq!(body(&a)["error"], "unauthorized");
    }

    #[test]
    fn invalid_token_is_401_with_error_and_description() {
        let a = Refusal::InvalidToken(TokenError::Expired).render();
        assert_eq!(a.status, 401);
        assert_eq!(
            header(&a, "www-authenticate"),
            Some(
                "Bearer realm=\"scopegate\", error=\"invalid_token\", error_description=\"the token has expired\""
            )
        );
        assert_eq!(body(&a)["error_description"], "the token has expired");
    }

    #[test]
    fn retired_credentials_and_other_issuers_are_401_invalid_token_saying_why() {
        let a = Refusal::RetiredCredential.render();
        assert_eq!(a.status, 401);
        let w = header(&a, "www-authenticate").unwrap();
        assert!(w.contains("error=\"invalid_token\""), "{w}");
        assert!(w.contains("use an OAuth 2.0 access token"), "{w}");
        let a = Refusal::IssuerNotAccepted.render();
        assert_eq!(a.status, 401);
        assert_eq!(
            body(&a)["error_description"],
            "the token's issuer is not accepted for this resource"
        );
    }

    #[test]
    fn an_unsupported_authentication_method_is_401_with_the_bare_challenge() {
        for e in [
            CredentialError::QueryParameterDisabled,
            CredentialError::NoScheme,
        ] {
            let a = Refusal::InvalidRequest(e).render();
            assert_eq!(a.status, 401);
            assert_eq!(
                header(&a, "www-authenticate"),
                Some("Bearer realm=\"scopegate\"")
            );
            assert_eq!(body(&a)["error_description"], e.description());
        }
    }

    #[test]
    fn malformed_request_is_400_invalid_request() {
        let a = Refusal::InvalidRequest(CredentialError::TwoAuthorizationHeaders).render();
        assert_eq!(a.status, 400);
        assert!(
            header(&a, "www-authenticate")
                .unwrap()
                .contains("error=\"invalid_request\"")
        );
    }

    #[test]
    fn insufficient_scope_is_403_with_scope_and_github_headers() {
        let a = Refusal::InsufficientScope {
            forbidden: Arc::new(Forbidden::new(
                "repo public_repo",
                "repo, public_repo",
                "a token with repo or public_repo",
            )),
            granted: HeaderValue::from_static("read:org"),
        }
        .render();
        assert_eq!(a.status, 403);
        let w = header(&a, "www-authenticate").unwrap();
        assert!(w.contains("error=\"insufficient_scope\""), "{w}");
        assert!(w.ends_with("scope=\"repo public_repo\""), "{w}");
        assert_eq!(
            header(&a, "x-accepted-oauth-scopes"),
            Some("repo, public_repo")
        );
        assert_eq!(header(&a, "x-oauth-scopes"), Some("read:org"));
        assert_eq!(body(&a)["error"], "insufficient_scope");
    }

    #[test]
    fn routing_refusals_have_their_status_and_allow() {
        assert_eq!(Refusal::NotFound.render().status, 404);
        let allow = MethodSet::parse(&["GET".into()]).unwrap();
        let a = Refusal::MethodNotAllowed(allow).render();
        assert_eq!(a.status, 405);
        assert_eq!(header(&a, "allow"), Some("GET, HEAD"));
        assert_eq!(
            Refusal::BadPath(PathError::EncodedSlash).render().status,
            400
        );
    }

    #[test]
    fn hostile_framing_is_400_and_closes_the_connection() {
        let a = Refusal::BadFraming(FramingError::ContentLengthAndTransferEncoding).render();
        assert_eq!(a.status, 400);
        assert!(a.close);
        assert_eq!(
            Refusal::BadFraming(FramingError::UriTooLong)
                .render()
                .status,
            414
        );
        assert_eq!(
            Refusal::BadFraming(FramingError::HeadersTooLarge)
                .render()
                .status,
            431
        );
    }

    #[test]
    fn unavailable_is_503_with_retry_after() {
        let a = Refusal::Unavailable.render();
        assert_eq!(a.status, 503);
        assert_eq!(header(&a, "retry-after"), Some("5"));
    }

    #[test]
    fn every_answer_is_json() {
        for r in [
            Refusal::NotFound,
            Refusal::BadGateway,
            Refusal::NoCredential,
        ] {
            let a = r.render();
            assert_eq!(header(&a, "content-type"), Some("application/json"));
            body(&a);
        }
    }
}
