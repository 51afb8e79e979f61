//! Framing checks on the request head, made before anything is forwarded.
//!
//! A request with both `Content-Length` and `Transfer-Encoding`, or with conflicting lengths,
//! is how requests are smuggled past a proxy whose upstream reads the body differently. The
//! engine's HTTP/1 parser handles the wire (hyper: `Transfer-Encoding` wins, `Content-Length`
//! is dropped, the connection closes after the answer; conflicting lengths are a 400); these
//! checks refuse whatever of that still reaches the head, e.g. over HTTP/2.

use http::HeaderMap;
use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FramingError {
    ContentLengthAndTransferEncoding,
    ConflictingContentLength,
    InvalidContentLength,
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

pub fn check(uri_len: usize, headers: &HeaderMap, limits: &Limits) -> Result<(), FramingError> {
    if uri_len > limits.max_uri_bytes {
        return Err(FramingError::UriTooLong);
    }
    let header_bytes: usize = headers
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum();
    if header_bytes > limits.max_header_bytes {
        return Err(FramingError::HeadersTooLarge);
    }
    let mut lengths = headers.get_all(CONTENT_LENGTH).iter();
    if let Some(first) = lengths.next() {
        if headers.contains_key(TRANSFER_ENCODING) {
            return Err(FramingError::ContentLengthAndTransferEncoding);
        }
        let parse = |v: &http::HeaderValue| -> Result<u64, FramingError> {
            let s = v.to_str().map_err(|_| FramingError::InvalidContentLength)?;
            // A comma-joined list of equal values is allowed by RFC 9110 §8.6, but rare enough
            // that refusing it is safer than guessing.
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(FramingError::InvalidContentLength);
            }
            s.parse().map_err(|_| FramingError::InvalidContentLength)
        };
        let n = parse(first)?;
        for other in lengths {
            if parse(other)? != n {
                return Err(FramingError::ConflictingContentLength);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_uri_bytes: 100,
        max_header_bytes: 200,
    };

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(n.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn content_length_with_transfer_encoding_is_refused() {
        let h = headers(&[("content-length", "5"), ("transfer-encoding", "chunked")]);
        assert_eq!(
            check(1, &h, &LIMITS),
            Err(FramingError::ContentLengthAndTransferEncoding)
        );
    }

    #[test]
    fn differing_duplicate_content_length_is_refused_and_equal_ones_pass() {
        let h = headers(&[("content-length", "5"), ("content-length", "6")]);
        assert_eq!(
            check(1, &h, &LIMITS),
            Err(FramingError::ConflictingContentLength)
        );
        let h = headers(&[("content-length", "5"), ("content-length", "5")]);
        assert_eq!(check(1, &h, &LIMITS), Ok(()));
    }

    #[test]
    fn non_numeric_content_length_is_refused() {
        for v in ["-1", "5, 5", "+5", "0x5"] {
            let h = headers(&[("content-length", v)]);
            assert_eq!(
                check(1, &h, &LIMITS),
                Err(FramingError::InvalidContentLength),
                "{v}"
            );
        }
    }

    #[test]
    fn limits_give_414_and_431_reasons() {
        assert_eq!(
            check(101, &HeaderMap::new(), &LIMITS),
            Err(FramingError::UriTooLong)
        );
        let big = "x".repeat(300);
        let h = headers(&[("x-big", &big)]);
        assert_eq!(check(1, &h, &LIMITS), Err(FramingError::HeadersTooLarge));
    }
}
