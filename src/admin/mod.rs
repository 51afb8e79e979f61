//! The admin listener: `/metrics`, `/healthz`, `/readyz`, plus routes an extension adds
//! (the development issuer of `scopegate dev`). Served by hyper, apart from the proxy engine.

use crate::generation::{Current, Generation};
use crate::sync::SetReceiver;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Extra admin routes; returns `None` for paths it does not serve.
pub trait Extension: Send + Sync {
    fn handle(&self, method: &Method, path: &str, body: &[u8]) -> Option<Response<Full<Bytes>>>;
}

const MAX_BODY: usize = 64 * 1024;

/// An admin request head must arrive within this.
const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

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

/// `POST /events` (RFC 8935): 202 when the SET was applied, else 400 with `err`.
async fn events(
    receiver: Option<&SetReceiver>,
    content_type: Option<&str>,
    body: &[u8],
) -> Response<Full<Bytes>> {
    let Some(receiver) = receiver else {
        return json(
            StatusCode::NOT_FOUND,
            serde_json::json!({"error": "not_found", "error_description": "no SET push receiver is configured"}),
        );
    };
    match receiver.receive(content_type, body).await {
        Ok(_) => response(StatusCode::ACCEPTED, "application/json", Bytes::new()),
        Err(e) => json(
            StatusCode::BAD_REQUEST,
            serde_json::json!({"err": e.err, "description": e.description}),
        ),
    }
}

/// Serves the admin endpoints on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, current: Current, ext: Option<Arc<dyn Extension>>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let current = current.clone();
        let ext = ext.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req: Request<Incoming>| {
                // The configuration in force when the request arrived.
                let generation = current.load_full();
                let ext = ext.clone();
                async move {
                    let (parts, body) = req.into_parts();
                    let body = match Limited::new(body, MAX_BODY).collect().await {
                        Ok(b) => b.to_bytes(),
                        Err(_) => {
                            return Ok::<_, hyper::Error>(json(
                                StatusCode::PAYLOAD_TOO_LARGE,
                                serde_json::json!({"error": "body too large"}),
                            ));
                        }
                    };
                    if parts.method == Method::POST && parts.uri.path() == "/events" {
                        let ct = parts
                            .headers
                            .get(http::header::CONTENT_TYPE)
                            .and_then(|v| v.to_str().ok());
                        return Ok(events(generation.sets.as_deref(), ct, &body).await);
                    }
                    Ok(route(
                        &generation,
                        ext.as_deref(),
                        &parts.method,
                        parts.uri.path(),
                        &body,
                    ))
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}
