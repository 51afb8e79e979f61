//! RFC 7662 introspection answers, judged like a JWT's claims. Pure: the HTTP call lives in
//! `sync::introspect`; this module says what an answer means.

use super::claims::Principals;
use super::error::TokenError;
use super::issuer::Issuer;
use crate::principal::Principal;
use serde_json::{Map, Value};

/// How an issuer's introspection endpoint is called and read.
#[derive(Debug, Clone)]
pub struct IntrospectionRules {
    /// Configured endpoint; otherwise the discovered `introspection_endpoint` is used.
    pub endpoint: Option<String>,
    pub client_id: String,
    pub client_secret: String,
    /// `client_secret_post` instead of HTTP Basic.
    pub post_credentials: bool,
    pub timeout: std::time::Duration,
    pub connect_timeout: std::time::Duration,
    /// Non-standard lifetime in seconds from now, used when there is no `exp`.
    pub expires_in_field: Option<String>,
}

fn number(claims: &Map<String, Value>, name: &str) -> Result<Option<f64>, TokenError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_f64().map(Some).ok_or(TokenError::Malformed),
    }
}

/// The principal an introspection answer stands for, or why it is refused.
///
/// `active: false` is `Inactive`; when present, `iss` must be the issuer's, `aud` must name a
/// configured audience, and `exp`/`nbf` are checked with the issuer's clock skew. An answer
/// without `exp` gets one from the configured `expires_in` field, else the cache's `max_ttl`
/// bounds it.
pub fn judge(
    answer: &Map<String, Value>,
    issuer_index: usize,
    issuer: &Issuer,
    rules: &IntrospectionRules,
    principals: &Principals,
    now: u64,
    max_ttl_secs: u64,
) -> Result<Principal, TokenError> {
    if answer.get("active") != Some(&Value::Bool(true)) {
        return Err(TokenError::Inactive);
    }
    if let Some(iss) = answer.get("iss")
        && iss.as_str() != Some(issuer.iss.as_str())
    {
        return Err(TokenError::UnknownIssuer);
    }
    if let Some(aud) = answer.get("aud") {
        let ok = match aud {
            Value::String(a) => issuer.audiences.iter().any(|x| x == a),
            Value::Array(items) => items.iter().any(|a| {
                a.as_str()
                    .is_some_and(|a| issuer.audiences.iter().any(|x| x == a))
            }),
            _ => false,
        };
        if !ok {
            return Err(TokenError::WrongAudience);
        }
    }
    let skew = issuer.clock_skew.as_secs() as f64;
    let now_f = now as f64;
    let exp = match number(answer, "exp")? {
        Some(exp) => exp,
        None => match rules
            .expires_in_field
            .as_deref()
            .map(|f| number(answer, f))
            .transpose()?
            .flatten()
        {
            Some(left) => now_f + left,
            None => now_f + max_ttl_secs as f64,
        },
    };
    if exp + skew <= now_f {
        return Err(TokenError::Expired);
    }
    if let Some(nbf) = number(answer, "nbf")?
        && nbf > now_f + skew
    {
        return Err(TokenError::NotYetValid);
    }
    let mut claims = answer.clone();
    claims.insert("exp".into(), Value::from(exp as u64));
    // RFC 7662 makes `sub` optional; a client-credentials token is the client itself.
    if !claims.contains_key("sub")
        && let Some(c) = claims.get(&issuer.claims.client_id).cloned()
    {
        claims.insert("sub".into(), c);
    }
    principals.build(issuer_index, issuer, &claims)
}
