//! From verified claims to a [`Principal`]: where the scopes, client and subject are, and
//! whether the caller is a user or an application.

use super::error::TokenError;
use super::issuer::Issuer;
use crate::policy::ScopeUniverse;
use crate::principal::{IdentityValues, Kind, Principal};
use http::HeaderValue;
use serde_json::{Map, Value};

fn header_value(s: &str, claim: &'static str) -> Result<HeaderValue, TokenError> {
    HeaderValue::from_str(s).map_err(|_| TokenError::BadClaim(claim))
}

/// Scopes from a space-delimited string (RFC 8693 `scope`) or an array (e.g. `scp`).
fn scopes(v: Option<&Value>) -> Result<Vec<&str>, TokenError> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(s.split(' ').filter(|s| !s.is_empty()).collect()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().ok_or(TokenError::BadClaim("scope")))
            .collect(),
        Some(_) => Err(TokenError::BadClaim("scope")),
    }
}

fn string<'a>(claims: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, TokenError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(TokenError::BadClaim("client_id")),
    }
}

pub fn principal(
    issuer_index: usize,
    issuer: &Issuer,
    claims: &Map<String, Value>,
    universe: &ScopeUniverse,
) -> Result<Principal, TokenError> {
    let subject = match claims.get("sub") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(_) => return Err(TokenError::BadClaim("sub")),
        None => return Err(TokenError::MissingClaim("sub")),
    };
    let client_id = match string(claims, &issuer.claims.client_id)? {
        Some(c) => Some(c.to_string()),
        None => string(claims, "azp")?.map(str::to_string),
    };
    let expires_at = claims
        .get("exp")
        .and_then(Value::as_f64)
        .ok_or(TokenError::MissingClaim("exp"))? as u64;
    // RFC 9068 §2.2: a client-credentials token has the client as its subject.
    let kind = if client_id.as_deref() == Some(subject.as_str()) {
        Kind::App
    } else {
        Kind::User
    };
    let token_scopes = scopes(claims.get(&issuer.claims.scope))?;
    let granted = universe.grant(token_scopes.iter().copied());
    let headers = IdentityValues {
        subject: header_value(&subject, "sub")?,
        client_id: client_id
            .as_deref()
            .map(|c| header_value(c, "client_id"))
            .transpose()?,
        scopes: header_value(&granted.effective.join(" "), "scope")?,
        token_scopes: header_value(&token_scopes.join(", "), "scope")?,
        principal: HeaderValue::from_static(kind.as_str()),
        issuer: header_value(&issuer.id, "iss")?,
    };
    Ok(Principal {
        issuer: issuer_index,
        subject,
        client_id,
        kind,
        scopes: granted.set,
        expires_at,
        headers,
    })
}
