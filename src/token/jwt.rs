//! Local JWT verification against an issuer's keys. Synchronous and free of I/O: a token whose
//! key is not known yet comes back as [`VerifyError::NoKey`] so the caller can refresh the
//! issuer's JWKS and try again.

use super::error::{Claim, TokenError};
use super::issuer::{Issuer, IssuerState, normalize_typ};
use super::json::has_unique_members;
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

/// Why a JWT was not verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyError {
    /// The token is not acceptable, whatever keys the issuer publishes.
    Invalid(TokenError),
    /// The issuer (index) has no key for the token's `kid` and `alg`: its keys are stale
    /// (`ever_fetched`), or were never fetched (the authorization server is unreachable).
    NoKey { issuer: usize, ever_fetched: bool },
}

impl From<TokenError> for VerifyError {
    fn from(e: TokenError) -> VerifyError {
        VerifyError::Invalid(e)
    }
}

#[derive(Deserialize)]
struct Peek {
    iss: Option<String>,
}

/// How issuers start a header, base64url-encoded (each a whole number of 3-byte groups, so
/// its encoding is a fixed prefix): `{"alg"` (Auth0, Keycloak, Google), `{"typ":"JWT","alg"`
/// (Microsoft Entra ID), `{"typ":"at+jwt","alg"` (RFC 9068 access tokens from jsonwebtoken,
/// as the dev issuer). Each names `alg` before anything else could.
const HEADER_STARTS: [&str; 3] = [
    "eyJhbGci",
    "eyJ0eXAiOiJKV1QiLCJhbGci",
    "eyJ0eXAiOiJhdCtqd3QiLCJhbGci",
];

/// Whether the token has the shape of a JWS compact serialization: three parts, the first a
/// base64url JSON object with an `alg`. A dotted opaque token (Zoho's `1000.x.y`, Google's
/// `ya29.…`) is not one, and goes to introspection.
pub fn looks_like_jwt(token: &str) -> bool {
    #[derive(Deserialize)]
    struct Header<'a> {
        #[serde(borrow)]
        alg: Option<std::borrow::Cow<'a, str>>,
    }
    let mut parts = token.split('.');
    let (Some(h), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    // A header that starts as issuers write it: nothing to decode (the header is parsed for
    // real by `verify`).
    if HEADER_STARTS.iter().any(|start| h.starts_with(start)) {
        return true;
    }
    let Ok(json) = URL_SAFE_NO_PAD.decode(h) else {
        return false;
    };
    serde_json::from_slice::<Header>(&json).is_ok_and(|h| h.alg.is_some())
}

fn decode_part<'a, T: Deserialize<'a>>(part: &str, buf: &'a mut Vec<u8>) -> Result<T, TokenError> {
    *buf = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| TokenError::Malformed)?;
    serde_json::from_slice(buf).map_err(|_| TokenError::Malformed)
}

/// Picks the issuer by the (not yet trusted) `iss`, then verifies everything against it with
/// the keys in `states` (one per issuer, same order).
pub fn verify(
    token: &str,
    issuers: &[Issuer],
    states: &[IssuerState],
    now: u64,
) -> Result<VerifiedClaims, VerifyError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(_sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed.into());
    };
    let header_json = URL_SAFE_NO_PAD
        .decode(h)
        .map_err(|_| TokenError::Malformed)?;
    let mut buf = Vec::new();
    let peek: Peek = decode_part(p, &mut buf)?;
    if !has_unique_members(&header_json) || !has_unique_members(&buf) {
        return Err(TokenError::DuplicateMember.into());
    }
    let iss = peek.iss.ok_or(TokenError::MissingClaim(Claim::Iss))?;
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
        return Err(TokenError::UnknownCritical.into());
    }
    let typ_ok = match &header.typ {
        Some(t) => issuer.typ.contains(&normalize_typ(t)),
        None => false,
    };
    if !typ_ok {
        return Err(TokenError::WrongType.into());
    }
    let validation = issuer
        .validation(header.alg)
        .ok_or(TokenError::AlgorithmNotAllowed)?;
    let keys = states[index].keys();
    let Some(key) = keys.find(header.kid.as_deref(), header.alg) else {
        return Err(VerifyError::NoKey {
            issuer: index,
            ever_fetched: states[index].has_fetched(),
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
                "exp" => Claim::Exp,
                "aud" => Claim::Aud,
                "sub" => Claim::Sub,
                _ => Claim::Iss,
            }),
            ErrorKind::InvalidClaimFormat(_) => TokenError::Malformed,
            _ => TokenError::BadSignature,
        },
    )?;
    let claims = data.claims;
    if let Some(iat) = claims.get("iat") {
        let iat = iat.as_f64().ok_or(TokenError::Malformed)?;
        if iat > (now + issuer.clock_skew.as_secs()) as f64 {
            return Err(TokenError::IssuedInFuture.into());
        }
    }
    Ok(VerifiedClaims {
        issuer: index,
        claims,
    })
}

#[cfg(test)]
mod tests {
    //! Every refusal of JWT verification, each from a token built to fail one check.
    use super::*;
    use crate::token::testing::{self, AUD, ISS, Signer};
    use serde_json::json;

    #[test]
    fn the_header_starts_read_without_decoding_are_the_encodings_of_headers_naming_alg() {
        let starts = [
            r#"{"alg""#,
            r#"{"typ":"JWT","alg""#,
            r#"{"typ":"at+jwt","alg""#,
        ];
        for (json, encoded) in starts.iter().zip(HEADER_STARTS) {
            assert_eq!(json.len() % 3, 0, "{json} encodes to a fixed prefix");
            assert_eq!(URL_SAFE_NO_PAD.encode(json), encoded);
        }
    }

    #[test]
    fn only_a_token_whose_first_part_is_a_jws_header_looks_like_a_jwt() {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"at+jwt"}"#);
        assert!(looks_like_jwt(&format!("{header}.e30.c2ln")));
        let typ_first = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ES256"}"#);
        assert!(looks_like_jwt(&format!("{typ_first}.e30.c2ln")));
        // Zoho: `1000.` + 32 hex + `.` + 32 hex; Google: `ya29.` + base64url with a dot.
        for opaque in [
            "1000.8cb99d4c2f4e4a3b9be93a1d2e3f4a5b.9b8e7d6c5b4a39281706f5e4d3c2b1a0",
            "ya29.a0AfB_byC1xyz.ZfG2kLmNoPq",
            "gho_16C7e42F292c6912E7710c838347Ae178B4a",
        ] {
            assert!(!looks_like_jwt(opaque), "{opaque}");
        }
        // Three parts whose first is JSON but not a header, or not JSON at all.
        let no_alg = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT"}"#);
        assert!(!looks_like_jwt(&format!("{no_alg}.e30.c2ln")));
        let kid_first = URL_SAFE_NO_PAD.encode(br#"{"kid":"k1","alg":"RS256"}"#);
        assert!(looks_like_jwt(&format!("{kid_first}.e30.c2ln")));
        let at_jwt_no_alg = URL_SAFE_NO_PAD.encode(br#"{"typ":"at+jwt","kid":"k"}"#);
        assert!(!looks_like_jwt(&format!("{at_jwt_no_alg}.e30.c2ln")));
        assert!(!looks_like_jwt("a.b.c"));
        assert!(!looks_like_jwt(&format!("{header}.e30")));
        assert!(!looks_like_jwt(&format!("{header}.e30.c2ln.x")));
    }

    /// jsonwebtoken checks `exp` and `nbf` against the system clock: tests use it too.
    fn now() -> u64 {
        crate::clock::unix_now()
    }

    struct World {
        signer: Signer,
        issuers: Vec<Issuer>,
        states: Vec<IssuerState>,
    }

    fn world() -> World {
        let signer = Signer::new("k1");
        let states = vec![testing::fetched(signer.jwks())];
        World {
            signer,
            issuers: vec![testing::issuer()],
            states,
        }
    }

    impl World {
        fn verify(&self, token: &str) -> Result<VerifiedClaims, VerifyError> {
            verify(token, &self.issuers, &self.states, now())
        }

        /// Signs `claims` changed by `edit` with the issuer's key.
        fn with_claims(&self, edit: impl FnOnce(&mut Map<String, Value>)) -> String {
            let mut c = testing::claims(now());
            edit(c.as_object_mut().unwrap());
            self.signer.sign(&self.signer.header(), &c)
        }

        fn refused(&self, token: &str) -> TokenError {
            match self.verify(token) {
                Err(VerifyError::Invalid(e)) => e,
                other => panic!("not refused as invalid: {other:?}"),
            }
        }
    }

    #[test]
    fn a_token_signed_by_the_issuer_verifies_with_its_claims() {
        let w = world();
        let v = w.verify(&w.with_claims(|_| {})).unwrap();
        assert_eq!(v.issuer, 0);
        assert_eq!(v.claims["sub"], "alice");
    }

    #[test]
    fn tokens_that_are_not_three_base64url_json_parts_are_malformed() {
        let w = world();
        for t in ["a.b", "a.b.c.d", "e30.!!!.c2ln", "e30.bm90IGpzb24.c2ln"] {
            assert_eq!(w.refused(t), TokenError::Malformed, "{t}");
        }
    }

    #[test]
    fn the_issuer_must_be_named_and_configured() {
        let w = world();
        assert_eq!(
            w.refused(&w.with_claims(|c| {
                c.remove("iss");
            })),
            TokenError::MissingClaim(Claim::Iss)
        );
        assert_eq!(
            w.refused(&w.with_claims(|c| {
                c.insert("iss".into(), json!("https://evil.test"));
            })),
            TokenError::UnknownIssuer
        );
    }

    #[test]
    fn alg_none_and_shared_secret_algorithms_are_refused() {
        let w = world();
        let claims = testing::claims(now());
        // `none` is no algorithm jsonwebtoken knows: the header does not even parse.
        let none = Signer::forge(&json!({"alg": "none", "typ": "at+jwt"}), &claims);
        assert_eq!(w.refused(&none), TokenError::Malformed);
        let hs = Signer::forge(
            &json!({"alg": "HS256", "typ": "at+jwt", "kid": "k1"}),
            &claims,
        );
        assert_eq!(w.refused(&hs), TokenError::AlgorithmNotAllowed);
        // Allowed by the issuer, but not with this key's type: no key fits, never a guess.
        let rs = Signer::forge(
            &json!({"alg": "RS256", "typ": "at+jwt", "kid": "k1"}),
            &claims,
        );
        assert_eq!(
            w.verify(&rs).unwrap_err(),
            VerifyError::NoKey {
                issuer: 0,
                ever_fetched: true
            }
        );
    }

    #[test]
    fn a_header_or_claims_repeating_a_member_are_refused_before_the_signature() {
        let w = world();
        let claims = testing::claims(now());
        let part = |s: &str| URL_SAFE_NO_PAD.encode(s);
        let body = part(&claims.to_string());
        let twice_alg = format!(
            "{}.{body}.c2ln",
            part(r#"{"alg":"EdDSA","typ":"at+jwt","kid":"k1","alg":"none"}"#)
        );
        assert_eq!(w.refused(&twice_alg), TokenError::DuplicateMember);
        let json = claims.to_string();
        let twice_sub = json.replacen('{', r#"{"sub":"root","#, 1);
        let t = format!(
            "{}.{}.c2ln",
            part(r#"{"alg":"EdDSA","typ":"at+jwt","kid":"k1"}"#),
            part(&twice_sub)
        );
        assert_eq!(w.refused(&t), TokenError::DuplicateMember);
    }

    #[test]
    fn any_critical_header_is_refused() {
        let w = world();
        let mut h = w.signer.header();
        h.crit = Some(vec!["exp".into()]);
        let t = w.signer.sign(&h, &testing::claims(now()));
        assert_eq!(w.refused(&t), TokenError::UnknownCritical);
    }

    #[test]
    fn typ_must_be_an_access_token_type() {
        let w = world();
        for typ in [None, Some("id_token+jwt"), Some("secevent+jwt")] {
            let mut h = w.signer.header();
            h.typ = typ.map(String::from);
            let t = w.signer.sign(&h, &testing::claims(now()));
            assert_eq!(w.refused(&t), TokenError::WrongType, "{typ:?}");
        }
        let mut h = w.signer.header();
        h.typ = Some("application/AT+JWT".into());
        assert!(
            w.verify(&w.signer.sign(&h, &testing::claims(now())))
                .is_ok()
        );
    }

    #[test]
    fn an_unknown_kid_asks_for_keys_and_says_whether_any_were_ever_fetched() {
        let mut w = world();
        let other = Signer::new("k2");
        let t = other.sign(&other.header(), &testing::claims(now()));
        assert_eq!(
            w.verify(&t).unwrap_err(),
            VerifyError::NoKey {
                issuer: 0,
                ever_fetched: true
            }
        );
        w.states = vec![IssuerState::default()];
        assert_eq!(
            w.verify(&t).unwrap_err(),
            VerifyError::NoKey {
                issuer: 0,
                ever_fetched: false
            }
        );
    }

    #[test]
    fn a_signature_by_another_key_under_the_same_kid_is_refused() {
        let w = world();
        let impostor = Signer::new("k1");
        let t = impostor.sign(&impostor.header(), &testing::claims(now()));
        assert_eq!(w.refused(&t), TokenError::BadSignature);
    }

    #[test]
    fn times_are_checked_with_the_clock_skew() {
        let w = world();
        let exp = |t: u64| {
            w.with_claims(|c| {
                c.insert("exp".into(), json!(t));
            })
        };
        assert_eq!(w.refused(&exp(now() - 31)), TokenError::Expired);
        assert!(w.verify(&exp(now() - 29)).is_ok(), "within the 30 s skew");
        let nbf = w.with_claims(|c| {
            c.insert("nbf".into(), json!(now() + 31));
        });
        assert_eq!(w.refused(&nbf), TokenError::NotYetValid);
        let iat = w.with_claims(|c| {
            c.insert("iat".into(), json!(now() + 31));
        });
        assert_eq!(w.refused(&iat), TokenError::IssuedInFuture);
        let bad_iat = w.with_claims(|c| {
            c.insert("iat".into(), json!("yesterday"));
        });
        assert_eq!(w.refused(&bad_iat), TokenError::Malformed);
    }

    #[test]
    fn the_audience_must_be_configured() {
        let w = world();
        let t = w.with_claims(|c| {
            c.insert("aud".into(), json!(["https://other.test"]));
        });
        assert_eq!(w.refused(&t), TokenError::WrongAudience);
        let t = w.with_claims(|c| {
            c.insert("aud".into(), json!(["https://other.test", AUD]));
        });
        assert!(w.verify(&t).is_ok(), "one configured audience is enough");
    }

    #[test]
    fn exp_aud_and_sub_are_required() {
        let w = world();
        for (claim, named) in [
            ("exp", Claim::Exp),
            ("aud", Claim::Aud),
            ("sub", Claim::Sub),
        ] {
            let t = w.with_claims(|c| {
                c.remove(claim);
            });
            assert_eq!(w.refused(&t), TokenError::MissingClaim(named), "{claim}");
        }
        assert_eq!(ISS, w.issuers[0].iss);
    }

    #[test]
    fn an_expiry_that_is_not_a_number_counts_as_none() {
        let w = world();
        let t = w.with_claims(|c| {
            c.insert("exp".into(), json!("2099-01-01"));
        });
        assert_eq!(w.refused(&t), TokenError::MissingClaim(Claim::Exp));
    }
}
