//! A route's requirement and the decision whether a principal meets it.

use crate::claim::ClaimExpr;
use crate::principal::{Kind, Principal};
use crate::scope::{ScopeExpr, ScopeUniverse};

/// One way to satisfy a route: an optional principal kind, scope expression and conditions
/// on claims.
#[derive(Debug, Clone)]
pub struct Alternative {
    pub principal: Option<Kind>,
    pub scopes: Option<ScopeExpr>,
    pub claims: Option<ClaimExpr>,
}

/// Why no alternative admits a principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shortfall {
    /// No alternative for its kind and scopes: more scopes might do (`insufficient_scope`).
    Scopes,
    /// Its kind and scopes are enough for an alternative whose claim conditions it does not
    /// meet: no scope would help.
    Claims,
}

/// Any of the alternatives satisfies the route.
#[derive(Debug, Clone)]
pub struct Requirement {
    pub alternatives: Vec<Alternative>,
    /// The scopes the route accepts, space-delimited, for `scope="…"` of a 403.
    pub accepted_scopes: String,
    /// The same names comma-separated, for `X-Accepted-OAuth-Scopes`.
    pub accepted_header: String,
    /// A short text for `error_description` saying what would be enough.
    pub needs: String,
}

impl Requirement {
    pub fn new(alternatives: Vec<Alternative>, universe: &ScopeUniverse) -> Requirement {
        let mut ids = Vec::new();
        for alt in &alternatives {
            if let Some(e) = &alt.scopes {
                e.names_into(&mut ids);
            }
        }
        let names: Vec<&str> = ids.iter().map(|&i| universe.name(i)).collect();
        let needs = alternatives
            .iter()
            .map(|a| describe(a, universe))
            .collect::<Vec<_>>()
            .join("; or ");
        Requirement {
            alternatives,
            accepted_scopes: names.join(" "),
            accepted_header: names.join(", "),
            needs,
        }
    }

    /// `Ok` when some alternative accepts this principal; otherwise what it lacks.
    pub fn check(&self, p: &Principal) -> Result<(), Shortfall> {
        let mut short = Shortfall::Scopes;
        for a in &self.alternatives {
            if a.principal.is_none_or(|k| k == p.kind)
                && a.scopes.as_ref().is_none_or(|e| e.eval(&p.grant.scopes))
            {
                if a.claims.as_ref().is_none_or(|e| e.eval(&p.conditions)) {
                    return Ok(());
                }
                short = Shortfall::Claims;
            }
        }
        Err(short)
    }
}

fn describe_expr(e: &ScopeExpr, u: &ScopeUniverse, top: bool) -> String {
    match e {
        ScopeExpr::Scope(i) => u.name(*i).to_string(),
        ScopeExpr::Any(xs) | ScopeExpr::All(xs) => {
            let sep = if matches!(e, ScopeExpr::Any(_)) {
                " or "
            } else {
                " and "
            };
            let inner = xs
                .iter()
                .map(|x| describe_expr(x, u, false))
                .collect::<Vec<_>>()
                .join(sep);
            if top || xs.len() < 2 {
                inner
            } else {
                format!("({inner})")
            }
        }
    }
}

fn describe(a: &Alternative, u: &ScopeUniverse) -> String {
    let who = match a.principal {
        Some(Kind::User) => "a user token",
        Some(Kind::App) => "an app token",
        None => "a token",
    };
    match &a.scopes {
        Some(e) => format!("{who} with {}", describe_expr(e, u, true)),
        None => who.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::principal::Grant;
    use http::HeaderValue;
    use std::collections::BTreeMap;
    use std::sync::Arc;

    fn universe() -> ScopeUniverse {
        let mut implies = BTreeMap::new();
        implies.insert(
            "chat.spaces".to_string(),
            vec!["chat.spaces.readonly".to_string()],
        );
        ScopeUniverse::build(&implies, ["chat.bot", "chat.admin.spaces.readonly"])
    }

    fn principal(u: &ScopeUniverse, kind: Kind, scopes: &[&str]) -> Principal {
        let v = HeaderValue::from_static("x");
        Principal {
            kind,
            grant: Arc::new(Grant {
                scopes: u.grant(scopes.iter().copied()).set,
                effective: v.clone(),
                token_scopes: v,
            }),
            ..Principal::for_tests()
        }
    }

    /// The Google Chat "get space" method: user scopes, an app scope, an admin scope.
    fn get_space(u: &ScopeUniverse) -> Requirement {
        let s = |n| ScopeExpr::Scope(u.id(n).unwrap());
        Requirement::new(
            vec![
                Alternative {
                    principal: Some(Kind::User),
                    scopes: Some(ScopeExpr::Any(vec![
                        s("chat.spaces.readonly"),
                        s("chat.spaces"),
                    ])),
                    claims: None,
                },
                Alternative {
                    principal: Some(Kind::App),
                    scopes: Some(s("chat.bot")),
                    claims: None,
                },
                Alternative {
                    principal: Some(Kind::User),
                    scopes: Some(s("chat.admin.spaces.readonly")),
                    claims: None,
                },
            ],
            u,
        )
    }

    #[test]
    fn each_alternative_admits_its_own_principal_kind() {
        let u = universe();
        let r = get_space(&u);
        assert!(
            r.check(&principal(&u, Kind::User, &["chat.spaces"]))
                .is_ok()
        );
        assert!(r.check(&principal(&u, Kind::App, &["chat.bot"])).is_ok());
        assert!(
            r.check(&principal(&u, Kind::User, &["chat.admin.spaces.readonly"]))
                .is_ok()
        );
    }

    #[test]
    fn a_scope_valid_for_the_other_principal_kind_is_refused() {
        let u = universe();
        let r = get_space(&u);
        assert!(r.check(&principal(&u, Kind::User, &["chat.bot"])).is_err());
        assert!(
            r.check(&principal(&u, Kind::App, &["chat.spaces"]))
                .is_err()
        );
    }

    #[test]
    fn accepted_scopes_and_description_list_every_alternative() {
        let u = universe();
        let r = get_space(&u);
        assert_eq!(
            r.accepted_scopes,
            "chat.spaces.readonly chat.spaces chat.bot chat.admin.spaces.readonly"
        );
        assert_eq!(
            r.needs,
            "a user token with chat.spaces.readonly or chat.spaces; or an app token with chat.bot; or a user token with chat.admin.spaces.readonly"
        );
    }

    #[test]
    fn an_empty_requirement_accepts_any_valid_token() {
        let u = universe();
        let r = Requirement::new(
            vec![Alternative {
                principal: None,
                scopes: None,
                claims: None,
            }],
            &u,
        );
        assert!(r.check(&principal(&u, Kind::App, &[])).is_ok());
    }

    #[test]
    fn claims_unmet_by_a_principal_with_the_scopes_is_a_claims_shortfall_not_a_scope_one() {
        let u = universe();
        let spaces = ScopeExpr::Scope(u.id("chat.spaces").unwrap());
        // Condition 0: say, `groups contains "admins"`.
        let r = Requirement::new(
            vec![Alternative {
                principal: None,
                scopes: Some(spaces),
                claims: Some(ClaimExpr::Condition(0)),
            }],
            &u,
        );
        let mut p = principal(&u, Kind::User, &["chat.spaces"]);
        assert_eq!(r.check(&p), Err(Shortfall::Claims));
        p.conditions = crate::bits::BitSet::with_len(1);
        p.conditions.insert(0);
        assert_eq!(r.check(&p), Ok(()));
        let without_scope = Principal {
            conditions: p.conditions.clone(),
            ..principal(&u, Kind::User, &["chat.bot"])
        };
        assert_eq!(r.check(&without_scope), Err(Shortfall::Scopes));
    }
}
