//! Security Event Tokens (RFC 8417) that revoke tokens: who signs them, for whom, and what a
//! verified SET revokes. Pure: fetching the transmitter's keys, delivery (RFC 8935 push,
//! RFC 8936 poll) and applying the revocations live in `sync/`.
//!
//! Supported events and subjects (RFC 9493 subject identifiers):
//! - `…/secevent/oauth/event-type/token-revoked` with `{"format":"opaque","id":B64}` (B64 is
//!   the unpadded base64url SHA-256 of the token) or `{"format":"jwt_id","iss":…,"jti":…}`;
//! - `…/risc/event-type/sessions-revoked`, `…/risc/event-type/account-disabled`,
//!   `…/risc/event-type/credential-compromise` and `…/caep/event-type/session-revoked` with
//!   `{"format":"iss_sub","iss":…,"sub":…}`: the subject's tokens issued before the SET's `iat`;
//! - any of those with `{"format":"client_id","iss":…,"client_id":…}` (scopegate's format for
//!   an uninstall): every token of that client issued before the SET's `iat`.

use super::cache::TokenHash;
use super::keys::Key;
use super::revocation::Revoked;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Header, Validation};
use serde_json::{Map, Value};

/// Where the transmitter's keys come from.
#[derive(Debug, Clone)]
pub enum SetKeys {
    /// A configured issuer's keys (by index).
    Issuer(usize),
    Own(String),
}

/// The compiled `tokens.revocation.push` settings.
#[derive(Debug, Clone)]
pub struct SetRules {
    pub transmitter: String,
    pub audience: String,
    pub algorithms: Vec<Algorithm>,
    pub keys: SetKeys,
}

/// The compiled `tokens.revocation.poll` settings.
#[derive(Debug, Clone)]
pub struct PollRules {
    pub set: SetRules,
    pub endpoint: String,
    pub interval: std::time::Duration,
    pub access_token: Option<String>,
    pub max_events: u32,
}

pub const TOKEN_REVOKED: &str =
    "https://schemas.openid.net/secevent/oauth/event-type/token-revoked";
pub const SUBJECT_EVENTS: [&str; 4] = [
    "https://schemas.openid.net/secevent/risc/event-type/sessions-revoked",
    "https://schemas.openid.net/secevent/risc/event-type/account-disabled",
    "https://schemas.openid.net/secevent/risc/event-type/credential-compromise",
    "https://schemas.openid.net/secevent/caep/event-type/session-revoked",
];

/// An RFC 8935 §2.3 error: the `err` code and a description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetError {
    pub err: &'static str,
    pub description: String,
}

pub fn refuse(err: &'static str, description: impl Into<String>) -> SetError {
    SetError {
        err,
        description: description.into(),
    }
}

/// A SET whose signature, issuer and audience were checked, read whole.
#[derive(Debug, PartialEq, Eq)]
pub struct VerifiedSet {
    pub jti: String,
    pub iat: u64,
    /// Each event: the last segment of its type URI (a metric label) and what it revokes.
    pub revoked: Vec<(String, Revoked)>,
}

/// The header of a SET, checked before any key is looked up: `typ`, `crit`, algorithm.
pub fn check_header(set: &str, rules: &SetRules) -> Result<Header, SetError> {
    let header =
        jsonwebtoken::decode_header(set).map_err(|_| refuse("invalid_request", "not a JWS"))?;
    let typ = header.typ.as_deref().map(str::to_ascii_lowercase);
    if typ.as_deref() != Some("secevent+jwt") {
        return Err(refuse("invalid_request", "typ must be secevent+jwt"));
    }
    if header.crit.as_ref().is_some_and(|c| !c.is_empty()) {
        return Err(refuse("invalid_request", "unsupported critical header"));
    }
    if !rules.algorithms.contains(&header.alg) {
        return Err(refuse("invalid_key", "algorithm not accepted"));
    }
    Ok(header)
}

/// Verifies a SET with `key` (found for `header`) and reads every event; a SET with one
/// event that cannot be applied is refused whole.
pub fn verify(
    set: &str,
    header: &Header,
    key: &Key,
    rules: &SetRules,
) -> Result<VerifiedSet, SetError> {
    let mut v = Validation::new(header.alg);
    v.validate_exp = false;
    v.set_issuer(&[&rules.transmitter]);
    v.set_audience(&[&rules.audience]);
    v.set_required_spec_claims(&["iss", "aud"]);
    let claims = jsonwebtoken::decode::<Map<String, Value>>(set, &key.key, &v)
        .map_err(|e| match e.kind() {
            ErrorKind::InvalidIssuer => refuse("invalid_issuer", "unexpected iss"),
            ErrorKind::InvalidAudience => refuse("invalid_audience", "unexpected aud"),
            ErrorKind::InvalidSignature => refuse("invalid_key", "signature does not verify"),
            _ => refuse("invalid_request", "the SET could not be read"),
        })?
        .claims;
    let iat = claims
        .get("iat")
        .and_then(Value::as_f64)
        .ok_or_else(|| refuse("invalid_request", "no iat"))? as u64;
    let jti = claims
        .get("jti")
        .and_then(Value::as_str)
        .ok_or_else(|| refuse("invalid_request", "no jti"))?;
    let events = claims
        .get("events")
        .and_then(Value::as_object)
        .filter(|e| !e.is_empty())
        .ok_or_else(|| refuse("invalid_request", "no events"))?;
    let revoked = events
        .iter()
        .map(|(t, e)| {
            let label = t.rsplit('/').next().unwrap_or("").to_string();
            revocation(t, e, claims.get("sub_id"), iat).map(|r| (label, r))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(VerifiedSet {
        jti: jti.to_string(),
        iat,
        revoked,
    })
}

fn subject_str<'a>(s: &'a Map<String, Value>, name: &str) -> Result<&'a str, SetError> {
    s.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| refuse("invalid_request", format!("the subject has no `{name}`")))
}

/// Reads one event's subject into a revocation.
fn revocation(
    event_type: &str,
    event: &Value,
    top: Option<&Value>,
    iat: u64,
) -> Result<Revoked, SetError> {
    let token_event = event_type == TOKEN_REVOKED;
    if !token_event && !SUBJECT_EVENTS.contains(&event_type) {
        return Err(refuse(
            "invalid_request",
            format!("unsupported event type {event_type}"),
        ));
    }
    let subject = event
        .get("subject")
        .or(top)
        .and_then(Value::as_object)
        .ok_or_else(|| refuse("invalid_request", "the event has no subject"))?;
    let format = subject_str(subject, "format")?;
    let r = match format {
        "opaque" if token_event => {
            let id = subject_str(subject, "id")?;
            let digest = URL_SAFE_NO_PAD
                .decode(id)
                .ok()
                .and_then(|d| TokenHash::try_from(d.as_slice()).ok())
                .ok_or_else(|| {
                    refuse(
                        "invalid_request",
                        "`id` must be the base64url SHA-256 of the token",
                    )
                })?;
            Revoked::Token(digest)
        }
        "jwt_id" if token_event => Revoked::Jti {
            iss: subject_str(subject, "iss")?.to_string(),
            jti: subject_str(subject, "jti")?.to_string(),
        },
        "iss_sub" if !token_event => Revoked::Subject {
            iss: subject_str(subject, "iss")?.to_string(),
            sub: subject_str(subject, "sub")?.to_string(),
            at: iat,
        },
        "client_id" => Revoked::Client {
            iss: subject_str(subject, "iss")?.to_string(),
            client_id: subject_str(subject, "client_id")?.to_string(),
            at: iat,
        },
        other => {
            return Err(refuse(
                "invalid_request",
                format!("subject format `{other}` is not supported for {event_type}"),
            ));
        }
    };
    Ok(r)
}
