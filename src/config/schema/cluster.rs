//! `cluster:` — what several replicas share through Redis, and how that shared state is
//! authenticated.

use crate::config::values::EnvString;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, JsonSchema, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    /// `redis://host:port[/db]`, or `rediss://` for TLS. Credentials belong in `username`
    /// and `password` (from the environment), not in the URL.
    pub redis: EnvString,
    /// The Redis ACL user (`AUTH username password`); with `password` only, the default user.
    pub username: Option<EnvString>,
    /// The Redis password (from the environment: `${NAME}`).
    pub password: Option<EnvString>,
    /// For `rediss://`: a private CA, and a client certificate for mutual TLS.
    pub tls: Option<RedisTls>,
    /// The key every value and message in Redis is authenticated with (HMAC-SHA256), the
    /// same for every replica: at least 32 characters, from the environment.
    pub hmac_key: EnvString,
    /// A key still accepted while replicas move to a new `hmac_key` (never written with).
    pub hmac_key_previous: Option<EnvString>,
    /// Prefix of every key and channel: unique per deployment, so that several gateways can
    /// share one Redis without reading each other's state.
    #[serde(default = "default_prefix")]
    pub key_prefix: String,
    /// A replica that starts while Redis is unreachable: `false` (default) stays unready
    /// until it has loaded the shared revocations; `true` becomes ready with what it knows.
    #[serde(default)]
    pub start_without_redis: bool,
    /// Share introspection answers: N replicas make one authorization-server call per new
    /// opaque token.
    #[serde(default)]
    pub share_introspection: bool,
    /// The most shared revocations a replica loads from Redis (the sorted set is bounded by
    /// retention; this bounds what a write to Redis can make a replica hold).
    #[serde(default = "default_max_revocations")]
    pub max_revocations: usize,
}

#[derive(Debug, Deserialize, JsonSchema, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RedisTls {
    /// PEM file of the CA that signed the server's certificate (instead of the system's).
    pub ca: Option<EnvString>,
    /// PEM files of a client certificate and its key.
    pub cert: Option<EnvString>,
    /// PEM file of the client certificate's key.
    pub key: Option<EnvString>,
}

/// The default prefix; `check` warns when a configuration keeps it.
pub const DEFAULT_KEY_PREFIX: &str = "scopegate:";

fn default_prefix() -> String {
    DEFAULT_KEY_PREFIX.into()
}

fn default_max_revocations() -> usize {
    1_000_000
}
