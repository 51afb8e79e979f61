//! `log:` — the request and decision log.

use serde::Deserialize;

#[derive(Debug, Deserialize)]
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
