//! Checks of the request head that keep any two HTTP stacks from reading one request two
//! ways, made before anything is forwarded: the body's framing (`Content-Length`,
//! `Transfer-Encoding`), the `Host` (RFC 9112 §3.2, and `:authority` over HTTP/2), field
//! values an HTTP/1 parser would have trimmed, and the size limits.
//!
//! What only the raw bytes show (a `Content-Length` beside `Transfer-Encoding`, which hyper
//! drops while parsing; a raw `#` in the target) is checked before the engine parses the
//! head, by `proxy`'s wire check (`request::wire`).

use super::head::Head;
use http::header::{CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http::{HeaderMap, Version};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FramingError {
    ContentLengthAndTransferEncoding,
    ConflictingContentLength,
    InvalidContentLength,
    /// More than one `Transfer-Encoding` field.
    RepeatedTransferEncoding,
    /// A `Transfer-Encoding` that is not exactly `chunked` once (a coding twice, parameters,
    /// an obfuscated spelling), or any over HTTP/2.
    InvalidTransferEncoding,
    /// A transfer coding other than `chunked`: 501 (RFC 9112 §6.1).
    UnsupportedTransferCoding,
    /// HTTP/1.1 without `Host`.
    MissingHost,
    /// More than one `Host`, or a list.
    RepeatedHost,
    InvalidHost,
    /// `Host` disagrees with the authority of the target (absolute-form, or HTTP/2's
    /// `:authority`).
    AuthorityMismatch,
    /// A field value with leading or trailing whitespace (malformed over HTTP/2, RFC 9113
    /// §8.2.1; trimmed by HTTP/1 parsers, so two stacks would read it differently).
    WhitespaceAroundValue,
    /// A raw `#` in the request target.
    FragmentInTarget,
    /// The body's framing broke while it was read (a malformed chunk, a body cut short).
    BadBody,
    UriTooLong,
    HeadersTooLarge,
}

impl FramingError {
    pub fn description(self) -> &'static str {
        match self {
            FramingError::ContentLengthAndTransferEncoding => {
                "both Content-Length and Transfer-Encoding"
            }
            FramingError::ConflictingContentLength => "conflicting Content-Length headers",
            FramingError::InvalidContentLength => "invalid Content-Length",
            FramingError::RepeatedTransferEncoding => "more than one Transfer-Encoding field",
            FramingError::InvalidTransferEncoding => {
                "Transfer-Encoding must be exactly `chunked` (and is not allowed over HTTP/2)"
            }
            FramingError::UnsupportedTransferCoding => {
                "transfer codings other than chunked are not supported"
            }
            FramingError::MissingHost => "an HTTP/1.1 request needs a Host header",
            FramingError::RepeatedHost => "more than one Host",
            FramingError::InvalidHost => "the Host header is not a valid host[:port]",
            FramingError::AuthorityMismatch => {
                "the Host header disagrees with the authority of the request"
            }
            FramingError::WhitespaceAroundValue => {
                "a header value has leading or trailing whitespace"
            }
            FramingError::FragmentInTarget => "a # in the request target is not allowed",
            FramingError::BadBody => "the request body is not framed as announced",
            FramingError::UriTooLong => "request target too long",
            FramingError::HeadersTooLarge => "request headers too large",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_uri_bytes: usize,
    pub max_header_bytes: usize,
}

pub fn check(head: &Head, limits: &Limits) -> Result<(), FramingError> {
    let uri_len = head.uri.path_and_query().map_or(0, |p| p.as_str().len());
    if uri_len > limits.max_uri_bytes {
        return Err(FramingError::UriTooLong);
    }
    let headers = head.headers;
    let mut header_bytes = 0;
    for (n, v) in headers {
        header_bytes += n.as_str().len() + v.len() + 4;
        if v.as_bytes()
            .first()
            .is_some_and(|b| matches!(b, b' ' | b'\t'))
            || v.as_bytes()
                .last()
                .is_some_and(|b| matches!(b, b' ' | b'\t'))
        {
            return Err(FramingError::WhitespaceAroundValue);
        }
    }
    if header_bytes > limits.max_header_bytes {
        return Err(FramingError::HeadersTooLarge);
    }
    host(head)?;
    transfer_encoding(headers, head.conn.version)?;
    content_length(headers)
}

/// RFC 9112 §3.2: exactly one valid `Host` in HTTP/1.1, agreeing with the target's authority
/// when it has one (absolute-form, or `:authority` over HTTP/2).
fn host(head: &Head) -> Result<(), FramingError> {
    let mut hosts = head.headers.get_all(HOST).iter();
    let host = hosts.next();
    if hosts.next().is_some() {
        return Err(FramingError::RepeatedHost);
    }
    let Some(host) = host else {
        let needs_host = head.conn.version == Version::HTTP_11 && head.uri.authority().is_none();
        return if needs_host {
            Err(FramingError::MissingHost)
        } else {
            Ok(())
        };
    };
    let text = host.to_str().map_err(|_| FramingError::InvalidHost)?;
    if text.contains(',') {
        return Err(FramingError::RepeatedHost);
    }
    if !valid_host(text) {
        return Err(FramingError::InvalidHost);
    }
    match head.uri.authority() {
        Some(a) if !a.as_str().eq_ignore_ascii_case(text) => Err(FramingError::AuthorityMismatch),
        _ => Ok(()),
    }
}

/// `uri-host [":" port]` (RFC 9110 §7.2): an IP literal in brackets or a reg-name of
/// unreserved, sub-delim (but `,`) and percent characters, and a numeric port.
fn valid_host(text: &str) -> bool {
    let (host, port) = match text.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((ip, port)) => {
                if ip.parse::<std::net::Ipv6Addr>().is_err() {
                    return false;
                }
                ("ip-literal", port)
            }
            None => return false,
        },
        None => match text.rsplit_once(':') {
            Some((h, _)) => (h, &text[h.len()..]),
            None => (text, ""),
        },
    };
    let port_ok = port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|p| !p.is_empty() && p.len() <= 5 && p.parse::<u16>().is_ok());
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+;=%".contains(&b));
    port_ok && host_ok
}

/// RFC 9112 §6.1: `chunked` exactly once, nothing else; no `Transfer-Encoding` over HTTP/2.
fn transfer_encoding(headers: &HeaderMap, version: Version) -> Result<(), FramingError> {
    let mut fields = headers.get_all(TRANSFER_ENCODING).iter();
    let Some(field) = fields.next() else {
        return Ok(());
    };
    if version == Version::HTTP_2 || version == Version::HTTP_3 {
        return Err(FramingError::InvalidTransferEncoding);
    }
    if fields.next().is_some() {
        return Err(FramingError::RepeatedTransferEncoding);
    }
    codings(field.as_bytes())
}

/// RFC 9110 §5.6.2 `tchar`.
pub(super) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// One `Transfer-Encoding` value: `chunked`, exactly once, and nothing else.
pub(super) fn codings(value: &[u8]) -> Result<(), FramingError> {
    let text = std::str::from_utf8(value).map_err(|_| FramingError::InvalidTransferEncoding)?;
    let codings: Vec<&str> = text
        .split(',')
        .map(|c| c.trim_matches([' ', '\t']))
        .collect();
    let is_token = |c: &str| !c.is_empty() && c.bytes().all(is_tchar);
    if !codings.iter().all(|c| is_token(c)) {
        return Err(FramingError::InvalidTransferEncoding);
    }
    let chunked = codings
        .iter()
        .filter(|c| c.eq_ignore_ascii_case("chunked"))
        .count();
    match (codings.len(), chunked) {
        (1, 1) => Ok(()),
        (_, n) if n > 1 => Err(FramingError::InvalidTransferEncoding),
        _ => Err(FramingError::UnsupportedTransferCoding),
    }
}

/// `Content-Length` values: digits only, all equal; the length.
pub(super) fn length<'a>(
    values: impl Iterator<Item = &'a [u8]>,
) -> Result<Option<u64>, FramingError> {
    let mut found = None;
    for v in values {
        // A comma-joined list of equal values is allowed by RFC 9110 §8.6, but rare enough
        // that refusing it is safer than guessing.
        if v.is_empty() || !v.iter().all(|b| b.is_ascii_digit()) {
            return Err(FramingError::InvalidContentLength);
        }
        let n: u64 = std::str::from_utf8(v)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(FramingError::InvalidContentLength)?;
        match found {
            Some(m) if m != n => return Err(FramingError::ConflictingContentLength),
            _ => found = Some(n),
        }
    }
    Ok(found)
}

fn content_length(headers: &HeaderMap) -> Result<(), FramingError> {
    if headers.contains_key(CONTENT_LENGTH) && headers.contains_key(TRANSFER_ENCODING) {
        return Err(FramingError::ContentLengthAndTransferEncoding);
    }
    length(headers.get_all(CONTENT_LENGTH).iter().map(|v| v.as_bytes())).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Connection;

    const LIMITS: Limits = Limits {
        max_uri_bytes: 100,
        max_header_bytes: 300,
    };

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(n.as_bytes()).unwrap(),
                http::HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    /// Checks a request for `uri` over `version` with `pairs` (a Host is added for HTTP/1.1
    /// unless the pairs name one or `no_host` is set).
    fn check_as(version: Version, uri: &str, pairs: &[(&str, &str)]) -> Result<(), FramingError> {
        let mut h = headers(pairs);
        if version == Version::HTTP_11 && !pairs.iter().any(|(n, _)| n.eq_ignore_ascii_case("host"))
        {
            h.insert(HOST, "api.test".parse().unwrap());
        }
        let uri: http::Uri = uri.parse().unwrap();
        let conn = Connection {
            version,
            ..Connection::local()
        };
        check(
            &Head {
                method: &http::Method::GET,
                uri: &uri,
                headers: &h,
                conn: &conn,
            },
            &LIMITS,
        )
    }

    fn h1(pairs: &[(&str, &str)]) -> Result<(), FramingError> {
        check_as(Version::HTTP_11, "/", pairs)
    }

    #[test]
    fn content_length_with_transfer_encoding_is_refused() {
        assert_eq!(
            h1(&[("content-length", "5"), ("transfer-encoding", "chunked")]),
            Err(FramingError::ContentLengthAndTransferEncoding)
        );
    }

    #[test]
    fn differing_duplicate_content_length_is_refused_and_equal_ones_pass() {
        assert_eq!(
            h1(&[("content-length", "5"), ("content-length", "6")]),
            Err(FramingError::ConflictingContentLength)
        );
        assert_eq!(
            h1(&[("content-length", "5"), ("content-length", "5")]),
            Ok(())
        );
    }

    #[test]
    fn non_numeric_content_length_is_refused() {
        for v in ["-1", "5, 5", "+5", "0x5"] {
            assert_eq!(
                h1(&[("content-length", v)]),
                Err(FramingError::InvalidContentLength),
                "{v}"
            );
        }
    }

    #[test]
    fn transfer_encoding_must_be_chunked_exactly_once() {
        assert_eq!(h1(&[("transfer-encoding", "chunked")]), Ok(()));
        assert_eq!(h1(&[("transfer-encoding", "Chunked")]), Ok(()));
        for (v, e) in [
            ("chunked, chunked", FramingError::InvalidTransferEncoding),
            ("chunked;q=1", FramingError::InvalidTransferEncoding),
            ("chunked ,", FramingError::InvalidTransferEncoding),
            ("\"chunked\"", FramingError::InvalidTransferEncoding),
            ("gzip, chunked", FramingError::UnsupportedTransferCoding),
            ("identity", FramingError::UnsupportedTransferCoding),
            ("xchunked", FramingError::UnsupportedTransferCoding),
        ] {
            assert_eq!(h1(&[("transfer-encoding", v)]), Err(e), "{v}");
        }
        assert_eq!(
            h1(&[
                ("transfer-encoding", "gzip"),
                ("transfer-encoding", "chunked")
            ]),
            Err(FramingError::RepeatedTransferEncoding)
        );
        assert_eq!(
            check_as(
                Version::HTTP_2,
                "https://api.test/",
                &[("transfer-encoding", "chunked")]
            ),
            Err(FramingError::InvalidTransferEncoding)
        );
    }

    #[test]
    fn http11_needs_exactly_one_valid_host() {
        assert_eq!(
            check_as(Version::HTTP_11, "/", &[("x", "y")]).and(Ok(())),
            Ok(()),
            "the helper adds a Host"
        );
        let no_host = {
            let uri: http::Uri = "/".parse().unwrap();
            let h = HeaderMap::new();
            let conn = Connection::local();
            check(
                &Head {
                    method: &http::Method::GET,
                    uri: &uri,
                    headers: &h,
                    conn: &conn,
                },
                &LIMITS,
            )
        };
        assert_eq!(no_host, Err(FramingError::MissingHost));
        assert_eq!(
            check_as(Version::HTTP_10, "/", &[]),
            Ok(()),
            "HTTP/1.0 may omit it"
        );
        assert_eq!(
            h1(&[("host", "a.test"), ("host", "a.test")]),
            Err(FramingError::RepeatedHost)
        );
        assert_eq!(
            h1(&[("host", "a.test, b.test")]),
            Err(FramingError::RepeatedHost)
        );
        for v in [
            "",
            "a b",
            "user@a.test",
            "a.test:x",
            "a.test/x",
            "[::1",
            "a[b",
            "::1",
            "a.test:99999",
        ] {
            assert_eq!(h1(&[("host", v)]), Err(FramingError::InvalidHost), "{v:?}");
        }
        for v in ["a.test", "a.test:8080", "127.0.0.1:1", "[::1]:8080"] {
            assert_eq!(h1(&[("host", v)]), Ok(()), "{v}");
        }
    }

    #[test]
    fn host_must_agree_with_the_targets_authority() {
        assert_eq!(
            check_as(Version::HTTP_11, "http://a.test/x", &[("host", "b.test")]),
            Err(FramingError::AuthorityMismatch)
        );
        assert_eq!(
            check_as(Version::HTTP_2, "https://a.test/x", &[("host", "b.test")]),
            Err(FramingError::AuthorityMismatch)
        );
        assert_eq!(
            check_as(Version::HTTP_2, "https://a.test/x", &[("host", "A.test")]),
            Ok(())
        );
        assert_eq!(check_as(Version::HTTP_2, "https://a.test/x", &[]), Ok(()));
    }

    #[test]
    fn values_with_surrounding_whitespace_are_refused() {
        for v in [" x", "x ", "\tx", "x\t"] {
            assert_eq!(
                check_as(Version::HTTP_2, "https://a.test/", &[("x-a", v)]),
                Err(FramingError::WhitespaceAroundValue),
                "{v:?}"
            );
        }
        assert_eq!(h1(&[("x-a", "a b")]), Ok(()));
    }

    #[test]
    fn limits_give_414_and_431_reasons() {
        let long = format!("/{}", "a".repeat(100));
        assert_eq!(
            check_as(Version::HTTP_11, &long, &[]),
            Err(FramingError::UriTooLong)
        );
        let big = "x".repeat(300);
        assert_eq!(h1(&[("x-big", &big)]), Err(FramingError::HeadersTooLarge));
    }
}
