//! `log:` — the request and decision log; `traces:` — OpenTelemetry traces.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, JsonSchema, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Log {
    /// `json` (one object per line on stdout), `text`, or `off`.
    #[serde(default = "json")]
    pub requests: String,
    /// The fraction of allowed requests written, 0 to 1; refusals are always written.
    #[serde(default = "all")]
    pub sample_allowed: f64,
    /// `plain`, `sha256` (its first 16 hex digits) or `redact` (left out).
    #[serde(default = "plain")]
    pub subject: String,
}

impl Default for Log {
    fn default() -> Self {
        Log {
            requests: json(),
            sample_allowed: all(),
            subject: plain(),
        }
    }
}

fn json() -> String {
    "json".into()
}
fn all() -> f64 {
    1.0
}
fn plain() -> String {
    "plain".into()
}

/// `traces:` — OpenTelemetry traces over OTLP/HTTP.
#[derive(Debug, Deserialize, JsonSchema, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Traces {
    /// The collector's OTLP/HTTP traces URL, e.g. `http://otel-collector:4318/v1/traces`.
    pub otlp_endpoint: crate::config::values::EnvString,
    /// `service.name` of the spans.
    #[serde(default = "scopegate")]
    pub service_name: String,
    /// The fraction of new traces recorded (a continued trace follows its parent).
    #[serde(default = "all")]
    pub sample_ratio: f64,
    /// How often finished spans are sent.
    #[serde(default = "one_second")]
    pub export_interval: crate::config::values::Dur,
}

fn scopegate() -> String {
    "scopegate".into()
}
fn one_second() -> crate::config::values::Dur {
    crate::config::values::Dur(std::time::Duration::from_secs(1))
}
