//! The one accept loop every listener goes through (the proxy, the decision endpoint over
//! HTTP and gRPC, the admin port): at most `max_connections` at once (one more is answered
//! 503 and closed), a backoff when accepting fails (EMFILE must not spin the loop), a
//! deadline on TLS handshakes and on request heads, the HTTP/1 wire check, idle connections
//! closed, and a graceful drain when the process stops.

use super::wire::{self, Checked};
use crate::compile::{Bind, Connections};
use bytes::Bytes;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{Semaphore, watch};

/// What a connection over the limit is told before it is closed.
const OVERLOADED: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: 80\r\n\r\n{\"error\":\"overloaded\",\"error_description\":\"too many connections, try again later\"}";

/// Longest pause after a failed `accept`.
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// How long an idle connection asked to close (HTTP/2: GOAWAY and a ping) may take to do
/// so before it is dropped: nothing is in flight on it, and a peer that never answers the
/// ping must not keep it open.
const IDLE_CLOSE_GRACE: Duration = Duration::from_secs(1);

/// A listening socket, bound when the process starts (an address in use stops the start,
/// not a request later).
pub enum Bound {
    Tcp(std::net::TcpListener),
    Unix(std::os::unix::net::UnixListener),
}

impl Bound {
    /// Binds `bind` (`what` names it in errors); a stale unix socket file is replaced and the
    /// new one gets its configured mode.
    pub fn bind(bind: &Bind, what: &str) -> Result<Bound, String> {
        match bind {
            Bind::Tcp(addr) => {
                let l =
                    std::net::TcpListener::bind(addr).map_err(|e| format!("{what} {addr}: {e}"))?;
                l.set_nonblocking(true).map_err(|e| e.to_string())?;
                Ok(Bound::Tcp(l))
            }
            Bind::Unix { path, mode } => {
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::remove_file(path);
                let l = std::os::unix::net::UnixListener::bind(path)
                    .map_err(|e| format!("{what} unix:{}: {e}", path.display()))?;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(*mode))
                    .map_err(|e| format!("{what} unix:{}: {e}", path.display()))?;
                l.set_nonblocking(true).map_err(|e| e.to_string())?;
                Ok(Bound::Unix(l))
            }
        }
    }

    pub fn tcp(addr: SocketAddr, what: &str) -> Result<Bound, String> {
        Bound::bind(&Bind::Tcp(addr), what)
    }

    /// Another handle on the same listening socket: one more worker accepting from its queue.
    pub fn try_clone(&self) -> Result<Bound, String> {
        match self {
            Bound::Tcp(l) => l.try_clone().map(Bound::Tcp),
            Bound::Unix(l) => l.try_clone().map(Bound::Unix),
        }
        .map_err(|e| format!("listening socket: {e}"))
    }
}

enum Socket {
    Tcp(tokio::net::TcpListener),
    Unix(tokio::net::UnixListener),
}

/// The connection a request came on, as the listener knows it.
pub struct Peer {
    /// `None` on a unix socket.
    pub addr: Option<SocketAddr>,
    pub tls: bool,
    /// What the wire check found, and how busy the connection is.
    pub wire: Arc<wire::Connection>,
    /// Turns true when the process stops: what a tunnel that outlives its HTTP connection
    /// watches.
    pub stop: watch::Receiver<bool>,
    /// The connection's place under `max_connections`, held as long as the peer is (a
    /// WebSocket tunnel holds it after the HTTP connection handed over its socket).
    _slot: tokio::sync::OwnedSemaphorePermit,
}

/// Which HTTP versions a listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocols {
    Http1,
    Http2,
    /// HTTP/1.1, and HTTP/2 by ALPN or prior knowledge.
    Both,
}

/// One listener: its socket, TLS, bounds and protocols.
pub struct Listener {
    /// Names the listener in logs (`server.listen`, `decision.grpc_listen`, …).
    pub name: &'static str,
    pub bound: Bound,
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    pub connections: Connections,
    pub protocols: Protocols,
    /// Its service may answer an upgrade with 101 and tunnel the connection (the proxy's
    /// WebSocket routes).
    pub tunnels: bool,
    /// Its places under `max_connections`, shared by every worker accepting on it.
    slots: Arc<Semaphore>,
}

impl Listener {
    pub fn new(
        name: &'static str,
        bound: Bound,
        tls: Option<tokio_rustls::TlsAcceptor>,
        connections: Connections,
        protocols: Protocols,
        tunnels: bool,
    ) -> Listener {
        Listener {
            name,
            bound,
            tls,
            connections,
            protocols,
            tunnels,
            slots: Arc::new(Semaphore::new(connections.max_connections)),
        }
    }

    /// The same listener for another worker: its socket, its slots.
    pub fn try_clone(&self) -> Result<Listener, String> {
        Ok(Listener {
            bound: self.bound.try_clone()?,
            tls: self.tls.clone(),
            slots: self.slots.clone(),
            ..*self
        })
    }
}

/// The request-target and header bounds of the wire check, read per connection (the proxy's
/// follow a reload).
pub type WireLimits = Arc<dyn Fn() -> (usize, usize) + Send + Sync>;

/// Serves `listener` with a service made per connection by `make`, until `stop` turns true;
/// then lets the connections finish what they serve (HTTP/1 closes after the request in
/// flight, HTTP/2 sends GOAWAY) for up to `grace`.
pub async fn serve<M, S, B>(
    listener: Listener,
    wire_limits: WireLimits,
    make: M,
    mut stop: watch::Receiver<bool>,
    grace: Duration,
) where
    M: Fn(Arc<Peer>) -> S,
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let Listener {
        name,
        bound,
        tls,
        connections,
        protocols,
        tunnels,
        slots,
    } = listener;
    let socket = match bound {
        Bound::Tcp(l) => tokio::net::TcpListener::from_std(l).map(Socket::Tcp),
        Bound::Unix(l) => tokio::net::UnixListener::from_std(l).map(Socket::Unix),
    };
    let socket = match socket {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("{name}: {e}");
            return;
        }
    };
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(connections.header)
        .max_buf_size(64 * 1024);
    // HTTP/2: a peer that stops answering pings is closed.
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(20));
    let builder = Arc::new(match protocols {
        Protocols::Http1 => builder.http1_only(),
        Protocols::Http2 => builder.http2_only(),
        Protocols::Both => builder,
    });
    // Tells every connection that the process stops.
    let (stopping, stop_seen) = watch::channel(false);
    let mut backoff = Duration::ZERO;
    loop {
        let accepted = tokio::select! {
            a = accept(&socket) => a,
            _ = stop.changed() => break,
        };
        let (io, addr) = match accepted {
            Ok(a) => {
                backoff = Duration::ZERO;
                a
            }
            Err(e) => {
                // Out of file descriptors, or the like: pause instead of spinning.
                backoff = (backoff * 2).clamp(Duration::from_millis(5), MAX_ACCEPT_BACKOFF);
                crate::metrics::CONNECTIONS_NOT_TAKEN
                    .with_label_values(&[name, "accept_failed"])
                    .inc();
                tracing::warn!("{name}: accept failed ({e}); pausing {backoff:?}");
                tokio::time::sleep(backoff).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            crate::metrics::CONNECTIONS_NOT_TAKEN
                .with_label_values(&[name, "max_connections"])
                .inc();
            overloaded(io, tls.is_none() && protocols != Protocols::Http2, name);
            continue;
        };
        let wire = Arc::new(wire::Connection::default());
        let peer = Arc::new(Peer {
            addr,
            tls: tls.is_some(),
            wire: wire.clone(),
            stop: stop_seen.clone(),
            _slot: slot,
        });
        let service = make(peer);
        let builder = builder.clone();
        let tls = tls.clone();
        let stop_seen = stop_seen.clone();
        // The limits in force now: a reload applies to the next connection.
        let (max_uri, max_header) = wire_limits();
        let conn = Conn {
            io,
            tls,
            protocols,
            builder,
            wire,
            connections,
            wire_limits: (max_uri, max_header),
            tunnels,
        };
        tokio::spawn(conn.serve(service, stop_seen));
    }
    drop(socket);
    let _ = stopping.send(true);
    // Every connection holds a slot until it ends: all slots back means all done.
    let all = connections.max_connections as u32;
    if tokio::time::timeout(grace, slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("{name}: requests still in flight after {grace:?}: stopping anyway");
    }
}

/// One accepted connection, before its protocol is known.
struct Conn {
    io: Box<dyn Stream>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    protocols: Protocols,
    builder: Arc<auto::Builder<TokioExecutor>>,
    wire: Arc<wire::Connection>,
    connections: Connections,
    wire_limits: (usize, usize),
    tunnels: bool,
}

impl Conn {
    /// The TLS handshake (within its deadline), the wire check on HTTP/1, then `service`
    /// until the connection ends.
    async fn serve<S, B>(self, service: S, stop: watch::Receiver<bool>)
    where
        S: hyper::service::Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
            + Send
            + 'static,
        S::Future: Send + 'static,
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let Conn {
            io,
            tls,
            protocols,
            builder,
            wire,
            connections,
            wire_limits: (max_uri, max_header),
            tunnels,
        } = self;
        let checked = move |io: Box<dyn Stream>, wire: Arc<wire::Connection>| -> Box<dyn Stream> {
            let check = wire::WireCheck::new(max_uri, max_header);
            let check = if tunnels { check.with_tunnels() } else { check };
            Box::new(Checked::new(io, check, wire))
        };
        let io = match tls {
            Some(acceptor) => {
                let handshake = acceptor.accept(io);
                let Ok(Ok(s)) = tokio::time::timeout(connections.tls_handshake, handshake).await
                else {
                    return;
                };
                if s.get_ref().1.alpn_protocol() == Some(b"h2") {
                    Box::new(s) as Box<dyn Stream>
                } else {
                    checked(Box::new(s), wire.clone())
                }
            }
            // HTTP/2 only: no HTTP/1 head to check.
            None if protocols == Protocols::Http2 => io,
            None => checked(io, wire.clone()),
        };
        // With upgrades: a 101 hands the socket to the service's tunnel (the proxy's
        // WebSocket routes); other services never answer 101.
        let c = builder
            .serve_connection_with_upgrades(TokioIo::new(io), service)
            .into_owned();
        // Boxed here, where the service's bounds are in scope: rustc cannot prove the
        // connection future `Send` from the spawning task otherwise (rust-lang/rust#102211).
        let served: std::pin::Pin<Box<dyn Future<Output = ()> + Send>> =
            Box::pin(supervise(c, wire, connections, stop));
        served.await;
    }
}

/// A client stream of any kind (TCP, unix socket, TLS).
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

async fn accept(socket: &Socket) -> std::io::Result<(Box<dyn Stream>, Option<SocketAddr>)> {
    match socket {
        Socket::Tcp(l) => {
            let (s, peer) = l.accept().await?;
            let _ = s.set_nodelay(true);
            Ok((Box::new(s), Some(peer)))
        }
        Socket::Unix(l) => {
            let (s, _) = l.accept().await?;
            Ok((Box::new(s), None))
        }
    }
}

/// Serves one connection until it ends. It is asked to finish gracefully (HTTP/1: after the
/// request in flight; HTTP/2: GOAWAY, streams in flight finish) when the process stops, or
/// when it has served nothing for `idle` — then dropped if it has not closed within
/// [`IDLE_CLOSE_GRACE`]. A request head that started arriving and is not complete after
/// `header` drops the connection (the wire check holds such a head back, so the engine's
/// own head timer never sees it).
async fn supervise<C>(
    conn: C,
    state: Arc<wire::Connection>,
    bounds: Connections,
    mut stop: watch::Receiver<bool>,
) where
    C: hyper_util::server::graceful::GracefulConnection + Send,
{
    tokio::pin!(conn);
    let mut heads = state.head_changed.subscribe();
    let mut closing = false;
    let mut idle_close: Option<tokio::time::Instant> = None;
    loop {
        let quiet_until = state.quiet_until(bounds.idle);
        let head_deadline = state.head_started().map(|t| t + bounds.header);
        tokio::select! {
            _ = conn.as_mut() => return,
            changed = stop.changed(), if !closing => {
                if changed.is_err() || *stop.borrow() {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
            _ = tokio::time::sleep_until(quiet_until), if !closing => {
                if state.is_idle(bounds.idle) {
                    closing = true;
                    idle_close = Some(tokio::time::Instant::now() + IDLE_CLOSE_GRACE);
                    conn.as_mut().graceful_shutdown();
                }
            }
            _ = sleep_until(idle_close) => return,
            // A head started to be held: its deadline is set on the next turn.
            _ = heads.changed(), if head_deadline.is_none() => {}
            _ = sleep_until(head_deadline) => {
                let now = tokio::time::Instant::now();
                if state.head_started().is_some_and(|t| t + bounds.header <= now) {
                    return;
                }
            }
        }
    }
}

/// Sleeps until `at`, or forever when there is no such time.
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// Tells a connection over the limit so (in clear-text HTTP/1; others are just closed) and
/// drops it.
fn overloaded(io: Box<dyn Stream>, say_so: bool, name: &str) {
    if say_so {
        // Best effort, never waiting: the answer fits in the socket's buffer.
        let mut io = io;
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let _ = std::pin::Pin::new(&mut io).poll_write(&mut cx, OVERLOADED);
    }
    tracing::debug!("{name}: connection refused: over its max_connections");
}

/// A TLS acceptor for the proxy listener (ALPN `h2` and `http/1.1`).
pub fn tls_acceptor(cert: &str, key: &str) -> Result<tokio_rustls::TlsAcceptor, String> {
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
