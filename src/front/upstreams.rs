//! The pooled HTTP clients the proxy forwards with to TLS and HTTP/2 upstreams and for
//! WebSocket upgrades (plain HTTP/1 goes on `h1_pool.rs`): one per way of connecting (TLS
//! settings, timeouts, pool size), shared by the upstreams that connect alike and kept
//! across reloads (so a reload does not drop warm connections). Requests carry the chosen
//! address as the URI's authority, so each address has its own pool; TLS names the
//! upstream, not the address.

use super::bodies::Watched;
use crate::decision::Upstream;
use crate::generation::Generation;
use arc_swap::ArcSwap;
use bytes::Bytes;
use http_body_util::{Either, Empty};
use hyper_rustls::{FixedServerNameResolver, HttpsConnector};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

/// A request's body as forwarded: the client's, or none (a retry of a request without one).
pub type UpstreamBody = Either<Watched, Empty<Bytes>>;
pub type UpstreamClient = Client<HttpsConnector<HttpConnector>, UpstreamBody>;

/// The clients of one generation's upstreams, by upstream index.
pub struct Built {
    generation: Weak<Generation>,
    pub by_upstream: Vec<Option<UpstreamClient>>,
    by_key: HashMap<String, UpstreamClient>,
}

#[derive(Default)]
pub struct Clients {
    built: ArcSwap<Option<Arc<Built>>>,
    building: Mutex<()>,
}

impl Clients {
    /// The clients for `generation`'s upstreams, built at its first request (reusing those of
    /// the previous generation that connect alike).
    pub fn of(&self, generation: &Arc<Generation>) -> Arc<Built> {
        let is_current = |b: &Built| std::ptr::eq(b.generation.as_ptr(), Arc::as_ptr(generation));
        if let Some(b) = self.built.load().as_ref()
            && is_current(b)
        {
            return b.clone();
        }
        let _one = self.building.lock().unwrap_or_else(|p| p.into_inner());
        let previous = self.built.load_full();
        if let Some(b) = previous.as_ref()
            && is_current(b)
        {
            return b.clone();
        }
        let mut by_key = HashMap::new();
        let by_upstream = generation
            .gateway
            .rules
            .upstreams
            .iter()
            .map(|u| {
                let reused = previous
                    .as_ref()
                    .as_ref()
                    .and_then(|b| b.by_key.get(&u.client_key));
                let client = match reused {
                    Some(c) => Some(c.clone()),
                    None => match client(u) {
                        Ok(c) => Some(c),
                        Err(e) => {
                            tracing::error!(upstream = %u.name, "upstream TLS: {e}");
                            None
                        }
                    },
                };
                if let Some(c) = &client {
                    by_key.insert(u.client_key.clone(), c.clone());
                }
                client
            })
            .collect();
        let built = Arc::new(Built {
            generation: Arc::downgrade(generation),
            by_upstream,
            by_key,
        });
        self.built.store(Arc::new(Some(built.clone())));
        built
    }
}

/// A client for `u`: its connect timeout, pool, and TLS (its own settings, else the
/// system's CAs), the certificate checked against the upstream's name.
fn client(u: &Upstream) -> Result<UpstreamClient, String> {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.enforce_http(false);
    http.set_connect_timeout(Some(u.connect_timeout));
    let name = rustls::pki_types::ServerName::try_from(u.server_name.clone())
        .map_err(|e| format!("server name `{}`: {e}", u.server_name))?;
    let builder = match &u.tls_files {
        Some(files) => hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(crate::compile::upstream_tls_config(files)?),
        None => hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::aws_lc_rs::default_provider())
            .or_else(|_| {
                hyper_rustls::HttpsConnectorBuilder::new()
                    .with_provider_and_webpki_roots(rustls::crypto::aws_lc_rs::default_provider())
            })
            .map_err(|e| e.to_string())?,
    };
    let builder = builder
        .https_or_http()
        .with_server_name_resolver(FixedServerNameResolver::new(name));
    // HTTP/2 over TLS is negotiated by ALPN; `h2c` speaks it on a plain connection.
    let connector = if u.http2 && u.tls {
        builder.enable_http2().wrap_connector(http)
    } else {
        builder.enable_http1().wrap_connector(http)
    };
    Ok(Client::builder(TokioExecutor::new())
        .http2_only(u.http2)
        .pool_idle_timeout(u.idle_timeout)
        .pool_max_idle_per_host(u.max_idle)
        .timer(TokioTimer::new())
        .pool_timer(TokioTimer::new())
        .build(connector))
}
