//! The decision endpoint over HTTP (nginx `auth_request`, Traefik and Caddy `forward_auth`,
//! Envoy `ext_authz` over HTTP), on TCP or a unix socket: each call is mapped to the original
//! request by its caller's conventions, decided in an exchange, and answered with 200 and
//! what the caller must do to forward (identity, headers to drop, the decided target), or
//! with the proxy's own refusal.

use super::conventions::{self, Allowance, CallError, CallerAnswer};
use super::exchange::{Arrival, Exchange};
use super::listen::Peer;
use super::metadata::{self, Served};
use crate::answer::Rendered;
use crate::compile::DecisionServing;
use crate::generation::Current;
use crate::metrics::FrontEnd;
use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;

/// The decided target (normalized path, query without a credential): the caller forwards it
/// instead of the client's spelling (nginx: `proxy_pass http://api$scopegate_target`).
pub const X_SCOPEGATE_TARGET: HeaderName = HeaderName::from_static("x-scopegate-target");
/// The same target's path and query apart, for callers that set them apart.
pub const X_SCOPEGATE_PATH: HeaderName = HeaderName::from_static("x-scopegate-path");
pub const X_SCOPEGATE_QUERY: HeaderName = HeaderName::from_static("x-scopegate-query");
/// The client's headers the caller must drop, comma-separated (those the client sent that
/// the proxy would not forward).
pub const X_SCOPEGATE_REMOVE: HeaderName = HeaderName::from_static("x-scopegate-remove");
/// `private` when the answer to the client must not be stored by shared caches (the caller
/// adds `Cache-Control: private`).
pub const X_SCOPEGATE_CACHE_CONTROL: HeaderName =
    HeaderName::from_static("x-scopegate-cache-control");

fn json(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// Answers one call.
pub async fn handle(
    current: &Current,
    settings: &DecisionServing,
    req: Request<Incoming>,
    peer: &Peer,
) -> Response<Full<Bytes>> {
    let _busy = peer.wire.busy();
    let generation = current.load_full();
    let policy = &generation.gateway.rules.forward;
    let called = conventions::original(
        req.method(),
        req.uri(),
        req.headers(),
        peer.addr,
        settings.secret.as_ref(),
    );
    let (front_end, method, path) = match &called {
        Ok((f, o)) => (*f, &o.method, o.uri.path()),
        Err(_) => {
            let front_end = conventions::front_end_for(req.uri().path());
            (
                front_end.unwrap_or(FrontEnd::Decision),
                req.method(),
                req.uri().path(),
            )
        }
    };
    let arrival = Arrival {
        method,
        path,
        client: match &called {
            Ok((_, o)) => o.conn.peer.map(|p| p.ip()),
            Err(_) => peer.addr.map(|a| a.ip()),
        },
        request_id: policy.request_id(req.headers()),
        // Only a context the caller sets itself: nginx and Caddy pass the client's
        // `traceparent` into the call unless configured not to.
        trace_parent: settings.continue_traces.then(|| req.headers()),
        body_size: called
            .as_ref()
            .ok()
            .and_then(|(_, o)| o.headers.get(http::header::CONTENT_LENGTH))
            .and_then(|v| v.to_str().ok()?.parse().ok()),
    };
    let mut exchange = Exchange::begin(front_end, generation.clone(), arrival);
    // A trusted caller routes the RFC 9728 well-known URLs here: the document, no decision.
    let served = match &called {
        Err(CallError::UnknownPath) => {
            metadata::serve(&mut exchange, req.method(), req.uri().path())
        }
        _ => None,
    };
    let resp = match (served, called) {
        (Some(Served::Document(doc)), _) => {
            metadata::response(doc, req.method() == http::Method::HEAD)
        }
        (Some(Served::Refused(r)), _) => deny(exchange.render(&r)),
        (None, Err(e)) => {
            e.record(&mut exchange);
            let (status, _, _) = e.parts();
            json(status, e.body())
        }
        (None, Ok((front_end, original))) => {
            match conventions::decide(&mut exchange, &original).await {
                CallerAnswer::Allow(a) => allow(a, front_end),
                CallerAnswer::Deny(r) => deny(r),
            }
        }
    };
    let mut resp = resp;
    resp.headers_mut()
        .insert(policy.request_id.clone(), exchange.request_id().clone());
    exchange.finish(resp.status().as_u16(), None);
    resp
}

/// The proxy's own refusal, as it would have answered it.
fn deny(r: Rendered) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(r.body));
    *resp.status_mut() = r.status;
    let h = resp.headers_mut();
    for (name, value) in r.headers {
        h.append(name, value);
    }
    resp
}

/// 200 with every identity header (empty when unset), the decided target, the headers to
/// drop and the cache rule.
fn allow(a: Allowance, front_end: FrontEnd) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::new()));
    let h = resp.headers_mut();
    for (name, value) in a.identity {
        h.insert(name, value);
    }
    let (path, query) = a.target.split_once('?').unwrap_or((&a.target, ""));
    for (name, value) in [
        (X_SCOPEGATE_TARGET, a.target.as_str()),
        (X_SCOPEGATE_PATH, path),
        (X_SCOPEGATE_QUERY, query),
    ] {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    }
    if !a.remove.is_empty() {
        let list = a
            .remove
            .iter()
            .map(HeaderName::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        if let Ok(v) = HeaderValue::from_str(&list) {
            h.insert(X_SCOPEGATE_REMOVE, v);
        }
        // Envoy copies the answer's headers that its `allowed_upstream_headers` patterns
        // name and cannot remove by a list: an empty value overwrites the client's.
        if front_end == FrontEnd::EnvoyHttp {
            for name in a.remove {
                h.insert(name, HeaderValue::from_static(""));
            }
        }
    }
    if a.private {
        h.insert(
            X_SCOPEGATE_CACHE_CONTROL,
            HeaderValue::from_static("private"),
        );
    }
    resp
}

/// Serves the decision endpoint's HTTP listener.
pub fn service(
    current: Current,
    settings: std::sync::Arc<DecisionServing>,
    peer: std::sync::Arc<Peer>,
) -> impl hyper::service::Service<
    Request<Incoming>,
    Response = Response<Full<Bytes>>,
    Error = std::convert::Infallible,
    Future = impl Future<Output = Result<Response<Full<Bytes>>, std::convert::Infallible>> + Send,
> + Send
+ 'static {
    hyper::service::service_fn(move |req| {
        let (current, settings, peer) = (current.clone(), settings.clone(), peer.clone());
        async move { Ok(handle(&current, &settings, req, &peer).await) }
    })
}
