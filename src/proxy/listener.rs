//! Accepting client connections, bounded: at most `server.limits.max_connections` at once
//! (one more gets a 503 and is closed), a backoff when accepting fails (EMFILE must not spin
//! the loop), a deadline on TLS handshakes, the HTTP/1 wire check, and a graceful drain when
//! the process stops.

use super::hyper::Engine;
use super::wire::{self, Checked};
use crate::compile::Serving;
use crate::generation::Current;
use crate::request::wire::WireCheck;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, oneshot};

/// What a connection over the limit is told before it is closed.
const OVERLOADED: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: 80\r\n\r\n{\"error\":\"overloaded\",\"error_description\":\"too many connections, try again later\"}";

/// Longest pause after a failed `accept`.
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

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

/// Accepts until `stop` fires, then lets the connections finish what they serve (HTTP/1
/// closes after the request in flight, HTTP/2 sends GOAWAY) for up to `shutdown_grace`.
pub async fn serve(
    engine: Arc<Engine>,
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    serving: Serving,
    mut stop: oneshot::Receiver<()>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // hyper starts the header timeout whenever it waits for a head, so it also closes an
    // idle keep-alive HTTP/1 connection after `timeouts.header`.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(serving.timeouts.header)
        .max_buf_size(64 * 1024);
    // HTTP/2: a peer that stops answering pings is closed.
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(20));
    let builder = Arc::new(builder);
    let slots = Arc::new(Semaphore::new(serving.max_connections));
    // Tells every connection that the process stops.
    let (stopping, stop_seen) = tokio::sync::watch::channel(false);
    let mut backoff = Duration::ZERO;
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => {
                    backoff = Duration::ZERO;
                    a
                }
                Err(e) => {
                    // Out of file descriptors, or the like: pause instead of spinning.
                    backoff = (backoff * 2).clamp(Duration::from_millis(5), MAX_ACCEPT_BACKOFF);
                    tracing::warn!("accept failed ({e}); pausing {backoff:?}");
                    tokio::time::sleep(backoff).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            overloaded(stream, tls.is_some());
            continue;
        };
        let _ = stream.set_nodelay(true);
        let engine = engine.clone();
        let builder = builder.clone();
        let tls = tls.clone();
        let stop_seen = stop_seen.clone();
        let idle = serving.timeouts.idle;
        // The limits in force now: a reload applies to the next connection.
        let limits = engine.current.load().gateway.rules.limits;
        let handshake = serving.timeouts.tls_handshake;
        tokio::spawn(async move {
            let _slot = slot;
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
            let check = WireCheck::new(limits.max_uri_bytes, limits.max_header_bytes);
            match tls {
                Some(acceptor) => {
                    let Ok(Ok(s)) = tokio::time::timeout(handshake, acceptor.accept(stream)).await
                    else {
                        return;
                    };
                    if s.get_ref().1.alpn_protocol() == Some(b"h2") {
                        let c = builder.serve_connection(TokioIo::new(s), svc).into_owned();
                        supervise(c, &conn, idle, stop_seen).await;
                    } else {
                        let s = Checked::new(s, check, conn.clone());
                        let c = builder.serve_connection(TokioIo::new(s), svc).into_owned();
                        supervise(c, &conn, idle, stop_seen).await;
                    }
                }
                None => {
                    let s = Checked::new(stream, check, conn.clone());
                    let c = builder.serve_connection(TokioIo::new(s), svc).into_owned();
                    supervise(c, &conn, idle, stop_seen).await;
                }
            }
        });
    }
    drop(listener);
    let _ = stopping.send(true);
    // Every connection holds a slot until it ends: all slots back means all done.
    let all = serving.max_connections as u32;
    if tokio::time::timeout(serving.shutdown_grace, slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!(
            "requests still in flight after {:?}: stopping anyway",
            serving.shutdown_grace
        );
    }
}

/// Serves one connection until it ends; asks it to finish gracefully (HTTP/1: after the
/// request in flight; HTTP/2: GOAWAY, streams in flight finish) when the process stops, or
/// when it has served nothing for `idle`.
async fn supervise<C>(
    conn: C,
    state: &wire::Connection,
    idle: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) where
    C: hyper_util::server::graceful::GracefulConnection,
{
    tokio::pin!(conn);
    let mut closing = false;
    loop {
        let quiet_until = state.quiet_until(idle);
        tokio::select! {
            _ = conn.as_mut() => return,
            changed = stop.changed(), if !closing => {
                if changed.is_err() || *stop.borrow() {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
            _ = tokio::time::sleep_until(quiet_until), if !closing => {
                if state.is_idle(idle) {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// Tells a connection over the limit so (in clear text; a TLS one is just closed) and drops it.
fn overloaded(stream: TcpStream, tls: bool) {
    if !tls {
        // Best effort, never waiting: the answer fits in the socket's buffer.
        let _ = stream.try_write(OVERLOADED);
    }
    tracing::debug!("connection refused: over server.limits.max_connections");
}

/// What the engine listens on, bound at start.
pub struct Listeners {
    pub proxy: std::net::TcpListener,
    /// The decision endpoint's HTTP front ends.
    pub decision: Option<super::Bound>,
    /// Envoy `ext_authz` over gRPC.
    pub grpc: Option<std::net::TcpListener>,
}

/// Runs the engine on the calling thread, accepting on `listeners`, until `stop` fires.
/// Threads and TLS are those of the configuration at start (a reload cannot change them).
pub fn run(
    current: Current,
    listeners: Listeners,
    stop: oneshot::Receiver<()>,
) -> Result<(), String> {
    let serving = current.load().serving.clone();
    let threads = serving.threads;
    let tls = match &serving.tls {
        Some((cert, key)) => Some(tls_acceptor(cert, key)?),
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
        let listener = TcpListener::from_std(listeners.proxy).map_err(|e| e.to_string())?;
        // The decision endpoint stops accepting when the proxy does.
        let (stopping, stop_seen) = tokio::sync::watch::channel(false);
        let secret = serving.decision.as_ref().and_then(|d| d.secret.clone());
        if let Some(bound) = listeners.decision {
            tokio::spawn(super::decision::serve(
                current.clone(),
                bound,
                secret.clone(),
                serving.timeouts.header,
                stop_seen.clone(),
            ));
        }
        if let Some(grpc) = listeners.grpc {
            let grpc = TcpListener::from_std(grpc).map_err(|e| e.to_string())?;
            let service = crate::authz::grpc::Service::new(current.clone(), secret);
            let mut stop_seen = stop_seen.clone();
            tokio::spawn(async move {
                let stopped = async move {
                    let _ = stop_seen.changed().await;
                };
                if let Err(e) = service.serve(grpc, stopped).await {
                    tracing::error!("{e}");
                }
            });
        }
        let engine = Arc::new(Engine::new(
            current,
            tls.is_some(),
            serving.timeouts.upstream_connect,
        ));
        serve(engine, listener, tls, serving, stop).await;
        let _ = stopping.send(true);
        Ok(())
    })
}
