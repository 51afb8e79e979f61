//! How a configuration is served: the listeners and their bounds, bound when the process
//! starts ([`AtStart`], compared whole on a reload), and what a reload may change.

use super::ClusterSettings;
use crate::otel::TraceSettings;
use crate::requestlog::LogSettings;
use serde::Serialize;
use std::net::SocketAddr;
use std::time::Duration;

use super::DecisionServing;
pub use super::listener::{Connections, SideListener};

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
