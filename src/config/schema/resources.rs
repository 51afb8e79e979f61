//! `protected_resources:` — RFC 9728 metadata for the APIs behind the gateway.

use crate::config::EnvString;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One protected resource: what a client needs to get a token for it. Everything but
/// `resource` is derived from the routes under the resource's path unless given.
#[derive(Debug, Deserialize, JsonSchema, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProtectedResource {
    /// The resource identifier: the URL clients use to reach the API through the gateway
    /// (`https://api.example.com`, or `https://example.com/api` for the routes under `/api`).
    pub resource: EnvString,
    /// Issuer URLs (`issuer`) clients may get tokens from; default: those of the issuers the
    /// resource's routes accept.
    pub authorization_servers: Option<Vec<EnvString>>,
    /// Scopes to advertise; default: every scope the resource's routes name.
    pub scopes_supported: Option<Vec<String>>,
    /// A human-readable name.
    pub resource_name: Option<String>,
    /// A page for developers.
    pub resource_documentation: Option<EnvString>,
    /// The resource's policy and terms of service pages.
    pub resource_policy_uri: Option<EnvString>,
    pub resource_tos_uri: Option<EnvString>,
}
