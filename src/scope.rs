//! Scope names interned into bit sets, implications closed once at load, and requirement
//! expressions evaluated with a few word operations per request.

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A set of configured scopes, one bit per scope of the [`ScopeUniverse`].
pub type ScopeSet = crate::bits::BitSet;

/// Every scope the configuration names (in routes or implications), with the transitive
/// closure of `scopes.implies` for each.
#[derive(Debug, Default)]
pub struct ScopeUniverse {
    names: Vec<String>,
    index: HashMap<String, u32>,
    /// `closure[i]`: scope i and everything it implies, transitively.
    closure: Vec<ScopeSet>,
}

/// A token's scopes after expansion: the set for decisions and the sorted names for headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Granted {
    pub set: ScopeSet,
    /// Token scopes plus implied ones, sorted and deduplicated.
    pub effective: Vec<String>,
}

impl ScopeUniverse {
    pub fn build<'a>(
        implies: &BTreeMap<String, Vec<String>>,
        used: impl IntoIterator<Item = &'a str>,
    ) -> ScopeUniverse {
        let mut u = ScopeUniverse::default();
        for (k, vs) in implies {
            u.intern(k);
            for v in vs {
                u.intern(v);
            }
        }
        for s in used {
            u.intern(s);
        }
        let n = u.names.len();
        // Direct edges, then a fixed point: small graphs, computed once.
        let mut closure: Vec<ScopeSet> = (0..n)
            .map(|i| {
                let mut s = ScopeSet::with_len(n);
                s.insert(i as u32);
                s
            })
            .collect();
        for (k, vs) in implies {
            let ki = u.index[k.as_str()];
            for v in vs {
                closure[ki as usize].insert(u.index[v.as_str()]);
            }
        }
        loop {
            let mut changed = false;
            for i in 0..n {
                let mut acc = closure[i].clone();
                for j in 0..n {
                    if j != i && closure[i].contains(j as u32) {
                        acc.union_with(&closure[j]);
                    }
                }
                if acc != closure[i] {
                    closure[i] = acc;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        u.closure = closure;
        u
    }

    fn intern(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        let i = self.names.len() as u32;
        self.names.push(name.to_string());
        self.index.insert(name.to_string(), i);
        i
    }

    pub fn id(&self, name: &str) -> Option<u32> {
        self.index.get(name).copied()
    }

    pub fn name(&self, id: u32) -> &str {
        &self.names[id as usize]
    }

    /// Expands a token's scopes through the implications.
    pub fn grant<'a>(&self, token_scopes: impl IntoIterator<Item = &'a str>) -> Granted {
        let mut set = ScopeSet::with_len(self.names.len());
        let mut effective = BTreeSet::new();
        for s in token_scopes {
            if let Some(&i) = self.index.get(s) {
                set.union_with(&self.closure[i as usize]);
            } else {
                effective.insert(s.to_string());
            }
        }
        for (i, name) in self.names.iter().enumerate() {
            if set.contains(i as u32) {
                effective.insert(name.clone());
            }
        }
        Granted {
            set,
            effective: effective.into_iter().collect(),
        }
    }
}

/// A compiled scope requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopeExpr {
    Scope(u32),
    Any(Vec<ScopeExpr>),
    All(Vec<ScopeExpr>),
}

impl ScopeExpr {
    pub fn eval(&self, set: &ScopeSet) -> bool {
        match self {
            ScopeExpr::Scope(i) => set.contains(*i),
            ScopeExpr::Any(xs) => xs.iter().any(|x| x.eval(set)),
            ScopeExpr::All(xs) => xs.iter().all(|x| x.eval(set)),
        }
    }

    /// Every scope named, in order of first appearance.
    pub fn names_into(&self, out: &mut Vec<u32>) {
        match self {
            ScopeExpr::Scope(i) => {
                if !out.contains(i) {
                    out.push(*i);
                }
            }
            ScopeExpr::Any(xs) | ScopeExpr::All(xs) => xs.iter().for_each(|x| x.names_into(out)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn github() -> ScopeUniverse {
        let mut implies = BTreeMap::new();
        implies.insert(
            "repo".to_string(),
            vec!["repo:status".to_string(), "public_repo".to_string()],
        );
        implies.insert("admin:org".to_string(), vec!["write:org".to_string()]);
        implies.insert("write:org".to_string(), vec!["read:org".to_string()]);
        ScopeUniverse::build(&implies, ["read:audit_log"])
    }

    #[test]
    fn implications_are_transitive() {
        let u = github();
        let g = u.grant(["admin:org"]);
        assert!(g.set.contains(u.id("read:org").unwrap()));
        assert_eq!(g.effective, vec!["admin:org", "read:org", "write:org"]);
    }

    #[test]
    fn narrower_scopes_do_not_imply_broader_ones() {
        let u = github();
        let g = u.grant(["read:org"]);
        assert!(!g.set.contains(u.id("write:org").unwrap()));
    }

    #[test]
    fn unknown_token_scopes_are_kept_for_headers_but_grant_nothing() {
        let u = github();
        let g = u.grant(["openid", "repo"]);
        assert_eq!(
            g.effective,
            vec!["openid", "public_repo", "repo", "repo:status"]
        );
        assert!(u.id("openid").is_none());
    }

    #[test]
    fn cycles_in_implications_terminate_and_make_scopes_equivalent() {
        let mut implies = BTreeMap::new();
        implies.insert("a".to_string(), vec!["b".to_string()]);
        implies.insert("b".to_string(), vec!["a".to_string()]);
        let u = ScopeUniverse::build(&implies, []);
        assert!(u.grant(["b"]).set.contains(u.id("a").unwrap()));
    }

    #[test]
    fn expressions_nest_any_and_all() {
        let u = github();
        let id = |n| ScopeExpr::Scope(u.id(n).unwrap());
        let e = ScopeExpr::All(vec![
            ScopeExpr::Any(vec![id("repo"), id("public_repo")]),
            id("read:org"),
        ]);
        assert!(e.eval(&u.grant(["repo", "write:org"]).set));
        assert!(e.eval(&u.grant(["public_repo", "read:org"]).set));
        assert!(!e.eval(&u.grant(["repo"]).set));
        assert!(!e.eval(&u.grant(["read:org", "repo:status"]).set));
        assert!(ScopeExpr::All(vec![]).eval(&u.grant([]).set));
    }

    #[test]
    fn many_scopes_span_several_words() {
        let used: Vec<String> = (0..200).map(|i| format!("s{i}")).collect();
        let u = ScopeUniverse::build(&BTreeMap::new(), used.iter().map(String::as_str));
        let g = u.grant(["s150"]);
        assert!(g.set.contains(u.id("s150").unwrap()));
        assert!(!g.set.contains(u.id("s149").unwrap()));
    }
}
