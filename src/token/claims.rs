//! From verified claims to a [`Principal`]: where the scopes, client and subject are, and
//! whether the caller is a user or an application.

use super::error::TokenError;
use super::issuer::Issuer;
use crate::policy::ScopeUniverse;
use crate::principal::{Grant, Kind, Principal};
use http::HeaderValue;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Distinct scope sets and client ids seen; beyond this many, values are not shared any more
/// (memory stays bounded whatever the issuer signs).
const MAX_INTERNED: usize = 10_000;

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

/// Builds principals, sharing what many tokens have in common.
pub struct Principals {
    pub universe: ScopeUniverse,
    issuer_ids: Vec<HeaderValue>,
    grants: Mutex<HashMap<String, Arc<Grant>>>,
    clients: Mutex<HashMap<String, HeaderValue>>,
}

fn intern<V: Clone>(
    map: &Mutex<HashMap<String, V>>,
    key: &str,
    make: impl FnOnce() -> Result<V, TokenError>,
) -> Result<V, TokenError> {
    let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(v) = map.get(key) {
        return Ok(v.clone());
    }
    let v = make()?;
    if map.len() < MAX_INTERNED {
        map.insert(key.to_string(), v.clone());
    }
    Ok(v)
}

impl Principals {
    pub fn new(universe: ScopeUniverse, issuers: &[Issuer]) -> Principals {
        Principals {
            universe,
            issuer_ids: issuers
                .iter()
                .map(|i| {
                    HeaderValue::from_str(&i.id).unwrap_or_else(|_| HeaderValue::from_static("-"))
                })
                .collect(),
            grants: Mutex::default(),
            clients: Mutex::default(),
        }
    }

    /// The `X-Auth-Issuer` value of an issuer (index).
    pub fn issuer_id(&self, issuer: usize) -> HeaderValue {
        self.issuer_ids[issuer].clone()
    }

    /// What a set of token scopes amounts to, shared with every principal that has the same.
    pub fn grant(&self, token_scopes: &[&str]) -> Result<Arc<Grant>, TokenError> {
        intern(&self.grants, &token_scopes.join(" "), || {
            let g = self.universe.grant(token_scopes.iter().copied());
            Ok(Arc::new(Grant {
                scopes: g.set,
                effective: header_value(&g.effective.join(" "), "scope")?,
                token_scopes: header_value(&token_scopes.join(", "), "scope")?,
            }))
        })
    }

    pub fn build(
        &self,
        issuer_index: usize,
        issuer: &Issuer,
        claims: &Map<String, Value>,
    ) -> Result<Principal, TokenError> {
        let subject = match claims.get("sub") {
            Some(Value::String(s)) if !s.is_empty() => s.as_str(),
            Some(_) => return Err(TokenError::BadClaim("sub")),
            None => return Err(TokenError::MissingClaim("sub")),
        };
        let client_id = match string(claims, &issuer.claims.client_id)? {
            Some(c) => Some(c),
            None => string(claims, "azp")?,
        };
        let expires_at = claims
            .get("exp")
            .and_then(Value::as_f64)
            .ok_or(TokenError::MissingClaim("exp"))? as u64;
        // RFC 9068 §2.2: a client-credentials token has the client as its subject.
        let kind = if client_id == Some(subject) {
            Kind::App
        } else {
            Kind::User
        };
        let token_scopes = scopes(claims.get(&issuer.claims.scope))?;
        let issued_at = claims.get("iat").and_then(Value::as_f64).map(|t| t as u64);
        let jti = match claims.get("jti") {
            Some(Value::String(j)) => Some(j.as_str().into()),
            _ => None,
        };
        let names = |claim: &str| -> Result<Box<[Box<str>]>, TokenError> {
            match claims.get(claim) {
                None | Some(Value::Null) => Ok(Box::default()),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|i| {
                        i.as_str()
                            .map(Into::into)
                            .ok_or(TokenError::BadClaim("orgs"))
                    })
                    .collect(),
                Some(_) => Err(TokenError::BadClaim("orgs")),
            }
        };
        Ok(Principal {
            orgs: names(&issuer.claims.orgs)?,
            sso_orgs: names(&issuer.claims.sso_orgs)?,
            issuer: Some(issuer_index),
            kind,
            expires_at,
            issued_at,
            jti,
            subject: header_value(subject, "sub")?,
            client_id: client_id
                .map(|c| intern(&self.clients, c, || header_value(c, "client_id")))
                .transpose()?,
            issuer_id: self.issuer_ids[issuer_index].clone(),
            grant: self.grant(&token_scopes)?,
        })
    }
}
