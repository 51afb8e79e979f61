//! Claim → header mapping (`forward.claim_headers`): a header value written as a template of
//! claims, rendered once per token when it is verified and kept with it.

use super::ClaimPath;
use http::HeaderValue;
use serde_json::{Map, Value};

/// The longest value a mapped header may have; a longer one is not sent at all (a cut list
/// of groups or a cut email would say something the token did not).
pub const MAX_VALUE_BYTES: usize = 4096;

#[derive(Debug)]
enum Part {
    Text(String),
    Claim(ClaimPath),
}

/// `"{email}"`, `"{preferred_username} <{email}>"`, `"{realm_access.roles}"`.
#[derive(Debug)]
pub struct HeaderTemplate {
    parts: Vec<Part>,
}

impl HeaderTemplate {
    pub fn parse(s: &str) -> Result<HeaderTemplate, String> {
        let mut parts = Vec::new();
        let mut rest = s;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let close = rest[open..]
                .find('}')
                .ok_or_else(|| format!("`{s}`: a `{{` without its `}}`"))?;
            let name = &rest[open + 1..open + close];
            parts.push(Part::Claim(
                ClaimPath::dotted(name).map_err(|e| format!("`{s}`: {e}"))?,
            ));
            rest = &rest[open + close + 1..];
        }
        if rest.contains('}') {
            return Err(format!("`{s}`: a `}}` without its `{{`"));
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        if !parts.iter().any(|p| matches!(p, Part::Claim(_))) {
            return Err(format!(
                "`{s}` names no claim: write it as `{{claim}}` (`{{email}}`)"
            ));
        }
        if let Some(Part::Text(t)) = parts
            .iter()
            .find(|p| matches!(p, Part::Text(t) if HeaderValue::from_str(t).is_err()))
        {
            return Err(format!("`{t}` cannot be part of a header value"));
        }
        Ok(HeaderTemplate { parts })
    }

    /// The value for these claims; `None` when a claim it names is absent, an object, or
    /// when the value has a control character (CR, LF…) or is over [`MAX_VALUE_BYTES`].
    pub fn render(&self, claims: &Map<String, Value>) -> Option<HeaderValue> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Claim(path) => scalar_or_list(path.find(claims)?, &mut out)?,
            }
            if out.len() > MAX_VALUE_BYTES {
                return None;
            }
        }
        if out.chars().any(char::is_control) {
            return None;
        }
        HeaderValue::from_str(&out).ok()
    }
}

/// A string as it is, a number or boolean as JSON writes it, an array of those joined with
/// `,` (as oauth2-proxy sends groups).
fn scalar_or_list(v: &Value, out: &mut String) -> Option<()> {
    match v {
        Value::String(s) => out.push_str(s),
        Value::Number(_) | Value::Bool(_) => out.push_str(&v.to_string()),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                match item {
                    Value::Array(_) | Value::Object(_) | Value::Null => return None,
                    _ => scalar_or_list(item, out)?,
                }
            }
        }
        Value::Object(_) | Value::Null => return None,
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims() -> Map<String, Value> {
        json!({
            "email": "ada@example.com",
            "preferred_username": "ada",
            "groups": ["payments-admins", "Everyone"],
            "tid": "t1",
            "ver": 2,
            "realm_access": { "roles": ["auditor"] },
            "name": "Ada\r\nX-Auth-Subject: root",
            "long": "x".repeat(MAX_VALUE_BYTES + 1),
        })
        .as_object()
        .unwrap()
        .clone()
    }

    fn render(t: &str) -> Option<String> {
        HeaderTemplate::parse(t)
            .unwrap()
            .render(&claims())
            .map(|v| v.to_str().unwrap().to_string())
    }

    #[test]
    fn claims_fill_the_template_and_arrays_are_joined_with_commas() {
        assert_eq!(render("{email}").unwrap(), "ada@example.com");
        assert_eq!(
            render("{preferred_username} <{email}>").unwrap(),
            "ada <ada@example.com>"
        );
        assert_eq!(render("{groups}").unwrap(), "payments-admins,Everyone");
        assert_eq!(render("{realm_access.roles}").unwrap(), "auditor");
        assert_eq!(render("v{ver}").unwrap(), "v2");
    }

    #[test]
    fn an_absent_claim_an_object_a_line_break_or_an_overlong_value_sends_no_header() {
        assert_eq!(render("{department}"), None);
        assert_eq!(render("{email} {department}"), None);
        assert_eq!(render("{realm_access}"), None);
        assert_eq!(render("{name}"), None, "CR LF never reach a header");
        assert_eq!(render("{long}"), None);
    }

    #[test]
    fn a_template_must_name_a_claim_and_close_its_braces() {
        assert!(HeaderTemplate::parse("fixed").is_err());
        assert!(HeaderTemplate::parse("{email").is_err());
        assert!(HeaderTemplate::parse("email}").is_err());
        assert!(HeaderTemplate::parse("{}").is_err());
        assert!(HeaderTemplate::parse("a\n{email}").is_err());
    }
}
