//! Envoy `ext_authz` over gRPC (`envoy.service.auth.v3.Authorization/Check`), with the types
//! compiled from Envoy's published protos (`envoy-types`), served by the same accept loop as
//! every listener. The shared secret is checked on the call's metadata before its message is
//! decoded, and the message is bounded. An allowed request comes back OK with the identity in
//! `headers` (overwriting the client's copies), and in `headers_to_remove` the identity
//! headers the gateway did not set and every client header the proxy would not forward; a
//! refused one with the status, headers and JSON body the proxy would have sent.

use super::bodies::Watched;
use super::conventions::{self, Allowance, CallError, CallerAnswer, build};
use super::exchange::{Arrival, Exchange};
use super::listen::Peer;
use crate::compile::DecisionServing;
use crate::generation::Current;
use crate::metrics::FrontEnd;
use envoy_types::ext_authz::v3::pb::{
    Authorization, AuthorizationServer, CheckRequest, CheckResponse, DeniedHttpResponse,
    HeaderAppendAction, HttpStatus,
};
use envoy_types::ext_authz::v3::{
    CheckRequestExt, CheckResponseExt, DeniedHttpResponseBuilder, OkHttpResponseBuilder,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response};
use hyper::body::Incoming;
use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;
use tonic::Status;
use tonic::codegen::Service as _;

/// The `Check` method.
struct Check {
    current: Current,
}

/// Envoy's request headers (lower-case names; HTTP/2 pseudo-headers left out) as a map.
fn headers(from: &std::collections::HashMap<String, String>) -> Result<HeaderMap, Status> {
    let mut map = HeaderMap::with_capacity(from.len());
    for (name, value) in from.iter().filter(|(n, _)| !n.starts_with(':')) {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| Status::invalid_argument("a header name Envoy sent is not one"))?;
        let value = HeaderValue::from_str(value)
            .map_err(|_| Status::invalid_argument("a header value Envoy sent is not one"))?;
        map.append(name, value);
    }
    Ok(map)
}

#[tonic::async_trait]
impl Authorization for Check {
    async fn check(
        &self,
        call: tonic::Request<CheckRequest>,
    ) -> Result<tonic::Response<CheckResponse>, Status> {
        let generation = self.current.load_full();
        // Envoy's own metadata on the call (its span, when it traces): a client cannot set it.
        let metadata = call.metadata().clone().into_headers();
        let check = call.into_inner();
        let client: Option<IpAddr> = check.get_client_address().and_then(|a| a.parse().ok());
        let http = check
            .attributes
            .as_ref()
            .and_then(|a| a.request.as_ref())
            .and_then(|r| r.http.as_ref())
            .ok_or_else(|| Status::invalid_argument("no HTTP request attributes"))?;
        let method = Method::from_bytes(http.method.as_bytes())
            .map_err(|_| Status::invalid_argument("the original method is not one"))?;
        let mut client_headers = headers(&http.headers)?;
        if http.size > 0 && !client_headers.contains_key(http::header::CONTENT_LENGTH) {
            client_headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(http.size));
        }
        let host = (!http.host.is_empty()).then_some(http.host.as_str());
        let scheme = (!http.scheme.is_empty()).then_some(http.scheme.as_str());
        let path = http.path.split('?').next().unwrap_or_default();
        let arrival = Arrival {
            method: &method,
            path,
            client,
            request_id: generation.gateway.rules.forward.request_id(&client_headers),
            trace_parent: Some(&metadata),
            body_size: (http.size >= 0).then_some(http.size as u64),
        };
        let mut exchange = Exchange::begin(FrontEnd::EnvoyGrpc, generation.clone(), arrival);
        let Some(original) = build(method, &http.path, &client_headers, host, client, scheme)
        else {
            CallError::BadOriginal("the original path").record(&mut exchange);
            exchange.finish(400, None);
            return Err(Status::invalid_argument(
                "the original path is not origin-form",
            ));
        };
        let answer = conventions::decide(&mut exchange, &original).await;
        let status = match &answer {
            CallerAnswer::Allow(_) => 200,
            CallerAnswer::Deny(r) => r.status.as_u16(),
        };
        exchange.finish(status, None);
        Ok(tonic::Response::new(check_response(answer)))
    }
}

/// The `CheckResponse` for an answer.
fn check_response(answer: CallerAnswer) -> CheckResponse {
    match answer {
        CallerAnswer::Allow(Allowance {
            identity,
            remove,
            request_id,
            ..
        }) => {
            let mut ok = OkHttpResponseBuilder::new();
            for (name, value) in identity {
                if value.is_empty() {
                    // Not set by the gateway: the client's copy goes.
                    ok.remove_header(name.as_str());
                } else {
                    ok.add_header(
                        name.as_str(),
                        value.to_str().unwrap_or_default(),
                        Some(HeaderAppendAction::OverwriteIfExistsOrAdd),
                        false,
                    );
                }
            }
            ok.add_header(
                "x-request-id",
                request_id.to_str().unwrap_or_default(),
                Some(HeaderAppendAction::OverwriteIfExistsOrAdd),
                false,
            );
            for name in remove {
                ok.remove_header(name.as_str());
            }
            let mut response = CheckResponse::with_status(Status::ok(""));
            response.set_http_response(ok.build());
            response
        }
        CallerAnswer::Deny(rendered) => {
            let mut denied = DeniedHttpResponseBuilder::new();
            for (name, value) in &rendered.headers {
                denied.add_header(
                    name.as_str(),
                    value.to_str().unwrap_or_default(),
                    None,
                    false,
                );
            }
            denied.set_body(String::from_utf8_lossy(&rendered.body));
            let mut denied: DeniedHttpResponse = denied.build();
            // Envoy's `StatusCode` enum numbers are the HTTP status codes.
            denied.status = Some(HttpStatus {
                code: i32::from(rendered.status.as_u16()),
            });
            let status = if rendered.status == http::StatusCode::UNAUTHORIZED {
                Status::unauthenticated("refused")
            } else {
                Status::permission_denied("refused")
            };
            let mut response = CheckResponse::with_status(status);
            response.set_http_response(denied);
            response
        }
    }
}

type GrpcBody = tonic::body::Body;

/// The gRPC listener's service for one connection: the secret on the call's metadata first
/// (nothing is decoded for a caller without it), then the message, bounded in size and in
/// the pause between two reads.
pub fn service(
    current: Current,
    settings: Arc<DecisionServing>,
    peer: Arc<Peer>,
) -> impl hyper::service::Service<
    Request<Incoming>,
    Response = Response<GrpcBody>,
    Error = Infallible,
    Future = impl Future<Output = Result<Response<GrpcBody>, Infallible>> + Send,
> + Send
+ 'static {
    let bounds = &settings.bounds;
    // A check carries the client's request head (and, at most, a small body).
    let limit = bounds.max_uri_bytes + bounds.max_header_bytes + bounds.max_body_bytes as usize;
    let server = AuthorizationServer::new(Check {
        current: current.clone(),
    })
    .max_decoding_message_size(limit);
    hyper::service::service_fn(move |req: Request<Incoming>| {
        let mut server = server.clone();
        let (current, settings, peer) = (current.clone(), settings.clone(), peer.clone());
        async move {
            let _busy = peer.wire.busy();
            if !conventions::trusted(req.headers(), settings.secret.as_ref()) {
                untrusted(&current, &peer, &req);
                // Envoy refuses the client (403) unless told to fail open, which it must not be.
                let status = Status::permission_denied(
                    "the decision endpoint answers only callers with the shared secret",
                );
                return Ok(status.into_http());
            }
            // The message and its 5-byte gRPC frame header, at most.
            let pause = settings.bounds.body;
            let req = req.map(|body| Watched::new(body, limit as u64 + 5, pause));
            Ok(server.call(req).await.unwrap_or_else(|e| match e {}))
        }
    })
}

/// Counts and logs a call without the shared secret.
fn untrusted(current: &Current, peer: &Peer, req: &Request<Incoming>) {
    let generation = current.load_full();
    let arrival = Arrival {
        method: req.method(),
        path: req.uri().path(),
        client: peer.addr.map(|a| a.ip()),
        request_id: generation
            .gateway
            .rules
            .forward
            .request_id(&HeaderMap::new()),
        trace_parent: None,
        body_size: None,
    };
    let mut exchange = Exchange::begin(FrontEnd::EnvoyGrpc, generation, arrival);
    CallError::Untrusted.record(&mut exchange);
    exchange.finish(403, None);
}
