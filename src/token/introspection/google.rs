//! Google's tokeninfo endpoint (`https://oauth2.googleapis.com/tokeninfo`), as documented in
//! "OAuth 2.0 for Client-side Web Applications", token validation
//! (developers.google.com/identity/protocols/oauth2/javascript-implicit-flow): for a valid
//! access token it answers 200 with `azp`, `aud` (the OAuth client the token was issued to),
//! `sub` (absent for a service account), `scope` (space-separated), `exp` and `expires_in`
//! (both strings of seconds), `email`, `email_verified`, `access_type`; for an invalid one,
//! 400 `{"error": "invalid_token", "error_description": "Invalid Value"}`.

use super::lenient_number;
use crate::token::error::{Claim, TokenError};
use crate::token::issuer::Issuer;
use serde_json::{Map, Value};

/// What a Google service account's email ends with
/// (cloud.google.com/iam/docs/service-account-overview).
const SERVICE_ACCOUNT_DOMAIN: &str = ".iam.gserviceaccount.com";

/// The RFC 7662 answer a tokeninfo answer stands for: the issuer's `audiences` are the OAuth
/// client ids whose tokens are accepted (checked against `aud`), `azp` is the client.
pub(super) fn translate(
    answer: &Map<String, Value>,
    issuer: &Issuer,
    now: u64,
) -> Result<Map<String, Value>, TokenError> {
    if answer.contains_key("error") {
        return Err(TokenError::Inactive);
    }
    let text = |name: &str| answer.get(name).and_then(Value::as_str);
    let aud = text("aud").ok_or(TokenError::MissingClaim(Claim::Aud))?;
    let client = text("azp").unwrap_or(aud);
    let exp = match answer.get("exp").map(lenient_number) {
        Some(Some(exp)) => exp,
        Some(None) => return Err(TokenError::Malformed),
        None => match answer.get("expires_in").map(lenient_number) {
            Some(Some(left)) => now as f64 + left,
            _ => return Err(TokenError::MissingClaim(Claim::Exp)),
        },
    };
    let mut out = Map::new();
    out.insert("active".into(), Value::Bool(true));
    out.insert("aud".into(), aud.into());
    out.insert(issuer.claims.client_id.clone(), client.into());
    out.insert("exp".into(), Value::from(exp as u64));
    out.insert(
        issuer.claims.scope.clone(),
        text("scope").unwrap_or_default().into(),
    );
    match text("sub") {
        Some(sub) => {
            out.insert("sub".into(), sub.into());
        }
        // No `sub`: a service account's token, the client itself (an app principal), when it
        // says so: its `email` is a service account's, or the issuer's `app_tokens` takes
        // every token without `sub` for its client's. A user-looking answer without `sub`
        // is refused rather than taken for an app.
        None => {
            let service_account = text("email").is_some_and(|e| {
                e.ends_with(SERVICE_ACCOUNT_DOMAIN) && e.len() > SERVICE_ACCOUNT_DOMAIN.len()
            });
            if !service_account && !issuer.app_rule.without_subject {
                return Err(TokenError::MissingClaim(Claim::Sub));
            }
            out.insert("sub".into(), client.into());
        }
    }
    Ok(out)
}
