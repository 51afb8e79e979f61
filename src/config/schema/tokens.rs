//! `tokens:` — how credentials are presented, the cache, revocation sources.

use super::issuers::default_algorithms;
use crate::config::values::{Dur, EnvString};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Deserialize, JsonSchema, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Tokens {
    /// `Authorization` schemes whose value is a token (compared case-insensitively).
    #[serde(default = "default_schemes")]
    pub schemes: Vec<String>,
    /// Accept `?access_token=` (RFC 6750 §2.3; answers then say `Cache-Control: private`).
    #[serde(default)]
    pub query_parameter: bool,
    /// Verified and introspected answers kept in memory.
    #[serde(default)]
    pub cache: Cache,
    /// Revocations received as Security Event Tokens.
    #[serde(default)]
    pub revocation: Revocation,
    #[serde(default)]
    pub introspection_limits: IntrospectionLimits,
}

/// How much introspection a flood of made-up opaque tokens can cause. Only tokens the
/// cache does not know count; an answer is cached either way.
#[derive(Debug, Clone, Deserialize, JsonSchema, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct IntrospectionLimits {
    /// Calls in flight per issuer; more new tokens at once get 503.
    pub concurrent: usize,
    /// New tokens a client address may have introspected per second (burst: one second's).
    pub per_client_per_second: u32,
    /// New tokens introspected per second, all clients together.
    pub per_second: u32,
    /// An IPv6 client is its network of this prefix length (one host usually has a /64).
    pub per_client_ipv6_prefix: u8,
}

impl Default for IntrospectionLimits {
    fn default() -> Self {
        IntrospectionLimits {
            concurrent: 64,
            per_client_per_second: 20,
            per_second: 200,
            per_client_ipv6_prefix: 64,
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Revocation {
    /// RFC 8935: the transmitter POSTs Security Event Tokens to the admin port's `/events`.
    pub push: Option<SetSource>,
    /// RFC 8936: the gateway polls the transmitter's endpoint and acknowledges what it read.
    pub poll: Option<PollSource>,
    /// How long a revoked subject or client stays revoked (tokens issued before the event
    /// are refused for this long; make it at least the longest token lifetime).
    #[serde(default = "default_retention")]
    pub retention: Dur,
}

fn default_retention() -> Dur {
    Dur(Duration::from_secs(24 * 3600))
}

impl Default for Revocation {
    fn default() -> Self {
        Revocation {
            push: None,
            poll: None,
            retention: default_retention(),
        }
    }
}

/// A transmitter polled per RFC 8936. (Its first fields repeat `SetSource`'s: serde's
/// `flatten` would switch off `deny_unknown_fields`.)
#[derive(Debug, Deserialize, JsonSchema, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PollSource {
    /// Accept `http://` URLs here beyond loopback addresses (keys, introspection or policies
    /// fetched in clear text: only on a network you trust).
    #[serde(default)]
    pub allow_http: bool,
    /// The SETs' `iss`.
    pub transmitter: EnvString,
    /// Keys that sign the SETs.
    pub jwks_uri: Option<EnvString>,
    /// Reuse this configured issuer's keys for the SETs instead of `jwks_uri`.
    pub issuer: Option<String>,
    /// The SETs' `aud` must contain this.
    pub audience: EnvString,
    /// Signature algorithms accepted on SETs.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
    /// The poll endpoint.
    pub endpoint: EnvString,
    /// How often the endpoint is polled (sooner while it has more).
    #[serde(default = "default_poll_interval")]
    pub interval: Dur,
    /// Sent as `Authorization: Bearer …` to the endpoint, when set.
    pub access_token: Option<EnvString>,
    /// SETs asked for per poll.
    #[serde(default = "default_max_events")]
    pub max_events: u32,
}

fn default_poll_interval() -> Dur {
    Dur(Duration::from_secs(10))
}
fn default_max_events() -> u32 {
    100
}

/// Who signs Security Event Tokens and for whom.
#[derive(Debug, Deserialize, JsonSchema, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SetSource {
    /// Accept `http://` URLs here beyond loopback addresses (keys, introspection or policies
    /// fetched in clear text: only on a network you trust).
    #[serde(default)]
    pub allow_http: bool,
    /// The SETs' `iss`.
    pub transmitter: EnvString,
    /// Keys that sign SETs; or `issuer:` to reuse a configured issuer's keys.
    pub jwks_uri: Option<EnvString>,
    /// Reuse this configured issuer's keys for the SETs instead of `jwks_uri`.
    pub issuer: Option<String>,
    /// The SETs' `aud` must contain this.
    pub audience: EnvString,
    /// Signature algorithms accepted on SETs.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
}

fn default_schemes() -> Vec<String> {
    vec!["Bearer".into()]
}

impl Default for Tokens {
    fn default() -> Self {
        Tokens {
            introspection_limits: IntrospectionLimits::default(),
            schemes: default_schemes(),
            query_parameter: false,
            cache: Cache::default(),
            revocation: Revocation::default(),
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Cache {
    /// Entries kept (least useful evicted beyond).
    pub max_entries: u64,
    /// Longest time an answer is used without asking again (never past the token's `exp`).
    pub max_ttl: Dur,
    /// How long a refusal is remembered.
    pub negative_ttl: Dur,
}

impl Default for Cache {
    fn default() -> Self {
        Cache {
            max_entries: 1_000_000,
            max_ttl: Dur(Duration::from_secs(300)),
            negative_ttl: Dur(Duration::from_secs(5)),
        }
    }
}
