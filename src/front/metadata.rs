//! The documents the gateway publishes on the listeners clients reach: RFC 9728 metadata at
//! `/.well-known/oauth-protected-resource[/path]`, and the identity assertion's JWKS at its
//! `jwks_path`; served the same way by the proxy and by the decision listener (where a
//! caller routes the well-known URL), in the exchange of the request: counted, logged, and
//! answered before any decision.

use super::exchange::Exchange;
use crate::answer::Refusal;
use crate::route::MethodSet;
use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Method, Response, StatusCode};

/// What a request to a well-known URL gets: the document (GET, HEAD), or a refusal.
pub enum Served {
    Document(Bytes),
    Refused(Refusal),
}

/// The answer to `method path` when `path` is a published resource's well-known URL.
pub fn serve(exchange: &mut Exchange, method: &Method, path: &str) -> Option<Served> {
    let rules = &exchange.generation().gateway.rules;
    let document = match rules.resources.document_at(path) {
        Some(d) => d.clone(),
        None => rules
            .forward
            .assertion
            .as_ref()
            .filter(|a| a.jwks_path.as_deref() == Some(path))?
            .jwks(),
    };
    Some(if method == Method::GET || method == Method::HEAD {
        exchange.served_metadata();
        Served::Document(document)
    } else {
        let refusal = Refusal::MethodNotAllowed(MethodSet::GET_HEAD);
        exchange.refused(None, &refusal);
        Served::Refused(refusal)
    })
}

/// The document as an HTTP answer (JSON, cacheable for five minutes: it changes only with
/// the configuration).
pub fn response(document: Bytes, head_only: bool) -> Response<Full> {
    let length = document.len();
    let body = if head_only { Bytes::new() } else { document };
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = StatusCode::OK;
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    h.insert(http::header::CONTENT_LENGTH, HeaderValue::from(length));
    resp
}

type Full = http_body_util::Full<Bytes>;
