//! `cluster:` — what several replicas share through Redis.

use crate::config::values::EnvString;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    /// `redis://[:password@]host:port[/db]`, or `rediss://` for TLS.
    pub redis: EnvString,
    /// Prefix of every key and channel, so that several gateways can share one Redis.
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
}

fn default_prefix() -> String {
    "scopegate:".into()
}
