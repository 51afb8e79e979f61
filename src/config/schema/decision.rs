//! `decision:` — the decision endpoint for proxies that ask before they forward (nginx
//! `auth_request`, Traefik and Caddy `forward_auth`, Envoy `ext_authz` over HTTP and gRPC).

use super::{ListenerLimits, ListenerTimeouts};
use crate::config::values::EnvString;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, JsonSchema, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// The HTTP front ends: `host:port`, or `unix:/path/to/socket`.
    pub listen: Option<EnvString>,
    /// Envoy `ext_authz` over gRPC: `host:port`.
    pub grpc_listen: Option<EnvString>,
    /// Every call must carry it in `secret_header`; required for a TCP address beyond
    /// loopback.
    pub shared_secret: Option<EnvString>,
    /// The header that carries `shared_secret`.
    #[serde(default = "default_secret_header")]
    pub secret_header: String,
    /// The permissions of a unix socket (`listen: unix:…`), octal, e.g. `"0660"`: who on
    /// this host may ask. Default `0600` (the gateway's user only).
    #[serde(default = "default_socket_mode")]
    pub socket_mode: String,
    /// Continue a trace from the `traceparent` of an HTTP call: only when the caller sets it
    /// itself (nginx and Caddy pass the client's header to the call unless told not to).
    /// `ignore` (default) or `continue`. gRPC calls are continued from their own metadata,
    /// which a client cannot set.
    #[serde(default)]
    pub trace_context: TraceContext,
    #[serde(default)]
    pub limits: ListenerLimits,
    #[serde(default)]
    pub timeouts: ListenerTimeouts,
}

#[derive(Debug, Default, Clone, Copy, Deserialize, JsonSchema, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TraceContext {
    #[default]
    Ignore,
    Continue,
}

fn default_socket_mode() -> String {
    "0600".into()
}

fn default_secret_header() -> String {
    "x-scopegate-secret".into()
}
