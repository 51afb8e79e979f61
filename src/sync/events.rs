//! Security Event Tokens pushed by the authorization server (RFC 8417, delivered per RFC 8935
//! to the admin port's `POST /events`): verified like access tokens, then turned into
//! revocations that every later request is checked against.
//!
//! Supported events and subjects (RFC 9493 subject identifiers):
//! - `…/secevent/oauth/event-type/token-revoked` with `{"format":"opaque","id":B64}` (B64 is
//!   the unpadded base64url SHA-256 of the token) or `{"format":"jwt_id","iss":…,"jti":…}`;
//! - `…/risc/event-type/sessions-revoked`, `…/risc/event-type/account-disabled`,
//!   `…/risc/event-type/credential-compromise` and `…/caep/event-type/session-revoked` with
//!   `{"format":"iss_sub","iss":…,"sub":…}`: the subject's tokens issued before the SET's `iat`;
//! - any of those with `{"format":"client_id","iss":…,"client_id":…}` (scopegate's format for
//!   an uninstall): every token of that client issued before the SET's `iat`.

use crate::gateway::Gateway;
use crate::token::{KeySet, Revoked, SetKeys, SetRules, TokenHash, unix_now};
use arc_swap::ArcSwap;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Validation;
use jsonwebtoken::errors::ErrorKind;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TOKEN_REVOKED: &str = "https://schemas.openid.net/secevent/oauth/event-type/token-revoked";
const SUBJECT_EVENTS: [&str; 4] = [
    "https://schemas.openid.net/secevent/risc/event-type/sessions-revoked",
    "https://schemas.openid.net/secevent/risc/event-type/account-disabled",
    "https://schemas.openid.net/secevent/risc/event-type/credential-compromise",
    "https://schemas.openid.net/secevent/caep/event-type/session-revoked",
];
/// At most one key fetch per this interval for a SET with an unknown `kid`.
const MIN_KEY_FETCH: Duration = Duration::from_secs(30);

/// An RFC 8935 §2.3 error: the `err` code and a description.
#[derive(Debug, PartialEq, Eq)]
pub struct SetError {
    pub err: &'static str,
    pub description: String,
}

fn refuse(err: &'static str, description: impl Into<String>) -> SetError {
    SetError {
        err,
        description: description.into(),
    }
}

pub struct SetReceiver {
    gateway: Arc<Gateway>,
    rules: SetRules,
    /// `push` or `poll`, for metrics.
    source: &'static str,
    own_keys: ArcSwap<KeySet>,
    last_fetch: Mutex<Option<Instant>>,
    client: reqwest::Client,
    /// `jti`s already processed → until when they are remembered.
    seen: Mutex<HashMap<String, u64>>,
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

impl SetReceiver {
    /// A receiver of SETs verified with `rules`, delivered by `source` (`push`, `poll`).
    pub fn new(gateway: Arc<Gateway>, rules: SetRules, source: &'static str) -> SetReceiver {
        SetReceiver {
            gateway,
            rules,
            source,
            own_keys: ArcSwap::from_pointee(KeySet::default()),
            last_fetch: Mutex::default(),
            client: super::http_client(),
            seen: Mutex::default(),
        }
    }

    fn rules(&self) -> &SetRules {
        &self.rules
    }

    /// Fetches the transmitter's own keys (no-op when it shares an issuer's).
    pub async fn fetch_keys(&self) -> Result<(), String> {
        let SetKeys::Own(uri) = &self.rules().keys else {
            return Ok(());
        };
        *self.last_fetch.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        let resp = self
            .client
            .get(uri)
            .send()
            .await
            .map_err(|e| format!("{uri}: {e}"))?;
        let body = super::read_body(resp)
            .await
            .map_err(|e| format!("{uri}: {e}"))?;
        let (keys, _) = KeySet::from_jwks(&body)?;
        self.own_keys.store(Arc::new(keys));
        Ok(())
    }

    fn keys(&self) -> Arc<KeySet> {
        match self.rules().keys {
            SetKeys::Issuer(i) => self.gateway.issuers[i].keys().clone(),
            SetKeys::Own(_) => self.own_keys.load_full(),
        }
    }

    /// Verifies and applies one SET; returns how many revocations it carried.
    pub async fn receive(
        &self,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<usize, SetError> {
        if content_type.map(|c| c.split(';').next().unwrap_or("").trim())
            != Some("application/secevent+jwt")
        {
            let e = refuse(
                "invalid_request",
                "the body must be application/secevent+jwt",
            );
            self.gateway
                .metrics
                .sets_rejected
                .with_label_values(&[e.err])
                .inc();
            return Err(e);
        }
        match std::str::from_utf8(body) {
            Ok(set) => self.apply(set.trim()).await,
            Err(_) => Err(refuse("invalid_request", "the SET is not text")),
        }
    }

    /// Verifies and applies one SET (as text); counts a refusal by its error code.
    pub async fn apply(&self, set: &str) -> Result<usize, SetError> {
        let result = self.verify_and_apply(set).await;
        if let Err(e) = &result {
            self.gateway
                .metrics
                .sets_rejected
                .with_label_values(&[e.err])
                .inc();
        }
        result
    }

    async fn verify_and_apply(&self, set: &str) -> Result<usize, SetError> {
        let header =
            jsonwebtoken::decode_header(set).map_err(|_| refuse("invalid_request", "not a JWS"))?;
        if header
            .typ
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
            != Some("secevent+jwt")
        {
            return Err(refuse("invalid_request", "typ must be secevent+jwt"));
        }
        if header.crit.as_ref().is_some_and(|c| !c.is_empty()) {
            return Err(refuse("invalid_request", "unsupported critical header"));
        }
        if !self.rules().algorithms.contains(&header.alg) {
            return Err(refuse("invalid_key", "algorithm not accepted"));
        }
        let mut keys = self.keys();
        if keys.find(header.kid.as_deref(), header.alg).is_none()
            && matches!(self.rules().keys, SetKeys::Own(_))
        {
            // Rate-limited, except while no key was ever fetched (a SET racing the first fetch).
            let due = keys.is_empty()
                || self
                    .last_fetch
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .is_none_or(|t| t.elapsed() >= MIN_KEY_FETCH);
            if due {
                let _ = self.fetch_keys().await;
                keys = self.keys();
            }
        }
        let key = keys
            .find(header.kid.as_deref(), header.alg)
            .ok_or_else(|| refuse("invalid_key", "unknown signing key"))?;
        let mut v = Validation::new(header.alg);
        v.validate_exp = false;
        v.set_issuer(&[&self.rules().transmitter]);
        v.set_audience(&[&self.rules().audience]);
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
        let now = unix_now();
        let retention = self.gateway.revocation_retention;
        {
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            seen.retain(|_, until| *until > now);
            if seen.contains_key(jti) {
                return Err(refuse("invalid_request", "this jti was already received"));
            }
            // Every event is read before any is applied: a SET is taken whole or not at all.
            let revoked = events
                .iter()
                .map(|(t, e)| revocation(t, e, claims.get("sub_id"), iat))
                .collect::<Result<Vec<_>, _>>()?;
            seen.insert(jti.to_string(), now + retention);
            let gw = &self.gateway;
            gw.revocations
                .add(&revoked, now, now + retention, retention);
            for ((event_type, _), r) in events.iter().zip(&revoked) {
                gw.metrics
                    .revocation_events
                    .with_label_values(&[event_type.rsplit('/').next().unwrap_or(""), self.source])
                    .inc();
                if let Revoked::Token(h) = r
                    && gw.cache.invalidate(h)
                {
                    gw.metrics.revocation_evicted.inc();
                }
            }
            Ok(revoked.len())
        }
    }
}
