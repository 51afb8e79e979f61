//! `server:` — the listener, its limits and timeouts.

use super::EnvString;
use crate::config::values::Dur;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Deserialize, JsonSchema, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    /// `host:port` the proxy listens on.
    pub listen: EnvString,
    /// Serve HTTPS (HTTP/2 and HTTP/1.1) with this certificate.
    pub tls: Option<Tls>,
    /// Worker threads. Each accepts and serves its own connections (the proxy's and the
    /// decision endpoint's) with its own upstream pools; 1 is the cheapest per request on a
    /// machine shared with the upstream.
    #[serde(default = "one")]
    pub threads: usize,
    /// Peers whose `X-Forwarded-For` is extended instead of replaced.
    #[serde(default)]
    pub trusted_proxies: Vec<std::net::IpAddr>,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub timeouts: Timeouts,
    /// On SIGTERM: stop accepting, answer `/readyz` 503, and give requests in flight this long
    /// to finish before the process exits.
    #[serde(default = "default_shutdown_grace")]
    pub shutdown_grace: Dur,
    #[serde(default)]
    pub reload: Reload,
}

/// When the configuration is read again besides SIGHUP.
#[derive(Debug, Deserialize, JsonSchema, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Reload {
    /// When the file changes, also by a symlink swap (a Kubernetes ConfigMap update).
    #[serde(default = "yes")]
    pub on_file_change: bool,
    /// How often the file is looked at.
    #[serde(default = "default_check_every")]
    pub check_every: Dur,
}

impl Default for Reload {
    fn default() -> Self {
        Reload {
            on_file_change: true,
            check_every: default_check_every(),
        }
    }
}

fn yes() -> bool {
    true
}

fn default_check_every() -> Dur {
    Dur(Duration::from_secs(2))
}

fn default_shutdown_grace() -> Dur {
    Dur(Duration::from_secs(30))
}

fn one() -> usize {
    1
}

#[derive(Debug, Deserialize, JsonSchema, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// PEM file of the certificate chain.
    pub cert: EnvString,
    /// PEM file of its private key.
    pub key: EnvString,
}

#[derive(Debug, Deserialize, JsonSchema, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// The request target (414 beyond).
    #[serde(default = "default_max_uri")]
    pub max_uri_bytes: usize,
    /// All header fields together (431 beyond).
    #[serde(default = "default_max_headers")]
    pub max_header_bytes: usize,
    /// The largest request body (413 beyond), unless a route says otherwise.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: u64,
    /// Client connections served at once; beyond, a connection gets 503 and is closed.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
}

fn default_max_body() -> u64 {
    10 * 1024 * 1024
}
fn default_max_connections() -> usize {
    10_000
}

fn default_max_uri() -> usize {
    8 * 1024
}
fn default_max_headers() -> usize {
    32 * 1024
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_uri_bytes: default_max_uri(),
            max_header_bytes: default_max_headers(),
            max_body_bytes: default_max_body(),
            max_connections: default_max_connections(),
        }
    }
}

/// How long the gateway waits, each like its nginx counterpart.
#[derive(Debug, Clone, Deserialize, JsonSchema, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    /// A request head must arrive within this (`client_header_timeout`).
    pub header: Dur,
    /// Longest pause between two reads of a request body (`client_body_timeout`): 408.
    pub body: Dur,
    /// A connection that served nothing for this long is closed gracefully (HTTP/2 with
    /// GOAWAY), `keepalive_timeout`.
    pub idle: Dur,
    /// A TLS handshake must finish within this.
    pub tls_handshake: Dur,
    /// Connecting to an upstream (`proxy_connect_timeout`): 502 beyond.
    pub upstream_connect: Dur,
    /// From forwarding to the upstream's response head (`proxy_read_timeout`): 504 beyond.
    pub upstream_response: Dur,
}

impl Default for Timeouts {
    fn default() -> Self {
        let s = |n| Dur(Duration::from_secs(n));
        Timeouts {
            header: s(30),
            body: s(60),
            idle: s(75),
            tls_handshake: s(10),
            upstream_connect: s(5),
            upstream_response: s(60),
        }
    }
}

/// The bounds of a listener beside the proxy's (the admin port, the decision endpoint): what
/// one peer may hold of it. Each has its listener's default (see `compile`).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ListenerLimits {
    /// Connections served at once; beyond, a connection is answered 503 and closed.
    pub max_connections: Option<usize>,
    /// Header fields of a request (431 beyond); the request target is bounded by
    /// `server.limits.max_uri_bytes`.
    pub max_header_bytes: Option<usize>,
    /// A request body (413 beyond).
    pub max_body_bytes: Option<u64>,
}

/// How long a listener beside the proxy's waits for its peers; each has its listener's
/// default.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ListenerTimeouts {
    /// A request head must arrive within this.
    pub header: Option<Dur>,
    /// A connection that served nothing this long is closed.
    pub idle: Option<Dur>,
    /// Longest pause between two reads of a request body: 408.
    pub body: Option<Dur>,
}
