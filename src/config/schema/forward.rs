//! `forward:` — what the upstream receives.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, JsonSchema, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Forward {
    /// `keep` forwards the `Authorization` header (the upstream may check the token again);
    /// `strip` removes it.
    #[serde(default)]
    pub authorization: KeepOrStrip,
    /// Names of the identity headers the gateway sets (client copies are always removed).
    #[serde(default)]
    pub identity_headers: IdentityHeaders,
    /// Client-sent headers that other proxies or frameworks trust for routing or identity.
    #[serde(default = "default_strip_headers")]
    pub strip_headers: Vec<String>,
    /// Client-sent headers starting with one of these are removed (internal headers of the
    /// proxies and frameworks behind the gateway).
    #[serde(default = "default_strip_prefixes")]
    pub strip_header_prefixes: Vec<String>,
    /// Client headers whose name contains `_`: `drop` (as nginx does by default) or
    /// `forward`. Either way a name that reads as a stripped or gateway-set header once `_`
    /// is taken for `-` (`X_Auth_Subject`, `Transfer_Encoding`) never reaches the upstream.
    #[serde(default)]
    pub underscore_headers: DropOrForward,
    /// A credential presented on a public route (`auth: none`): `strip` removes it before
    /// forwarding; `verify` checks it when present (refused if invalid) and forwards the
    /// identity, so the upstream gets optional authentication.
    #[serde(default)]
    pub public_route_credentials: StripOrVerify,
    /// The request id header: kept from a trusted proxy, else set by the gateway.
    #[serde(default = "default_request_id")]
    pub request_id_header: String,
    /// Headers written from the token's claims, each a template: `X-Auth-Email: "{email}"`,
    /// `X-Auth-Groups: "{groups}"` (arrays joined with `,`). A claim the token lacks, a value
    /// with a control character or over 4096 bytes sends no header. Client copies are
    /// always removed, and the decision endpoint answers them (empty when unset).
    #[serde(default)]
    pub claim_headers: std::collections::BTreeMap<String, String>,
    /// A signed identity assertion on every authenticated request: a short-lived JWT the
    /// upstream verifies with the gateway's JWKS, so a request that did not come through
    /// the gateway cannot pass for one that did. Off when absent.
    pub identity_assertion: Option<IdentityAssertion>,
}

#[derive(Debug, Deserialize, JsonSchema, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityAssertion {
    /// The signing key, a PKCS#8 PEM file: Ed25519 (EdDSA) or P-256 (ES256)
    /// (`openssl genpkey -algorithm ed25519 -out assertion.pem`). Every replica uses the same.
    pub key: crate::config::values::EnvString,
    /// The key signed with before the current one: still published in the JWKS, so
    /// assertions it signed verify until they expire (rotation overlaps).
    pub previous_key: Option<crate::config::values::EnvString>,
    /// `iss` of the assertions (the gateway's own URL).
    pub issuer: String,
    /// `aud` of the assertions: what the upstreams check it against.
    pub audience: String,
    /// How long an assertion is valid (at most 60 s; never past the token's own `exp`).
    #[serde(default = "default_assertion_lifetime")]
    pub lifetime: crate::config::values::Dur,
    /// The header it travels in.
    #[serde(default = "default_assertion_header")]
    pub header: String,
    /// Claims of the token copied into the assertion as they are (`email`, `groups`).
    #[serde(default)]
    pub claims: Vec<String>,
    /// A path on the proxy listener where the JWKS is served to upstreams (it is always on
    /// the admin port at `/.well-known/jwks.json`).
    pub jwks_path: Option<String>,
}

fn default_assertion_lifetime() -> crate::config::values::Dur {
    crate::config::values::Dur(std::time::Duration::from_secs(60))
}

fn default_assertion_header() -> String {
    "x-auth-assertion".into()
}

impl Default for Forward {
    fn default() -> Self {
        Forward {
            authorization: KeepOrStrip::default(),
            identity_headers: IdentityHeaders::default(),
            strip_headers: default_strip_headers(),
            strip_header_prefixes: default_strip_prefixes(),
            underscore_headers: DropOrForward::default(),
            public_route_credentials: StripOrVerify::default(),
            request_id_header: default_request_id(),
            claim_headers: Default::default(),
            identity_assertion: None,
        }
    }
}

#[derive(Debug, Default, Clone, Copy, Deserialize, JsonSchema, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DropOrForward {
    #[default]
    Drop,
    Forward,
}

#[derive(Debug, Default, Clone, Copy, Deserialize, JsonSchema, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StripOrVerify {
    #[default]
    Strip,
    Verify,
}

/// Internal headers of the proxies and frameworks an upstream may run behind the gateway:
/// Envoy/Istio (`x-envoy-`), Next.js middleware (`x-middleware-`, CVE-2025-29927); and the
/// identity headers of the gateways users migrate from, each a family: Pomerium
/// (`X-Pomerium-Claim-*`, `X-Pomerium-Jwt-Assertion`), Grafana's auth proxy
/// (`X-WEBAUTH-USER`, `-EMAIL`, `-NAME`, `-ROLE`, `-GROUPS`), authentik (`X-authentik-*`).
pub fn default_strip_prefixes() -> Vec<String> {
    [
        "x-envoy-",
        "x-middleware-",
        "x-pomerium-",
        "x-webauth-",
        "x-authentik-",
    ]
    .map(String::from)
    .to_vec()
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
        // oauth2-proxy (`--pass-user-headers`, `--set-xauthrequest`, `--gap-*`).
        "X-Forwarded-User",
        "X-Forwarded-Email",
        "X-Forwarded-Preferred-Username",
        "X-Forwarded-Groups",
        "X-Forwarded-Access-Token",
        "X-Auth-Request-User",
        "X-Auth-Request-Email",
        "X-Auth-Request-Preferred-Username",
        "X-Auth-Request-Groups",
        "X-Auth-Request-Access-Token",
        "X-Auth-Request-Redirect",
        "Gap-Auth",
        "Gap-Signature",
        "X-Userinfo",
        "X-Jwt-Payload",
        // Kong's consumer and credential headers (APISIX spells one `Indentifier`).
        "X-Consumer-ID",
        "X-Consumer-Custom-ID",
        "X-Consumer-Username",
        "X-Consumer-Groups",
        "X-Anonymous-Consumer",
        "X-Credential-Identifier",
        "X-Credential-Indentifier",
        "X-Credential-Username",
        "X-Authenticated-Userid",
        "X-Authenticated-Scope",
        "X-Authenticated-Groups",
        // Authelia and other forward-auth servers.
        "Remote-User",
        "Remote-Groups",
        "Remote-Email",
        "Remote-Name",
        // The client address, as CDNs and load balancers set it and frameworks read it.
        "True-Client-IP",
        "CF-Connecting-IP",
        "CF-Connecting-IPv6",
        "Fastly-Client-IP",
        "X-Cluster-Client-IP",
        "X-ProxyUser-Ip",
        "WL-Proxy-Client-IP",
        "Proxy-Client-IP",
        "Client-IP",
        "X-Forwarded",
        "Forwarded-For",
        "X-Original-Forwarded-For",
        "X-Original-For",
        // The original scheme, host, URL or method, as frameworks read them.
        "X-Forwarded-Ssl",
        "X-Forwarded-Scheme",
        "X-Forwarded-Protocol",
        "X-Url-Scheme",
        "X-Scheme",
        "Front-End-Https",
        "X-Original-Proto",
        "X-Original-Host",
        "X-Host",
        "X-Original-URI",
        "X-Forwarded-Uri",
        "X-Forwarded-Path",
        "X-Original-Method",
        "X-Forwarded-Method",
        // Internal subrequest and routing markers of frameworks (Next.js, Nuxt, ASP.NET).
        "X-Invoke-Path",
        "X-Invoke-Query",
        "X-Invoke-Output",
        "X-Nextjs-Data",
        "X-Now-Route-Matches",
        "X-Arr-Ssl",
        "X-Arr-ClientCert",
        "X-Client-Cert",
        "X-Ssl-Client-Cert",
        "X-Forwarded-Client-Cert",
    ]
    .map(String::from)
    .to_vec()
}

fn default_request_id() -> String {
    "X-Request-Id".into()
}

#[derive(Debug, Default, Clone, Copy, Deserialize, JsonSchema, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum KeepOrStrip {
    #[default]
    Keep,
    Strip,
}

#[derive(Debug, Deserialize, JsonSchema, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityHeaders {
    /// The subject (`sub`).
    pub subject: String,
    /// The client the token was issued to.
    pub client_id: String,
    /// The scopes granted, space-separated.
    pub scopes: String,
    /// The organization the request is about, once checked.
    pub org: String,
    /// `user` or `app`.
    pub principal: String,
    /// The issuer's `id`.
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
