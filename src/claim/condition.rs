//! One test of one claim, the distinct conditions of a configuration each with its bit, and
//! the any/all expressions routes write with them.

use super::ClaimPath;
use crate::bits::BitSet;
use serde_json::{Map, Value};

/// What a claim's value must be. A claim the token lacks meets no test.
#[derive(Debug)]
pub enum Test {
    /// The claim is this string, number or boolean (numbers compared by value: `1` is `1.0`).
    Equals(Value),
    /// The claim is one of these.
    OneOf(Vec<Value>),
    /// The claim is an array holding this value, or a space-delimited string holding it as
    /// one word (as `scope` is written).
    Contains(Value),
    /// The claim is a string starting with this, or an array holding such a string.
    Prefix(String),
    /// The claim is a string ending with this (an email domain: `@example.com`), or an array
    /// holding such a string.
    Suffix(String),
    /// The whole string matches this expression (anchored; the `regex` crate, linear time),
    /// or an array holds such a string.
    Matches(regex::Regex),
}

#[derive(Debug)]
pub struct Condition {
    pub path: ClaimPath,
    pub test: Test,
}

impl Condition {
    pub fn holds(&self, claims: &Map<String, Value>) -> bool {
        let Some(v) = self.path.find(claims) else {
            return false;
        };
        let strings = |f: &dyn Fn(&str) -> bool| match v {
            Value::String(s) => f(s),
            Value::Array(items) => items.iter().any(|i| i.as_str().is_some_and(f)),
            _ => false,
        };
        match &self.test {
            Test::Equals(x) => same(v, x),
            Test::OneOf(xs) => xs.iter().any(|x| same(v, x)),
            Test::Contains(x) => match v {
                Value::Array(items) => items.iter().any(|i| same(i, x)),
                Value::String(s) => x.as_str().is_some_and(|x| s.split(' ').any(|w| w == x)),
                _ => false,
            },
            Test::Prefix(p) => strings(&|s| s.starts_with(p.as_str())),
            Test::Suffix(p) => strings(&|s| s.ends_with(p.as_str())),
            Test::Matches(re) => strings(&|s| re.is_match(s)),
        }
    }

    /// In words, for `explain` and a refusal's log line: `groups contains "payments-admins"`.
    pub fn describe(&self) -> String {
        let (op, value) = match &self.test {
            Test::Equals(x) => ("is", x.to_string()),
            Test::OneOf(xs) => ("is one of", Value::Array(xs.clone()).to_string()),
            Test::Contains(x) => ("contains", x.to_string()),
            Test::Prefix(p) => ("starts with", format!("{p:?}")),
            Test::Suffix(p) => ("ends with", format!("{p:?}")),
            Test::Matches(re) => ("matches", format!("{:?}", unanchored(re.as_str()))),
        };
        format!("{} {op} {value}", self.path)
    }
}

/// A scalar compared with a claim's value: the same string or boolean, or the same number.
fn same(v: &Value, x: &Value) -> bool {
    match (v, x) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::String(_) | Value::Bool(_), _) => v == x,
        _ => false,
    }
}

/// The expression as written, without the anchors [`Conditions::matches`] added.
fn unanchored(re: &str) -> &str {
    re.strip_prefix("^(?:")
        .and_then(|r| r.strip_suffix(")$"))
        .unwrap_or(re)
}

/// The distinct conditions a configuration names, each with its bit in a principal's
/// [`BitSet`] of conditions met.
#[derive(Debug, Default)]
pub struct Conditions {
    list: Vec<Condition>,
}

impl Conditions {
    /// The bit of `c`: the one of an identical condition already added, or a new one.
    pub fn add(&mut self, c: Condition) -> u32 {
        let text = c.describe();
        if let Some(i) = self.list.iter().position(|d| d.describe() == text) {
            return i as u32;
        }
        self.list.push(c);
        (self.list.len() - 1) as u32
    }

    /// An anchored expression: the whole value must match.
    pub fn matches(pattern: &str) -> Result<regex::Regex, String> {
        regex::Regex::new(&format!("^(?:{pattern})$"))
            .map_err(|e| format!("`{pattern}` is not a regular expression: {e}"))
    }

    /// Which conditions these claims meet (done once per token, when it is verified).
    pub fn evaluate(&self, claims: &Map<String, Value>) -> BitSet {
        let mut met = BitSet::with_len(self.list.len());
        for (i, c) in self.list.iter().enumerate() {
            if c.holds(claims) {
                met.insert(i as u32);
            }
        }
        met
    }

    pub fn get(&self, i: u32) -> &Condition {
        &self.list[i as usize]
    }

    /// Every condition in words, in bit order: what a cached answer's bits mean (a reload
    /// that changes it cannot keep them).
    pub fn fingerprint(&self) -> String {
        self.list
            .iter()
            .map(Condition::describe)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A compiled `claims:` requirement: conditions combined with any/all, nested freely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimExpr {
    Condition(u32),
    Any(Vec<ClaimExpr>),
    All(Vec<ClaimExpr>),
}

impl ClaimExpr {
    pub fn eval(&self, met: &BitSet) -> bool {
        match self {
            ClaimExpr::Condition(i) => met.contains(*i),
            ClaimExpr::Any(xs) => xs.iter().any(|x| x.eval(met)),
            ClaimExpr::All(xs) => xs.iter().all(|x| x.eval(met)),
        }
    }

    /// Every condition named, in order of first appearance.
    pub fn conditions_into(&self, out: &mut Vec<u32>) {
        match self {
            ClaimExpr::Condition(i) => {
                if !out.contains(i) {
                    out.push(*i);
                }
            }
            ClaimExpr::Any(xs) | ClaimExpr::All(xs) => {
                xs.iter().for_each(|x| x.conditions_into(out))
            }
        }
    }

    /// In words: `groups contains "a" and (tid is "t1" or …)`.
    pub fn describe(&self, conditions: &Conditions, top: bool) -> String {
        match self {
            ClaimExpr::Condition(i) => conditions.get(*i).describe(),
            ClaimExpr::Any(xs) | ClaimExpr::All(xs) => {
                let sep = if matches!(self, ClaimExpr::Any(_)) {
                    " or "
                } else {
                    " and "
                };
                let inner: Vec<String> = xs.iter().map(|x| x.describe(conditions, false)).collect();
                if top || xs.len() < 2 {
                    inner.join(sep)
                } else {
                    format!("({})", inner.join(sep))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! Each test against the claim shapes providers issue (Okta groups, Keycloak roles,
    //! Entra tenant, Auth0 namespaced claims), present, absent and of the wrong type.
    use super::*;
    use serde_json::json;

    fn claims() -> Map<String, Value> {
        json!({
            "groups": ["Everyone", "payments-admins"],
            "realm_access": { "roles": ["auditor", "offline_access"] },
            "tid": "72f988bf-86f1-41af-91ab-2d7cd011db47",
            "email": "ada@example.com",
            "email_verified": true,
            "ver": 2,
            "scp": "User.Read Mail.Send",
            "https://example.com/roles": ["editor"],
        })
        .as_object()
        .unwrap()
        .clone()
    }

    fn holds(path: &str, test: Test) -> bool {
        Condition {
            path: ClaimPath::dotted(path).unwrap(),
            test,
        }
        .holds(&claims())
    }

    #[test]
    fn equals_and_one_of_compare_strings_numbers_and_booleans_by_value() {
        assert!(holds(
            "tid",
            Test::Equals(json!("72f988bf-86f1-41af-91ab-2d7cd011db47"))
        ));
        assert!(!holds("tid", Test::Equals(json!("other-tenant"))));
        assert!(holds("ver", Test::Equals(json!(2.0))));
        assert!(!holds("ver", Test::Equals(json!("2"))), "no coercion");
        assert!(holds("email_verified", Test::Equals(json!(true))));
        assert!(holds("ver", Test::OneOf(vec![json!(1), json!(2)])));
        assert!(
            !holds("groups", Test::Equals(json!("payments-admins"))),
            "an array never equals a scalar: `contains` says it"
        );
    }

    #[test]
    fn contains_looks_into_arrays_nested_claims_and_space_delimited_strings() {
        assert!(holds("groups", Test::Contains(json!("payments-admins"))));
        assert!(!holds("groups", Test::Contains(json!("payments"))));
        assert!(holds(
            "realm_access.roles",
            Test::Contains(json!("auditor"))
        ));
        assert!(holds("scp", Test::Contains(json!("Mail.Send"))));
        assert!(!holds("scp", Test::Contains(json!("Mail"))));
        assert!(holds(
            "https://example.com/roles",
            Test::Contains(json!("editor"))
        ));
    }

    #[test]
    fn prefix_suffix_and_matches_test_whole_strings_or_any_string_of_an_array() {
        assert!(holds("email", Test::Suffix("@example.com".into())));
        assert!(!holds("email", Test::Suffix("@example.org".into())));
        assert!(holds("groups", Test::Prefix("payments-".into())));
        let re = Conditions::matches("[a-z]+@example\\.com").unwrap();
        assert!(holds("email", Test::Matches(re)));
        // Anchored: a match inside the value is not enough.
        let inner = Conditions::matches("example").unwrap();
        assert!(!holds("email", Test::Matches(inner)));
        assert!(!holds("ver", Test::Prefix("2".into())), "not a string");
    }

    #[test]
    fn a_missing_claim_meets_no_condition() {
        assert!(!holds("department", Test::Equals(json!("x"))));
        assert!(!holds("realm_access.groups", Test::Contains(json!("x"))));
    }

    #[test]
    fn identical_conditions_share_a_bit_and_expressions_combine_them() {
        let mut cs = Conditions::default();
        let mut add = |path: &str, test| {
            cs.add(Condition {
                path: ClaimPath::dotted(path).unwrap(),
                test,
            })
        };
        let group = add("groups", Test::Contains(json!("payments-admins")));
        let tenant = add("tid", Test::Equals(json!("other-tenant")));
        assert_eq!(
            add("groups", Test::Contains(json!("payments-admins"))),
            group
        );
        let met = cs.evaluate(&claims());
        let both = ClaimExpr::All(vec![
            ClaimExpr::Condition(group),
            ClaimExpr::Condition(tenant),
        ]);
        let either = ClaimExpr::Any(vec![
            ClaimExpr::Condition(group),
            ClaimExpr::Condition(tenant),
        ]);
        assert!(!both.eval(&met));
        assert!(either.eval(&met));
        assert_eq!(
            both.describe(&cs, true),
            r#"groups contains "payments-admins" and tid is "other-tenant""#
        );
    }
}
