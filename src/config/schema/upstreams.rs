//! `upstreams:` — where requests go: the API's URL, its addresses and how one is picked,
//! health, retries, timeouts, and TLS to it.

use crate::config::values::{Dur, EnvString};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Deserialize, JsonSchema, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    /// `http://host:port[/base]` or `https://host:port[/base]` of the API: its host is
    /// resolved (to every address it has) unless `addresses` are given, and a path is put in
    /// front of every forwarded path.
    pub url: EnvString,
    /// Where to connect instead of resolving the URL's host: `host:port`, or `{ address,
    /// weight }`. A host name here is resolved like the URL's.
    pub addresses: Option<Vec<Address>>,
    /// How an address is picked for each request.
    #[serde(default)]
    pub balance: Balance,
    /// How often names are resolved again (a changed record takes effect without a restart;
    /// a name that stops resolving keeps its last addresses). `0s`: only at start.
    #[serde(default = "default_resolve_every")]
    pub resolve_every: Dur,
    /// When an address is left alone, and an optional active check.
    #[serde(default)]
    pub health: Health,
    /// Retries (of routes with `retry: true`) as a percentage of the requests sent.
    #[serde(default = "default_retry_budget")]
    pub retry_budget_percent: u32,
    #[serde(default)]
    pub timeouts: UpstreamTimeouts,
    /// Idle connections kept per address, by each worker thread (`server.threads`).
    #[serde(default = "default_max_idle")]
    pub max_idle_connections: usize,
    /// The `Host` sent: `keep` the client's, `upstream` the URL's `host:port`, or this value.
    #[serde(default = "default_host_header")]
    pub host_header: String,
    /// TLS to an `https://` upstream: a private CA, a client certificate (mutual TLS), the
    /// server name, the lowest version.
    pub tls: Option<UpstreamTls>,
    /// The protocol spoken to it: `http1`; `h2` (HTTP/2 over TLS, negotiated by ALPN, for
    /// an `https://` URL); `h2c` (HTTP/2 without TLS, for an `http://` URL), as gRPC services
    /// need: trailers pass both ways and `TE: trailers` is kept.
    #[serde(default)]
    pub protocol: UpstreamProtocol,
}

#[derive(Debug, Default, Clone, Copy, Deserialize, JsonSchema, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamProtocol {
    #[default]
    Http1,
    H2,
    H2c,
}

impl Upstream {
    /// An upstream at `url` with every other setting at its default.
    pub fn at(url: EnvString) -> Upstream {
        Upstream {
            url,
            addresses: None,
            balance: Balance::default(),
            resolve_every: default_resolve_every(),
            health: Health::default(),
            retry_budget_percent: default_retry_budget(),
            timeouts: UpstreamTimeouts::default(),
            max_idle_connections: default_max_idle(),
            host_header: default_host_header(),
            tls: None,
            protocol: UpstreamProtocol::default(),
        }
    }
}

fn default_resolve_every() -> Dur {
    Dur(Duration::from_secs(30))
}

fn default_retry_budget() -> u32 {
    20
}

fn default_max_idle() -> usize {
    256
}

fn default_host_header() -> String {
    "keep".into()
}

/// One address: `host:port`, or with a weight.
#[derive(Debug, Deserialize, JsonSchema, Serialize)]
#[serde(untagged)]
pub enum Address {
    Plain(EnvString),
    Weighted {
        address: EnvString,
        /// Share of the requests relative to the other addresses.
        weight: u32,
    },
}

impl Address {
    /// `host:port` as written.
    pub fn text(&self) -> &str {
        match self {
            Address::Plain(a) | Address::Weighted { address: a, .. } => &a.0,
        }
    }

    pub fn weight(&self) -> u32 {
        match self {
            Address::Plain(_) => 1,
            Address::Weighted { weight, .. } => *weight,
        }
    }
}

#[derive(Debug, Default, Clone, Copy, Deserialize, JsonSchema, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Balance {
    /// In turn, each as often as its weight.
    #[default]
    RoundRobin,
    /// The address with the fewest requests in flight (of two picked at random).
    LeastRequests,
}

#[derive(Debug, Deserialize, JsonSchema, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Health {
    /// Consecutive failures (refused, reset, timed out) after which an address is left alone.
    pub failures: u32,
    /// For how long; then it is tried again.
    pub eject_for: Dur,
    /// Ask each address this path periodically (2xx or 3xx: up).
    pub check: Option<HealthCheck>,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            failures: 5,
            eject_for: Dur(Duration::from_secs(10)),
            check: None,
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheck {
    /// The path asked (`GET`), e.g. `/healthz`.
    pub path: String,
    /// How often each address is asked.
    #[serde(default = "default_check_every")]
    pub interval: Dur,
    /// An answer later than this counts as down.
    #[serde(default = "default_check_timeout")]
    pub timeout: Dur,
}

fn default_check_every() -> Dur {
    Dur(Duration::from_secs(5))
}

fn default_check_timeout() -> Dur {
    Dur(Duration::from_secs(1))
}

/// This upstream's own timeouts (else `server.timeouts`), and how long an idle connection is
/// kept.
#[derive(Debug, Deserialize, JsonSchema, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamTimeouts {
    /// Time to connect (else `server.timeouts.upstream_connect`).
    pub connect: Option<Dur>,
    /// Time to the response head (else `server.timeouts.upstream_response`).
    pub response: Option<Dur>,
    /// An idle pooled connection is closed after this.
    pub idle: Dur,
    /// The longest pause in the middle of the answer's body: an upstream that stops
    /// sending for longer is cut (the client's answer ends unfinished). A body that keeps
    /// flowing — a long download, server-sent events — is never cut, whatever its length.
    pub body: Dur,
}

impl Default for UpstreamTimeouts {
    fn default() -> Self {
        UpstreamTimeouts {
            connect: None,
            response: None,
            idle: Dur(Duration::from_secs(60)),
            body: Dur(Duration::from_secs(60)),
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamTls {
    /// PEM file of the CAs that sign the upstream's certificate (instead of the system's).
    pub ca: Option<EnvString>,
    /// PEM files of a client certificate and its key, for an upstream that requires one.
    pub cert: Option<EnvString>,
    /// PEM file of the client certificate's key.
    pub key: Option<EnvString>,
    /// The name the certificate must have (and SNI), when not the URL's host.
    pub server_name: Option<String>,
    /// The lowest TLS version: `1.2` or `1.3`.
    #[serde(default = "default_min_version")]
    pub min_version: String,
}

fn default_min_version() -> String {
    "1.2".into()
}
