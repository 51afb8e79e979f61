//! Header readings and edits the proxy makes around the forward: the declared body length,
//! a browser's `Origin`, `Cache-Control: private` for answers to query-token requests.

use http::HeaderValue;

/// RFC 6750 §2.3: an answer to a request authenticated by a query token is `private`, so no
/// shared cache keeps it under a URL that carries the token.
pub fn private(headers: &mut http::HeaderMap) {
    let cc = http::header::CACHE_CONTROL;
    let directives: Vec<String> = headers
        .get_all(&cc)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|d| d.trim().to_string())
        .filter(|d| !d.is_empty() && !d.eq_ignore_ascii_case("public"))
        .collect();
    let done = directives.iter().any(|d| {
        let d = d.to_ascii_lowercase();
        d.starts_with("private") || d == "no-store"
    });
    if !done {
        let value = std::iter::once("private".to_string())
            .chain(directives)
            .collect::<Vec<_>>()
            .join(", ");
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(cc, v);
        }
    }
}

/// The request's `Origin` headers, when it has one (a browser's cross-origin request).
pub fn cors_origin(headers: &http::HeaderMap) -> Option<http::HeaderMap> {
    let mut out = http::HeaderMap::new();
    for v in headers.get_all(http::header::ORIGIN) {
        out.append(http::header::ORIGIN, v.clone());
    }
    (!out.is_empty()).then_some(out)
}

pub fn declared_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok())
}
