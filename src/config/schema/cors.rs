//! `cors:` — which browser origins may call the APIs, globally or per route.

use crate::config::values::Dur;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, JsonSchema, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CorsRules {
    /// Origins whose pages may read the answers: exact (`https://app.example.com`), or
    /// `https://*.example.com` for every subdomain over that scheme. None by default.
    #[serde(default)]
    pub allow_origins: Vec<String>,
    /// Methods a page may use beyond GET, HEAD and POST (which need no preflight permission).
    #[serde(default = "default_methods")]
    pub allow_methods: Vec<String>,
    /// Request headers a page may send (`Authorization` is never sent without this).
    #[serde(default = "default_headers")]
    pub allow_headers: Vec<String>,
    /// Answer headers a page may read besides the Fetch standard's safelisted ones.
    #[serde(default = "default_expose")]
    pub expose_headers: Vec<String>,
    /// Pages may send cookies or TLS client certificates (`credentials: "include"`).
    #[serde(default)]
    pub allow_credentials: bool,
    /// How long a browser may cache a preflight's answer.
    pub max_age: Option<Dur>,
    /// `answer`: the gateway answers preflights itself, without a token; `forward`: the
    /// preflight goes to the upstream (unauthenticated) and its answer is passed on.
    #[serde(default)]
    pub preflights: PreflightMode,
}

#[derive(Debug, Default, Clone, Copy, Deserialize, JsonSchema, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PreflightMode {
    #[default]
    Answer,
    Forward,
}

fn default_methods() -> Vec<String> {
    ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
        .map(String::from)
        .to_vec()
}

fn default_headers() -> Vec<String> {
    ["authorization", "content-type"].map(String::from).to_vec()
}

fn default_expose() -> Vec<String> {
    ["www-authenticate", "x-request-id", "retry-after"]
        .map(String::from)
        .to_vec()
}
