//! The reverse proxy: requests served by hyper (HTTP/1.1 and HTTP/2, optional rustls) are
//! decided in their exchange and forwarded on the worker's own HTTP/1 connections
//! (`h1_pool.rs`) or, for TLS, HTTP/2 and WebSocket upstreams, hyper-util's pooled client. Requests and
//! responses stream through; the gateway only ever looks at the request head.

use super::bodies::{BodyFault, Paced, Watched};
use super::call::{Call, UpstreamError};
use super::exchange::{Arrival, Exchange};
use super::h1_pool::{H1Pool, Lent};
use super::headers::{cors_origin, declared_length, private};
use super::listen::Peer;
use super::metadata::{self, Served};
use super::retry::IDEMPOTENT;
use super::tunnel;
use super::upstreams::Clients;
use crate::answer::{Refusal, Rendered};
use crate::cors::{self, Cors, Preflight, Preflights};
use crate::decision::HostHeader;
use crate::decision::{Decided, Verdict};
use crate::forward::Settled;
use crate::generation::{Current, Generation};
use crate::metrics::FrontEnd;
use crate::otel::{self, Kind};
use crate::request::FramingError;
use crate::request::{Connection, Head};
use bytes::Bytes;
use http::header::{CONNECTION, HOST};
use http::uri::PathAndQuery;
use http::{HeaderName, HeaderValue, Request, Response};
use http_body_util::{Either, Full};
use hyper::body::{Body as _, Incoming};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

pub type Body = Either<Paced<Lent>, Full<Bytes>>;

pub struct Engine {
    /// The configuration in force (replaced by a reload).
    pub current: Current,
    /// Upstream connections, pooled across reloads.
    clients: Clients,
    /// This worker's own connections to plain HTTP/1 upstreams.
    h1: Arc<H1Pool>,
    tls: bool,
}

/// The request's id on the gateway's own answers.
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Response headers that describe the upstream connection, not the response.
const HOP_BY_HOP: [&str; 4] = ["connection", "keep-alive", "proxy-connection", "trailer"];

/// The gateway's own answer, with the request's id.
fn answer(a: Rendered, request_id: &HeaderValue) -> Response<Body> {
    let mut resp = Response::new(Either::Right(Full::new(a.body)));
    *resp.status_mut() = a.status;
    let h = resp.headers_mut();
    for (name, value) in a.headers {
        h.append(name, value);
    }
    h.insert(X_REQUEST_ID, request_id.clone());
    if a.close {
        // hyper closes the connection after a response that says so.
        h.insert(CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

impl Engine {
    /// Answers one request: its exchange (span, metrics, log line) around the decision and
    /// the forwarding.
    pub async fn handle(&self, req: Request<Incoming>, peer: &Arc<Peer>) -> Response<Body> {
        let _busy = peer.wire.busy();
        let (index, refused) = peer.wire.next_request();
        let generation = self.current.load_full();
        let addr = peer.addr.expect("the proxy listens on TCP");
        let policy = &generation.gateway.rules.forward;
        // A trace is continued from the client only when the peer is a trusted proxy.
        let trusted = policy.trusted_proxies.contains(&addr.ip());
        let arrival = Arrival {
            method: req.method(),
            path: req.uri().path(),
            client: Some(addr.ip()),
            request_id: policy.request_id(req.headers()),
            trace_parent: trusted.then(|| req.headers()),
            body_size: declared_length(req.headers()),
        };
        let mut exchange = Exchange::begin(FrontEnd::Proxy, generation.clone(), arrival);
        // A browser's cross-origin request: what its answer's CORS headers depend on.
        let origin = cors_origin(req.headers());
        if crate::answer::is_grpc(req.headers()) {
            exchange.speaks_grpc();
        }
        let arrived = Arrived {
            peer,
            index,
            refused,
            addr,
        };
        let (mut resp, cors) = self
            .respond(req, &arrived, &generation, &mut exchange)
            .await;
        if let (Some(origin), Some(cors)) = (&origin, cors) {
            cors.decorate(origin, resp.headers_mut());
        }
        let size = declared_length(resp.headers());
        exchange.finish(resp.status().as_u16(), size);
        // The wire check goes on once it knows whether the connection became a tunnel.
        let switched = resp.status() == http::StatusCode::SWITCHING_PROTOCOLS;
        peer.wire.answered(index, switched);
        resp
    }

    /// The answer, and the CORS rules its headers follow (none for a preflight the gateway
    /// answered itself or passed to the upstream).
    async fn respond(
        &self,
        req: Request<Incoming>,
        arrived: &Arrived<'_>,
        // Held to the end of the request: a reload meanwhile does not change its rules.
        generation: &Arc<Generation>,
        exchange: &mut Exchange,
    ) -> (Response<Body>, Option<Arc<Cors>>) {
        let gw = &generation.gateway;
        let addr = arrived.addr;
        if let Some(e) = arrived.refused {
            // The stand-in of a head the wire check refused: nothing of it is forwarded.
            let r = Refusal::BadFraming(e);
            exchange.refused(None, &r);
            let resp = answer(exchange.render(&r), exchange.request_id());
            return (resp, gw.rules.cors.clone());
        }
        let conn = Connection {
            peer: Some(addr),
            tls: self.tls,
            version: req.version(),
            peer_certificate: None,
        };
        let asked = cors::requested_method(req.method(), req.headers());
        let preflight = asked.as_ref().and_then(|asked| {
            let head = Head {
                method: req.method(),
                uri: req.uri(),
                headers: req.headers(),
                conn: &conn,
            };
            gw.preflight_route(&head, asked)
        });
        let request_id = exchange.request_id().clone();
        match preflight {
            Some((route, rules)) if rules.preflights == Preflights::Answer => {
                exchange.routed(route);
                let asked = asked.expect("a preflight asks about a method");
                match rules.preflight(&asked, req.headers()) {
                    Preflight::Allowed(headers) => {
                        exchange.allowed(Some(route));
                        let mut resp = Response::new(Either::Right(Full::new(Bytes::new())));
                        *resp.status_mut() = http::StatusCode::NO_CONTENT;
                        let h = resp.headers_mut();
                        for (name, value) in headers {
                            h.insert(name, value);
                        }
                        crate::cors::vary_origin(h);
                        h.insert(X_REQUEST_ID, request_id);
                        (resp, None)
                    }
                    // No CORS headers: the browser gives the page nothing.
                    Preflight::Refused(why) => {
                        let r = Refusal::CorsRefused(why);
                        exchange.refused(Some(route), &r);
                        (answer(exchange.render(&r), &request_id), None)
                    }
                }
            }
            Some((route, _)) => {
                let forwarded = {
                    let head = Head {
                        method: req.method(),
                        uri: req.uri(),
                        headers: req.headers(),
                        conn: &conn,
                    };
                    gw.forward_preflight(&head, route)
                };
                let resp = self
                    .forward(req, conn, arrived, generation, exchange, Some(forwarded))
                    .await;
                (resp, None)
            }
            None => {
                let resp = self
                    .forward(req, conn, arrived, generation, exchange, None)
                    .await;
                let rules = match exchange.decided_route() {
                    Some(r) => gw.rules.routes[r].cors.clone(),
                    None => gw.rules.cors.clone(),
                };
                (resp, rules)
            }
        }
    }

    /// Decides the request (unless a preflight's forward was decided already) and forwards
    /// it, or answers the refusal.
    async fn forward(
        &self,
        mut req: Request<Incoming>,
        conn: Connection,
        arrived: &Arrived<'_>,
        generation: &Arc<Generation>,
        exchange: &mut Exchange,
        decided: Option<Decided>,
    ) -> Response<Body> {
        let request_id = exchange.request_id().clone();
        let refuse = |exchange: &mut Exchange, route, r: Refusal| {
            exchange.refused(route, &r);
            answer(exchange.render(&r), &request_id)
        };
        match metadata::serve(exchange, req.method(), req.uri().path()) {
            Some(Served::Document(doc)) => {
                let mut resp =
                    metadata::response(doc, req.method() == http::Method::HEAD).map(Either::Right);
                resp.headers_mut().insert(X_REQUEST_ID, request_id);
                return resp;
            }
            Some(Served::Refused(r)) => return answer(exchange.render(&r), &request_id),
            None => {}
        }
        let gw = &generation.gateway;
        let decided = match decided {
            Some(d) => exchange.adopt(d),
            None => {
                let head = Head {
                    method: req.method(),
                    uri: req.uri(),
                    headers: req.headers(),
                    conn: &conn,
                };
                exchange.decide(&head).await
            }
        };
        let forward = match decided.verdict {
            Verdict::Refuse(r) => return refuse(exchange, decided.route, r),
            Verdict::Forward(f) => f,
        };
        let rules = decided
            .route
            .and_then(|r| gw.rules.routes[r].websocket.as_ref());
        let may_switch = arrived.peer.wire.may_switch(arrived.index);
        let websocket = match tunnel::handshake(&mut req, rules, may_switch) {
            Ok(w) => w,
            Err(r) => return refuse(exchange, decided.route, r),
        };

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
        let te_trailers = parts
            .headers
            .get_all(http::header::TE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("trailers"));
        let client_headers = std::mem::take(&mut parts.headers);
        parts.headers = gw.rules.forward.rewrite(
            client_headers,
            &conn,
            Settled {
                principal: forward.principal.as_deref(),
                org: forward.org.as_ref(),
                strip_credentials: forward.strip_credentials,
                request_id: request_id.clone(),
            },
        );
        if websocket.is_some() {
            tunnel::ask_upgrade(&mut parts.headers);
        }
        let upstream = &gw.rules.upstreams[forward.upstream];
        parts.version = if upstream.http2 {
            // gRPC's `TE: trailers`, a hop-by-hop header the forward policy removed, is
            // what an HTTP/2 upstream is told again.
            if te_trailers {
                parts
                    .headers
                    .insert(http::header::TE, HeaderValue::from_static("trailers"));
            }
            http::Version::HTTP_2
        } else {
            http::Version::HTTP_11
        };
        // Plain HTTP/1 goes on the worker's own connections; the rest through the pooled client.
        let own = !upstream.tls && !upstream.http2 && websocket.is_none();
        let client = if own {
            None
        } else {
            let Some(c) = self.clients.of(generation).by_upstream[forward.upstream].clone() else {
                return refuse(exchange, decided.route, Refusal::BadGateway);
            };
            Some(c)
        };
        if let HostHeader::Set(host) = &upstream.host_header {
            parts.headers.insert(HOST, host.clone());
        }
        let target = match upstream.base_path.as_str() {
            "" => forward.path_and_query,
            base => format!("{base}{}", forward.path_and_query),
        };
        let Ok(target) = PathAndQuery::try_from(target) else {
            return refuse(exchange, decided.route, Refusal::BadGateway);
        };
        // Tried again on another address only when nothing of it can have been processed:
        // an idempotent request without a body, on a route that asks for it.
        let retry = decided.route.is_some_and(|r| gw.rules.routes[r].retry)
            && IDEMPOTENT.contains(&parts.method)
            && body.is_end_stream();
        // The upstream call's span, whose context the upstream receives as `traceparent`.
        let span = exchange
            .trace()
            .map(|cx| otel::child(cx, "upstream", Kind::Client));
        if let Some(span) = &span {
            otel::inject(span, &mut parts.headers);
        }
        let sent = Instant::now();
        let body = Watched::new(
            body,
            forward.max_body_bytes,
            generation.serving.body_timeout,
        );
        let fault = body.fault.clone();
        let counted = body.counted.clone();
        let to = Call {
            upstream,
            index: forward.upstream,
            generation,
            client,
            h1: &self.h1,
        };
        let answered = to.send(parts, Either::Left(body), target, retry).await;
        if let Some(span) = &span {
            if let Ok((r, _)) = &answered {
                otel::annotate_int(
                    span,
                    "http.response.status_code",
                    i64::from(r.status().as_u16()),
                );
            }
            otel::end(span);
        }
        exchange.body_read(counted.load(std::sync::atomic::Ordering::Relaxed));
        // The client's body broke, not the upstream: the client's fault, and its
        // connection cannot be trusted for another request.
        let client_fault = fault.get().map(|f| match f {
            BodyFault::Framing => Refusal::BadFraming(FramingError::BadBody),
            BodyFault::TooLarge => Refusal::PayloadTooLarge,
            BodyFault::Stalled => Refusal::BodyTimeout,
        });
        match answered {
            Ok((resp, lent)) => {
                exchange.allowed(decided.route);
                generation
                    .requests
                    .observe_upstream(forward.upstream, sent.elapsed().as_secs_f64());
                exchange.upstream(resp.status().as_u16(), sent.elapsed());
                let mut resp = resp;
                let switched = resp.status() == http::StatusCode::SWITCHING_PROTOCOLS;
                let tunnel = match (switched, websocket) {
                    (false, _) => None,
                    (true, Some(client)) => Some((client, hyper::upgrade::on(&mut resp))),
                    // A 101 to a request that did not ask for one.
                    (true, None) => return refuse(exchange, decided.route, Refusal::BadGateway),
                };
                let (mut parts, body) = resp.into_parts();
                for name in HOP_BY_HOP {
                    parts.headers.remove(HeaderName::from_static(name));
                }
                if let Some((client, upstream_side)) = tunnel {
                    tunnel::ask_upgrade(&mut parts.headers);
                    let route = decided.route.expect("a tunnel is opened on a route");
                    let t = tunnel::Tunnel::new(
                        gw,
                        route,
                        forward.principal,
                        forward.credential,
                        self.current.clone(),
                        arrived.peer.clone(),
                    );
                    tokio::spawn(t.run(client, upstream_side));
                }
                if forward.query_credential {
                    private(&mut parts.headers);
                }
                let body = Paced::new(body, upstream.body_pause, lent);
                Response::from_parts(parts, Either::Left(body))
            }
            Err(e) => {
                let refusal = match (client_fault, e) {
                    (Some(r), _) => r,
                    (None, UpstreamError::Timeout) => Refusal::GatewayTimeout,
                    (None, UpstreamError::Failed(e)) => {
                        match e {
                            Some(e) => tracing::warn!(upstream = %upstream.name, "upstream: {e}"),
                            None => {
                                tracing::warn!(upstream = %upstream.name, "upstream: no address")
                            }
                        }
                        Refusal::BadGateway
                    }
                };
                refuse(exchange, decided.route, refusal)
            }
        }
    }
}

/// What the listener says of the request: its connection, its index on it, and the wire
/// check's refusal when it is the stand-in of a refused head.
struct Arrived<'a> {
    peer: &'a Arc<Peer>,
    index: u64,
    refused: Option<FramingError>,
    addr: SocketAddr,
}

impl Engine {
    /// The engine of `current`; clients to its upstreams are made at their first request.
    pub fn new(current: Current, tls: bool) -> Engine {
        Engine {
            clients: Clients::default(),
            h1: Arc::default(),
            tls,
            current,
        }
    }
}
