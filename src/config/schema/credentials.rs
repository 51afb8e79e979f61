//! `credentials:` — static and legacy credentials.

use super::Principal;
use crate::config::values::Timestamp;
use serde::Deserialize;

/// A static or legacy credential: the SHA-256 of its secret, how it is presented, and the
/// principal it stands for.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credential {
    pub id: String,
    /// Presented as the whole value of this header (e.g. `X-API-Key`) ...
    pub header: Option<String>,
    /// ... or as `Authorization: <scheme> <secret>` (e.g. `Zoho-authtoken`) ...
    pub scheme: Option<String>,
    /// ... or as this query parameter (removed before forwarding).
    pub query: Option<String>,
    /// Lowercase hex SHA-256 of the secret (`scopegate hash-credential`).
    pub sha256: String,
    pub subject: String,
    pub client_id: Option<String>,
    /// Whether it acts as a user or as an application (the default).
    #[serde(default = "app")]
    pub principal: Principal,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub orgs: Vec<String>,
    /// The configured issuer it belongs to, for routes that restrict issuers.
    pub issuer: Option<String>,
    /// Refused from this time on (RFC 3339), with a message to move to OAuth.
    pub not_after: Option<Timestamp>,
}

fn app() -> Principal {
    Principal::App
}
