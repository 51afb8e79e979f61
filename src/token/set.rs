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

#[cfg(test)]
mod tests {
    //! Every refusal of a Security Event Token, and what each supported event revokes.
    use super::*;
    use crate::token::testing::Signer;
    use serde_json::json;

    const TX: &str = "https://transmitter.test";
    const AUD: &str = "https://gateway.test";

    fn rules() -> SetRules {
        SetRules {
            transmitter: TX.into(),
            audience: AUD.into(),
            algorithms: vec![Algorithm::EdDSA],
            keys: SetKeys::Own("http://127.0.0.1:1/jwks".into()),
        }
    }

    fn header(s: &Signer) -> Header {
        let mut h = s.header();
        h.typ = Some("secevent+jwt".into());
        h
    }

    fn set(events: Value) -> Value {
        json!({"iss": TX, "aud": AUD, "iat": 1000, "jti": "set-1", "events": events})
    }

    fn token_revoked(subject: Value) -> Value {
        set(json!({TOKEN_REVOKED: {"subject": subject}}))
    }

    /// Checks and verifies `claims` signed under `h` by `s`, with `s`'s key.
    fn check(s: &Signer, h: &Header, claims: &Value) -> Result<VerifiedSet, SetError> {
        let text = s.sign(h, claims);
        let header = check_header(&text, &rules())?;
        let keys = s.jwks();
        let key = keys.find(header.kid.as_deref(), header.alg).unwrap();
        verify(&text, &header, key, &rules())
    }

    fn err(r: Result<VerifiedSet, SetError>) -> (&'static str, String) {
        let e = r.unwrap_err();
        (e.err, e.description)
    }

    #[test]
    fn a_token_revoked_by_jti_is_read_with_its_event_label() {
        let s = Signer::new("tx");
        let v = check(
            &s,
            &header(&s),
            &token_revoked(json!({"format": "jwt_id", "iss": "i", "jti": "j"})),
        )
        .unwrap();
        assert_eq!(v.jti, "set-1");
        assert_eq!(v.iat, 1000);
        assert_eq!(
            v.revoked,
            vec![(
                "token-revoked".to_string(),
                Revoked::Jti {
                    iss: "i".into(),
                    jti: "j".into()
                }
            )]
        );
    }

    #[test]
    fn subject_and_client_events_revoke_what_was_issued_before_the_set() {
        let s = Signer::new("tx");
        let events = json!({
            SUBJECT_EVENTS[0]: {"subject": {"format": "iss_sub", "iss": "i", "sub": "alice"}},
            SUBJECT_EVENTS[1]: {"subject": {"format": "client_id", "iss": "i", "client_id": "app"}},
        });
        let v = check(&s, &header(&s), &set(events)).unwrap();
        assert!(v.revoked.contains(&(
            "sessions-revoked".into(),
            Revoked::Subject {
                iss: "i".into(),
                sub: "alice".into(),
                at: 1000
            }
        )));
        assert!(v.revoked.contains(&(
            "account-disabled".into(),
            Revoked::Client {
                iss: "i".into(),
                client_id: "app".into(),
                at: 1000
            }
        )));
    }

    #[test]
    fn an_opaque_token_is_named_by_the_base64url_sha256_of_it() {
        let s = Signer::new("tx");
        let id = URL_SAFE_NO_PAD.encode([9u8; 32]);
        let v = check(
            &s,
            &header(&s),
            &token_revoked(json!({"format": "opaque", "id": id})),
        )
        .unwrap();
        assert_eq!(v.revoked[0].1, Revoked::Token([9; 32]));
        let short = URL_SAFE_NO_PAD.encode([9u8; 8]);
        let (e, d) = err(check(
            &s,
            &header(&s),
            &token_revoked(json!({"format": "opaque", "id": short})),
        ));
        assert_eq!(e, "invalid_request");
        assert!(d.contains("SHA-256"), "{d}");
    }

    #[test]
    fn the_header_must_say_secevent_jwt_with_an_accepted_algorithm_and_no_crit() {
        let s = Signer::new("tx");
        let claims = token_revoked(json!({"format": "jwt_id", "iss": "i", "jti": "j"}));
        let mut h = header(&s);
        h.typ = Some("at+jwt".into());
        assert_eq!(err(check(&s, &h, &claims)).0, "invalid_request");
        let mut h = header(&s);
        h.crit = Some(vec!["x".into()]);
        assert_eq!(err(check(&s, &h, &claims)).1, "unsupported critical header");
        let mut r = rules();
        r.algorithms = vec![Algorithm::RS256];
        let text = s.sign(&header(&s), &claims);
        assert_eq!(check_header(&text, &r).unwrap_err().err, "invalid_key");
        assert_eq!(
            check_header("not a jws", &rules()).unwrap_err().description,
            "not a JWS"
        );
    }

    #[test]
    fn issuer_audience_and_signature_are_verified() {
        let s = Signer::new("tx");
        let mut claims = token_revoked(json!({"format": "jwt_id", "iss": "i", "jti": "j"}));
        claims["iss"] = json!("https://evil.test");
        assert_eq!(err(check(&s, &header(&s), &claims)).0, "invalid_issuer");
        let mut claims = token_revoked(json!({"format": "jwt_id", "iss": "i", "jti": "j"}));
        claims["aud"] = json!("https://other.test");
        assert_eq!(err(check(&s, &header(&s), &claims)).0, "invalid_audience");
        let impostor = Signer::new("tx");
        let text = impostor.sign(
            &header(&impostor),
            &token_revoked(json!({"format": "jwt_id", "iss": "i", "jti": "j"})),
        );
        let h = check_header(&text, &rules()).unwrap();
        let keys = s.jwks();
        let e = verify(
            &text,
            &h,
            keys.find(Some("tx"), Algorithm::EdDSA).unwrap(),
            &rules(),
        )
        .unwrap_err();
        assert_eq!(e.err, "invalid_key");
    }

    #[test]
    fn iat_jti_and_events_are_required() {
        let s = Signer::new("tx");
        for (claim, why) in [
            ("iat", "no iat"),
            ("jti", "no jti"),
            ("events", "no events"),
        ] {
            let mut c = token_revoked(json!({"format": "jwt_id", "iss": "i", "jti": "j"}));
            c.as_object_mut().unwrap().remove(claim);
            assert_eq!(err(check(&s, &header(&s), &c)).1, why);
        }
        assert_eq!(err(check(&s, &header(&s), &set(json!({})))).1, "no events");
    }

    #[test]
    fn a_set_with_one_unsupported_event_or_subject_is_refused_whole() {
        let s = Signer::new("tx");
        let events = json!({
            TOKEN_REVOKED: {"subject": {"format": "jwt_id", "iss": "i", "jti": "j"}},
            "https://schemas.openid.net/secevent/caep/event-type/credential-change": {"subject": {"format": "iss_sub", "iss": "i", "sub": "a"}},
        });
        let (e, d) = err(check(&s, &header(&s), &set(events)));
        assert_eq!(e, "invalid_request");
        assert!(d.contains("unsupported event type"), "{d}");
        let (_, d) = err(check(
            &s,
            &header(&s),
            &token_revoked(json!({"format": "email", "email": "a@b"})),
        ));
        assert!(d.contains("subject format `email` is not supported"), "{d}");
        let (_, d) = err(check(
            &s,
            &header(&s),
            &token_revoked(json!({"format": "jwt_id", "iss": "i"})),
        ));
        assert_eq!(d, "the subject has no `jti`");
        let sub = set(
            json!({SUBJECT_EVENTS[0]: {"subject": {"format": "jwt_id", "iss": "i", "jti": "j"}}}),
        );
        assert!(
            err(check(&s, &header(&s), &sub))
                .1
                .contains("not supported")
        );
    }

    #[test]
    fn a_top_level_sub_id_is_the_subject_of_events_without_one() {
        let s = Signer::new("tx");
        let mut c = set(json!({SUBJECT_EVENTS[3]: {}}));
        c["sub_id"] = json!({"format": "iss_sub", "iss": "i", "sub": "bob"});
        let v = check(&s, &header(&s), &c).unwrap();
        assert_eq!(
            v.revoked[0].1,
            Revoked::Subject {
                iss: "i".into(),
                sub: "bob".into(),
                at: 1000
            }
        );
    }
}
