//! `claims:` rules of `require:` — each condition checked once (a claim path, exactly one
//! test, scalar values, a regular expression that compiles) and given its bit.

use crate::claim::{ClaimExpr, ClaimPath, Condition, Conditions, Test};
use crate::config::schema::{ClaimName, ClaimRule};
use serde_json::Value;

const TESTS: &str = "`equals`, `one_of`, `contains`, `prefix`, `suffix` or `matches`";

pub fn expr(rule: &ClaimRule, conditions: &mut Conditions) -> Result<ClaimExpr, String> {
    let tests = [
        rule.equals.is_some(),
        rule.one_of.is_some(),
        rule.contains.is_some(),
        rule.prefix.is_some(),
        rule.suffix.is_some(),
        rule.matches.is_some(),
    ]
    .iter()
    .filter(|t| **t)
    .count();
    match (&rule.any, &rule.all, &rule.claim) {
        (Some(xs), None, None) if tests == 0 => Ok(ClaimExpr::Any(list(xs, "any", conditions)?)),
        (None, Some(xs), None) if tests == 0 => Ok(ClaimExpr::All(list(xs, "all", conditions)?)),
        (None, None, Some(name)) => {
            let path = match name {
                ClaimName::Path(p) => ClaimPath::dotted(p)?,
                ClaimName::Parts(parts) => {
                    ClaimPath::parts(&parts.iter().map(String::as_str).collect::<Vec<_>>())?
                }
            };
            if tests != 1 {
                return Err(format!(
                    "a condition on `{path}` takes exactly one of {TESTS}"
                ));
            }
            let test = test(rule).map_err(|e| format!("`{path}`: {e}"))?;
            Ok(ClaimExpr::Condition(
                conditions.add(Condition { path, test }),
            ))
        }
        _ => Err(format!(
            "a claim condition is `claim:` with one of {TESTS}, or `any:` / `all:` of conditions"
        )),
    }
}

fn list(
    rules: &[ClaimRule],
    key: &str,
    conditions: &mut Conditions,
) -> Result<Vec<ClaimExpr>, String> {
    if rules.is_empty() {
        return Err(format!("`{key}: []` holds no condition"));
    }
    rules.iter().map(|r| expr(r, conditions)).collect()
}

fn test(rule: &ClaimRule) -> Result<Test, String> {
    if let Some(v) = &rule.equals {
        return Ok(Test::Equals(scalar(v)?));
    }
    if let Some(vs) = &rule.one_of {
        if vs.is_empty() {
            return Err("`one_of: []` is never met".into());
        }
        return Ok(Test::OneOf(
            vs.iter().map(scalar).collect::<Result<_, _>>()?,
        ));
    }
    if let Some(v) = &rule.contains {
        return Ok(Test::Contains(scalar(v)?));
    }
    if let Some(p) = &rule.prefix {
        return Ok(Test::Prefix(p.clone()));
    }
    if let Some(p) = &rule.suffix {
        return Ok(Test::Suffix(p.clone()));
    }
    let pattern = rule.matches.as_deref().unwrap_or_default();
    Ok(Test::Matches(Conditions::matches(pattern)?))
}

/// A value a claim is compared with: a string, a number or a boolean.
fn scalar(v: &Value) -> Result<Value, String> {
    match v {
        Value::String(_) | Value::Number(_) | Value::Bool(_) => Ok(v.clone()),
        other => Err(format!(
            "compares with a string, a number or a boolean, not {other}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(yaml: &str) -> ClaimRule {
        serde_saphyr::from_str(yaml).unwrap()
    }

    fn compile(yaml: &str) -> Result<ClaimExpr, String> {
        expr(&rule(yaml), &mut Conditions::default())
    }

    #[test]
    fn conditions_nest_and_each_names_one_claim_with_one_test() {
        let e = compile(
            "all: [ { claim: tid, equals: t1 }, { any: [ { claim: groups, contains: a }, { claim: email, suffix: '@example.com' } ] } ]",
        )
        .unwrap();
        assert!(matches!(e, ClaimExpr::All(ref xs) if xs.len() == 2));
        let path = compile("{ claim: [resource_access, my.client, roles], contains: admin }");
        assert!(path.is_ok());
    }

    #[test]
    fn a_condition_without_one_test_or_with_a_bad_value_is_refused_with_why() {
        let e = compile("{ claim: tid }").unwrap_err();
        assert!(e.contains("exactly one of"), "{e}");
        let e = compile("{ claim: tid, equals: a, prefix: b }").unwrap_err();
        assert!(e.contains("exactly one of"), "{e}");
        let e = compile("{ claim: groups, contains: [a, b] }").unwrap_err();
        assert!(e.contains("a string, a number or a boolean"), "{e}");
        let e = compile("{ claim: email, matches: '(' }").unwrap_err();
        assert!(e.contains("not a regular expression"), "{e}");
        let e = compile("{ any: [] }").unwrap_err();
        assert!(e.contains("holds no condition"), "{e}");
        let e = compile("{ any: [ { claim: a, equals: b } ], claim: c }").unwrap_err();
        assert!(e.contains("or `any:` / `all:`"), "{e}");
        let e = compile("{ claim: 'a..b', equals: x }").unwrap_err();
        assert!(e.contains("not a claim path"), "{e}");
    }
}
