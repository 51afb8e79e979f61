//! The YAML document as written by users (see `design.md`). Every struct rejects unknown
//! keys; defaults are the safe choice. Compilation into the runtime form is `compile/`.

use super::values::{Dur, EnvString, Timestamp};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    pub server: Server,
    #[serde(default)]
    pub admin: Admin,
    #[serde(default)]
    pub issuers: Vec<Issuer>,
    #[serde(default)]
    pub tokens: Tokens,
    #[serde(default)]
    pub scopes: Scopes,
    pub upstreams: BTreeMap<String, Upstream>,
    pub routes: Vec<Route>,
    #[serde(default)]
    pub forward: Forward,
    /// Access restrictions per organization; the entry `default` applies to the others.
    #[serde(default)]
    pub organizations: BTreeMap<String, Organization>,
    /// How organization names compare, and a document of policies re-read periodically.
    #[serde(default)]
    pub organization_policy: OrganizationPolicy,
    /// Static keys and legacy tokens, stored as SHA-256 only.
    #[serde(default)]
    pub credentials: Vec<Credential>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrganizationPolicy {
    #[serde(default)]
    pub compare: NameComparison,
    pub source: Option<OrganizationSource>,
}

#[derive(Debug, Default, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum NameComparison {
    #[default]
    Exact,
    /// ASCII case-insensitive (GitHub organization logins are).
    CaseInsensitive,
}

/// A JSON or YAML document shaped like `organizations:`, read at start and every `refresh`.
/// Its entries replace the inline ones of the same name.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrganizationSource {
    pub file: Option<EnvString>,
    pub url: Option<EnvString>,
    #[serde(default = "default_org_refresh")]
    pub refresh: Dur,
    /// Sent as `Authorization: Bearer …` with a `url` source, when set.
    pub access_token: Option<EnvString>,
}

fn default_org_refresh() -> Dur {
    Dur(Duration::from_secs(30))
}

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

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Organization {
    /// Only `approved_clients` may reach the organization's private resources.
    pub restrict_third_party_apps: bool,
    pub approved_clients: Vec<String>,
    /// Private resources need an active SSO session for the organization (`sso_orgs`).
    pub require_sso: bool,
}

/// Which organization a route's request is about, and whether the resource is private.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgBinding {
    /// A path parameter of the route's pattern.
    pub param: Option<String>,
    /// A request header.
    pub header: Option<String>,
    /// A fixed organization.
    pub name: Option<String>,
    #[serde(default)]
    pub visibility: Visibility,
}

#[derive(Debug, Default, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    #[default]
    Private,
    Public,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    pub listen: EnvString,
    pub tls: Option<Tls>,
    /// Proxy worker threads; 1 is the cheapest per request on small machines.
    #[serde(default = "one")]
    pub threads: usize,
    /// Peers whose `X-Forwarded-For` is extended instead of replaced.
    #[serde(default)]
    pub trusted_proxies: Vec<std::net::IpAddr>,
    #[serde(default)]
    pub limits: Limits,
}

fn one() -> usize {
    1
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    pub cert: EnvString,
    pub key: EnvString,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    #[serde(default = "default_max_uri")]
    pub max_uri_bytes: usize,
    #[serde(default = "default_max_headers")]
    pub max_header_bytes: usize,
}

fn default_max_uri() -> usize {
    8 * 1024
}
fn default_max_headers() -> usize {
    32 * 1024
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_uri_bytes: default_max_uri(),
            max_header_bytes: default_max_headers(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Admin {
    pub listen: EnvString,
}

impl Default for Admin {
    fn default() -> Self {
        Admin {
            listen: EnvString("127.0.0.1:9901".into()),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Issuer {
    pub id: String,
    /// The exact `iss` value.
    pub issuer: EnvString,
    #[serde(default = "yes")]
    pub discovery: bool,
    pub jwks_uri: Option<EnvString>,
    pub audiences: Vec<EnvString>,
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
    #[serde(default = "default_skew")]
    pub clock_skew: Dur,
    /// Accepted JWT `typ` header values (compared case-insensitively, `application/` prefix ignored).
    #[serde(default = "default_typ")]
    pub typ: Vec<String>,
    #[serde(default)]
    pub claims: Claims,
    #[serde(default)]
    pub app_principal: AppPrincipal,
    /// How often the JWKS is re-read in the background.
    #[serde(default = "default_jwks_refresh")]
    pub jwks_refresh: Dur,
    /// Scopes this issuer can grant, when known; `check` warns about route scopes outside them.
    pub scopes_supported: Option<Vec<String>>,
    /// RFC 7662 introspection of this issuer's opaque (non-JWT) tokens.
    pub introspection: Option<Introspection>,
    /// Opaque tokens that start with this prefix (e.g. `1000.`) go to this issuer only.
    pub token_prefix: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Introspection {
    /// Optional when discovery finds `introspection_endpoint`.
    pub endpoint: Option<EnvString>,
    pub client_id: EnvString,
    pub client_secret: EnvString,
    #[serde(default)]
    pub auth: ClientAuth,
    /// Total time allowed for one introspection call.
    #[serde(default = "default_introspection_timeout")]
    pub timeout: Dur,
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: Dur,
    /// A non-standard lifetime field in seconds from now (e.g. `expires_in`), used when the
    /// answer has no `exp`.
    pub expires_in_field: Option<String>,
}

fn default_introspection_timeout() -> Dur {
    Dur(Duration::from_secs(2))
}
fn default_connect_timeout() -> Dur {
    Dur(Duration::from_millis(500))
}

#[derive(Debug, Default, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// HTTP Basic with the URL-encoded client id and secret (RFC 6749 §2.3.1).
    #[default]
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
}

fn yes() -> bool {
    true
}
fn default_algorithms() -> Vec<String> {
    ["RS256", "PS256", "ES256", "EdDSA"]
        .map(String::from)
        .to_vec()
}
fn default_skew() -> Dur {
    Dur(Duration::from_secs(30))
}
fn default_typ() -> Vec<String> {
    vec!["at+jwt".into(), "JWT".into()]
}
fn default_jwks_refresh() -> Dur {
    Dur(Duration::from_secs(300))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Claims {
    pub scope: String,
    pub orgs: String,
    pub sso_orgs: String,
    pub client_id: String,
}

impl Default for Claims {
    fn default() -> Self {
        Claims {
            scope: "scope".into(),
            orgs: "orgs".into(),
            sso_orgs: "sso_orgs".into(),
            client_id: "client_id".into(),
        }
    }
}

#[derive(Debug, Default, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AppPrincipal {
    /// RFC 9068 client-credentials tokens: `sub` is the client id.
    #[default]
    SubIsClientId,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tokens {
    #[serde(default = "default_schemes")]
    pub schemes: Vec<String>,
    #[serde(default)]
    pub query_parameter: bool,
    #[serde(default)]
    pub cache: Cache,
    #[serde(default)]
    pub revocation: Revocation,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Revocation {
    /// RFC 8935: the transmitter POSTs Security Event Tokens to the admin port's `/events`.
    pub push: Option<SetSource>,
    /// RFC 8936: the gateway polls the transmitter's endpoint and acknowledges what it read.
    pub poll: Option<PollSource>,
    /// How long a revoked subject or client stays revoked (tokens issued before the event
    /// are refused for this long; make it at least the longest token lifetime).
    #[serde(default = "default_retention")]
    pub retention: Dur,
}

fn default_retention() -> Dur {
    Dur(Duration::from_secs(24 * 3600))
}

impl Default for Revocation {
    fn default() -> Self {
        Revocation {
            push: None,
            poll: None,
            retention: default_retention(),
        }
    }
}

/// A transmitter polled per RFC 8936. (Its first fields repeat `SetSource`'s: serde's
/// `flatten` would switch off `deny_unknown_fields`.)
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PollSource {
    pub transmitter: EnvString,
    pub jwks_uri: Option<EnvString>,
    pub issuer: Option<String>,
    pub audience: EnvString,
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
    /// The poll endpoint.
    pub endpoint: EnvString,
    #[serde(default = "default_poll_interval")]
    pub interval: Dur,
    /// Sent as `Authorization: Bearer …` to the endpoint, when set.
    pub access_token: Option<EnvString>,
    #[serde(default = "default_max_events")]
    pub max_events: u32,
}

fn default_poll_interval() -> Dur {
    Dur(Duration::from_secs(10))
}
fn default_max_events() -> u32 {
    100
}

/// Who signs Security Event Tokens and for whom.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetSource {
    /// The SETs' `iss`.
    pub transmitter: EnvString,
    /// Keys that sign SETs; or `issuer:` to reuse a configured issuer's keys.
    pub jwks_uri: Option<EnvString>,
    pub issuer: Option<String>,
    /// The SETs' `aud` must contain this.
    pub audience: EnvString,
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
}

fn default_schemes() -> Vec<String> {
    vec!["Bearer".into()]
}

impl Default for Tokens {
    fn default() -> Self {
        Tokens {
            schemes: default_schemes(),
            query_parameter: false,
            cache: Cache::default(),
            revocation: Revocation::default(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Cache {
    pub max_entries: u64,
    pub max_ttl: Dur,
    pub negative_ttl: Dur,
}

impl Default for Cache {
    fn default() -> Self {
        Cache {
            max_entries: 1_000_000,
            max_ttl: Dur(Duration::from_secs(300)),
            negative_ttl: Dur(Duration::from_secs(5)),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scopes {
    #[serde(default)]
    pub implies: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    pub url: EnvString,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    pub name: String,
    #[serde(rename = "match")]
    pub matcher: Match,
    pub upstream: String,
    #[serde(default)]
    pub auth: Auth,
    pub require: Option<Require>,
    /// Only credentials of these issuers (ids) are accepted; all when absent.
    pub issuers: Option<Vec<String>>,
}

impl Route {
    /// Every scope the route names, in order of appearance (for interning and the lint).
    pub fn scopes(&self) -> Vec<&str> {
        let mut out = Vec::new();
        if let Some(req) = &self.require {
            let alternatives = req.any.iter().flatten().map(|a| &a.scopes);
            for e in std::iter::once(&req.scopes).chain(alternatives).flatten() {
                e.names_into(&mut out);
            }
        }
        out
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Match {
    pub methods: Option<Vec<String>>,
    pub path: String,
}

#[derive(Debug, Default, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Auth {
    /// A credential is required and checked against `require`.
    #[default]
    Token,
    /// Explicitly public: no credential needed, none checked.
    None,
}

/// `require:` is either one alternative (`scopes` and/or `principal`) or `any:` alternatives.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Require {
    pub scopes: Option<ScopeExpr>,
    pub principal: Option<Principal>,
    pub any: Option<Vec<Alternative>>,
    /// The organization the request is about (checked after the scopes).
    pub org: Option<OrgBinding>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alternative {
    pub principal: Option<Principal>,
    pub scopes: Option<ScopeExpr>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Principal {
    User,
    App,
}

/// A scope name, `{ any: [...] }` or `{ all: [...] }`, nested freely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopeExpr {
    Scope(String),
    Any(Vec<ScopeExpr>),
    All(Vec<ScopeExpr>),
}

impl ScopeExpr {
    fn names_into<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            ScopeExpr::Scope(s) => out.push(s),
            ScopeExpr::Any(xs) | ScopeExpr::All(xs) => xs.iter().for_each(|x| x.names_into(out)),
        }
    }
}

impl<'de> Deserialize<'de> for ScopeExpr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ScopeExpr;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a scope name, `{ any: [...] }` or `{ all: [...] }`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ScopeExpr, E> {
                if v.is_empty() || v.contains(' ') {
                    return Err(E::custom(format!(
                        "`{v}` is not a scope name (one scope, no spaces: use `{{ all: [...] }}`)"
                    )));
                }
                Ok(ScopeExpr::Scope(v.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<ScopeExpr, A::Error> {
                Err(de::Error::custom(
                    "a bare list is ambiguous: write `{ any: [...] }` or `{ all: [...] }`",
                ))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ScopeExpr, A::Error> {
                let key: String = map
                    .next_key()?
                    .ok_or_else(|| de::Error::custom("expected `any:` or `all:`"))?;
                let items: Vec<ScopeExpr> = match key.as_str() {
                    "any" | "all" => map.next_value()?,
                    other => {
                        return Err(de::Error::custom(format!(
                            "unknown key `{other}`: expected `any` or `all`"
                        )));
                    }
                };
                if map.next_key::<String>()?.is_some() {
                    return Err(de::Error::custom(
                        "one of `any:` or `all:` per level: nest them to combine",
                    ));
                }
                if key == "any" && items.is_empty() {
                    return Err(de::Error::custom("`any: []` can never be satisfied"));
                }
                Ok(if key == "any" {
                    ScopeExpr::Any(items)
                } else {
                    ScopeExpr::All(items)
                })
            }
        }
        d.deserialize_any(V)
    }
}

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
