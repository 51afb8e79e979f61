//! RFC 6750 credential extraction: where the token is, never whether it is valid.

mod query;

pub use query::{find_param, without_param};

use http::HeaderMap;
use http::header::AUTHORIZATION;
use std::borrow::Cow;

/// The query parameter of RFC 6750 §2.3.
pub const QUERY_PARAMETER: &str = "access_token";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Header,
    Query,
}

/// A syntactically valid bearer token and where it came from.
#[derive(Debug, PartialEq, Eq)]
pub struct Credential<'a> {
    pub token: Cow<'a, str>,
    pub source: Source,
}

/// Why a request's credentials are malformed (each is a 400 `invalid_request`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialError {
    TwoAuthorizationHeaders,
    TokenInTwoPlaces,
    MalformedAuthorization,
    QueryParameterDisabled,
}

impl CredentialError {
    pub fn description(self) -> &'static str {
        match self {
            CredentialError::TwoAuthorizationHeaders => "more than one Authorization header",
            CredentialError::TokenInTwoPlaces => "the access token is given more than once",
            CredentialError::MalformedAuthorization => {
                "the Authorization header is not `scheme token`"
            }
            CredentialError::QueryParameterDisabled => {
                "access_token in the query is not accepted: use the Authorization header"
            }
        }
    }
}

/// What the extractor needs from the configuration.
#[derive(Debug, Clone)]
pub struct Rules {
    /// Accepted schemes, e.g. `Bearer`, `Zoho-oauthtoken`; compared case-insensitively.
    pub schemes: Vec<String>,
    pub query_parameter: bool,
}

/// Byte classes of RFC 6750 and RFC 9110, looked up per byte: tokens are long (a JWT is
/// hundreds of bytes) and checked on every request.
const B64TOKEN: u8 = 1;
const TCHAR: u8 = 2;
const CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        if (b as u8).is_ascii_alphanumeric() {
            t[b] = B64TOKEN | TCHAR;
        }
        b += 1;
    }
    let b64_extra = b"-._~+/";
    let mut i = 0;
    while i < b64_extra.len() {
        t[b64_extra[i] as usize] |= B64TOKEN;
        i += 1;
    }
    let tchar_extra = b"!#$%&'*+-.^_`|~";
    let mut i = 0;
    while i < tchar_extra.len() {
        t[tchar_extra[i] as usize] |= TCHAR;
        i += 1;
    }
    t
};

/// RFC 6750 §2.1 b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
pub fn is_b64token(t: &str) -> bool {
    let body = t.trim_end_matches('=').as_bytes();
    !body.is_empty() && body.iter().all(|&b| CLASS[b as usize] & B64TOKEN != 0)
}

/// Extracts the bearer token of a request, or `None` when it carries none.
///
/// An `Authorization` header with a scheme that is not configured (e.g. `Basic`) is not a
/// bearer credential: the request is treated as carrying none, and gets the 401 challenge.
pub fn extract<'a>(
    headers: &'a HeaderMap,
    query: Option<&'a str>,
    rules: &Rules,
) -> Result<Option<Credential<'a>>, CredentialError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let header = values.next();
    if values.next().is_some() {
        return Err(CredentialError::TwoAuthorizationHeaders);
    }
    let from_header = match header {
        None => None,
        Some(v) => parse_authorization(v.as_bytes(), rules)?,
    };
    let from_query = match query.map(|q| find_param(q, QUERY_PARAMETER)) {
        Some(Ok(Some(token))) => {
            if !rules.query_parameter {
                return Err(CredentialError::QueryParameterDisabled);
            }
            Some(token)
        }
        Some(Err(_)) => return Err(CredentialError::TokenInTwoPlaces),
        _ => None,
    };
    match (from_header, from_query) {
        (Some(_), Some(_)) => Err(CredentialError::TokenInTwoPlaces),
        (Some(t), None) => Ok(Some(Credential {
            token: Cow::Borrowed(t),
            source: Source::Header,
        })),
        (None, Some(t)) => {
            if !is_b64token(&t) {
                return Err(CredentialError::MalformedAuthorization);
            }
            Ok(Some(Credential {
                token: t,
                source: Source::Query,
            }))
        }
        (None, None) => {
            // A header with another scheme plus nothing else: no bearer credential.
            Ok(None)
        }
    }
}

/// Parses `scheme 1*SP b64token`; `Ok(None)` for a scheme that is not configured.
fn parse_authorization<'a>(
    raw: &'a [u8],
    rules: &Rules,
) -> Result<Option<&'a str>, CredentialError> {
    let malformed = CredentialError::MalformedAuthorization;
    let space = raw.iter().position(|&b| b == b' ').ok_or(malformed)?;
    let scheme = &raw[..space];
    if scheme.is_empty() || !scheme.iter().all(|&b| CLASS[b as usize] & TCHAR != 0) {
        return Err(malformed);
    }
    if !rules
        .schemes
        .iter()
        .any(|s| s.as_bytes().eq_ignore_ascii_case(scheme))
    {
        return Ok(None);
    }
    let rest = &raw[space..];
    let start = rest.iter().position(|&b| b != b' ').ok_or(malformed)?;
    // Only b64token bytes (ASCII) pass the check below; other bytes fail here or there.
    let token = std::str::from_utf8(&rest[start..]).map_err(|_| malformed)?;
    if !is_b64token(token) {
        return Err(malformed);
    }
    Ok(Some(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(query: bool) -> Rules {
        Rules {
            schemes: vec!["Bearer".into(), "Zoho-oauthtoken".into()],
            query_parameter: query,
        }
    }

    fn h(values: &[&str]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for v in values {
            m.append(AUTHORIZATION, v.parse().unwrap());
        }
        m
    }

    fn token(
        headers: &HeaderMap,
        q: Option<&str>,
        query: bool,
    ) -> Result<Option<String>, CredentialError> {
        extract(headers, q, &rules(query)).map(|c| c.map(|c| c.token.into_owned()))
    }

    #[test]
    fn bearer_header_is_extracted_with_any_case_of_the_scheme() {
        assert_eq!(
            token(&h(&["Bearer abc.def-_~+/=="]), None, false),
            Ok(Some("abc.def-_~+/==".into()))
        );
        assert_eq!(
            token(&h(&["bEaReR abc"]), None, false),
            Ok(Some("abc".into()))
        );
        assert_eq!(
            token(&h(&["Bearer   abc"]), None, false),
            Ok(Some("abc".into()))
        );
    }

    #[test]
    fn configured_alias_schemes_are_accepted() {
        assert_eq!(
            token(&h(&["Zoho-oauthtoken 1000.x"]), None, false),
            Ok(Some("1000.x".into()))
        );
    }

    #[test]
    fn no_header_and_other_schemes_mean_no_credential() {
        assert_eq!(token(&HeaderMap::new(), None, false), Ok(None));
        assert_eq!(token(&h(&["Basic dXNlcjpwYXNz"]), None, false), Ok(None));
    }

    #[test]
    fn malformed_authorization_values_are_invalid_requests() {
        for v in [
            "Bearer",
            "Bearer ",
            "Bearer a b",
            "Bearer a=b",
            "Bearer =",
            "Bear/er abc",
            "Bearer a\"b",
        ] {
            assert_eq!(
                token(&h(&[v]), None, false),
                Err(CredentialError::MalformedAuthorization),
                "{v}"
            );
        }
    }

    #[test]
    fn two_authorization_headers_are_refused() {
        assert_eq!(
            token(&h(&["Bearer a", "Bearer b"]), None, false),
            Err(CredentialError::TwoAuthorizationHeaders)
        );
    }

    #[test]
    fn query_token_is_used_only_when_enabled() {
        assert_eq!(
            token(&HeaderMap::new(), Some("x=1&access_token=abc"), true),
            Ok(Some("abc".into()))
        );
        assert_eq!(
            token(&HeaderMap::new(), Some("access_token=abc"), false),
            Err(CredentialError::QueryParameterDisabled)
        );
        assert_eq!(token(&HeaderMap::new(), Some("x=1"), false), Ok(None));
    }

    #[test]
    fn query_token_is_form_decoded() {
        assert_eq!(
            token(&HeaderMap::new(), Some("access_token=a%2Fb"), true),
            Ok(Some("a/b".into()))
        );
        assert_eq!(
            token(&HeaderMap::new(), Some("access%5Ftoken=abc"), true),
            Ok(Some("abc".into()))
        );
    }

    #[test]
    fn a_token_in_two_places_is_refused() {
        assert_eq!(
            token(&h(&["Bearer a"]), Some("access_token=b"), true),
            Err(CredentialError::TokenInTwoPlaces)
        );
        assert_eq!(
            token(
                &HeaderMap::new(),
                Some("access_token=a&access_token=b"),
                true
            ),
            Err(CredentialError::TokenInTwoPlaces)
        );
    }
}
