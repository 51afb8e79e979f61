//! From verified claims to a [`Principal`]: where the scopes, client and subject are, and
//! whether the caller is a user or an application.

use super::error::{Claim, TokenError};
use super::issuer::Issuer;
use crate::claim::{Conditions, HeaderTemplate};
use crate::principal::{Extras, Grant, Kind, Principal};
use crate::scope::ScopeUniverse;
use http::HeaderValue;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Distinct scope sets and client ids seen; beyond this many, values are not shared any more
/// (memory stays bounded whatever the issuer signs).
const MAX_INTERNED: usize = 10_000;

fn header_value(s: &str, claim: Claim) -> Result<HeaderValue, TokenError> {
    HeaderValue::from_str(s).map_err(|_| TokenError::BadClaim(claim))
}

/// Scopes from a space-delimited string (RFC 8693 `scope`) or an array (e.g. `scp`).
fn scopes(v: Option<&Value>) -> Result<Vec<&str>, TokenError> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(s.split(' ').filter(|s| !s.is_empty()).collect()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().ok_or(TokenError::BadClaim(Claim::Scope)))
            .collect(),
        Some(_) => Err(TokenError::BadClaim(Claim::Scope)),
    }
}

/// A string claim read from `name`; `label` names it in the refusal.
fn string<'a>(
    claims: &'a Map<String, Value>,
    name: &str,
    label: Claim,
) -> Result<Option<&'a str>, TokenError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(TokenError::BadClaim(label)),
    }
}

/// Builds principals, sharing what many tokens have in common.
pub struct Principals {
    pub universe: ScopeUniverse,
    /// The claim conditions routes name, answered for each token when it is verified.
    pub conditions: Conditions,
    /// The claim values the configuration uses (`forward.claim_headers`, then rate-limit
    /// keys), rendered for each token when it is verified.
    pub claim_templates: Vec<HeaderTemplate>,
    /// Claims copied into the signed identity assertion.
    pub assertion_claims: Vec<String>,
    /// Whether an identity assertion is minted: each principal then gets a slot for it.
    pub mints: bool,
    issuer_ids: Vec<Arc<HeaderValue>>,
    grants: Mutex<HashMap<String, Arc<Grant>>>,
    clients: Mutex<HashMap<String, Arc<HeaderValue>>>,
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
    pub fn new(universe: ScopeUniverse, conditions: Conditions, issuers: &[Issuer]) -> Principals {
        Principals {
            universe,
            conditions,
            claim_templates: Vec::new(),
            assertion_claims: Vec::new(),
            mints: false,
            issuer_ids: issuers
                .iter()
                .map(|i| {
                    Arc::new(
                        HeaderValue::from_str(&i.id)
                            .unwrap_or_else(|_| HeaderValue::from_static("-")),
                    )
                })
                .collect(),
            grants: Mutex::default(),
            clients: Mutex::default(),
        }
    }

    /// `p` for this configuration's scopes: its token's scopes granted again (a reload that
    /// changed the scopes routes name, or their implications).
    pub fn rebase(&self, p: &Principal) -> Option<Principal> {
        let listed = p.grant.token_scopes.to_str().ok()?;
        let scopes: Vec<&str> = listed.split(", ").filter(|s| !s.is_empty()).collect();
        Some(p.with_grant(self.grant(&scopes).ok()?))
    }

    /// The `X-Auth-Issuer` value of an issuer (index).
    pub fn issuer_id(&self, issuer: usize) -> Arc<HeaderValue> {
        self.issuer_ids[issuer].clone()
    }

    /// What a set of token scopes amounts to, shared with every principal that has the same.
    pub fn grant(&self, token_scopes: &[&str]) -> Result<Arc<Grant>, TokenError> {
        intern(&self.grants, &token_scopes.join(" "), || {
            let g = self.universe.grant(token_scopes.iter().copied());
            Ok(Arc::new(Grant {
                scopes: g.set,
                effective: header_value(&g.effective.join(" "), Claim::Scope)?,
                token_scopes: header_value(&token_scopes.join(", "), Claim::Scope)?,
            }))
        })
    }

    pub fn build(
        &self,
        issuer_index: usize,
        issuer: &Issuer,
        claims: &Map<String, Value>,
    ) -> Result<Principal, TokenError> {
        let client_id = match string(claims, &issuer.claims.client_id, Claim::ClientId)? {
            Some(c) => Some(c),
            None => string(claims, "azp", Claim::Azp)?,
        };
        let rule = &issuer.app_rule;
        let (subject, without_subject) = match (claims.get("sub"), client_id) {
            (Some(Value::String(s)), _) if !s.is_empty() => (s.as_str(), false),
            (Some(_), _) => return Err(TokenError::BadClaim(Claim::Sub)),
            // Client credentials that name no subject: the client is the caller.
            (None, Some(client)) if rule.without_subject => (client, true),
            (None, _) => return Err(TokenError::MissingClaim(Claim::Sub)),
        };
        let expires_at = claims
            .get("exp")
            .and_then(Value::as_f64)
            .ok_or(TokenError::MissingClaim(Claim::Exp))? as u64;
        let conditions = self.conditions.evaluate(claims);
        let app = without_subject
            || (rule.sub_is_client_id && client_id == Some(subject))
            || rule.claims.as_ref().is_some_and(|e| e.eval(&conditions));
        let kind = if app { Kind::App } else { Kind::User };
        let token_scopes = scopes(claims.get(&issuer.claims.scope))?;
        let issued_at = claims
            .get("iat")
            .and_then(Value::as_f64)
            .map_or(0, |t| t as u64);
        let jti = match claims.get("jti") {
            Some(Value::String(j)) => Some(j.as_str().into()),
            _ => None,
        };
        let names = |claim: &str, label: Claim| -> Result<Box<[Box<str>]>, TokenError> {
            match claims.get(claim) {
                None | Some(Value::Null) => Ok(Box::default()),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|i| {
                        i.as_str()
                            .map(Into::into)
                            .ok_or(TokenError::BadClaim(label))
                    })
                    .collect(),
                Some(_) => Err(TokenError::BadClaim(label)),
            }
        };
        let extras = Extras {
            orgs: names(&issuer.claims.orgs, Claim::Orgs)?,
            sso_orgs: names(&issuer.claims.sso_orgs, Claim::SsoOrgs)?,
            assertion_claims: self
                .assertion_claims
                .iter()
                .filter_map(|n| Some((n.as_str().into(), claims.get(n)?.clone())))
                .collect(),
            claim_values: self
                .claim_templates
                .iter()
                .map(|t| t.render(claims))
                .collect(),
            minted: Default::default(),
        };
        Ok(Principal {
            issuer: Some(issuer_index),
            kind,
            expires_at,
            issued_at,
            jti,
            subject: header_value(subject, Claim::Sub)?,
            client_id: client_id
                .map(|c| {
                    intern(&self.clients, c, || {
                        header_value(c, Claim::ClientId).map(Arc::new)
                    })
                })
                .transpose()?,
            issuer_id: self.issuer_ids[issuer_index].clone(),
            grant: self.grant(&token_scopes)?,
            conditions,
            extras: extras.boxed(self.mints),
        })
    }
}

#[cfg(test)]
mod tests {
    //! From claims to a principal: each unusable claim refused under its own name.
    use super::*;
    use crate::token::testing;
    use serde_json::json;
    use std::collections::BTreeMap;

    fn principals() -> (Principals, Issuer) {
        let mut implies = BTreeMap::new();
        implies.insert("repo".to_string(), vec!["repo:status".to_string()]);
        let universe = ScopeUniverse::build(&implies, ["read"]);
        let issuer = testing::issuer();
        (
            Principals::new(
                universe,
                Conditions::default(),
                std::slice::from_ref(&issuer),
            ),
            issuer,
        )
    }

    fn build(edit: impl FnOnce(&mut Map<String, Value>)) -> Result<Principal, TokenError> {
        let (p, issuer) = principals();
        let mut c = testing::claims(1_000);
        edit(c.as_object_mut().unwrap());
        p.build(0, &issuer, c.as_object().unwrap())
    }

    #[test]
    fn a_user_token_has_its_scopes_expanded_and_its_client() {
        let p = build(|c| {
            c.insert("scope".into(), json!("repo openid"));
        })
        .unwrap();
        assert_eq!(p.kind, Kind::User);
        assert_eq!(p.subject, "alice");
        assert_eq!(p.client_id.as_deref().unwrap(), "app");
        assert_eq!(p.grant.effective, "openid repo repo:status");
        assert_eq!(p.grant.token_scopes, "repo, openid");
        assert_eq!(p.expires_at, 4_600);
        assert_eq!(p.issued_at, 1_000);
    }

    #[test]
    fn rebase_grants_the_same_token_scopes_again_under_another_scope_set() {
        let p = build(|c| {
            c.insert("scope".into(), json!("repo openid"));
        })
        .unwrap();
        // Another configuration: `repo` no longer implies `repo:status`, `openid` is named.
        let universe = ScopeUniverse::build(&BTreeMap::new(), ["openid", "admin"]);
        let other = Principals::new(
            universe,
            Conditions::default(),
            std::slice::from_ref(&testing::issuer()),
        );
        let q = other.rebase(&p).unwrap();
        assert_eq!(q.grant.token_scopes, "repo, openid");
        assert_eq!(q.grant.effective, "openid repo");
        let openid = other.universe.id("openid").unwrap();
        let admin = other.universe.id("admin").unwrap();
        assert!(q.grant.scopes.contains(openid) && !q.grant.scopes.contains(admin));
        assert_eq!(q.subject, p.subject);
        assert_eq!(q.expires_at, p.expires_at);
    }

    /// An issuer whose app tokens are marked by `gty: client-credentials` (Auth0) or
    /// `idtyp: app` (Entra ID), and may have no `sub` (Duende IdentityServer).
    fn app_rules() -> (Principals, Issuer) {
        use crate::claim::{ClaimExpr, ClaimPath, Condition, Test};
        let mut conditions = Conditions::default();
        let mut on = |claim: &str, value: &str| {
            ClaimExpr::Condition(conditions.add(Condition {
                path: ClaimPath::dotted(claim).unwrap(),
                test: Test::Equals(json!(value)),
            }))
        };
        let rule = ClaimExpr::Any(vec![on("gty", "client-credentials"), on("idtyp", "app")]);
        let mut issuer = testing::issuer();
        issuer.app_rule.without_subject = true;
        issuer.app_rule.claims = Some(rule);
        let universe = ScopeUniverse::build(&BTreeMap::new(), ["read"]);
        let principals = Principals::new(universe, conditions, std::slice::from_ref(&issuer));
        (principals, issuer)
    }

    fn build_with(
        (p, issuer): &(Principals, Issuer),
        edit: impl FnOnce(&mut Map<String, Value>),
    ) -> Result<Principal, TokenError> {
        let mut c = testing::claims(1_000);
        edit(c.as_object_mut().unwrap());
        p.build(0, issuer, c.as_object().unwrap())
    }

    #[test]
    fn app_tokens_are_recognised_by_the_issuers_claim_rules_and_users_stay_users() {
        let rules = app_rules();
        // Auth0 client credentials: `sub` is `<client>@clients`, `gty` says it.
        let auth0 = build_with(&rules, |c| {
            c.insert("sub".into(), json!("app@clients"));
            c.insert("gty".into(), json!("client-credentials"));
        })
        .unwrap();
        assert_eq!(auth0.kind, Kind::App);
        // Entra ID app-only token: `idtyp: app`, the subject is the service principal.
        let entra = build_with(&rules, |c| {
            c.insert("sub".into(), json!("3a6f5a8b-service-principal"));
            c.insert("idtyp".into(), json!("app"));
        })
        .unwrap();
        assert_eq!(entra.kind, Kind::App);
        // A user's token of the same issuer.
        let user = build_with(&rules, |c| {
            c.insert("idtyp".into(), json!("user"));
        })
        .unwrap();
        assert_eq!(user.kind, Kind::User);
    }

    #[test]
    fn a_token_without_sub_is_its_clients_own_only_where_the_issuer_says_so() {
        let rules = app_rules();
        let p = build_with(&rules, |c| {
            c.remove("sub");
        })
        .unwrap();
        assert_eq!((p.kind, p.subject.to_str().unwrap()), (Kind::App, "app"));
        // Without a client either, there is nobody to name.
        let e = build_with(&rules, |c| {
            c.remove("sub");
            c.remove("client_id");
        })
        .unwrap_err();
        assert_eq!(e, TokenError::MissingClaim(Claim::Sub));
        // The default rules refuse it.
        let e = build(|c| {
            c.remove("sub");
        })
        .unwrap_err();
        assert_eq!(e, TokenError::MissingClaim(Claim::Sub));
    }

    #[test]
    fn a_token_whose_subject_is_its_client_is_an_app_token() {
        let p = build(|c| {
            c.insert("sub".into(), json!("app"));
        })
        .unwrap();
        assert_eq!(p.kind, Kind::App);
    }

    #[test]
    fn azp_stands_in_for_a_missing_client_id_and_scp_arrays_are_read() {
        let p = build(|c| {
            c.remove("client_id");
            c.insert("azp".into(), json!("web"));
            c.insert("scope".into(), json!(["read", "repo"]));
        })
        .unwrap();
        assert_eq!(p.client_id.as_deref().unwrap(), "web");
        assert!(p.grant.effective.to_str().unwrap().contains("repo:status"));
    }

    #[test]
    fn each_unusable_claim_is_refused_by_name() {
        let cases: [(&str, Value, TokenError); 8] = [
            ("sub", json!(""), TokenError::BadClaim(Claim::Sub)),
            ("sub", json!(7), TokenError::BadClaim(Claim::Sub)),
            ("sub", json!("a\nb"), TokenError::BadClaim(Claim::Sub)),
            ("client_id", json!(7), TokenError::BadClaim(Claim::ClientId)),
            ("azp", json!([]), TokenError::BadClaim(Claim::Azp)),
            ("scope", json!(7), TokenError::BadClaim(Claim::Scope)),
            ("orgs", json!("acme"), TokenError::BadClaim(Claim::Orgs)),
            ("sso_orgs", json!([1]), TokenError::BadClaim(Claim::SsoOrgs)),
        ];
        for (claim, value, expected) in cases {
            let got = build(|c| {
                if claim == "azp" {
                    c.remove("client_id");
                }
                c.insert(claim.into(), value.clone());
            });
            assert_eq!(got.unwrap_err(), expected, "{claim}: {value}");
        }
    }

    #[test]
    fn subject_and_expiry_are_required() {
        assert_eq!(
            build(|c| {
                c.remove("sub");
            })
            .unwrap_err(),
            TokenError::MissingClaim(Claim::Sub)
        );
        assert_eq!(
            build(|c| {
                c.remove("exp");
            })
            .unwrap_err(),
            TokenError::MissingClaim(Claim::Exp)
        );
    }

    #[test]
    fn tokens_with_the_same_scopes_share_one_grant() {
        let (p, issuer) = principals();
        let c = testing::claims(1_000);
        let a = p.build(0, &issuer, c.as_object().unwrap()).unwrap();
        let b = p.build(0, &issuer, c.as_object().unwrap()).unwrap();
        assert!(Arc::ptr_eq(&a.grant, &b.grant));
    }
}
