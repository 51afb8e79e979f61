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
mod callers;
pub mod conventions;
pub mod exchange;
mod grpc;
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

/// Runs the proxy and the decision endpoint on the calling thread, accepting on
/// `listeners`, until `stop` fires; then every listener drains. Threads and TLS are those of
/// the configuration at start (a reload cannot change them).
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
    // One thread: a current-thread runtime, no cross-thread wake-ups (the cheapest per request).
    let runtime = if at_start.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(at_start.threads)
            .enable_all()
            .build()
    }
    .map_err(|e| e.to_string())?;
    let grace = at_start.shutdown_grace;
    runtime.block_on(async move {
        let (stopping, stop_seen) = watch::channel(false);
        let mut served = tokio::task::JoinSet::new();
        if let Some(settings) = at_start.decision.clone().map(Arc::new) {
            let limits: WireLimits = {
                let b = &settings.bounds;
                let limits = (b.max_uri_bytes, b.max_header_bytes);
                Arc::new(move || limits)
            };
            if let Some(bound) = listeners.decision {
                let listener = Listener {
                    name: "decision.listen",
                    bound,
                    tls: None,
                    connections: settings.bounds.connections,
                    protocols: Protocols::Http1,
                    tunnels: false,
                };
                let (current, settings) = (current.clone(), settings.clone());
                let make = move |peer| callers::service(current.clone(), settings.clone(), peer);
                served.spawn(listen::serve(
                    listener,
                    limits.clone(),
                    make,
                    stop_seen.clone(),
                    grace,
                ));
            }
            if let Some(bound) = listeners.grpc {
                let listener = Listener {
                    name: "decision.grpc_listen",
                    bound,
                    tls: None,
                    connections: settings.bounds.connections,
                    protocols: Protocols::Http2,
                    tunnels: false,
                };
                let (current, settings) = (current.clone(), settings.clone());
                let make = move |peer| grpc::service(current.clone(), settings.clone(), peer);
                served.spawn(listen::serve(
                    listener,
                    limits,
                    make,
                    stop_seen.clone(),
                    grace,
                ));
            }
        }
        let engine = Arc::new(proxy::Engine::new(current.clone(), tls.is_some()));
        // The proxy's wire limits follow a reload (the next connection gets them).
        let limits: WireLimits = Arc::new(move || {
            let l = current.load().gateway.rules.limits;
            (l.max_uri_bytes, l.max_header_bytes)
        });
        let listener = Listener {
            name: "server.listen",
            bound: listeners.proxy,
            tls,
            connections: at_start.server.connections,
            protocols: Protocols::Both,
            tunnels: true,
        };
        let make = move |peer: Arc<Peer>| {
            let engine = engine.clone();
            hyper::service::service_fn(move |req| {
                let (engine, peer) = (engine.clone(), peer.clone());
                async move { Ok::<_, std::convert::Infallible>(engine.handle(req, &peer).await) }
            })
        };
        served.spawn(listen::serve(listener, limits, make, stop_seen, grace));
        let _ = stop.await;
        let _ = stopping.send(true);
        while served.join_next().await.is_some() {}
        Ok(())
    })
}
