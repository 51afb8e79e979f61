//! `credentials:` — static and legacy credentials.

use super::Principal;
use crate::config::values::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A static or legacy credential: the SHA-256 of its secret, how it is presented, and the
/// principal it stands for.
#[derive(Debug, Deserialize, JsonSchema, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Credential {
    /// A unique name for logs and `scopegate_legacy_credential_requests_total{id}`.
    pub id: String,
    /// Presented as the whole value of this header (e.g. `X-API-Key`) ...
    pub header: Option<String>,
    /// ... or as `Authorization: <scheme> <secret>` (e.g. `Zoho-authtoken`) ...
    pub scheme: Option<String>,
    /// ... or as this query parameter (removed before forwarding).
    pub query: Option<String>,
    /// Lowercase hex SHA-256 of the secret (`scopegate hash-credential`).
    pub sha256: String,
    /// Who the caller is (`X-Auth-Subject`).
    pub subject: String,
    /// The client it stands for (`X-Auth-Client-Id`), for organization restrictions.
    pub client_id: Option<String>,
    /// Whether it acts as a user or as an application (the default).
    #[serde(default = "app")]
    pub principal: Principal,
    /// The scopes it grants.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// The organizations it is a member of.
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
