//! A route's requirement and the decision whether a principal meets it.

use crate::principal::{Kind, Principal};
use crate::scope::{ScopeExpr, ScopeUniverse};

/// One way to satisfy a route: an optional principal kind and an optional scope expression.
#[derive(Debug, Clone)]
pub struct Alternative {
    pub principal: Option<Kind>,
    pub scopes: Option<ScopeExpr>,
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

    /// `true` when some alternative accepts this principal.
    pub fn allows(&self, p: &Principal) -> bool {
        self.alternatives.iter().any(|a| {
            a.principal.is_none_or(|k| k == p.kind)
                && a.scopes.as_ref().is_none_or(|e| e.eval(&p.grant.scopes))
        })
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
                },
                Alternative {
                    principal: Some(Kind::App),
                    scopes: Some(s("chat.bot")),
                },
                Alternative {
                    principal: Some(Kind::User),
                    scopes: Some(s("chat.admin.spaces.readonly")),
                },
            ],
            u,
        )
    }

    #[test]
    fn each_alternative_admits_its_own_principal_kind() {
        let u = universe();
        let r = get_space(&u);
        assert!(r.allows(&principal(&u, Kind::User, &["chat.spaces"])));
        assert!(r.allows(&principal(&u, Kind::App, &["chat.bot"])));
        assert!(r.allows(&principal(&u, Kind::User, &["chat.admin.spaces.readonly"])));
    }

    #[test]
    fn a_scope_valid_for_the_other_principal_kind_is_refused() {
        let u = universe();
        let r = get_space(&u);
        assert!(!r.allows(&principal(&u, Kind::User, &["chat.bot"])));
        assert!(!r.allows(&principal(&u, Kind::App, &["chat.spaces"])));
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
            }],
            &u,
        );
        assert!(r.allows(&principal(&u, Kind::App, &[])));
    }
}
