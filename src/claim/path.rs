//! Where a claim is: a top-level name, then the members of nested objects
//! (`realm_access.roles`, `resource_access.<client>.roles`).

use serde_json::{Map, Value};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClaimPath(Box<[Box<str>]>);

impl ClaimPath {
    /// `realm_access.roles` is two names; a claim named by a URL (Auth0's namespaced claims,
    /// `https://example.com/roles`) is one name, dots and all. A name with dots that is no
    /// URL is written as a list ([`ClaimPath::parts`]).
    pub fn dotted(s: &str) -> Result<ClaimPath, String> {
        if s.starts_with("https://") || s.starts_with("http://") {
            return ClaimPath::parts(&[s]);
        }
        ClaimPath::parts(&s.split('.').collect::<Vec<_>>())
    }

    /// Each part one member name, as written.
    pub fn parts(parts: &[&str]) -> Result<ClaimPath, String> {
        if parts.is_empty() || parts.iter().any(|p| p.is_empty()) {
            return Err(format!(
                "`{}` is not a claim path: names separated by dots, none empty",
                parts.join(".")
            ));
        }
        Ok(ClaimPath(parts.iter().map(|p| (*p).into()).collect()))
    }

    /// The claim's value, when the token has it.
    pub fn find<'a>(&self, claims: &'a Map<String, Value>) -> Option<&'a Value> {
        let (first, rest) = self.0.split_first()?;
        let mut v = claims.get(first.as_ref())?;
        for name in rest {
            v = v.as_object()?.get(name.as_ref())?;
        }
        Some(v)
    }
}

impl fmt::Display for ClaimPath {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        if self.0.iter().any(|p| p.contains('.')) && self.0.len() > 1 {
            let quoted: Vec<String> = self.0.iter().map(|p| format!("{p:?}")).collect();
            return write!(f, "[{}]", quoted.join(", "));
        }
        f.write_str(&self.0.join("."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims() -> Map<String, Value> {
        json!({
            "realm_access": { "roles": ["auditor"] },
            "resource_access": { "my.client": { "roles": ["admin"] } },
            "https://example.com/roles": ["editor"],
            "tid": "t1",
        })
        .as_object()
        .unwrap()
        .clone()
    }

    #[test]
    fn dots_walk_into_nested_objects_and_a_url_is_one_name() {
        let c = claims();
        let roles = ClaimPath::dotted("realm_access.roles").unwrap();
        assert_eq!(roles.find(&c), Some(&json!(["auditor"])));
        let url = ClaimPath::dotted("https://example.com/roles").unwrap();
        assert_eq!(url.find(&c), Some(&json!(["editor"])));
        assert_eq!(ClaimPath::dotted("tid.x").unwrap().find(&c), None);
        assert_eq!(ClaimPath::dotted("missing").unwrap().find(&c), None);
    }

    #[test]
    fn a_name_with_dots_is_reached_as_a_list_and_shown_as_one() {
        let path = ClaimPath::parts(&["resource_access", "my.client", "roles"]).unwrap();
        assert_eq!(path.find(&claims()), Some(&json!(["admin"])));
        assert_eq!(
            path.to_string(),
            r#"["resource_access", "my.client", "roles"]"#
        );
        assert!(ClaimPath::dotted("a..b").is_err());
        assert!(ClaimPath::parts(&[]).is_err());
    }
}
