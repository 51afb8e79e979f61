//! Envoy `ext_authz` over gRPC (`envoy.service.auth.v3.Authorization/Check`), with the types
//! compiled from Envoy's published protos (`envoy-types`). An allowed request comes back OK
//! with the identity in `headers_to_set` (overwriting the client's copies) and the identity
//! headers the gateway did not set in `headers_to_remove`; a refused one with the status,
//! headers and JSON body the proxy would have sent.

use super::{Answer, FrontEnd, build};
use crate::generation::Current;
use envoy_types::ext_authz::v3::pb::{
    Authorization, AuthorizationServer, CheckRequest, CheckResponse, DeniedHttpResponse,
    HeaderAppendAction, HttpStatus,
};
use envoy_types::ext_authz::v3::{
    CheckRequestExt, CheckResponseExt, DeniedHttpResponseBuilder, OkHttpResponseBuilder,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use std::net::IpAddr;
use tonic::{Request, Response, Status};

pub struct Service {
    current: Current,
    secret: Option<(HeaderName, String)>,
}

impl Service {
    pub fn new(current: Current, secret: Option<(HeaderName, String)>) -> Service {
        Service { current, secret }
    }

    /// Serves `Check` on `listener` until `stop` resolves.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        stop: impl Future<Output = ()>,
    ) -> Result<(), String> {
        tonic::transport::Server::builder()
            .add_service(AuthorizationServer::new(self))
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener),
                stop,
            )
            .await
            .map_err(|e| format!("decision.grpc_listen: {e}"))
    }
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
impl Authorization for Service {
    async fn check(&self, call: Request<CheckRequest>) -> Result<Response<CheckResponse>, Status> {
        let secret = self.secret.as_ref();
        let trusted = match secret {
            None => true,
            Some((name, _)) => {
                let mut probe = HeaderMap::new();
                if let Some(v) = call.metadata().get(name.as_str())
                    && let Ok(v) = HeaderValue::from_bytes(v.as_bytes())
                {
                    probe.insert(name.clone(), v);
                }
                super::trusted(&probe, secret)
            }
        };
        if !trusted {
            // Envoy refuses the client (403) unless configured to fail open, which it must not be.
            return Err(Status::permission_denied(
                "the decision endpoint answers only callers with the shared secret",
            ));
        }
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
        let headers = headers(&http.headers)?;
        let host = (!http.host.is_empty()).then_some(http.host.as_str());
        let scheme = (!http.scheme.is_empty()).then_some(http.scheme.as_str());
        let original = build(method, &http.path, &headers, host, client, scheme)
            .ok_or_else(|| Status::invalid_argument("the original path is not origin-form"))?;
        let generation = self.current.load_full();
        let answer = super::decide(&generation, FrontEnd::EnvoyGrpc, &original).await;
        Ok(Response::new(check_response(answer)))
    }
}

/// The `CheckResponse` for an answer.
fn check_response(answer: Answer) -> CheckResponse {
    match answer {
        Answer::Allow {
            set,
            remove,
            strip_credentials,
            ..
        } => {
            let mut ok = OkHttpResponseBuilder::new();
            for (name, value) in set {
                ok.add_header(
                    name.as_str(),
                    value.to_str().unwrap_or_default(),
                    Some(HeaderAppendAction::OverwriteIfExistsOrAdd),
                    false,
                );
            }
            for name in remove {
                ok.remove_header(name.as_str());
            }
            if strip_credentials {
                ok.remove_header(http::header::AUTHORIZATION.as_str());
            }
            let mut response = CheckResponse::with_status(Status::ok(""));
            response.set_http_response(ok.build());
            response
        }
        Answer::Deny(rendered) => {
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
