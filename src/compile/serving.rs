//! How a configuration is served: the listeners and their bounds, bound when the process
//! starts ([`AtStart`], compared whole on a reload), and what a reload may change.

use super::ClusterSettings;
use crate::otel::TraceSettings;
use crate::requestlog::LogSettings;
use serde::Serialize;
use std::net::SocketAddr;
use std::time::Duration;

use super::DecisionServing;

/// How the configuration is served: what is bound at start, and what a reload may change.
#[derive(Debug, Clone)]
pub struct Serving {
    /// Listeners, their bounds, threads: bound at start.
    pub at_start: AtStart,
    /// Longest pause between two reads of a proxied request body (408 beyond).
    pub body_timeout: Duration,
    /// From forwarding to the upstream's response head (504 beyond).
    pub upstream_response: Duration,
    /// How often the configuration file is looked at for changes; `None`: only SIGHUP.
    pub watch_config: Option<Duration>,
    /// The request and decision log.
    pub log: LogSettings,
    /// Redis shared by the replicas, when configured.
    pub cluster: Option<ClusterSettings>,
}

/// What the process binds when it starts: a reload that changes any of it is refused (it
/// needs a restart). One value compared whole, so a setting added here can never reload
/// silently into a configuration the process does not serve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AtStart {
    pub server: ProxyListener,
    pub admin: AdminListener,
    /// The decision endpoint, when configured.
    pub decision: Option<DecisionServing>,
    /// Proxy worker threads.
    pub threads: usize,
    /// Connecting to an upstream (the pooled client is built once).
    pub upstream_connect: Duration,
    /// How long requests in flight may take to finish after SIGTERM.
    pub shutdown_grace: Duration,
    /// OpenTelemetry traces, when configured.
    pub traces: Option<TraceSettings>,
}

impl AtStart {
    /// The settings that differ between `self` and `other`, by their path in the compiled
    /// form (`server.listen`, `decision.max_connections`, …).
    pub fn differences(&self, other: &AtStart) -> Vec<String> {
        use serde_json::Value;
        fn walk(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
            // A duration is one setting, not its seconds and nanoseconds.
            let leaf = |v: &Value| v.get("secs").is_some() && v.get("nanos").is_some();
            match (a, b) {
                (Value::Object(x), Value::Object(y)) if !leaf(a) && !leaf(b) => {
                    let keys: std::collections::BTreeSet<&String> =
                        x.keys().chain(y.keys()).collect();
                    for k in keys {
                        let here = if path.is_empty() {
                            k.clone()
                        } else {
                            format!("{path}.{k}")
                        };
                        let (a, b) = (x.get(k), y.get(k));
                        walk(
                            &here,
                            a.unwrap_or(&Value::Null),
                            b.unwrap_or(&Value::Null),
                            out,
                        );
                    }
                }
                (a, b) if a != b => out.push(path.to_string()),
                _ => {}
            }
        }
        let value = |s: &AtStart| serde_json::to_value(s).unwrap_or_default();
        let mut out = Vec::new();
        walk("", &value(self), &value(other), &mut out);
        out
    }
}

/// The proxy listener (`server:`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProxyListener {
    pub listen: SocketAddr,
    /// (certificate, key) paths when the listener speaks TLS.
    pub tls: Option<(String, String)>,
    #[serde(flatten)]
    pub connections: Connections,
}

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

/// The admin listener (`admin:`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AdminListener {
    pub listen: SocketAddr,
    #[serde(flatten)]
    pub bounds: SideListener,
}

#[cfg(test)]
mod tests {
    fn at_start(extra: &str) -> super::AtStart {
        let yaml =
            format!("server: {{ listen: 127.0.0.1:1 }}\nupstreams: {{}}\nroutes: []\n{extra}");
        let file = crate::config::parse(&yaml, "t").unwrap();
        let inputs = super::super::Inputs::gather(&file, "t").unwrap();
        super::super::compile(&file, &inputs, "t")
            .unwrap()
            .serving
            .at_start
    }

    #[test]
    fn a_change_to_anything_bound_at_start_is_named_by_its_path() {
        let was = at_start("decision: { listen: 127.0.0.1:9100 }");
        assert!(was.differences(&was.clone()).is_empty());
        let will = at_start(
            "decision: { listen: 127.0.0.1:9100, limits: { max_connections: 5 } }\nadmin: { timeouts: { idle: 5s } }",
        );
        assert_eq!(
            was.differences(&will),
            ["admin.idle", "decision.max_connections"]
        );
        let without = at_start("");
        assert_eq!(was.differences(&without), ["decision"]);
    }
}
