//! What an authorization server's answer about an opaque token means. Pure: the HTTP call
//! lives in `sync::introspect`. One file per dialect; each translates its provider's answer
//! into an RFC 7662 one, judged once in [`rfc7662`].

mod github;
mod google;
mod rfc7662;

use super::claims::Principals;
use super::error::TokenError;
use super::issuer::Issuer;
use crate::principal::Principal;
use serde_json::{Map, Value};

pub use github::{GITHUB_API, membership_path, read_membership};
pub use google::GOOGLE_TOKENINFO;

/// How an issuer's endpoint is asked about a token, and how its answer reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    /// RFC 7662: `POST token=…` with the gateway's client credentials; `active`, `scope`,
    /// `client_id`, `sub`, `exp`, `aud`, `iss`.
    #[default]
    Rfc7662,
    /// Google's tokeninfo: the access token in, `scope`, `aud`/`azp`, `exp`/`expires_in`,
    /// `sub` out; 400 for a token it does not know.
    GoogleTokeninfo,
    /// GitHub's "check a token" (`POST /applications/{client_id}/token` with the OAuth app's
    /// Basic credentials): `scopes`, `user.login`, `app.client_id`, `expires_at` out; 404
    /// for a token that is not the app's. Organization membership is asked separately.
    Github,
}

/// What an HTTP status from a dialect's endpoint means (429 is handled before).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The body is the answer.
    Answer,
    /// The endpoint says it does not know the token: 401 `invalid_token`.
    Inactive,
    /// The endpoint failed: 503, nothing remembered.
    Failed,
}

impl Dialect {
    pub fn status(self, code: u16) -> Status {
        match (self, code) {
            (_, 200) => Status::Answer,
            // Google answers `{"error": "invalid_token"}` with 400.
            (Dialect::GoogleTokeninfo, 400) => Status::Inactive,
            // GitHub: 404 "Invalid tokens will return 404"; 422 a malformed one.
            (Dialect::Github, 404 | 422) => Status::Inactive,
            _ => Status::Failed,
        }
    }

    /// Where the dialect's provider answers when no endpoint is configured.
    pub fn default_endpoint(self) -> Option<&'static str> {
        match self {
            Dialect::Rfc7662 => None,
            Dialect::GoogleTokeninfo => Some(GOOGLE_TOKENINFO),
            Dialect::Github => Some(GITHUB_API),
        }
    }

    /// Whether the dialect's endpoint needs the gateway's client credentials.
    pub fn needs_client_credentials(self) -> bool {
        !matches!(self, Dialect::GoogleTokeninfo)
    }
}

/// The principal an answer (status [`Status::Answer`]) stands for, or why it is refused.
pub fn judge(
    answer: &Map<String, Value>,
    issuer_index: usize,
    issuer: &Issuer,
    principals: &Principals,
    now: u64,
    max_ttl_secs: u64,
) -> Result<Principal, TokenError> {
    let dialect = issuer.introspection.as_ref().map(|r| r.dialect);
    let translated;
    let answer = match dialect.unwrap_or_default() {
        Dialect::Rfc7662 => answer,
        Dialect::GoogleTokeninfo => {
            translated = google::translate(answer, issuer, now)?;
            &translated
        }
        Dialect::Github => {
            translated = github::translate(answer, issuer)?;
            &translated
        }
    };
    rfc7662::judge(answer, issuer_index, issuer, principals, now, max_ttl_secs)
}

/// A number, or a number in a string (Google writes `"exp": "1700000000"`).
fn lenient_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
