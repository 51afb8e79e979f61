//! `routes[].websocket` — a route whose clients may open WebSocket tunnels (RFC 6455) to
//! its upstream, and when the gateway closes them.

use crate::config::values::Dur;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Deserialize, JsonSchema, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebSocket {
    /// Close the tunnel (close code 1008) once the token that opened it is revoked (a
    /// pushed or polled revocation naming the token, its id, subject or client); checked
    /// every 250 ms. Without it an open tunnel outlives a revocation, as it does in most
    /// gateways.
    #[serde(default)]
    pub close_on_revoke: bool,
    /// Close the tunnel (close code 1008) when the token that opened it expires (`exp`, or
    /// an introspection answer's `exp`).
    #[serde(default)]
    pub close_at_token_expiry: bool,
    /// The longest a tunnel stays open (close code 1001 after it); unbounded when absent.
    pub max_lifetime: Option<Dur>,
    /// Close a tunnel in which no byte went either way for this long (close code 1001);
    /// never when absent (WebSocket pings count as traffic).
    pub idle_timeout: Option<Dur>,
}
