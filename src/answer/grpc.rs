//! A refusal as a gRPC client understands it (gRPC over HTTP/2, "Responses"): a
//! Trailers-Only answer — HTTP 200, `content-type: application/grpc`, `grpc-status` and a
//! percent-encoded `grpc-message` — keeping the refusal's other headers (`WWW-Authenticate`,
//! `Retry-After`), for requests whose `content-type` is gRPC.

use super::Rendered;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode};

/// gRPC status codes (grpc/doc/statuscodes.md) for the gateway's own answers.
fn code(status: StatusCode) -> u8 {
    match status.as_u16() {
        401 => 16,            // UNAUTHENTICATED
        403 => 7,             // PERMISSION_DENIED
        404 | 405 => 12,      // UNIMPLEMENTED: no such method here
        408 | 504 => 4,       // DEADLINE_EXCEEDED
        413 | 429 => 8,       // RESOURCE_EXHAUSTED
        502 | 503 => 14,      // UNAVAILABLE
        400 | 414 | 431 => 3, // INVALID_ARGUMENT
        _ => 13,              // INTERNAL
    }
}

/// Whether a request is a gRPC call (`application/grpc`, `application/grpc+proto`, …).
pub fn is_grpc(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            let ct = ct.to_ascii_lowercase();
            ct == "application/grpc"
                || ct.starts_with("application/grpc+")
                || ct.starts_with("application/grpc;")
        })
}

/// `grpc-message`: percent-encoded UTF-8, as the protocol asks.
fn percent_encoded(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if (0x20..0x7f).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Rendered {
    /// This refusal as a Trailers-Only gRPC answer.
    pub fn into_grpc(self) -> Rendered {
        let description = serde_json::from_slice::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|b| {
                let error = b["error"].as_str()?.to_string();
                Some(match b["error_description"].as_str() {
                    Some(d) => format!("{error}: {d}"),
                    None => error,
                })
            })
            .unwrap_or_default();
        let mut headers: Vec<(HeaderName, HeaderValue)> = self
            .headers
            .into_iter()
            .filter(|(n, _)| *n != http::header::CONTENT_TYPE && *n != http::header::CONTENT_LENGTH)
            .collect();
        headers.push((
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        ));
        headers.push((
            HeaderName::from_static("grpc-status"),
            HeaderValue::from(u16::from(code(self.status))),
        ));
        if let Ok(v) = HeaderValue::from_str(&percent_encoded(&description)) {
            headers.push((HeaderName::from_static("grpc-message"), v));
        }
        Rendered {
            status: StatusCode::OK,
            headers,
            body: Bytes::new(),
            close: self.close,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answer::Refusal;

    fn header<'a>(r: &'a Rendered, name: &str) -> Option<&'a str> {
        r.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.to_str().unwrap())
    }

    #[test]
    fn a_401_is_unauthenticated_with_its_challenge_and_an_encoded_message() {
        let r = Refusal::NoCredential.render().into_grpc();
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.body.is_empty());
        assert_eq!(header(&r, "grpc-status"), Some("16"));
        assert_eq!(header(&r, "content-type"), Some("application/grpc"));
        assert!(
            header(&r, "www-authenticate")
                .unwrap()
                .starts_with("Bearer")
        );
        assert_eq!(
            header(&r, "grpc-message"),
            Some("unauthorized: this resource needs a bearer token")
        );
        assert_eq!(percent_encoded("é%\n"), "%C3%A9%25%0A");
    }

    #[test]
    fn refusals_map_to_the_grpc_codes_of_their_meaning() {
        assert_eq!(code(StatusCode::FORBIDDEN), 7);
        assert_eq!(code(StatusCode::NOT_FOUND), 12);
        assert_eq!(code(StatusCode::TOO_MANY_REQUESTS), 8);
        assert_eq!(code(StatusCode::SERVICE_UNAVAILABLE), 14);
        assert_eq!(code(StatusCode::GATEWAY_TIMEOUT), 4);
    }

    #[test]
    fn only_grpc_content_types_are_grpc_calls() {
        let with = |ct: &str| {
            let mut h = http::HeaderMap::new();
            h.insert(http::header::CONTENT_TYPE, ct.parse().unwrap());
            is_grpc(&h)
        };
        assert!(with("application/grpc"));
        assert!(with("application/grpc+proto"));
        assert!(!with("application/grpc-web"));
        assert!(!with("application/json"));
    }
}
