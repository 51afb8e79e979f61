//! RFC 7662 introspection answers, judged like a JWT's claims. The other dialects translate
//! their answers into this one.

use crate::principal::Principal;
use crate::token::claims::Principals;
use crate::token::error::TokenError;
use crate::token::issuer::Issuer;
use serde_json::{Map, Value};

pub(super) fn number(claims: &Map<String, Value>, name: &str) -> Result<Option<f64>, TokenError> {
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
        None => match issuer
            .introspection
            .as_ref()
            .and_then(|r| r.expires_in_field.as_deref())
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

#[cfg(test)]
mod tests {
    //! What an RFC 7662 answer means, refusal by refusal.
    use super::*;
    use crate::scope::ScopeUniverse;
    use crate::token::dialect::Dialect;
    use crate::token::issuer::{IntrospectionRules, OpaqueTokens};
    use crate::token::testing::{self, AUD, ISS};
    use serde_json::json;

    const NOW: u64 = 1_000_000;

    fn judged(answer: Value, expires_in_field: Option<&str>) -> Result<Principal, TokenError> {
        let issuer = testing::issuer().with_introspection(
            Some(IntrospectionRules {
                expires_in_field: expires_in_field.map(String::from),
                ..IntrospectionRules::for_tests(Dialect::Rfc7662)
            }),
            OpaqueTokens::default(),
        );
        let principals = Principals::new(
            ScopeUniverse::build(&Default::default(), ["read"]),
            Default::default(),
            std::slice::from_ref(&issuer),
        );
        judge(
            answer.as_object().unwrap(),
            0,
            &issuer,
            &principals,
            NOW,
            300,
        )
    }

    fn active(extra: Value) -> Value {
        let mut a = json!({"active": true, "sub": "alice", "client_id": "app", "scope": "read",
            "exp": NOW + 60});
        for (k, v) in extra.as_object().unwrap() {
            a[k] = v.clone();
        }
        a
    }

    #[test]
    fn an_active_answer_is_a_principal_until_its_exp() {
        let p = judged(active(json!({"iss": ISS, "aud": AUD})), None).unwrap();
        assert_eq!(p.subject, "alice");
        assert_eq!(p.expires_at, NOW + 60);
    }

    #[test]
    fn anything_but_active_true_is_inactive() {
        for a in [
            json!({"active": false}),
            json!({"active": "true"}),
            json!({}),
        ] {
            assert_eq!(
                judged(a.clone(), None).unwrap_err(),
                TokenError::Inactive,
                "{a}"
            );
        }
    }

    #[test]
    fn iss_and_aud_when_present_must_be_the_issuers() {
        assert_eq!(
            judged(active(json!({"iss": "https://evil.test"})), None).unwrap_err(),
            TokenError::UnknownIssuer
        );
        assert_eq!(
            judged(active(json!({"aud": ["https://other.test"]})), None).unwrap_err(),
            TokenError::WrongAudience
        );
        assert_eq!(
            judged(active(json!({"aud": 7})), None).unwrap_err(),
            TokenError::WrongAudience
        );
    }

    #[test]
    fn times_are_checked_with_the_clock_skew() {
        assert_eq!(
            judged(active(json!({"exp": NOW - 31})), None).unwrap_err(),
            TokenError::Expired
        );
        assert!(judged(active(json!({"exp": NOW - 29})), None).is_ok());
        assert_eq!(
            judged(active(json!({"nbf": NOW + 31})), None).unwrap_err(),
            TokenError::NotYetValid
        );
        assert_eq!(
            judged(active(json!({"exp": "soon"})), None).unwrap_err(),
            TokenError::Malformed
        );
    }

    #[test]
    fn without_exp_the_lifetime_comes_from_the_configured_field_or_max_ttl() {
        let mut a = active(json!({"expires_in": 120}));
        a.as_object_mut().unwrap().remove("exp");
        assert_eq!(
            judged(a.clone(), Some("expires_in")).unwrap().expires_at,
            NOW + 120
        );
        assert_eq!(judged(a, None).unwrap().expires_at, NOW + 300);
    }

    #[test]
    fn a_client_credentials_answer_without_sub_is_the_client() {
        let mut a = active(json!({}));
        a.as_object_mut().unwrap().remove("sub");
        let p = judged(a, None).unwrap();
        assert_eq!(p.subject, "app");
        assert_eq!(p.kind, crate::principal::Kind::App);
    }
}
