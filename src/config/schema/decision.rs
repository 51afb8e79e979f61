//! `decision:` — the decision endpoint for proxies that ask before they forward (nginx
//! `auth_request`, Traefik and Caddy `forward_auth`, Envoy `ext_authz` over HTTP and gRPC).

use crate::config::values::EnvString;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// The HTTP front ends: `host:port`, or `unix:/path/to/socket`.
    pub listen: Option<EnvString>,
    /// Envoy `ext_authz` over gRPC: `host:port`.
    pub grpc_listen: Option<EnvString>,
    /// Every call must carry it in `secret_header`; required for a TCP address beyond
    /// loopback.
    pub shared_secret: Option<EnvString>,
    #[serde(default = "default_secret_header")]
    pub secret_header: String,
}

fn default_secret_header() -> String {
    "x-scopegate-secret".into()
}
