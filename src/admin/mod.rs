//! The admin listener: `/metrics`, `/healthz`, `/readyz`, `POST /events`, plus routes an
//! extension adds (the development issuer of `scopegate dev`). Served by the same accept
//! loop as every listener, with its own bounds (`admin.limits`, `admin.timeouts`), on the
//! sidecar runtime, so probes answer while the proxy is saturated.

use crate::answer::Outcome;
use crate::compile::SideListener;
use crate::front::exchange::{Arrival, Exchange};
use crate::front::listen::{self, Listener, Protocols};
use crate::front::{Bound, FrontEnd, Peer};
use crate::generation::{Current, Generation};
use crate::sync::SetReceiver;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use std::sync::Arc;
use std::time::Duration;

/// Extra admin routes; returns `None` for paths it does not serve.
pub trait Extension: Send + Sync {
    fn handle(&self, method: &Method, path: &str, body: &[u8]) -> Option<Response<Full<Bytes>>>;
}

/// Set when the process stops: `/readyz` answers 503 so load balancers stop sending while
/// requests in flight finish.
static DRAINING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// From now on `/readyz` says the process is draining.
pub fn start_draining() {
    DRAINING.store(true, std::sync::atomic::Ordering::Release);
}

pub fn response(
    status: StatusCode,
    content_type: &str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, content_type)
        .body(Full::new(body.into()))
        .expect("static response parts")
}

fn json(status: StatusCode, v: serde_json::Value) -> Response<Full<Bytes>> {
    response(status, "application/json", v.to_string())
}

fn route(
    generation: &Generation,
    ext: Option<&dyn Extension>,
    method: &Method,
    path: &str,
    body: &[u8],
) -> Response<Full<Bytes>> {
    match (method, path) {
        (&Method::GET, "/metrics") => response(
            StatusCode::OK,
            "text/plain; version=0.0.4",
            generation.render_metrics(),
        ),
        (&Method::GET, "/healthz") => json(StatusCode::OK, serde_json::json!({"status": "ok"})),
        // The keys of the signed identity assertion, for upstreams to verify it.
        (&Method::GET, "/.well-known/jwks.json") => {
            match &generation.gateway.rules.forward.assertion {
                Some(a) => response(StatusCode::OK, "application/json", a.jwks()),
                None => json(
                    StatusCode::NOT_FOUND,
                    serde_json::json!({"error": "not_found", "error_description": "no identity assertion is configured"}),
                ),
            }
        }
        (&Method::GET, "/readyz") if DRAINING.load(std::sync::atomic::Ordering::Acquire) => json(
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"status": "draining"}),
        ),
        (&Method::GET, "/readyz") => match generation.gateway.readiness() {
            Ok(()) => json(StatusCode::OK, serde_json::json!({"status": "ready"})),
            Err(waiting) => json(StatusCode::SERVICE_UNAVAILABLE, waiting),
        },
        _ => ext
            .and_then(|e| e.handle(method, path, body))
            .unwrap_or_else(|| {
                json(
                    StatusCode::NOT_FOUND,
                    serde_json::json!({"error": "not_found"}),
                )
            }),
    }
}

/// `POST /events` (RFC 8935): 202 when the SET was applied, else 400 with `err`; and the
/// reason of a refusal, for the log.
async fn events(
    receiver: Option<&SetReceiver>,
    content_type: Option<&str>,
    body: &[u8],
) -> (Response<Full<Bytes>>, Option<&'static str>) {
    let Some(receiver) = receiver else {
        let resp = json(
            StatusCode::NOT_FOUND,
            serde_json::json!({"error": "not_found", "error_description": "no SET push receiver is configured"}),
        );
        return (resp, Some("not_found"));
    };
    match receiver.receive(content_type, body).await {
        Ok(_) => (
            response(StatusCode::ACCEPTED, "application/json", Bytes::new()),
            None,
        ),
        Err(e) => {
            // Applied here but not yet shared with the other replicas: the transmitter is
            // told to deliver it again (RFC 8935 leaves other statuses to HTTP).
            let not_durable = e.err == crate::sync::NOT_DURABLE;
            let status = if not_durable {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::BAD_REQUEST
            };
            let mut resp = json(
                status,
                serde_json::json!({"err": e.err, "description": e.description}),
            );
            if not_durable {
                resp.headers_mut().insert(
                    http::header::RETRY_AFTER,
                    http::HeaderValue::from_static("1"),
                );
            }
            (resp, Some(e.err))
        }
    }
}

/// Serves the admin endpoints on `bound`, with the admin listener's bounds, until `stop`
/// turns true.
pub async fn serve(
    bound: Bound,
    current: Current,
    ext: Option<Arc<dyn Extension>>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let settings = current.load().serving.at_start.admin.bounds.clone();
    let listener = Listener::new(
        "admin.listen",
        bound,
        None,
        settings.connections,
        Protocols::Http1,
        false,
    );
    let limits = (settings.max_uri_bytes, settings.max_header_bytes);
    let settings = Arc::new(settings);
    let make = move |peer: Arc<Peer>| {
        let (current, ext, settings) = (current.clone(), ext.clone(), settings.clone());
        service_fn(move |req: Request<Incoming>| {
            // The configuration in force when the request arrived.
            let generation = current.load_full();
            let (ext, settings, peer) = (ext.clone(), settings.clone(), peer.clone());
            async move {
                let _busy = peer.wire.busy();
                Ok::<_, std::convert::Infallible>(
                    handle(req, &generation, ext.as_deref(), &settings, &peer).await,
                )
            }
        })
    };
    listen::serve(
        listener,
        Arc::new(move || limits),
        make,
        stop,
        Duration::from_secs(1),
    )
    .await;
}

async fn handle(
    req: Request<Incoming>,
    generation: &Arc<Generation>,
    ext: Option<&dyn Extension>,
    settings: &SideListener,
    peer: &Peer,
) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let limited = Limited::new(body, settings.max_body_bytes as usize).collect();
    let body = match tokio::time::timeout(settings.body, limited).await {
        Ok(Ok(b)) => b.to_bytes(),
        Ok(Err(_)) => {
            return json(
                StatusCode::PAYLOAD_TOO_LARGE,
                serde_json::json!({"error": "payload_too_large"}),
            );
        }
        Err(_) => {
            return json(
                StatusCode::REQUEST_TIMEOUT,
                serde_json::json!({"error": "request_timeout"}),
            );
        }
    };
    if parts.method == Method::POST && parts.uri.path() == "/events" {
        // A pushed revocation changes what the gateway allows: each is logged.
        let policy = &generation.gateway.rules.forward;
        let arrival = Arrival {
            method: &parts.method,
            path: "/events",
            client: peer.addr.map(|a| a.ip()),
            request_id: policy.request_id(&parts.headers),
            trace_parent: None,
            body_size: Some(body.len() as u64),
        };
        let mut exchange = Exchange::begin(FrontEnd::Admin, generation.clone(), arrival);
        let ct = parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let (resp, refused) = events(generation.sets.as_deref(), ct, &body).await;
        match refused {
            Some(reason) => {
                let status = resp.status().as_u16();
                exchange.refused_as(None, Outcome::Status(status), status, reason);
            }
            None => exchange.allowed(None),
        }
        exchange.finish(resp.status().as_u16(), None);
        return resp;
    }
    route(generation, ext, &parts.method, parts.uri.path(), &body)
}
