//! `issuers:` — who signs or vouches for tokens.

use crate::config::values::{Dur, EnvString};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Deserialize, JsonSchema, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Issuer {
    /// A unique name: routes and metrics refer to it.
    pub id: String,
    /// The exact `iss` value.
    pub issuer: EnvString,
    /// Read `{issuer}/.well-known/openid-configuration` (then RFC 8414's) for `jwks_uri` and
    /// `introspection_endpoint`.
    #[serde(default = "yes")]
    pub discovery: bool,
    /// The keys' URL, instead of discovery.
    pub jwks_uri: Option<EnvString>,
    /// Accepted `aud` values; for Google's tokeninfo the OAuth client ids whose tokens are
    /// accepted; none for GitHub (it answers only for the app's own tokens).
    #[serde(default)]
    pub audiences: Vec<EnvString>,
    /// JWT signature algorithms accepted (never `none`; never `HS*` with published keys).
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
    /// Leeway on `exp`, `nbf` and `iat`.
    #[serde(default = "default_skew")]
    pub clock_skew: Dur,
    /// Accepted JWT `typ` header values (compared case-insensitively, `application/` prefix ignored).
    #[serde(default = "default_typ")]
    pub typ: Vec<String>,
    /// Claim names, when the issuer's differ.
    #[serde(default)]
    pub claims: Claims,
    /// Kept for configurations that name it: `sub_is_client_id` is the only value, and the
    /// default of `app_tokens`.
    #[serde(default)]
    pub app_principal: AppPrincipal,
    /// How an application's own token (client credentials, a service account) is told from
    /// a token a user granted to an application: any rule that holds makes it an app token.
    #[serde(default)]
    pub app_tokens: AppTokens,
    /// How often the JWKS is re-read in the background.
    #[serde(default = "default_jwks_refresh")]
    pub jwks_refresh: Dur,
    /// Scopes this issuer can grant, when known; `check` warns about route scopes outside them.
    pub scopes_supported: Option<Vec<String>>,
    /// Introspection of this issuer's opaque (non-JWT) tokens, in the issuer's dialect.
    pub introspection: Option<Introspection>,
    /// Opaque tokens that start with this prefix (e.g. `1000.`) go to this issuer only,
    /// before any guess that a dotted token is a JWT.
    pub token_prefix: Option<String>,
    /// The same with a regular expression the whole token must match (e.g. `gh[ou]_\w{36}`).
    pub token_pattern: Option<String>,
    /// Accept `http://` URLs here beyond loopback addresses (keys, introspection or policies
    /// fetched in clear text: only on a network you trust).
    #[serde(default)]
    pub allow_http: bool,
}

#[derive(Debug, Deserialize, JsonSchema, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Introspection {
    /// How the endpoint is asked and its answer read.
    #[serde(default)]
    pub dialect: Dialect,
    /// Optional when discovery finds `introspection_endpoint` (RFC 7662), or for the
    /// providers' dialects (their public endpoint; for GitHub the API root).
    pub endpoint: Option<EnvString>,
    /// The gateway's client (RFC 7662), or the OAuth app whose tokens are accepted (GitHub);
    /// not used by Google's tokeninfo.
    pub client_id: Option<EnvString>,
    /// The secret of `client_id` (from the environment: `${NAME}`).
    pub client_secret: Option<EnvString>,
    /// How the gateway authenticates to the endpoint (RFC 7591 names).
    #[serde(default)]
    pub auth: ClientAuth,
    /// Total time allowed for one introspection call.
    #[serde(default = "default_introspection_timeout")]
    pub timeout: Dur,
    /// Time to connect to the endpoint.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: Dur,
    /// A non-standard lifetime field in seconds from now (e.g. `expires_in`), used when the
    /// answer has no `exp`.
    pub expires_in_field: Option<String>,
    /// How long an organization-membership answer is trusted (`dialect: github`).
    #[serde(default = "default_membership_ttl")]
    pub membership_ttl: Dur,
    /// Off by default. When the authorization server fails (a timeout, a 5xx, a connection
    /// error, its circuit open — never an answer that the token is inactive), an answer that
    /// was active stays usable this long past its cache time, never past the token's `exp`.
    pub serve_stale_on_error: Option<Dur>,
}

#[derive(Debug, Default, Clone, Copy, Deserialize, JsonSchema, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Dialect {
    #[default]
    Rfc7662,
    GoogleTokeninfo,
    Github,
}

fn default_membership_ttl() -> Dur {
    Dur(Duration::from_secs(300))
}

fn default_introspection_timeout() -> Dur {
    Dur(Duration::from_secs(2))
}
fn default_connect_timeout() -> Dur {
    Dur(Duration::from_millis(500))
}

#[derive(Debug, Default, Clone, Copy, Deserialize, JsonSchema, Serialize, PartialEq, Eq)]
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
pub(super) fn default_algorithms() -> Vec<String> {
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

#[derive(Debug, Deserialize, JsonSchema, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Claims {
    /// Space-separated scopes (or a list).
    pub scope: String,
    /// The organizations the subject is a member of.
    pub orgs: String,
    /// Organizations with an SSO session (for `require_sso`).
    pub sso_orgs: String,
    /// The client the token was issued to.
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

/// The rules that make a token an application's own; shipped recipes set them per provider.
#[derive(Debug, Deserialize, JsonSchema, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AppTokens {
    /// `sub` equals the client id (RFC 9068 §2.2 client credentials).
    #[serde(default = "yes")]
    pub sub_is_client_id: bool,
    /// A token without `sub` is its client's own, with the client id as its subject
    /// (Duende IdentityServer client credentials). Otherwise a token without `sub` is
    /// refused.
    #[serde(default)]
    pub without_subject: bool,
    /// Claim conditions (as in `require.claims`) that mark an app token:
    /// `{ claim: gty, equals: client-credentials }` (Auth0), `{ claim: idtyp, equals: app }`
    /// (Entra ID), `{ claim: preferred_username, prefix: service-account- }` (Keycloak).
    pub claims: Option<super::ClaimRule>,
}

impl Default for AppTokens {
    fn default() -> Self {
        AppTokens {
            sub_is_client_id: true,
            without_subject: false,
            claims: None,
        }
    }
}

#[derive(Debug, Default, Clone, Copy, Deserialize, JsonSchema, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AppPrincipal {
    /// RFC 9068 client-credentials tokens: `sub` is the client id.
    #[default]
    SubIsClientId,
}
