//! The hyper engine: a hyper 1.x server (HTTP/1.1 and HTTP/2, optional rustls) in front of a
//! pooled hyper client, with the gateway's decision in between. Requests and responses
//! stream through; the gateway only ever looks at the request head.

use super::wire::{self, Checked, Watched};
use crate::answer::{Outcome, Refusal};
use crate::decision::Verdict;
use crate::forward::Settled;
use crate::generation::Current;
use crate::request::FramingError;
use crate::request::{Connection, Head};
use bytes::Bytes;
use http::header::{CONNECTION, HOST};
use http::uri::{PathAndQuery, Scheme};
use http::{HeaderName, HeaderValue, Request, Response, Uri};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

type Body = Either<Incoming, Full<Bytes>>;
type Upstreams = Client<hyper_rustls::HttpsConnector<HttpConnector>, Watched>;

struct Engine {
    /// The configuration in force (replaced by a reload).
    current: Current,
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

impl Engine {
    async fn handle(
        &self,
        mut req: Request<Incoming>,
        peer: SocketAddr,
        wire: &wire::Connection,
    ) -> Response<Body> {
        let start = Instant::now();
        if let Some(e) = wire.next_request() {
            // The stand-in of a head the wire check refused: nothing of it is forwarded.
            self.current
                .load()
                .requests
                .count(None, Refusal::BadFraming(e).outcome());
            return answer(&Refusal::BadFraming(e));
        }
        // Held to the end of the request: a reload meanwhile does not change its rules.
        let generation = self.current.load_full();
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
            gw.decide_with(&head, &generation.network).await
        };
        metrics
            .decision_seconds
            .observe(start.elapsed().as_secs_f64());
        let forward = match decided.verdict {
            Verdict::Refuse(r) => {
                metrics.count(decided.route, r.outcome());
                return answer(&r);
            }
            Verdict::Forward(f) => f,
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
        let client_headers = std::mem::take(&mut parts.headers);
        (parts.headers, _) = gw.rules.forward.rewrite(
            client_headers,
            &conn,
            Settled {
                principal: forward.principal.as_deref(),
                org: forward.org.as_ref(),
                strip_credentials: forward.strip_credentials,
            },
        );
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
                metrics.count(decided.route, Outcome::Status(502));
                return answer(&Refusal::BadGateway);
            }
        };
        let sent = Instant::now();
        let body = Watched::new(body);
        let body_failed = body.failed.clone();
        match self.client.request(Request::from_parts(parts, body)).await {
            Ok(resp) => {
                metrics.count(decided.route, Outcome::Allowed);
                metrics.observe_upstream(forward.upstream, sent.elapsed().as_secs_f64());
                let (mut parts, body) = resp.into_parts();
                for name in HOP_BY_HOP {
                    parts.headers.remove(HeaderName::from_static(name));
                }
                if forward.query_credential {
                    private(&mut parts.headers);
                }
                Response::from_parts(parts, Either::Left(body))
            }
            // The client's body broke, not the upstream: the client's fault, and its
            // connection cannot be trusted for another request.
            Err(_) if body_failed.load(std::sync::atomic::Ordering::Relaxed) => {
                let refusal = Refusal::BadFraming(FramingError::BadBody);
                metrics.count(decided.route, refusal.outcome());
                answer(&refusal)
            }
            Err(e) => {
                tracing::warn!(upstream = %upstream.name, "upstream: {e}");
                metrics.count(decided.route, Outcome::Status(502));
                answer(&Refusal::BadGateway)
            }
        }
    }
}

fn tls_acceptor(cert: &str, key: &str) -> Result<tokio_rustls::TlsAcceptor, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("server.tls.cert {cert}: {e}"))?;
    let key =
        PrivateKeyDer::from_pem_file(key).map_err(|e| format!("server.tls.key {key}: {e}"))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| format!("server.tls: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

fn upstream_client() -> Upstreams {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.enforce_http(false);
    http.set_connect_timeout(Some(Duration::from_secs(5)));
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

async fn serve(
    engine: Arc<Engine>,
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut stop: oneshot::Receiver<()>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
        .max_buf_size(64 * 1024);
    let builder = Arc::new(builder);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(_) => continue,
            },
            _ = &mut stop => return,
        };
        let _ = stream.set_nodelay(true);
        let engine = engine.clone();
        let builder = builder.clone();
        let tls = tls.clone();
        // The limits in force now: a reload applies to the next connection.
        let limits = engine.current.load().gateway.rules.limits;
        tokio::spawn(async move {
            let conn = Arc::new(wire::Connection::default());
            let svc = {
                let conn = conn.clone();
                service_fn(move |req| {
                    let engine = engine.clone();
                    let conn = conn.clone();
                    async move {
                        Ok::<_, std::convert::Infallible>(engine.handle(req, peer, &conn).await)
                    }
                })
            };
            match tls {
                Some(acceptor) => {
                    let Ok(s) = acceptor.accept(stream).await else {
                        return;
                    };
                    if s.get_ref().1.alpn_protocol() == Some(b"h2") {
                        let _ = builder.serve_connection(TokioIo::new(s), svc).await;
                    } else {
                        let s = Checked::new(s, check(&limits), conn);
                        let _ = builder.serve_connection(TokioIo::new(s), svc).await;
                    }
                }
                None => {
                    let s = Checked::new(stream, check(&limits), conn);
                    let _ = builder.serve_connection(TokioIo::new(s), svc).await;
                }
            }
        });
    }
}

/// The wire check of a connection, with the limits in force when it was accepted.
fn check(limits: &crate::request::Limits) -> crate::request::wire::WireCheck {
    crate::request::wire::WireCheck::new(limits.max_uri_bytes, limits.max_header_bytes)
}

/// Runs the engine on the calling thread, accepting on `listener`, until `stop` fires.
/// Threads and TLS are those of the configuration at start (a reload cannot change them).
pub fn run(
    current: Current,
    listener: std::net::TcpListener,
    stop: oneshot::Receiver<()>,
) -> Result<(), String> {
    let (threads, tls) = {
        let serving = &current.load().serving;
        (serving.threads, serving.tls.clone())
    };
    let tls = match tls {
        Some((cert, key)) => Some(tls_acceptor(&cert, &key)?),
        None => None,
    };
    // One thread: a current-thread runtime, no cross-thread wake-ups (the cheapest per request).
    let runtime = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    }
    .map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let listener = TcpListener::from_std(listener).map_err(|e| e.to_string())?;
        let engine = Arc::new(Engine {
            client: upstream_client(),
            tls: tls.is_some(),
            current,
        });
        serve(engine, listener, tls, stop).await;
        Ok(())
    })
}
