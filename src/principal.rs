//! The caller, as established by a verified credential. Values here were checked: nothing
//! builds a `Principal` from unverified input.

use crate::policy::ScopeSet;
use http::HeaderValue;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A user acting through an application.
    User,
    /// An application acting as itself (client credentials, service account).
    App,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::User => "user",
            Kind::App => "app",
        }
    }
}

#[derive(Debug)]
pub struct Principal {
    /// Index of the issuer in the configuration.
    pub issuer: usize,
    pub subject: String,
    pub client_id: Option<String>,
    pub kind: Kind,
    pub scopes: ScopeSet,
    /// Unix seconds after which the credential is no longer valid.
    pub expires_at: u64,
    /// Header values built once when the credential was verified, reused on every request.
    pub headers: IdentityValues,
}

#[derive(Debug, Clone)]
pub struct IdentityValues {
    pub subject: HeaderValue,
    pub client_id: Option<HeaderValue>,
    /// Effective scopes (implications expanded), sorted, space-delimited.
    pub scopes: HeaderValue,
    /// The token's own scopes, for `X-OAuth-Scopes` on a 403.
    pub token_scopes: HeaderValue,
    pub principal: HeaderValue,
    pub issuer: HeaderValue,
}
