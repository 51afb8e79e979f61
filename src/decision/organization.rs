//! The organization stage: which organization a request is about, and whether the
//! organization's policy lets this principal reach its private resources.

use super::rules::{OrgRule, OrgSource};
use super::state::State;
use crate::answer::{Refusal, Unreachable};
use crate::principal::Principal;
use crate::token::Membership;
use http::HeaderMap;

/// The organization a request names under `rule`: a path parameter, a header (given once),
/// or fixed.
pub fn named(
    rule: &OrgRule,
    params: &[(&str, &str)],
    headers: &HeaderMap,
) -> Result<Option<String>, Refusal> {
    let name = match &rule.source {
        OrgSource::Param(p) => params.iter().find(|(k, _)| k == p).map(|(_, v)| *v),
        OrgSource::Header(h) => {
            let mut values = headers.get_all(h).iter();
            let first = values.next();
            if values.next().is_some() {
                return Err(Refusal::AmbiguousOrganization);
            }
            first.and_then(|v| v.to_str().ok())
        }
        OrgSource::Name(n) => Some(n.as_str()),
    };
    Ok(name.filter(|n| !n.is_empty()).map(str::to_string))
}

/// Checks the organization `name` of the request; returns the value forwarded as
/// `X-Auth-Org`, set only for an organization whose policy was checked (a private resource).
/// `member` is the membership the issuer's API answered, when it is asked (GitHub); `None`:
/// the token's claims say.
pub fn check(
    rule: &OrgRule,
    name: Option<&str>,
    state: &State,
    principal: &Principal,
    member: Option<Membership>,
) -> Result<Option<http::HeaderValue>, Refusal> {
    let name = name.ok_or(Refusal::MissingOrganization)?;
    if !rule.private {
        return Ok(None);
    }
    // Policies from a URL not read yet: nothing private is decided without them.
    let orgs = state.organizations.load();
    let orgs = orgs
        .as_deref()
        .ok_or(Refusal::Unavailable(Unreachable::OrganizationPolicies))?;
    orgs.check_private(name, principal, member)
        .map_err(Refusal::Organization)?;
    Ok(http::HeaderValue::from_str(name).ok())
}
