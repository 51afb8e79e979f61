//! The decision endpoint's HTTP listener (nginx `auth_request`, Traefik and Caddy
//! `forward_auth`, Envoy `ext_authz` over HTTP), on TCP or a unix socket: each call is mapped
//! to the original request by `authz::original`, decided by `authz::decide`, and answered
//! with 200 and the identity headers, or with the proxy's own refusal.

use crate::authz::{self, Answer};
use crate::compile::Bind;
use crate::generation::Current;
use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

/// The normalized target the decision matched, for a caller that forwards it instead of the
/// client's spelling (nginx: `proxy_pass http://api$scopegate_path`).
static X_SCOPEGATE_PATH: HeaderName = HeaderName::from_static("x-scopegate-path");

/// The decision endpoint's listener, bound at start (so that an address in use stops the
/// start, not a request later).
pub enum Bound {
    Tcp(std::net::TcpListener),
    Unix(std::os::unix::net::UnixListener),
}

impl Bound {
    /// Binds `bind`; a stale unix socket file is replaced.
    pub fn bind(bind: &Bind) -> Result<Bound, String> {
        match bind {
            Bind::Tcp(addr) => {
                let l = std::net::TcpListener::bind(addr)
                    .map_err(|e| format!("decision.listen {addr}: {e}"))?;
                l.set_nonblocking(true).map_err(|e| e.to_string())?;
                Ok(Bound::Tcp(l))
            }
            Bind::Unix(path) => {
                let _ = std::fs::remove_file(path);
                let l = std::os::unix::net::UnixListener::bind(path)
                    .map_err(|e| format!("decision.listen unix:{}: {e}", path.display()))?;
                l.set_nonblocking(true).map_err(|e| e.to_string())?;
                Ok(Bound::Unix(l))
            }
        }
    }
}

enum Listener {
    Tcp(tokio::net::TcpListener),
    Unix(tokio::net::UnixListener),
}

fn json(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

async fn handle(
    current: &Current,
    secret: Option<&(HeaderName, String)>,
    req: Request<Incoming>,
    peer: Option<SocketAddr>,
) -> Response<Full<Bytes>> {
    let (front_end, original) =
        match authz::original(req.method(), req.uri(), req.headers(), peer, secret) {
            Ok(o) => o,
            Err(e) => {
                let (status, body) = e.answer();
                return json(status, body);
            }
        };
    let generation = current.load_full();
    match authz::decide(&generation, front_end, &original).await {
        Answer::Allow {
            set, remove, path, ..
        } => {
            let mut resp = Response::new(Full::new(Bytes::new()));
            let h = resp.headers_mut();
            for (name, value) in set {
                h.insert(name, value);
            }
            // Envoy copies `allowed_upstream_headers` that the answer has and leaves the
            // client's others alone: an empty value overwrites a spoofed copy. (nginx removes
            // a header set empty; Traefik and Caddy delete what they copy first.)
            if front_end == authz::FrontEnd::EnvoyHttp {
                for name in remove {
                    h.insert(name, HeaderValue::from_static(""));
                }
            }
            if let Ok(v) = HeaderValue::from_str(&path) {
                h.insert(X_SCOPEGATE_PATH.clone(), v);
            }
            resp
        }
        Answer::Deny(r) => {
            let mut resp = Response::new(Full::new(r.body));
            *resp.status_mut() = r.status;
            let h = resp.headers_mut();
            for (name, value) in r.headers {
                h.append(name, value);
            }
            resp
        }
    }
}

/// Serves calls on `bound` until `stop` changes.
pub async fn serve(
    current: Current,
    bound: Bound,
    secret: Option<(HeaderName, String)>,
    header_timeout: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let listener = match bound {
        Bound::Tcp(l) => tokio::net::TcpListener::from_std(l).map(Listener::Tcp),
        Bound::Unix(l) => tokio::net::UnixListener::from_std(l).map(Listener::Unix),
    };
    let listener = match listener {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("decision.listen: {e}");
            return;
        }
    };
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_buf_size(64 * 1024);
    let builder = Arc::new(builder);
    let secret = Arc::new(secret);
    loop {
        let accepted = tokio::select! {
            a = accept(&listener) => a,
            _ = stop.changed() => return,
        };
        let Some((io, peer)) = accepted else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let (current, secret, builder) = (current.clone(), secret.clone(), builder.clone());
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let (current, secret) = (current.clone(), secret.clone());
                async move {
                    Ok::<_, std::convert::Infallible>(
                        handle(&current, secret.as_ref().as_ref(), req, peer).await,
                    )
                }
            });
            let _ = builder.serve_connection(io, svc).await;
        });
    }
}

type Io = TokioIo<Box<dyn Stream>>;

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

async fn accept(listener: &Listener) -> Option<(Io, Option<SocketAddr>)> {
    match listener {
        Listener::Tcp(l) => {
            let (s, peer) = l.accept().await.ok()?;
            let _ = s.set_nodelay(true);
            Some((TokioIo::new(Box::new(s) as Box<dyn Stream>), Some(peer)))
        }
        Listener::Unix(l) => {
            let (s, _) = l.accept().await.ok()?;
            Some((TokioIo::new(Box::new(s) as Box<dyn Stream>), None))
        }
    }
}
