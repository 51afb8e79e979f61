//! GitHub's "Check a token" (docs.github.com/en/rest/apps/oauth-applications#check-a-token):
//! `POST /applications/{client_id}/token` with the OAuth app's `client_id:client_secret` as
//! HTTP Basic and `{"access_token": "…"}`; 200 with `scopes` (array), `app.client_id`,
//! `user.login`, `expires_at` (RFC 3339 or null) and the token itself (never kept); 404 for a
//! token that is not one of the app's, 422 for a malformed request.
//!
//! Membership: "Get an organization membership for the authenticated user"
//! (docs.github.com/en/rest/orgs/members#get-an-organization-membership-for-the-authenticated-user):
//! `GET /user/memberships/orgs/{org}` with the user's token; 200 with `state` `active` or
//! `pending` (invited, not yet a member), 404 or 403 when not a member or not visible to the
//! token (it needs `read:org`).

use crate::token::error::{Claim, TokenError};
use crate::token::issuer::Issuer;
use crate::token::membership::Membership;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The RFC 7662 answer a check-token answer stands for: the user's immutable numeric id is
/// the subject (a login can be renamed, then registered by someone else), the login a
/// `login` claim (for `forward.claim_headers`), the app's client id the client, `scopes` the
/// scopes, `expires_at` the expiry.
pub(super) fn translate(
    answer: &Map<String, Value>,
    issuer: &Issuer,
) -> Result<Map<String, Value>, TokenError> {
    let field = |outer: &str, inner: &str| {
        answer
            .get(outer)
            .and_then(|o| o.get(inner))
            .and_then(Value::as_str)
    };
    let login = field("user", "login").ok_or(TokenError::MissingClaim(Claim::Login))?;
    let id = match answer.get("user").and_then(|u| u.get("id")) {
        Some(Value::Number(n)) if n.is_u64() => n.to_string(),
        Some(_) => return Err(TokenError::BadClaim(Claim::Sub)),
        None => return Err(TokenError::MissingClaim(Claim::Sub)),
    };
    let client = field("app", "client_id").ok_or(TokenError::Malformed)?;
    let ours = issuer.introspection.as_ref().map(|r| r.client_id.as_str());
    if ours.is_some_and(|c| c != client) {
        return Err(TokenError::WrongAudience);
    }
    let scopes: Vec<&str> = match answer.get("scopes") {
        Some(Value::Array(items)) => items
            .iter()
            .map(|s| s.as_str().ok_or(TokenError::Malformed))
            .collect::<Result<_, _>>()?,
        None | Some(Value::Null) => Vec::new(),
        Some(_) => return Err(TokenError::Malformed),
    };
    let mut out = Map::new();
    out.insert("active".into(), Value::Bool(true));
    out.insert("sub".into(), id.into());
    out.insert("login".into(), login.into());
    out.insert(issuer.claims.client_id.clone(), client.into());
    out.insert(issuer.claims.scope.clone(), scopes.join(" ").into());
    match answer.get("expires_at") {
        // A token that does not expire: the cache's `max_ttl` bounds how long it is trusted.
        None | Some(Value::Null) => {}
        Some(Value::String(at)) => {
            let at = OffsetDateTime::parse(at, &Rfc3339).map_err(|_| TokenError::Malformed)?;
            out.insert("exp".into(), Value::from(at.unix_timestamp().max(0)));
        }
        Some(_) => return Err(TokenError::Malformed),
    }
    Ok(out)
}

/// The API path that tells whether the token's user is a member of `org`; `None` for a name
/// that is no GitHub login (letters, digits and single inner hyphens, at most 39), which is
/// never a member and never reaches the URL.
pub fn membership_path(org: &str) -> Option<String> {
    let valid = (1..=39).contains(&org.len())
        && org.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !org.starts_with('-')
        && !org.ends_with('-')
        && !org.contains("--");
    valid.then(|| format!("/user/memberships/orgs/{org}"))
}

/// What a membership answer says: `status`, GitHub's `X-GitHub-SSO` header, the JSON body.
/// `None`: no answer (a failure of GitHub, not remembered).
///
/// - 200 `state: active` is a member; `pending` (an invitation not accepted) is not.
/// - 403 with `X-GitHub-SSO: required; url=…`: the organization enforces SAML SSO and the
///   token is not authorized for it (docs.github.com/en/rest/authentication/authenticating-to-the-rest-api#saml-sso).
/// - 403 whose message names "OAuth App access restrictions": the organization has not
///   approved the app (docs.github.com/en/organizations/managing-oauth-access-to-your-organizations-data).
/// - any other 403, 404 or 401: not a member, or not one this token may see.
pub fn read_membership(status: u16, sso: Option<&str>, body: &[u8]) -> Option<Membership> {
    let answer: Option<Map<String, Value>> = serde_json::from_slice(body).ok();
    let text = |name: &str| {
        answer
            .as_ref()
            .and_then(|a| a.get(name))
            .and_then(Value::as_str)
    };
    match status {
        200 => match text("state") {
            Some("active") => Some(Membership::Member),
            Some(_) => Some(Membership::NotMember),
            None => None,
        },
        403 if sso.is_some_and(|h| h.trim_start().starts_with("required")) => {
            Some(Membership::SsoRequired)
        }
        403 if text("message").is_some_and(|m| m.contains("OAuth App access restrictions")) => {
            Some(Membership::AppNotApproved)
        }
        401 | 403 | 404 => Some(Membership::NotMember),
        _ => None,
    }
}
