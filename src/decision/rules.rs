//! The compiled rules a decision reads: immutable once built, replaced whole by a reload.

use crate::answer::Forbidden;
use crate::authn::LegacyCredentials;
use crate::credential;
use crate::forward::ForwardPolicy;
use crate::policy::Requirement;
use crate::request::Limits;
use crate::route::HostTable;
use crate::token::{Issuer, Principals};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub struct Rules {
    pub table: HostTable,
    /// Per route, in file order (the table's route indexes).
    pub routes: Vec<RouteRules>,
    /// CORS for answers no route decided (404, 400…): the global rules.
    pub cors: Option<Arc<crate::cors::Cors>>,
    /// Rate limits over every route.
    pub rate_limits: Vec<crate::policy::RateLimit>,
    /// Some route is in report mode or has rate limits, or there are global ones.
    pub reports_or_limits: bool,
    pub upstreams: Vec<Upstream>,
    pub issuers: Arc<[Issuer]>,
    /// Builds principals from verified claims (shared with the introspector).
    pub principals: Arc<Principals>,
    /// Static and legacy credentials.
    pub legacy: LegacyCredentials,
    pub credentials: credential::Rules,
    pub limits: Limits,
    /// The largest request body of a route without its own limit.
    pub max_body_bytes: u64,
    pub forward: ForwardPolicy,
    /// Check a credential presented on a public route (optional authentication) instead of
    /// removing it.
    pub verify_public_credentials: bool,
    /// RFC 9728 metadata published for the resources behind the gateway.
    pub resources: crate::resource::ProtectedResources,
    /// A digest of what a cached token answer depends on but its scopes (issuers, token
    /// and cache settings): a reload that leaves it alone keeps the cache.
    pub token_rules: [u8; 32],
    /// A digest of the scope set (the bit of each scope): when only it changed, cached
    /// answers are carried over with their scopes granted again.
    pub scope_rules: [u8; 32],
}

pub struct RouteRules {
    /// The route's CORS rules (its own, else the global ones).
    pub cors: Option<Arc<crate::cors::Cors>>,
    /// Rate limits of this route alone (the global ones are `Rules::rate_limits`).
    pub rate_limits: Vec<crate::policy::RateLimit>,
    /// `mode: report`: what would be refused for who the caller is is forwarded, reported.
    pub report_only: bool,
    pub name: String,
    pub upstream: usize,
    /// `None` for a public route (`auth: none`).
    pub requirement: Option<Requirement>,
    /// The route's 403, rendered once (protected routes only).
    pub forbidden: Option<Arc<Forbidden>>,
    /// The organization the route is about, when it is bound to one.
    pub org: Option<OrgRule>,
    /// Issuers (indexes) whose credentials the route accepts; all when `None`.
    pub issuers: Option<Box<[usize]>>,
    /// The route's own body limit (`max_body_bytes`), else the server's.
    pub max_body_bytes: Option<u64>,
    /// The path forwarded instead of the matched one (`strip_prefix`, `rewrite`).
    pub rewrite: Option<crate::route::Rewrite>,
    /// Idempotent requests without a body are tried again on another address when the
    /// connection fails.
    pub retry: bool,
    /// `websocket:`: WebSocket handshakes are tunnelled, and closed by these rules.
    pub websocket: Option<crate::websocket::Rules>,
}

/// Where a request names the organization it is about.
pub enum OrgSource {
    /// A path parameter, by name.
    Param(String),
    Header(http::HeaderName),
    Name(String),
}

pub struct OrgRule {
    pub source: OrgSource,
    pub private: bool,
}

#[derive(Debug, Clone)]
pub struct Upstream {
    pub name: String,
    pub tls: bool,
    /// HTTP/2 to it (`h2` over TLS, `h2c` without): requests go as HTTP/2, trailers and
    /// `TE: trailers` pass.
    pub http2: bool,
    /// The name the upstream's certificate must have, sent as SNI.
    pub server_name: String,
    /// `host:port` as written in the URL.
    pub authority: http::uri::Authority,
    /// Put in front of every forwarded path (`/v2`); empty for none.
    pub base_path: String,
    pub host_header: HostHeader,
    /// The addresses when loaded, with their weights.
    pub addresses: Vec<(SocketAddr, u32)>,
    /// The names behind them (host, port, weight), resolved again every `resolve_every`.
    pub names: Vec<(String, u16, u32)>,
    /// The addresses given as IPs (they stay when the names are resolved again).
    pub fixed: Vec<(SocketAddr, u32)>,
    pub resolve_every: Option<Duration>,
    pub policy: crate::balance::Policy,
    pub ejection: crate::balance::Ejection,
    pub check: Option<HealthCheck>,
    /// The share of requests that may be retried.
    pub retry_ratio: f64,
    pub connect_timeout: Duration,
    pub response_timeout: Duration,
    /// The longest pause inside the answer's body.
    pub body_pause: Duration,
    pub idle_timeout: Duration,
    pub max_idle: usize,
    /// PEM files for TLS to it: CAs, a client certificate and key; TLS 1.3 only.
    pub tls_files: Option<Arc<UpstreamTls>>,
    /// Equal for upstreams whose connections are made the same way: their pooled client is
    /// shared, also across reloads.
    pub client_key: String,
}

/// What `Host` the upstream gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostHeader {
    /// The client's.
    Keep,
    Set(http::HeaderValue),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    pub path: String,
    pub interval: Duration,
    pub timeout: Duration,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpstreamTls {
    pub ca: Option<Vec<u8>>,
    pub cert: Option<Vec<u8>>,
    pub key: Option<Vec<u8>>,
    pub tls13_only: bool,
}
