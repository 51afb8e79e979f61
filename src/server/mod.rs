//! Starting, reloading and stopping a gateway: the proxy engine on its own thread, and a
//! sidecar runtime for everything else (admin listener, sync tasks, dev services).
//!
//! A loaded configuration and what serves it form a [`Generation`]. A reload builds the next
//! one beside the current one, starts its sync tasks, waits until it is ready (keys fetched,
//! organization policies read) and only then swaps it in; requests in flight finish with the
//! generation they started with. A generation that does not get ready is dropped and the
//! current one keeps serving.

mod watch;

pub use watch::ConfigFile;

use crate::admin::{self, Extension};
use crate::compile::Compiled;
use crate::front::{self, Bound};
use crate::generation::{Current, Generation};
use arc_swap::ArcSwap;
use std::future::Future;
use std::net::{SocketAddr, TcpStream};
use std::pin::Pin;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// A task to run on the sidecar runtime beside the admin listener (e.g. the dev echo upstream).
pub type SideTask = Pin<Box<dyn Future<Output = ()> + Send>>;

/// How long a reloaded configuration may take to get ready before it is given up.
const RELOAD_READY_WITHIN: Duration = Duration::from_secs(15);

#[derive(Default)]
pub struct Extras {
    pub admin: Option<Arc<dyn Extension>>,
    pub tasks: Vec<SideTask>,
}

pub struct Running {
    current: Current,
    sidecar_handle: Handle,
    stop_proxy: Option<oneshot::Sender<()>>,
    stop_sidecar: Option<oneshot::Sender<()>>,
    proxy: Option<JoinHandle<()>>,
    sidecar: Option<JoinHandle<()>>,
}

fn wait_for_port(addr: SocketAddr, within: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < within {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

/// Starts everything; returns once the proxy and admin listeners accept connections.
pub fn start(compiled: Compiled, extras: Extras) -> Result<Running, String> {
    let at_start = compiled.serving.at_start.clone();
    if let Some(t) = &at_start.traces {
        crate::otel::start(t)?;
    }
    let admin_listener = Bound::tcp(at_start.admin.listen, "admin.listen")?;
    let decision = at_start.decision.as_ref();
    let listeners = front::Listeners {
        proxy: Bound::tcp(at_start.server.listen, "server.listen")?,
        decision: match decision.and_then(|d| d.listen.as_ref()) {
            Some(b) => Some(Bound::bind(b, "decision.listen")?),
            None => None,
        },
        grpc: match decision.and_then(|d| d.grpc_listen) {
            Some(a) => Some(Bound::tcp(a, "decision.grpc_listen")?),
            None => None,
        },
    };

    let sidecar_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| format!("sidecar runtime: {e}"))?;
    let sidecar_handle = sidecar_rt.handle().clone();
    let first = {
        // The first generation's clients (Redis) are made inside the sidecar runtime.
        let _runtime = sidecar_handle.enter();
        Generation::start(compiled, None, &sidecar_handle)?
    };
    let current: Current = Arc::new(ArcSwap::from_pointee(first));
    let (stop_sidecar, sidecar_stopped) = oneshot::channel::<()>();
    let admin_current = current.clone();
    let sidecar = std::thread::Builder::new()
        .name("scopegate-sidecar".into())
        .spawn(move || {
            sidecar_rt.block_on(async move {
                let (stopping, stop_seen) = tokio::sync::watch::channel(false);
                let admin = tokio::spawn(admin::serve(
                    admin_listener,
                    admin_current,
                    extras.admin,
                    stop_seen,
                ));
                for t in extras.tasks {
                    tokio::spawn(t);
                }
                let _ = sidecar_stopped.await;
                let _ = stopping.send(true);
                let _ = admin.await;
            });
            sidecar_rt.shutdown_timeout(Duration::from_secs(1));
        })
        .map_err(|e| e.to_string())?;

    let (stop_proxy, proxy_stopped) = oneshot::channel();
    let proxy_current = current.clone();
    let proxy = std::thread::Builder::new()
        .name("scopegate-proxy".into())
        .spawn(move || {
            if let Err(e) = front::run(proxy_current, listeners, proxy_stopped) {
                tracing::error!("proxy: {e}");
            }
        })
        .map_err(|e| e.to_string())?;

    let mut running = Running {
        current,
        sidecar_handle,
        stop_proxy: Some(stop_proxy),
        stop_sidecar: Some(stop_sidecar),
        proxy: Some(proxy),
        sidecar: Some(sidecar),
    };
    let listen = at_start.server.listen;
    if !wait_for_port(listen, Duration::from_secs(10)) {
        running.stop();
        return Err(format!("the proxy did not start listening on {listen}"));
    }
    Ok(running)
}

impl Running {
    /// The generation in force.
    pub fn current(&self) -> Arc<Generation> {
        self.current.load_full()
    }

    /// Puts `next` in force once it is ready; on error the current configuration keeps
    /// serving. Listeners, TLS and threads are bound at start: changing them needs a restart.
    pub fn reload(&self, next: Compiled) -> Result<(), String> {
        let now = self.current();
        let changed = now.serving.at_start.differences(&next.serving.at_start);
        if !changed.is_empty() {
            return Err(format!(
                "{} changed: that needs a restart",
                changed.join(", ")
            ));
        }
        let next = {
            let _runtime = self.sidecar_handle.enter();
            Generation::start(next, Some(&now), &self.sidecar_handle)?
        };
        let start = Instant::now();
        while let Err(waiting) = next.gateway.readiness() {
            if start.elapsed() > RELOAD_READY_WITHIN {
                next.stop_tasks();
                return Err(format!(
                    "not ready within {} s: {waiting}",
                    RELOAD_READY_WITHIN.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let old = self.current.swap(Arc::new(next));
        old.stop_tasks();
        Ok(())
    }

    /// Stops: `/readyz` turns 503, the proxy stops accepting and lets requests in flight
    /// finish (up to `server.shutdown_grace`), then the admin listener and sync tasks stop.
    pub fn stop(&mut self) {
        admin::start_draining();
        if let Some(s) = self.stop_proxy.take() {
            let _ = s.send(());
        }
        if let Some(handle) = self.proxy.take() {
            let _ = handle.join();
        }
        // The last requests' log lines and spans, before the process ends.
        crate::requestlog::flush();
        crate::otel::shutdown();
        if let Some(s) = self.stop_sidecar.take() {
            let _ = s.send(());
        }
        if let Some(handle) = self.sidecar.take() {
            let _ = handle.join();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What a signal asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT or SIGTERM.
    Stop,
    /// SIGHUP: read the configuration again.
    Reload,
    /// The configuration file changed (`server.reload.on_file_change`).
    Changed,
}

/// The process's signal handlers, installed once so that no signal falls between two waits.
pub struct Signals {
    rt: tokio::runtime::Runtime,
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    pub fn install() -> Result<Signals, String> {
        use tokio::signal::unix::{SignalKind, signal};
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let _guard = rt.enter();
        let handler = |k| signal(k).map_err(|e| format!("signal handler: {e}"));
        Ok(Signals {
            term: handler(SignalKind::terminate())?,
            hup: handler(SignalKind::hangup())?,
            int: handler(SignalKind::interrupt())?,
            rt,
        })
    }

    /// Blocks until SIGINT, SIGTERM or SIGHUP.
    pub fn wait(&mut self) -> Signal {
        self.wait_or_change(None, || false)
    }

    /// Blocks until SIGINT, SIGTERM or SIGHUP, or, looked at `every` so often, until
    /// `changed` says the configuration file changed (then `Signal::Changed`).
    pub fn wait_or_change(
        &mut self,
        every: Option<Duration>,
        mut changed: impl FnMut() -> bool,
    ) -> Signal {
        let Signals { rt, term, hup, int } = self;
        rt.block_on(async {
            let mut tick =
                every.map(|e| tokio::time::interval_at(tokio::time::Instant::now() + e, e));
            loop {
                let ticked = async {
                    match tick.as_mut() {
                        Some(t) => {
                            t.tick().await;
                        }
                        None => std::future::pending::<()>().await,
                    }
                };
                tokio::select! {
                    _ = int.recv() => return Signal::Stop,
                    _ = term.recv() => return Signal::Stop,
                    _ = hup.recv() => return Signal::Reload,
                    _ = ticked => if changed() { return Signal::Changed },
                }
            }
        })
    }
}
