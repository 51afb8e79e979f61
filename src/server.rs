//! Starting and stopping a gateway: the proxy engine on its own thread, and a sidecar runtime
//! for everything else (admin listener, key sync, dev services).

use crate::admin::{self, Extension};
use crate::gateway::Gateway;
use crate::sync::{KeySync, OrgSourceSync, Poller, SetReceiver};
use std::future::Future;
use std::net::{SocketAddr, TcpStream};
use std::pin::Pin;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// A task to run on the sidecar runtime beside the admin listener (e.g. the dev echo upstream).
pub type SideTask = Pin<Box<dyn Future<Output = ()> + Send>>;

#[derive(Default)]
pub struct Extras {
    pub admin: Option<Arc<dyn Extension>>,
    pub tasks: Vec<SideTask>,
}

pub struct Running {
    pub gateway: Arc<Gateway>,
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
pub fn start(gateway: Arc<Gateway>, extras: Extras) -> Result<Running, String> {
    let admin_listener = std::net::TcpListener::bind(gateway.admin_listen)
        .map_err(|e| format!("admin.listen {}: {e}", gateway.admin_listen))?;
    admin_listener
        .set_nonblocking(true)
        .map_err(|e| e.to_string())?;
    let proxy_listener = std::net::TcpListener::bind(gateway.listen)
        .map_err(|e| format!("server.listen {}: {e}", gateway.listen))?;
    proxy_listener
        .set_nonblocking(true)
        .map_err(|e| e.to_string())?;

    let (keys_sync, refresh, refresh_rx) = KeySync::new(gateway.clone());
    let sets = gateway
        .push
        .as_ref()
        .map(|rules| Arc::new(SetReceiver::new(gateway.clone(), rules.clone(), "push")));
    let (stop_sidecar, sidecar_stopped) = oneshot::channel::<()>();
    let gw = gateway.clone();
    let sidecar = std::thread::Builder::new()
        .name("scopegate-sidecar".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("sidecar runtime");
            rt.block_on(async move {
                let listener =
                    tokio::net::TcpListener::from_std(admin_listener).expect("admin listener");
                if let Some(sets) = sets.clone() {
                    tokio::spawn(async move {
                        if let Err(e) = sets.fetch_keys().await {
                            tracing::warn!("SET transmitter keys: {e}");
                        }
                    });
                }
                if let Some(rules) = gw.poll.clone() {
                    tokio::spawn(Poller::new(gw.clone(), rules).run());
                }
                if let Some(rules) = gw.org_source.clone() {
                    tokio::spawn(OrgSourceSync::new(gw.clone(), rules).run());
                }
                tokio::spawn(admin::serve(listener, gw, extras.admin, sets));
                tokio::spawn(keys_sync.run(refresh_rx));
                for t in extras.tasks {
                    tokio::spawn(t);
                }
                let _ = sidecar_stopped.await;
            });
            rt.shutdown_timeout(Duration::from_secs(1));
        })
        .map_err(|e| e.to_string())?;

    let (stop_proxy, proxy_stopped) = oneshot::channel();
    let gw = gateway.clone();
    let proxy = std::thread::Builder::new()
        .name("scopegate-proxy".into())
        .spawn(move || {
            if let Err(e) = crate::proxy::run(gw, refresh, proxy_listener, proxy_stopped) {
                tracing::error!("proxy: {e}");
            }
        })
        .map_err(|e| e.to_string())?;

    let mut running = Running {
        gateway: gateway.clone(),
        stop_proxy: Some(stop_proxy),
        stop_sidecar: Some(stop_sidecar),
        proxy: Some(proxy),
        sidecar: Some(sidecar),
    };
    if !wait_for_port(gateway.listen, Duration::from_secs(10)) {
        running.stop();
        return Err(format!(
            "the proxy did not start listening on {}",
            gateway.listen
        ));
    }
    Ok(running)
}

impl Running {
    /// Stops both threads and waits for them.
    pub fn stop(&mut self) {
        if let Some(s) = self.stop_proxy.take() {
            let _ = s.send(());
        }
        if let Some(s) = self.stop_sidecar.take() {
            let _ = s.send(());
        }
        for handle in [self.proxy.take(), self.sidecar.take()]
            .into_iter()
            .flatten()
        {
            let _ = handle.join();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Blocks until SIGINT or SIGTERM.
pub fn wait_for_signal() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("signal runtime");
    rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    });
}
