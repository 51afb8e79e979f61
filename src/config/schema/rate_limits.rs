//! `rate_limits:` (every route, one bucket per key across them) and a route's own.

use crate::config::values::Dur;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A token bucket per key: `requests` per `every`, up to `burst` at once after a quiet time.
#[derive(Debug, Clone, Deserialize, JsonSchema, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Whose bucket: `client_id`, `subject`, `org` (the organization the route checked),
    /// `client_address` (the address the trusted-proxy chain gives; IPv6 by /64), or
    /// `claim:<path>` (`claim:tid`, `claim:realm_access.roles`). Callers without a value
    /// share one bucket.
    pub per: String,
    /// How many requests…
    pub requests: u32,
    /// …per this long (`1s`, `1m`, `1h`).
    pub every: Dur,
    /// The most requests taken at once after a quiet time; `requests` when absent.
    pub burst: Option<u32>,
    /// The policy's name in `RateLimit-Policy`, the log and metrics; the route's name (or
    /// `global`) followed by `per` when absent.
    pub name: Option<String>,
}
