//! The compiled rules a decision reads: immutable once built, replaced whole by a reload.

use crate::answer::Forbidden;
use crate::authn::LegacyCredentials;
use crate::credential;
use crate::forward::ForwardPolicy;
use crate::policy::Requirement;
use crate::request::Limits;
use crate::route::RouteTable;
use crate::token::{Issuer, Principals};
use std::net::SocketAddr;
use std::sync::Arc;

pub struct Rules {
    pub table: RouteTable,
    /// Per route, in file order (the table's route indexes).
    pub routes: Vec<RouteRules>,
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
    /// A digest of everything a cached token answer depends on (issuers, scopes, token
    /// and cache settings): a reload that leaves it alone keeps the cache.
    pub token_rules: [u8; 32],
}

pub struct RouteRules {
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
    pub addr: SocketAddr,
    pub tls: bool,
    /// Host name for TLS (SNI and certificate check).
    pub host: String,
    /// `host:port` as written in the URL, put in front of the forwarded path.
    pub authority: http::uri::Authority,
}
