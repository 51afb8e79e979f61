//! The hyper engine: a hyper 1.x server (HTTP/1.1 and HTTP/2, optional rustls) in front of a
//! pooled hyper client, with the gateway's decision in between. Requests and responses
//! stream through; the gateway only ever looks at the request head.

use super::wire::{self, BodyFault, Watched};
use crate::answer::{Outcome, Refusal};
use crate::decision::Verdict;
use crate::forward::Settled;
use crate::generation::{Current, Generation};
use crate::otel::{self, Kind, TraceContext};
use crate::request::FramingError;
use crate::request::{Connection, Head};
use crate::requestlog::{self, Entry};
use bytes::Bytes;
use http::header::{CONNECTION, HOST};
use http::uri::{PathAndQuery, Scheme};
use http::{HeaderName, HeaderValue, Request, Response, Uri};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use opentelemetry::context::FutureExt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

type Body = Either<Incoming, Full<Bytes>>;
type Upstreams = Client<hyper_rustls::HttpsConnector<HttpConnector>, Watched>;

pub struct Engine {
    /// The configuration in force (replaced by a reload).
    pub current: Current,
    /// Upstream connections, pooled across reloads.
    client: Upstreams,
    tls: bool,
}

/// Response headers that describe the upstream connection, not the response.
const HOP_BY_HOP: [&str; 4] = ["connection", "keep-alive", "proxy-connection", "trailer"];

fn answer(refusal: &Refusal) -> Response<Body> {
    let a = refusal.render();
    let mut resp = Response::new(Either::Right(Full::new(a.body)));
    *resp.status_mut() = a.status;
    let h = resp.headers_mut();
    for (name, value) in a.headers {
        h.append(name, value);
    }
    if a.close {
        // hyper closes the connection after a response that says so.
        h.insert(CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

/// RFC 6750 §2.3: an answer to a request authenticated by a query token is `private`, so no
/// shared cache keeps it under a URL that carries the token.
fn private(headers: &mut http::HeaderMap) {
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

/// Why no upstream answer came.
enum UpstreamError {
    Timeout,
    Failed(hyper_util::client::legacy::Error),
}
use UpstreamError::{Failed, Timeout};

/// What a request's log line needs from the request itself: its method, path (without the
/// query), declared length, trace id and client, before the request is taken apart.
fn entry_for(req: &Request<Incoming>, peer: SocketAddr) -> Entry {
    let path = req.uri().path();
    Entry {
        time: Some(std::time::SystemTime::now()),
        front_end: "proxy",
        method: Some(req.method().clone()),
        // At most 256 bytes of what the client sent; the normalized path once decided.
        path: Some(path.chars().take(256).collect()),
        trace_id: Entry::trace_id_of(req.headers().get("traceparent")),
        bytes_in: req
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse().ok()),
        client: Some(peer.ip()),
        ..Entry::default()
    }
}

impl Engine {
    /// Answers one request and writes its log line.
    pub async fn handle(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
        wire: &wire::Connection,
    ) -> Response<Body> {
        let start = Instant::now();
        let mut entry = entry_for(&req, peer);
        let generation = self.current.load_full();
        // A trace is continued from the client only when the peer is a trusted proxy.
        let trusted = generation
            .gateway
            .rules
            .forward
            .trusted_proxies
            .contains(&peer.ip());
        let method = req.method();
        let trace = otel::request_span(req.headers(), trusted, || method.to_string());
        if let Some(cx) = &trace {
            entry.trace_id = Some(otel::trace_id(cx));
        }
        let resp = self
            .respond(req, peer, wire, &generation, &mut entry, trace.as_ref())
            .await;
        entry.status = resp.status().as_u16();
        if let Some(cx) = &trace {
            let route = entry.route.clone().unwrap_or_default();
            otel::annotate(
                cx,
                [
                    ("http.route", route.into()),
                    (
                        "scopegate.decision",
                        (if entry.allowed() {
                            "allowed"
                        } else {
                            "refused"
                        })
                        .into(),
                    ),
                    ("scopegate.reason", entry.refusal.unwrap_or("").into()),
                ],
            );
            otel::annotate_int(cx, "http.response.status_code", i64::from(entry.status));
            otel::end(cx);
        }
        entry.duration = Some(start.elapsed());
        entry.bytes_out = resp
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse().ok());
        requestlog::write(&generation.serving.log, &entry);
        resp
    }

    async fn respond(
        &self,
        mut req: Request<Incoming>,
        peer: SocketAddr,
        wire: &wire::Connection,
        // Held to the end of the request: a reload meanwhile does not change its rules.
        generation: &Generation,
        entry: &mut Entry,
        trace: Option<&TraceContext>,
    ) -> Response<Body> {
        let start = Instant::now();
        let _busy = wire.busy();
        if let Some(e) = wire.next_request() {
            // The stand-in of a head the wire check refused: nothing of it is forwarded.
            let refusal = Refusal::BadFraming(e);
            generation.requests.refused(None, &refusal);
            entry.refused(&refusal);
            return answer(&refusal);
        }
        let gw = &generation.gateway;
        let metrics = &generation.requests;
        let conn = Connection {
            peer: Some(peer),
            tls: self.tls,
            version: req.version(),
            peer_certificate: None,
        };
        let decided = {
            let head = Head {
                method: req.method(),
                uri: req.uri(),
                headers: req.headers(),
                conn: &conn,
            };
            match trace {
                // The decision's span; the network work it needs nests under it.
                Some(cx) => {
                    let decision = otel::child(cx, "decision", Kind::Internal);
                    let decided = gw
                        .decide_with(&head, &generation.network)
                        .with_context(decision.clone())
                        .await;
                    otel::end(&decision);
                    decided
                }
                None => gw.decide_with(&head, &generation.network).await,
            }
        };
        metrics
            .decision_seconds
            .observe(start.elapsed().as_secs_f64());
        entry.route = decided.route.map(|r| gw.rules.routes[r].name.clone());
        let forward = match decided.verdict {
            Verdict::Refuse(r) => {
                metrics.refused(decided.route, &r);
                entry.refused(&r);
                return answer(&r);
            }
            Verdict::Forward(f) => f,
        };
        entry.principal = forward.principal.clone();
        entry.org = forward.org.clone();
        let path = forward.path_and_query.split('?').next().unwrap_or_default();
        entry.path = Some(path.to_string());

        // HTTP/2 clients send `:authority` instead of Host; HTTP/1 upstreams need a Host.
        if !req.headers().contains_key(HOST)
            && let Some(host) = req
                .uri()
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        {
            req.headers_mut().insert(HOST, host);
        }
        let (mut parts, body) = req.into_parts();
        let client_headers = std::mem::take(&mut parts.headers);
        let request_id;
        (parts.headers, request_id) = gw.rules.forward.rewrite(
            client_headers,
            &conn,
            Settled {
                principal: forward.principal.as_deref(),
                org: forward.org.as_ref(),
                strip_credentials: forward.strip_credentials,
            },
        );
        entry.request_id = Some(request_id);
        parts.version = http::Version::HTTP_11;
        let upstream = &gw.rules.upstreams[forward.upstream];
        let mut uri = http::uri::Parts::default();
        uri.scheme = Some(if upstream.tls {
            Scheme::HTTPS
        } else {
            Scheme::HTTP
        });
        uri.authority = Some(upstream.authority.clone());
        uri.path_and_query = PathAndQuery::try_from(forward.path_and_query).ok();
        parts.uri = match Uri::from_parts(uri) {
            Ok(u) => u,
            Err(_) => {
                metrics.refused(decided.route, &Refusal::BadGateway);
                entry.refused(&Refusal::BadGateway);
                return answer(&Refusal::BadGateway);
            }
        };
        // The upstream call's span, whose context the upstream receives as `traceparent`.
        let call = trace.map(|cx| otel::child(cx, "upstream", Kind::Client));
        if let Some(call) = &call {
            otel::inject(call, &mut parts.headers);
        }
        let sent = Instant::now();
        let body = Watched::new(
            body,
            forward.max_body_bytes,
            generation.serving.timeouts.body,
        );
        let fault = body.fault.clone();
        let asked = self.client.request(Request::from_parts(parts, body));
        let asked = async {
            let answered = asked.await;
            if let Some(call) = &call {
                if let Ok(r) = &answered {
                    otel::annotate_int(
                        call,
                        "http.response.status_code",
                        i64::from(r.status().as_u16()),
                    );
                }
                otel::end(call);
            }
            answered
        };
        let answered = tokio::time::timeout(generation.serving.timeouts.upstream_response, async {
            asked.await.map_err(Failed)
        })
        .await
        .unwrap_or(Err(Timeout));
        // The client's body broke, not the upstream: the client's fault, and its
        // connection cannot be trusted for another request.
        let client_fault = fault.get().map(|f| match f {
            BodyFault::Framing => Refusal::BadFraming(FramingError::BadBody),
            BodyFault::TooLarge => Refusal::PayloadTooLarge,
            BodyFault::Stalled => Refusal::BodyTimeout,
        });
        match answered {
            Ok(resp) => {
                metrics.count(decided.route, Outcome::Allowed);
                metrics.observe_upstream(forward.upstream, sent.elapsed().as_secs_f64());
                entry.upstream_status = Some(resp.status().as_u16());
                entry.upstream_duration = Some(sent.elapsed());
                let (mut parts, body) = resp.into_parts();
                for name in HOP_BY_HOP {
                    parts.headers.remove(HeaderName::from_static(name));
                }
                if forward.query_credential {
                    private(&mut parts.headers);
                }
                Response::from_parts(parts, Either::Left(body))
            }
            Err(e) => {
                let refusal = match (client_fault, e) {
                    (Some(r), _) => r,
                    (None, Timeout) => Refusal::GatewayTimeout,
                    (None, Failed(e)) => {
                        tracing::warn!(upstream = %upstream.name, "upstream: {e}");
                        Refusal::BadGateway
                    }
                };
                metrics.refused(decided.route, &refusal);
                entry.refused(&refusal);
                answer(&refusal)
            }
        }
    }
}

impl Engine {
    /// The engine of `current`, with an upstream client that connects within
    /// `connect_timeout`.
    pub fn new(current: Current, tls: bool, connect_timeout: Duration) -> Engine {
        Engine {
            client: upstream_client(connect_timeout),
            tls,
            current,
        }
    }
}

fn upstream_client(connect_timeout: Duration) -> Upstreams {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.enforce_http(false);
    http.set_connect_timeout(Some(connect_timeout));
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(rustls::crypto::aws_lc_rs::default_provider())
        .unwrap_or_else(|_| {
            hyper_rustls::HttpsConnectorBuilder::new()
                .with_provider_and_webpki_roots(rustls::crypto::aws_lc_rs::default_provider())
                .expect("TLS provider")
        })
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(256)
        .timer(TokioTimer::new())
        .pool_timer(TokioTimer::new())
        .build(connector)
}
