//! CORS (the Fetch standard's CORS protocol) for browser apps calling the APIs behind the
//! gateway: which origins may read answers, preflights answered without a token, and the
//! headers every answer gets — refusals included, so a page can read a 401 and its
//! `WWW-Authenticate`. Pure: the proxy front end applies it.

use http::{HeaderMap, HeaderName, HeaderValue, Method};

const ORIGIN: HeaderName = HeaderName::from_static("origin");
const REQUEST_METHOD: HeaderName = HeaderName::from_static("access-control-request-method");
const REQUEST_HEADERS: HeaderName = HeaderName::from_static("access-control-request-headers");
const ALLOW_ORIGIN: HeaderName = HeaderName::from_static("access-control-allow-origin");
const ALLOW_CREDENTIALS: HeaderName = HeaderName::from_static("access-control-allow-credentials");
const ALLOW_METHODS: HeaderName = HeaderName::from_static("access-control-allow-methods");
const ALLOW_HEADERS: HeaderName = HeaderName::from_static("access-control-allow-headers");
const EXPOSE_HEADERS: HeaderName = HeaderName::from_static("access-control-expose-headers");
const MAX_AGE: HeaderName = HeaderName::from_static("access-control-max-age");

/// Methods a browser sends without asking first (Fetch: CORS-safelisted methods).
const SAFELISTED_METHODS: [Method; 3] = [Method::GET, Method::HEAD, Method::POST];

/// An allowed origin: exact (`https://app.example.com`), or every subdomain of a domain
/// over one scheme (`https://*.example.com`: `https://a.example.com`, not
/// `https://example.com`, not `http://a.example.com`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginRule {
    Exact(String),
    Subdomains { scheme: String, suffix: String },
}

impl OriginRule {
    /// A rule as configured; `Err` says what is wrong (a path, a `*` elsewhere, `null`).
    pub fn parse(s: &str) -> Result<OriginRule, String> {
        let lower = s.to_ascii_lowercase();
        let (scheme, rest) = lower
            .split_once("://")
            .filter(|(scheme, _)| *scheme == "https" || *scheme == "http")
            .ok_or_else(|| format!("`{s}`: an origin is `https://host[:port]`"))?;
        if rest.is_empty() || rest.contains(['/', '?', '#', '@']) {
            return Err(format!("`{s}`: an origin has no path, query or user"));
        }
        match rest.strip_prefix("*.") {
            Some(domain) if !domain.contains('*') && domain.contains('.') => {
                Ok(OriginRule::Subdomains {
                    scheme: scheme.to_string(),
                    suffix: format!(".{domain}"),
                })
            }
            Some(_) => Err(format!(
                "`{s}`: a wildcard origin is `https://*.example.com` (a domain with a dot)"
            )),
            None if rest.contains('*') => Err(format!(
                "`{s}`: `*` only as the first label (`https://*.example.com`)"
            )),
            None => Ok(OriginRule::Exact(lower)),
        }
    }

    fn allows(&self, origin: &str) -> bool {
        match self {
            OriginRule::Exact(o) => o == origin,
            OriginRule::Subdomains { scheme, suffix } => origin
                .strip_prefix(scheme.as_str())
                .and_then(|r| r.strip_prefix("://"))
                .is_some_and(|host| {
                    let name = host.split(':').next().unwrap_or(host);
                    name.len() > suffix.len()
                        && name.ends_with(suffix.as_str())
                        && !name[..name.len() - suffix.len()].contains(['*', '/'])
                }),
        }
    }
}

/// Who answers a preflight on a route with CORS rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preflights {
    /// The gateway, without a token.
    Answer,
    /// The upstream (the preflight is forwarded unauthenticated; its answer passes as it is).
    Forward,
}

#[derive(Debug)]
pub struct Cors {
    pub origins: Vec<OriginRule>,
    pub methods: Vec<Method>,
    /// Lowercase.
    pub headers: Vec<String>,
    pub expose: Option<HeaderValue>,
    pub credentials: bool,
    pub max_age: Option<u64>,
    pub preflights: Preflights,
}

/// A preflight's answer.
#[derive(Debug, PartialEq, Eq)]
pub enum Preflight {
    /// A preflight the rules allow: answer 204 with these headers.
    Allowed(Vec<(HeaderName, HeaderValue)>),
    /// A preflight the rules refuse (origin, method or a header not allowed): why.
    Refused(&'static str),
}

/// A request is a preflight when it is `OPTIONS` with `Origin` and
/// `Access-Control-Request-Method`; the method it asks about.
pub fn requested_method(method: &Method, headers: &HeaderMap) -> Option<Method> {
    if method != Method::OPTIONS || !headers.contains_key(ORIGIN) {
        return None;
    }
    headers
        .get(REQUEST_METHOD)
        .and_then(|v| Method::from_bytes(v.as_bytes()).ok())
}

fn origin(headers: &HeaderMap) -> Option<&str> {
    let mut all = headers.get_all(ORIGIN).iter();
    let first = all.next()?;
    // Two `Origin` headers are no origin at all.
    if all.next().is_some() {
        return None;
    }
    first.to_str().ok()
}

impl Cors {
    fn allowed_origin(&self, headers: &HeaderMap) -> Option<HeaderValue> {
        let o = origin(headers)?;
        // `null` (sandboxed documents, file URLs) is never an allowed origin.
        (o != "null" && self.origins.iter().any(|r| r.allows(o)))
            .then(|| HeaderValue::from_str(o).ok())
            .flatten()
    }

    /// A preflight's answer (Fetch, "CORS-preflight fetch").
    pub fn preflight(&self, asked: &Method, headers: &HeaderMap) -> Preflight {
        let Some(origin) = self.allowed_origin(headers) else {
            return Preflight::Refused("origin not allowed");
        };
        if !SAFELISTED_METHODS.contains(asked) && !self.methods.contains(asked) {
            return Preflight::Refused("method not allowed");
        }
        let requested: Vec<String> = headers
            .get_all(REQUEST_HEADERS)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        if requested.iter().any(|h| !self.headers.contains(h)) {
            return Preflight::Refused("request header not allowed");
        }
        let mut out = vec![(ALLOW_ORIGIN, origin)];
        if self.credentials {
            out.push((ALLOW_CREDENTIALS, HeaderValue::from_static("true")));
        }
        let methods: Vec<&str> = self.methods.iter().map(Method::as_str).collect();
        if let Ok(v) = HeaderValue::from_str(&methods.join(", ")) {
            out.push((ALLOW_METHODS, v));
        }
        if !requested.is_empty()
            && let Ok(v) = HeaderValue::from_str(&requested.join(", "))
        {
            out.push((ALLOW_HEADERS, v));
        }
        if let Some(age) = self.max_age {
            out.push((MAX_AGE, HeaderValue::from(age)));
        }
        Preflight::Allowed(out)
    }

    /// The CORS headers of any other answer (forwarded or the gateway's own): the origin
    /// when allowed, credentials, exposed headers; `Vary: Origin` always, since the answer
    /// depends on it. The upstream's own CORS headers are replaced.
    pub fn decorate(&self, request: &HeaderMap, answer: &mut HeaderMap) {
        for h in [
            &ALLOW_ORIGIN,
            &ALLOW_CREDENTIALS,
            &EXPOSE_HEADERS,
            &ALLOW_METHODS,
            &ALLOW_HEADERS,
            &MAX_AGE,
        ] {
            answer.remove(h);
        }
        vary_origin(answer);
        let Some(origin) = self.allowed_origin(request) else {
            return;
        };
        answer.insert(ALLOW_ORIGIN, origin);
        if self.credentials {
            answer.insert(ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
        }
        if let Some(e) = &self.expose {
            answer.insert(EXPOSE_HEADERS, e.clone());
        }
    }
}

/// Adds `Origin` to `Vary` unless it is there (or `Vary: *`).
pub fn vary_origin(answer: &mut HeaderMap) {
    let present = answer
        .get_all(http::header::VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| {
            let t = t.trim();
            t == "*" || t.eq_ignore_ascii_case("origin")
        });
    if !present {
        answer.append(http::header::VARY, HeaderValue::from_static("Origin"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cors() -> Cors {
        Cors {
            origins: vec![
                OriginRule::parse("https://app.example.com").unwrap(),
                OriginRule::parse("https://*.tenants.example.com").unwrap(),
            ],
            methods: vec![Method::GET, Method::POST, Method::DELETE],
            headers: vec!["authorization".into(), "content-type".into()],
            expose: Some(HeaderValue::from_static("www-authenticate, x-request-id")),
            credentials: false,
            max_age: Some(600),
            preflights: Preflights::Answer,
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn a_preflight_from_an_allowed_origin_gets_the_methods_and_the_headers_it_asked() {
        let h = headers(&[
            ("origin", "https://app.example.com"),
            ("access-control-request-method", "DELETE"),
            (
                "access-control-request-headers",
                "Authorization, content-type",
            ),
        ]);
        let asked = requested_method(&Method::OPTIONS, &h).unwrap();
        let Preflight::Allowed(out) = cors().preflight(&asked, &h) else {
            panic!("refused")
        };
        let get = |n: &str| {
            out.iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.to_str().unwrap())
        };
        assert_eq!(
            get("access-control-allow-origin"),
            Some("https://app.example.com")
        );
        assert_eq!(
            get("access-control-allow-methods"),
            Some("GET, POST, DELETE")
        );
        assert_eq!(
            get("access-control-allow-headers"),
            Some("authorization, content-type")
        );
        assert_eq!(get("access-control-max-age"), Some("600"));
        assert_eq!(get("access-control-allow-credentials"), None);
    }

    #[test]
    fn preflights_are_refused_for_other_origins_methods_and_headers() {
        let ask = |origin: &str, method: &str, hdrs: &str| {
            let mut pairs = vec![
                ("origin", origin),
                ("access-control-request-method", method),
            ];
            if !hdrs.is_empty() {
                pairs.push(("access-control-request-headers", hdrs));
            }
            let h = headers(&pairs);
            cors().preflight(&requested_method(&Method::OPTIONS, &h).unwrap(), &h)
        };
        assert_eq!(
            ask("https://evil.example", "GET", ""),
            Preflight::Refused("origin not allowed")
        );
        assert_eq!(
            ask("null", "GET", ""),
            Preflight::Refused("origin not allowed")
        );
        assert_eq!(
            ask("https://app.example.com", "PUT", ""),
            Preflight::Refused("method not allowed")
        );
        assert_eq!(
            ask("https://app.example.com", "GET", "x-admin"),
            Preflight::Refused("request header not allowed")
        );
        // A safelisted method needs no listing.
        assert!(matches!(
            ask("https://app.example.com", "HEAD", ""),
            Preflight::Allowed(_)
        ));
    }

    #[test]
    fn wildcard_origins_cover_subdomains_over_their_scheme_only() {
        let c = cors();
        let ok = |o: &str| c.allowed_origin(&headers(&[("origin", o)])).is_some();
        assert!(ok("https://acme.tenants.example.com"));
        assert!(ok("https://acme.tenants.example.com:8443"));
        assert!(
            !ok("https://tenants.example.com"),
            "the domain itself is not a subdomain"
        );
        assert!(!ok("http://acme.tenants.example.com"), "another scheme");
        assert!(!ok("https://acme.tenants.example.com.evil.example"));
        assert!(!ok("https://eviltenants.example.com"));
        assert!(
            !ok("https://APP.example.com"),
            "origins are compared as serialized"
        );
        // Two Origin headers are none.
        let two = headers(&[
            ("origin", "https://app.example.com"),
            ("origin", "https://app.example.com"),
        ]);
        assert!(c.allowed_origin(&two).is_none());
    }

    #[test]
    fn origin_rules_with_a_path_a_misplaced_star_or_another_scheme_are_refused() {
        for bad in [
            "app.example.com",
            "https://app.example.com/",
            "https://*",
            "https://a.*.com",
            "ftp://x.example",
            "https://*.com",
        ] {
            assert!(OriginRule::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_answer_varies_on_origin_and_only_an_allowed_origin_may_read_it() {
        let c = cors();
        let mut answer = headers(&[
            ("access-control-allow-origin", "*"),
            ("vary", "Accept-Encoding"),
        ]);
        c.decorate(
            &headers(&[("origin", "https://app.example.com")]),
            &mut answer,
        );
        assert_eq!(
            answer["access-control-allow-origin"],
            "https://app.example.com"
        );
        assert_eq!(
            answer["access-control-expose-headers"],
            "www-authenticate, x-request-id"
        );
        let vary: Vec<_> = answer.get_all("vary").iter().collect();
        assert_eq!(vary, ["Accept-Encoding", "Origin"]);
        let mut answer = headers(&[("access-control-allow-origin", "*")]);
        c.decorate(&headers(&[("origin", "https://evil.example")]), &mut answer);
        assert!(
            answer.get("access-control-allow-origin").is_none(),
            "the upstream's `*` is replaced"
        );
        assert_eq!(answer["vary"], "Origin");
    }

    #[test]
    fn only_options_with_origin_and_a_requested_method_is_a_preflight() {
        let h = headers(&[
            ("origin", "https://app.example.com"),
            ("access-control-request-method", "POST"),
        ]);
        assert_eq!(requested_method(&Method::OPTIONS, &h), Some(Method::POST));
        assert_eq!(requested_method(&Method::GET, &h), None);
        let h = headers(&[("access-control-request-method", "POST")]);
        assert_eq!(requested_method(&Method::OPTIONS, &h), None);
    }
}
