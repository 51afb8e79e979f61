//! `organizations:`, `organization_policy:` and the `org` binding of a route.

use crate::config::values::{Dur, EnvString};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Default, Deserialize, JsonSchema, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OrganizationPolicy {
    /// How organization names compare.
    #[serde(default)]
    pub compare: NameComparison,
    pub source: Option<OrganizationSource>,
}

#[derive(Debug, Default, Clone, Copy, Deserialize, JsonSchema, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum NameComparison {
    #[default]
    Exact,
    /// ASCII case-insensitive (GitHub organization logins are).
    CaseInsensitive,
}

/// A JSON or YAML document shaped like `organizations:`, read at start and every `refresh`.
/// Its entries replace the inline ones of the same name.
#[derive(Debug, Deserialize, JsonSchema, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OrganizationSource {
    /// A file of policies (shaped like `organizations:`).
    pub file: Option<EnvString>,
    /// A URL of policies (JSON or YAML), read with conditional GETs.
    pub url: Option<EnvString>,
    /// How often the source is read again.
    #[serde(default = "default_org_refresh")]
    pub refresh: Dur,
    /// Sent as `Authorization: Bearer …` with a `url` source, when set.
    pub access_token: Option<EnvString>,
    /// Accept `http://` URLs here beyond loopback addresses (keys, introspection or policies
    /// fetched in clear text: only on a network you trust).
    #[serde(default)]
    pub allow_http: bool,
}

fn default_org_refresh() -> Dur {
    Dur(Duration::from_secs(30))
}

#[derive(Debug, Default, Clone, Deserialize, JsonSchema, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Organization {
    /// Only `approved_clients` may reach the organization's private resources.
    pub restrict_third_party_apps: bool,
    /// Client ids approved by the organization.
    pub approved_clients: Vec<String>,
    /// Private resources need an active SSO session for the organization (`sso_orgs`).
    pub require_sso: bool,
}

/// Which organization a route's request is about, and whether the resource is private.
#[derive(Debug, Deserialize, JsonSchema, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OrgBinding {
    /// A path parameter of the route's pattern.
    pub param: Option<String>,
    /// A request header.
    pub header: Option<String>,
    /// A fixed organization.
    pub name: Option<String>,
    /// `private`: only members and approved apps; `public`: anyone the route admits.
    #[serde(default)]
    pub visibility: Visibility,
}

#[derive(Debug, Default, Clone, Copy, Deserialize, JsonSchema, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    #[default]
    Private,
    Public,
}
