//! Every way in, and the one layer they share. Each front end maps its protocol to the
//! request the decision core decides, in an [`Exchange`](exchange::Exchange) that traces,
//! counts and logs it the same way for all; each listener is served by the same accept loop
//! ([`listen`]) with its own caps and timeouts.
//!
//! - `proxy.rs`: the reverse proxy (hyper server and pooled client): it forwards itself.
//! - `conventions.rs`: the decision endpoint: how each caller (nginx, Caddy/Traefik, Envoy)
//!   names the original request, and what an allowed caller must do to forward it.
//! - `callers.rs`: those callers over HTTP (TCP or a unix socket); `grpc.rs`: Envoy over
//!   gRPC.
//! - `wire.rs`: the HTTP/1 wire check on every HTTP/1 connection, and the watched request
//!   body.
//!
//! This is the only module that knows hyper's server types (the admin port is served by
//! [`listen::serve`] too). pingora was the first engine; measured side by side
//! (`benches/load/run.py`) it cost more CPU per request than hyper, needed cmake to build and
//! could not start twice in one process, so hyper replaced it.

mod bodies;
mod call;
mod callers;
pub mod conventions;
pub mod exchange;
mod grpc;
mod h1_pool;
mod headers;
pub mod listen;
mod metadata;
mod proxy;
mod retry;
mod tunnel;
mod upstreams;
mod wire;

pub use crate::metrics::FrontEnd;
pub use listen::{Bound, Peer};

use crate::generation::Current;
use listen::{Listener, Protocols, WireLimits};
use std::sync::Arc;
use tokio::sync::{oneshot, watch};

/// What the engine listens on, bound at start.
pub struct Listeners {
    pub proxy: Bound,
    /// The decision endpoint's HTTP front ends.
    pub decision: Option<Bound>,
    /// Envoy `ext_authz` over gRPC.
    pub grpc: Option<Bound>,
}

/// Runs the proxy and the decision endpoint until `stop` fires; then every listener drains.
/// Threads and TLS are those of the configuration at start (a reload cannot change them).
///
/// Each of `server.threads` workers is a thread with its own current-thread runtime that
/// accepts on its own copy of every listening socket and serves what it accepted itself,
/// with its own upstream pools: no task moves between threads and no wake-up crosses one
/// (a work-stealing runtime cost about half again as much CPU per request on two threads,
/// docs/performance.md). `max_connections` counts across workers.
pub fn run(
    current: Current,
    listeners: Listeners,
    stop: oneshot::Receiver<()>,
) -> Result<(), String> {
    let at_start = current.load().serving.at_start.clone();
    let tls = match &at_start.server.tls {
        Some((cert, key)) => Some(listen::tls_acceptor(cert, key)?),
        None => None,
    };
    let decision = at_start.decision.as_ref();
    let sockets = Sockets {
        proxy: Listener::new(
            "server.listen",
            listeners.proxy,
            tls,
            at_start.server.connections,
            Protocols::Both,
            true,
        ),
        decision: listeners.decision.zip(decision).map(|(bound, d)| {
            let c = d.bounds.connections;
            Listener::new("decision.listen", bound, None, c, Protocols::Http1, false)
        }),
        grpc: listeners.grpc.zip(decision).map(|(bound, d)| {
            let c = d.bounds.connections;
            Listener::new(
                "decision.grpc_listen",
                bound,
                None,
                c,
                Protocols::Http2,
                false,
            )
        }),
    };
    let (stopping, stop_seen) = watch::channel(false);
    let mut workers = Vec::new();
    for i in 0..at_start.threads.max(1) {
        let sockets = sockets.try_clone()?;
        let (current, stop_seen) = (current.clone(), stop_seen.clone());
        let grace = at_start.shutdown_grace;
        let thread = std::thread::Builder::new()
            .name(format!("scopegate-worker-{i}"))
            .spawn(move || {
                // Said at once: the others keep serving until the stop that joins them.
                let served = worker(current, sockets, stop_seen, grace);
                if let Err(e) = &served {
                    tracing::error!("worker {i}: {e}");
                }
                served
            })
            .map_err(|e| format!("worker thread: {e}"))?;
        workers.push(thread);
    }
    drop(sockets);
    let _ = stop.blocking_recv();
    let _ = stopping.send(true);
    let mut result = Ok(());
    for w in workers {
        match w.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => result = Err(e),
            Err(_) => result = Err("a worker thread panicked".into()),
        }
    }
    result
}

/// A worker's listeners: the same sockets and connection slots as every other worker's.
struct Sockets {
    proxy: Listener,
    decision: Option<Listener>,
    grpc: Option<Listener>,
}

impl Sockets {
    fn try_clone(&self) -> Result<Sockets, String> {
        Ok(Sockets {
            proxy: self.proxy.try_clone()?,
            decision: self
                .decision
                .as_ref()
                .map(Listener::try_clone)
                .transpose()?,
            grpc: self.grpc.as_ref().map(Listener::try_clone).transpose()?,
        })
    }
}

/// One worker: serves its sockets on a current-thread runtime until `stop` turns true, then
/// lets its connections finish for up to `grace`.
fn worker(
    current: Current,
    sockets: Sockets,
    stop: watch::Receiver<bool>,
    grace: std::time::Duration,
) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let at_start = current.load().serving.at_start.clone();
    runtime.block_on(async move {
        let mut served = tokio::task::JoinSet::new();
        if let Some(settings) = at_start.decision.clone().map(Arc::new) {
            let limits: WireLimits = {
                let b = &settings.bounds;
                let limits = (b.max_uri_bytes, b.max_header_bytes);
                Arc::new(move || limits)
            };
            if let Some(listener) = sockets.decision {
                let (current, settings) = (current.clone(), settings.clone());
                let make = move |peer| callers::service(current.clone(), settings.clone(), peer);
                served.spawn(listen::serve(
                    listener,
                    limits.clone(),
                    make,
                    stop.clone(),
                    grace,
                ));
            }
            if let Some(listener) = sockets.grpc {
                let (current, settings) = (current.clone(), settings.clone());
                let make = move |peer| grpc::service(current.clone(), settings.clone(), peer);
                served.spawn(listen::serve(listener, limits, make, stop.clone(), grace));
            }
        }
        let tls = sockets.proxy.tls.is_some();
        // This worker's own engine: its upstream pools serve only its connections.
        let engine = Arc::new(proxy::Engine::new(current.clone(), tls));
        // The proxy's wire limits follow a reload (the next connection gets them).
        let limits: WireLimits = Arc::new(move || {
            let l = current.load().gateway.rules.limits;
            (l.max_uri_bytes, l.max_header_bytes)
        });
        let make = move |peer: Arc<Peer>| {
            let engine = engine.clone();
            hyper::service::service_fn(move |req| {
                let (engine, peer) = (engine.clone(), peer.clone());
                async move { Ok::<_, std::convert::Infallible>(engine.handle(req, &peer).await) }
            })
        };
        served.spawn(listen::serve(sockets.proxy, limits, make, stop, grace));
        while served.join_next().await.is_some() {}
    });
    Ok(())
}
