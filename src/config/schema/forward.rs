//! `forward:` — what the upstream receives.

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Forward {
    #[serde(default)]
    pub authorization: KeepOrStrip,
    #[serde(default)]
    pub identity_headers: IdentityHeaders,
    /// Client-sent headers that other proxies or frameworks trust for routing or identity.
    #[serde(default = "default_strip_headers")]
    pub strip_headers: Vec<String>,
    #[serde(default = "default_request_id")]
    pub request_id_header: String,
}

impl Default for Forward {
    fn default() -> Self {
        Forward {
            authorization: KeepOrStrip::default(),
            identity_headers: IdentityHeaders::default(),
            strip_headers: default_strip_headers(),
            request_id_header: default_request_id(),
        }
    }
}

pub fn default_strip_headers() -> Vec<String> {
    [
        "X-Original-URL",
        "X-Rewrite-URL",
        "X-HTTP-Method-Override",
        "X-HTTP-Method",
        "X-Method-Override",
        "X-Forwarded-Host",
        "X-Forwarded-Prefix",
        "X-Forwarded-Port",
        "X-Forwarded-Server",
        "Forwarded",
        "X-Real-IP",
        "X-Client-IP",
        "X-Remote-User",
        "X-Forwarded-User",
        "X-Forwarded-Email",
        "X-Forwarded-Access-Token",
        "X-Auth-Request-User",
        "X-Auth-Request-Email",
        "X-Auth-Request-Access-Token",
        "X-Userinfo",
        "X-Jwt-Payload",
        "X-Consumer-ID",
        "X-Consumer-Username",
        "X-Credential-Identifier",
        "X-Authenticated-Userid",
        "X-Authenticated-Scope",
        "Remote-User",
    ]
    .map(String::from)
    .to_vec()
}

fn default_request_id() -> String {
    "X-Request-Id".into()
}

#[derive(Debug, Default, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum KeepOrStrip {
    #[default]
    Keep,
    Strip,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityHeaders {
    pub subject: String,
    pub client_id: String,
    pub scopes: String,
    pub org: String,
    pub principal: String,
    pub issuer: String,
}

impl Default for IdentityHeaders {
    fn default() -> Self {
        IdentityHeaders {
            subject: "X-Auth-Subject".into(),
            client_id: "X-Auth-Client-Id".into(),
            scopes: "X-Auth-Scopes".into(),
            org: "X-Auth-Org".into(),
            principal: "X-Auth-Principal".into(),
            issuer: "X-Auth-Issuer".into(),
        }
    }
}
