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
}

fn default_prefix() -> String {
    "scopegate:".into()
}
