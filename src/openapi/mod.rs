//! OpenAPI 3.0/3.1 documents as routes: `scopegate import openapi` writes a route per
//! operation (its path template, method and the scopes its `security` requirements name),
//! and `scopegate check --openapi` compares a configuration with a document. Plain
//! functions over the parsed document: no network.

mod compare;
mod emit;

pub use compare::{Comparison, compare};
pub use emit::routes_yaml;

use serde_json::Value;

/// What an operation requires, from its `security` (or the document's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// `security: []`, or an empty requirement object among the alternatives: no
    /// credential needed.
    Public,
    /// No `security` anywhere: the document does not say. Imported as "a valid token".
    Unspecified,
    /// A valid token, with scopes when the expression has any.
    Token(Expr),
}

/// Scopes: one, every one of a list, or any one of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    Scope(String),
    All(Vec<Expr>),
    Any(Vec<Expr>),
}

impl Expr {
    /// No scope at all: any valid token.
    pub const NONE: Expr = Expr::All(Vec::new());
}

/// One operation.
#[derive(Debug, Clone)]
pub struct Operation {
    /// Upper case (`GET`).
    pub method: String,
    /// The document's path template, after the server's base path (`/v1/users/{id}:undo`).
    pub template: String,
    /// As a route path pattern (`/v1/users/{id}`).
    pub pattern: String,
    pub operation_id: Option<String>,
    pub requirement: Requirement,
    /// A segment mixed a parameter with text (`{id}:undo`): the pattern takes any segment.
    pub widened: bool,
}

/// The operations of a document, and what it says about itself.
#[derive(Debug)]
pub struct Spec {
    pub title: String,
    pub version: String,
    pub openapi: String,
    pub operations: Vec<Operation>,
    /// Operations left out, each with why (a path the route patterns cannot express).
    pub skipped: Vec<String>,
}

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Reads an OpenAPI 3.0 or 3.1 document (JSON or YAML).
pub fn read(text: &str) -> Result<Spec, String> {
    let doc: Value = if text.trim_start().starts_with('{') {
        serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?
    } else {
        serde_saphyr::from_str(text).map_err(|e| format!("not YAML: {e}"))?
    };
    let openapi = doc["openapi"].as_str().unwrap_or_default().to_string();
    if !openapi.starts_with("3.") {
        return Err(match doc["swagger"].as_str() {
            Some(v) => format!("Swagger {v} is not supported: convert it to OpenAPI 3"),
            None => "not an OpenAPI 3 document (no `openapi: 3.x`)".into(),
        });
    }
    let base = base_path(&doc);
    let paths = doc["paths"]
        .as_object()
        .ok_or("the document has no `paths`")?;
    let mut operations = Vec::new();
    let mut skipped = Vec::new();
    for (template, item) in paths {
        let full = format!("{base}{template}");
        let (pattern, widened) = match pattern(&full) {
            Ok(p) => p,
            Err(why) => {
                skipped.push(format!("{full}: {why}"));
                continue;
            }
        };
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let security = op.get("security").or(doc.get("security"));
            operations.push(Operation {
                method: method.to_ascii_uppercase(),
                template: full.clone(),
                pattern: pattern.clone(),
                operation_id: op["operationId"].as_str().map(str::to_string),
                requirement: requirement(security),
                widened,
            });
        }
    }
    Ok(Spec {
        title: doc["info"]["title"]
            .as_str()
            .unwrap_or("untitled")
            .to_string(),
        version: doc["info"]["version"].as_str().unwrap_or("?").to_string(),
        openapi,
        operations,
        skipped,
    })
}

/// The path of the first server's URL (`https://api.example.com/v1` → `/v1`): the paths of
/// the document are relative to it. A templated server URL contributes nothing.
fn base_path(doc: &Value) -> String {
    let url = doc["servers"][0]["url"].as_str().unwrap_or_default();
    let path = match url.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("", |i| &rest[i..]),
        None => url,
    };
    if path.contains('{') {
        return String::new();
    }
    path.trim_end_matches('/').to_string()
}

/// A route pattern for a path template: each `{name}` segment a parameter (named with the
/// characters patterns allow); a segment mixing a parameter with text becomes a parameter
/// too (`widened`). Fails when the result is not a valid pattern.
fn pattern(template: &str) -> Result<(String, bool), String> {
    let mut widened = false;
    let mut used: Vec<String> = Vec::new();
    let segments: Vec<String> = template
        .split('/')
        .map(|seg| {
            let Some(open) = seg.find('{') else {
                return seg.to_string();
            };
            let close = seg[open..].find('}').map_or(seg.len(), |c| open + c);
            let whole = open == 0 && close + 1 == seg.len();
            widened |= !whole;
            let mut name: String = seg[open + 1..close]
                .trim_start_matches(['+', '*'])
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            if name.is_empty() {
                name = "param".into();
            }
            while used.contains(&name) {
                name.push('_');
            }
            used.push(name.clone());
            format!("{{{name}}}")
        })
        .collect();
    let pattern = segments.join("/");
    crate::route::Pattern::parse(&pattern)?;
    Ok((pattern, widened))
}

/// What `security` requires: the alternatives (any) of requirement objects whose schemes'
/// scopes are all needed.
fn requirement(security: Option<&Value>) -> Requirement {
    let Some(list) = security.and_then(Value::as_array) else {
        return Requirement::Unspecified;
    };
    if list.is_empty() {
        return Requirement::Public;
    }
    let mut alternatives: Vec<Expr> = Vec::new();
    for object in list {
        let Some(schemes) = object.as_object() else {
            continue;
        };
        if schemes.is_empty() {
            // `{}` among the alternatives: authentication is optional.
            return Requirement::Public;
        }
        let mut scopes: Vec<String> = Vec::new();
        for s in schemes.values().filter_map(Value::as_array).flatten() {
            if let Some(s) = s.as_str()
                && !scopes.iter().any(|x| x == s)
            {
                scopes.push(s.to_string());
            }
        }
        let alternative = match scopes.len() {
            0 => return Requirement::Token(Expr::NONE),
            1 => Expr::Scope(scopes.remove(0)),
            _ => Expr::All(scopes.into_iter().map(Expr::Scope).collect()),
        };
        if !alternatives.contains(&alternative) {
            alternatives.push(alternative);
        }
    }
    Requirement::Token(match alternatives.len() {
        0 => Expr::NONE,
        1 => alternatives.remove(0),
        _ => Expr::Any(alternatives),
    })
}

#[cfg(test)]
mod tests;
