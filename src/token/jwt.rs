//! Local JWT verification against an issuer's keys. Synchronous and free of I/O: a token whose
//! key is not known yet comes back as [`TokenError::UnknownKey`] so the caller can refresh the
//! issuer's JWKS and try again.

use super::error::TokenError;
use super::issuer::{Issuer, normalize_typ};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use serde::Deserialize;
use serde_json::{Map, Value};

/// Claims of a token whose signature, issuer, audience and times were checked.
#[derive(Debug)]
pub struct VerifiedClaims {
    pub issuer: usize,
    pub claims: Map<String, Value>,
}

#[derive(Deserialize)]
struct Peek {
    iss: Option<String>,
}

/// Whether the token has the shape of a JWS compact serialization.
pub fn looks_like_jwt(token: &str) -> bool {
    token.bytes().filter(|&b| b == b'.').count() == 2
}

fn decode_part<'a, T: Deserialize<'a>>(part: &str, buf: &'a mut Vec<u8>) -> Result<T, TokenError> {
    *buf = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| TokenError::Malformed)?;
    serde_json::from_slice(buf).map_err(|_| TokenError::Malformed)
}

/// Picks the issuer by the (not yet trusted) `iss`, then verifies everything against it.
pub fn verify(token: &str, issuers: &[Issuer], now: u64) -> Result<VerifiedClaims, TokenError> {
    let mut parts = token.split('.');
    let (Some(_header), Some(p), Some(_sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let mut buf = Vec::new();
    let peek: Peek = decode_part(p, &mut buf)?;
    let iss = peek.iss.ok_or(TokenError::MissingClaim("iss"))?;
    let index = issuers
        .iter()
        .position(|i| i.iss == iss)
        .ok_or(TokenError::UnknownIssuer)?;
    let issuer = &issuers[index];

    // jsonwebtoken parses `typ` and `crit` but checks neither: we do.
    let header = jsonwebtoken::decode_header(token).map_err(|e| match e.kind() {
        ErrorKind::InvalidAlgorithmName => TokenError::AlgorithmNotAllowed,
        _ => TokenError::Malformed,
    })?;
    if let Some(crit) = &header.crit
        && !crit.is_empty()
    {
        // No extension is understood, so any critical one makes the token unusable (RFC 7515 §4.1.11).
        return Err(TokenError::UnknownCritical);
    }
    let typ_ok = match &header.typ {
        Some(t) => issuer.typ.contains(&normalize_typ(t)),
        None => false,
    };
    if !typ_ok {
        return Err(TokenError::WrongType);
    }
    let validation = issuer
        .validation(header.alg)
        .ok_or(TokenError::AlgorithmNotAllowed)?;
    let keys = issuer.keys();
    let Some(key) = keys.find(header.kid.as_deref(), header.alg) else {
        return Err(if issuer.has_fetched() {
            TokenError::UnknownKey(index)
        } else {
            TokenError::KeysUnavailable(index)
        });
    };
    let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, validation).map_err(
        |e| match e.kind() {
            ErrorKind::InvalidSignature => TokenError::BadSignature,
            ErrorKind::ExpiredSignature => TokenError::Expired,
            ErrorKind::ImmatureSignature => TokenError::NotYetValid,
            ErrorKind::InvalidAudience => TokenError::WrongAudience,
            ErrorKind::InvalidIssuer => TokenError::UnknownIssuer,
            ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                TokenError::AlgorithmNotAllowed
            }
            ErrorKind::MissingRequiredClaim(c) => TokenError::MissingClaim(match c.as_str() {
                "exp" => "exp",
                "aud" => "aud",
                "sub" => "sub",
                _ => "iss",
            }),
            ErrorKind::InvalidClaimFormat(_) => TokenError::Malformed,
            _ => TokenError::BadSignature,
        },
    )?;
    let claims = data.claims;
    if let Some(iat) = claims.get("iat") {
        let iat = iat.as_f64().ok_or(TokenError::Malformed)?;
        if iat > (now + issuer.clock_skew.as_secs()) as f64 {
            return Err(TokenError::IssuedInFuture);
        }
    }
    Ok(VerifiedClaims {
        issuer: index,
        claims,
    })
}
