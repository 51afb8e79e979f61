//! How a listener bounds its connections and requests: the proxy's (`server.limits`,
//! `server.timeouts`) and those beside it (`admin:`, `decision:`), each with its defaults.

use serde::Serialize;
use std::time::Duration;

/// How a listener bounds its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Connections {
    /// Connections served at once (503 and close beyond).
    pub max_connections: usize,
    /// A request head must arrive within this.
    pub header: Duration,
    /// A connection that served nothing this long is closed gracefully.
    pub idle: Duration,
    /// A TLS handshake must finish within this.
    pub tls_handshake: Duration,
}

/// A listener beside the proxy's (`admin:`, `decision:`): its connections and what one
/// request may hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SideListener {
    #[serde(flatten)]
    pub connections: Connections,
    pub max_uri_bytes: usize,
    pub max_header_bytes: usize,
    pub max_body_bytes: u64,
    /// Longest pause between two reads of a body.
    pub body: Duration,
}

impl SideListener {
    /// The admin port's defaults: probes, scrapes and pushed Security Event Tokens.
    pub const ADMIN: SideListener = SideListener {
        connections: Connections {
            max_connections: 256,
            header: Duration::from_secs(10),
            idle: Duration::from_secs(60),
            tls_handshake: Duration::ZERO,
        },
        max_uri_bytes: 8 * 1024,
        max_header_bytes: 16 * 1024,
        max_body_bytes: 64 * 1024,
        body: Duration::from_secs(10),
    };

    /// The decision endpoint's defaults: a caller forwards its client's headers (bounded by
    /// its own limits) and, at most, a small body (Envoy `with_request_body`).
    pub const DECISION: SideListener = SideListener {
        connections: Connections {
            max_connections: 4096,
            header: Duration::from_secs(10),
            idle: Duration::from_secs(75),
            tls_handshake: Duration::ZERO,
        },
        max_uri_bytes: 8 * 1024,
        max_header_bytes: 64 * 1024,
        max_body_bytes: 64 * 1024,
        body: Duration::from_secs(10),
    };

    /// `defaults` with what the file sets; the request target as the proxy bounds it.
    pub(super) fn compile(
        defaults: SideListener,
        limits: &crate::config::schema::ListenerLimits,
        timeouts: &crate::config::schema::ListenerTimeouts,
        max_uri_bytes: usize,
    ) -> SideListener {
        let d = defaults;
        SideListener {
            connections: Connections {
                max_connections: limits
                    .max_connections
                    .unwrap_or(d.connections.max_connections)
                    .max(1),
                header: timeouts.header.map_or(d.connections.header, |t| t.0),
                idle: timeouts.idle.map_or(d.connections.idle, |t| t.0),
                tls_handshake: Duration::ZERO,
            },
            max_uri_bytes,
            max_header_bytes: limits.max_header_bytes.unwrap_or(d.max_header_bytes),
            max_body_bytes: limits.max_body_bytes.unwrap_or(d.max_body_bytes),
            body: timeouts.body.map_or(d.body, |t| t.0),
        }
    }
}
