//! What an authorization server's answer about an opaque token means. Pure: the HTTP call
//! lives in `sync::introspect`. One file per dialect; each translates its provider's answer
//! into an RFC 7662 one, judged once in [`rfc7662`].

mod github;
mod google;
mod rfc7662;

use super::claims::Principals;
use super::dialect::Dialect;
use super::error::TokenError;
use super::issuer::Issuer;
use crate::principal::Principal;
use serde_json::{Map, Value};

pub use github::{membership_path, read_membership};

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
