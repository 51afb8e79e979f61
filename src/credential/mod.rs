//! RFC 6750 credential extraction: where the token is, never whether it is valid. Legacy
//! credentials (API keys, old authtokens) are found here too, each the way it is configured
//! to be presented; `authn::legacy` checks them.

mod query;

pub use query::{find_param, without_param};

use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderName};
use std::borrow::Cow;

/// The query parameter of RFC 6750 §2.3.
pub const QUERY_PARAMETER: &str = "access_token";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Header,
    Query,
    /// A legacy credential, presented the way `Rules::legacy[i]` says.
    Legacy(usize),
}

/// How a legacy credential is presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presentation {
    /// The whole value of a header, e.g. `X-API-Key: …`.
    Header(HeaderName),
    /// `Authorization: <scheme> …` with a scheme of its own, e.g. `Zoho-authtoken`.
    Scheme(String),
    /// A query parameter, removed before forwarding.
    Query(String),
}

/// A syntactically valid bearer token and where it came from.
#[derive(Debug, PartialEq, Eq)]
pub struct Credential<'a> {
    pub token: Cow<'a, str>,
    pub source: Source,
}

/// Why a request's credentials cannot be used: malformed (a 400 `invalid_request`), or an
/// authentication method the gateway does not support (a 401 without an error code, RFC 6750
/// §3.1: see [`CredentialError::is_unsupported_method`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialError {
    TwoAuthorizationHeaders,
    TokenInTwoPlaces,
    MalformedAuthorization,
    /// `access_token` in the query while `tokens.query_parameter` is off.
    QueryParameterDisabled,
    /// An `Authorization` value that is a single word, with no scheme.
    NoScheme,
}

impl CredentialError {
    /// The request tried a way of authenticating that is not supported (rather than a
    /// malformed one): RFC 6750 §3.1 asks for the bare challenge, without an error code.
    pub fn is_unsupported_method(self) -> bool {
        matches!(
            self,
            CredentialError::QueryParameterDisabled | CredentialError::NoScheme
        )
    }

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
            CredentialError::NoScheme => {
                "the Authorization header has no scheme: use `Bearer <token>`"
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
    /// Distinct presentations of the configured legacy credentials.
    pub legacy: Vec<Presentation>,
}

/// RFC 9110 `tchar`, looked up per byte (an auth scheme is a few bytes).
const TCHAR: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = (b as u8).is_ascii_alphanumeric();
        b += 1;
    }
    let extra = b"!#$%&'*+-.^_`|~";
    let mut i = 0;
    while i < extra.len() {
        t[extra[i] as usize] = true;
        i += 1;
    }
    t
};

/// RFC 6750 §2.1 b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
pub fn is_b64token(t: &str) -> bool {
    let body = t.trim_end_matches('=').as_bytes();
    !body.is_empty() && crate::scan::all_bytes(body, b64token_byte)
}

/// A b64token byte, by comparisons rather than a table (a lookup per byte cannot be done 16
/// at a time, and a token is most of a request's bytes).
fn b64token_byte(b: u8) -> bool {
    let lower = b | 0x20;
    lower.is_ascii_lowercase()
        | b.is_ascii_digit()
        | (b == b'-')
        | (b == b'.')
        | (b == b'_')
        | (b == b'~')
        | (b == b'+')
        | (b == b'/')
}

/// Extracts the bearer token (or legacy credential) of a request, or `None` when it carries
/// none. A request that carries more than one is refused: which one counts would be a guess.
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
    let mut found = match header {
        None => None,
        Some(v) => parse_authorization(v.as_bytes(), rules)?,
    };
    let mut add = |c: Credential<'a>| match found {
        Some(_) => Err(CredentialError::TokenInTwoPlaces),
        None => {
            found = Some(c);
            Ok(())
        }
    };
    // RFC 6750 §2: a token presented in more than one way is refused, also when one of the
    // ways is not accepted here.
    let mut disabled_query = false;
    match query.map(|q| find_param(q, QUERY_PARAMETER)) {
        Some(Ok(Some(_))) if !rules.query_parameter => disabled_query = true,
        Some(Ok(Some(token))) => {
            if !is_b64token(&token) {
                return Err(CredentialError::MalformedAuthorization);
            }
            add(Credential {
                token,
                source: Source::Query,
            })?;
        }
        Some(Err(_)) => return Err(CredentialError::TokenInTwoPlaces),
        _ => {}
    }
    for (i, p) in rules.legacy.iter().enumerate() {
        let secret = match p {
            Presentation::Scheme(_) => continue, // with the Authorization header above
            Presentation::Header(name) => {
                let mut values = headers.get_all(name).iter();
                let Some(v) = values.next() else { continue };
                if values.next().is_some() {
                    return Err(CredentialError::TokenInTwoPlaces);
                }
                Cow::Borrowed(legacy_secret(v.as_bytes())?)
            }
            Presentation::Query(param) => match query.map(|q| find_param(q, param)) {
                Some(Ok(Some(s))) => {
                    legacy_secret(s.as_bytes())?;
                    s
                }
                Some(Err(_)) => return Err(CredentialError::TokenInTwoPlaces),
                _ => continue,
            },
        };
        add(Credential {
            token: secret,
            source: Source::Legacy(i),
        })?;
    }
    match (disabled_query, &found) {
        (true, Some(_)) => Err(CredentialError::TokenInTwoPlaces),
        (true, None) => Err(CredentialError::QueryParameterDisabled),
        (false, _) => Ok(found),
    }
}

/// A legacy secret is visible ASCII without spaces (what every API-key format uses).
fn legacy_secret(raw: &[u8]) -> Result<&str, CredentialError> {
    if raw.is_empty() || !raw.iter().all(|b| b.is_ascii_graphic()) {
        return Err(CredentialError::MalformedAuthorization);
    }
    std::str::from_utf8(raw).map_err(|_| CredentialError::MalformedAuthorization)
}

/// Parses `scheme 1*SP b64token`; `Ok(None)` for a scheme that is not configured.
fn parse_authorization<'a>(
    raw: &'a [u8],
    rules: &Rules,
) -> Result<Option<Credential<'a>>, CredentialError> {
    let malformed = CredentialError::MalformedAuthorization;
    // RFC 9110 §11.4: `auth-scheme 1*SP token68`, nothing else between them.
    let Some(space) = raw.iter().position(|&b| b == b' ') else {
        // One word: a scheme without a token, or a token without a scheme; anything else
        // (a tab for the space) is no credential syntax at all.
        let scheme_only = rules
            .schemes
            .iter()
            .any(|s| s.as_bytes().eq_ignore_ascii_case(raw));
        let token_only = std::str::from_utf8(raw).is_ok_and(is_b64token);
        return Err(if scheme_only || !token_only {
            malformed
        } else {
            CredentialError::NoScheme
        });
    };
    let scheme = &raw[..space];
    if scheme.is_empty() || !scheme.iter().all(|&b| TCHAR[b as usize]) {
        return Err(malformed);
    }
    let source = if rules
        .schemes
        .iter()
        .any(|s| s.as_bytes().eq_ignore_ascii_case(scheme))
    {
        Source::Header
    } else {
        let legacy = rules.legacy.iter().position(
            |p| matches!(p, Presentation::Scheme(s) if s.as_bytes().eq_ignore_ascii_case(scheme)),
        );
        match legacy {
            Some(i) => Source::Legacy(i),
            None => return Ok(None),
        }
    };
    let rest = &raw[space..];
    let start = rest.iter().position(|&b| b != b' ').ok_or(malformed)?;
    // Only b64token bytes (ASCII) pass the check below; other bytes fail here or there.
    let token = std::str::from_utf8(&rest[start..]).map_err(|_| malformed)?;
    if !is_b64token(token) {
        return Err(malformed);
    }
    Ok(Some(Credential {
        token: Cow::Borrowed(token),
        source,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_b64token_byte_is_exactly_one_rfc_6750_names() {
        for b in 0..=255u8 {
            let rfc = b.is_ascii_alphanumeric() || b"-._~+/".contains(&b);
            assert_eq!(b64token_byte(b), rfc, "byte {b:#04x}");
        }
    }

    fn rules(query: bool) -> Rules {
        Rules {
            schemes: vec!["Bearer".into(), "Zoho-oauthtoken".into()],
            query_parameter: query,
            legacy: vec![
                Presentation::Header(HeaderName::from_static("x-api-key")),
                Presentation::Scheme("Zoho-authtoken".into()),
                Presentation::Query("authtoken".into()),
            ],
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
            "bearer",
            "Bearer ",
            "Bearer a b",
            "Bearer a=b",
            "Bearer =",
            "Bear/er abc",
            "Bearer a\"b",
            "Bearer\tabc",
            "Bearer \tabc",
            "Bearer abc\t",
        ] {
            assert_eq!(
                token(&h(&[v]), None, false),
                Err(CredentialError::MalformedAuthorization),
                "{v}"
            );
        }
    }

    #[test]
    fn a_value_without_a_scheme_is_an_unsupported_method_not_a_malformed_one() {
        let e = token(&h(&["abc.def.ghi"]), None, false).unwrap_err();
        assert_eq!(e, CredentialError::NoScheme);
        assert!(e.is_unsupported_method());
        assert!(CredentialError::QueryParameterDisabled.is_unsupported_method());
        assert!(!CredentialError::MalformedAuthorization.is_unsupported_method());
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
        // Also when one of the two ways is not accepted here (RFC 6750 §2).
        assert_eq!(
            token(&h(&["Bearer a"]), Some("access_token=b"), false),
            Err(CredentialError::TokenInTwoPlaces)
        );
        let mut key = HeaderMap::new();
        key.insert("x-api-key", "k-1".parse().unwrap());
        assert_eq!(
            token(&key, Some("access_token=b"), false),
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

    fn legacy(
        headers: &HeaderMap,
        q: Option<&str>,
    ) -> Result<Option<(String, Source)>, CredentialError> {
        extract(headers, q, &rules(false)).map(|c| c.map(|c| (c.token.into_owned(), c.source)))
    }

    #[test]
    fn legacy_credentials_are_found_where_each_is_presented() {
        let mut m = HeaderMap::new();
        m.insert("x-api-key", "k-123".parse().unwrap());
        assert_eq!(
            legacy(&m, None),
            Ok(Some(("k-123".into(), Source::Legacy(0))))
        );
        assert_eq!(
            legacy(&h(&["zoho-AUTHTOKEN abc"]), None),
            Ok(Some(("abc".into(), Source::Legacy(1))))
        );
        assert_eq!(
            legacy(&HeaderMap::new(), Some("a=1&authtoken=s%2B1")),
            Ok(Some(("s+1".into(), Source::Legacy(2))))
        );
    }

    #[test]
    fn a_legacy_credential_beside_a_bearer_token_is_refused() {
        let mut m = h(&["Bearer abc"]);
        m.insert("x-api-key", "k".parse().unwrap());
        assert_eq!(legacy(&m, None), Err(CredentialError::TokenInTwoPlaces));
        assert_eq!(
            legacy(&h(&["Bearer abc"]), Some("authtoken=x")),
            Err(CredentialError::TokenInTwoPlaces)
        );
        let mut two = HeaderMap::new();
        two.append("x-api-key", "a".parse().unwrap());
        two.append("x-api-key", "b".parse().unwrap());
        assert_eq!(legacy(&two, None), Err(CredentialError::TokenInTwoPlaces));
    }

    #[test]
    fn legacy_secrets_with_spaces_or_control_bytes_are_malformed() {
        let mut m = HeaderMap::new();
        m.insert("x-api-key", "a b".parse().unwrap());
        assert_eq!(
            legacy(&m, None),
            Err(CredentialError::MalformedAuthorization)
        );
        assert_eq!(
            legacy(&HeaderMap::new(), Some("authtoken=a%0Ab")),
            Err(CredentialError::MalformedAuthorization)
        );
    }
}
