//! The configuration described from its types: the JSON Schema (`scopegate schema`,
//! committed as `docs/scopegate.schema.json` for editors) and the reference page made from
//! it (`docs/configuration.md`: every key with its type, default, an example and what it
//! does). Tests hold both files equal to what the code generates, so they cannot drift.

use super::examples;
use serde_json::{Map, Value};
use std::fmt::Write;

/// The JSON Schema of a configuration file.
pub fn schema() -> Value {
    let generator = schemars::generate::SchemaSettings::draft2020_12().into_generator();
    let mut schema = generator.into_root_schema_for::<super::File>();
    schema.insert("title".into(), "scopegate configuration".into());
    schema.to_value()
}

/// [`schema`] as the committed file's text.
pub fn schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&schema()).unwrap_or_default();
    text.push('\n');
    text
}

/// Defaults the code computes rather than the types (each side listener's own bounds,
/// `compile::SideListener`), by key.
const COMPUTED_DEFAULTS: &[(&str, &str)] = &[
    ("admin.limits.max_body_bytes", "65536"),
    ("admin.limits.max_connections", "256"),
    ("admin.limits.max_header_bytes", "16384"),
    ("admin.timeouts.body", "10s"),
    ("admin.timeouts.header", "10s"),
    ("admin.timeouts.idle", "60s"),
    ("decision.limits.max_body_bytes", "65536"),
    ("decision.limits.max_connections", "4096"),
    ("decision.limits.max_header_bytes", "65536"),
    ("decision.timeouts.body", "10s"),
    ("decision.timeouts.header", "10s"),
    ("decision.timeouts.idle", "75s"),
];

/// One documented key.
struct Row {
    key: String,
    kind: String,
    default: Option<String>,
    description: String,
}

/// Every documented key, in the schema's order.
fn rows() -> Vec<Row> {
    let schema = schema();
    let defs = schema
        .get("$defs")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut rows = Vec::new();
    walk(&schema, "", &defs, &mut rows, 0, &[]);
    rows
}

/// The reference page.
pub fn markdown() -> String {
    let rows = rows();
    let mut out = String::from(INTRO);
    let mut section = String::new();
    for row in &rows {
        let top = row
            .key
            .split(['.', '['])
            .next()
            .unwrap_or_default()
            .to_string();
        if top != section {
            let _ = write!(
                out,
                "\n## `{top}`\n\n| key | type | default | example | what it does |\n| --- | --- | --- | --- | --- |\n"
            );
            section = top;
        }
        let example = example(row).unwrap_or_else(|| "—".into());
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} | {} |",
            row.key,
            row.kind,
            row.default
                .as_deref()
                .map(code)
                .unwrap_or_else(|| "—".into()),
            example,
            cell(&row.description)
        );
    }
    out
}

/// The keys without a default and without an example (the reference's test wants none).
pub fn keys_without_example() -> Vec<String> {
    let rows = rows();
    rows.into_iter()
        .filter(|r| example(r).is_none())
        .map(|r| r.key)
        .collect()
}

fn example(row: &Row) -> Option<String> {
    if let Some((_, e)) = examples::EXAMPLES.iter().find(|(k, _)| *k == row.key) {
        return Some(code(e));
    }
    if let Some((_, last)) = row.key.rsplit_once(".claims.")
        && let Some((_, e)) = examples::CLAIM_EXAMPLES.iter().find(|(k, _)| *k == last)
    {
        return Some(code(e));
    }
    // A section is documented by its keys.
    if row.kind == "object"
        || row.kind.starts_with("list of object")
        || row.kind.starts_with("map of object")
    {
        return Some("(its keys below)".into());
    }
    row.default.as_deref().map(code)
}

const INTRO: &str = "# Configuration reference

Generated from the configuration's types (`scopegate schema --markdown`); a test keeps it
equal to the code. The same description as a JSON Schema is
[`scopegate.schema.json`](scopegate.schema.json) (`scopegate schema`): point your editor at
it, e.g. with the YAML language server's comment on the first line of your file (a path
relative to that file, or a URL where you publish the schema):

```yaml
# yaml-language-server: $schema=../docs/scopegate.schema.json
```

`scopegate check --config FILE` checks everything the schema cannot: references between
sections, URLs, patterns, and every rule of [the guide](guide.md). Keys are written
`parent.child`; `[]` is an item of a list and `<name>` a key you choose. Durations are
written `300ms`, `30s`, `5m` or `1h`; text values may use `${ENV}`.
";

/// Follows a `$ref` into `defs`.
fn resolve<'a>(schema: &'a Value, defs: &'a Map<String, Value>) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => r
            .rsplit('/')
            .next()
            .and_then(|name| defs.get(name))
            .map(|d| resolve(d, defs))
            .unwrap_or(schema),
        None => schema,
    }
}

/// The schema without its `null` alternative (an optional value), and whether it had one.
fn non_null<'a>(schema: &'a Value, defs: &'a Map<String, Value>) -> &'a Value {
    if let Some(any) = schema.get("anyOf").and_then(Value::as_array) {
        let rest: Vec<&Value> = any
            .iter()
            .filter(|s| s.get("type").and_then(Value::as_str) != Some("null"))
            .collect();
        if rest.len() == 1 {
            return resolve(rest[0], defs);
        }
    }
    resolve(schema, defs)
}

/// `within`: the named types the keys above are of (a type met again is not walked again).
fn walk(
    schema: &Value,
    prefix: &str,
    defs: &Map<String, Value>,
    rows: &mut Vec<Row>,
    depth: usize,
    within: &[&str],
) {
    let schema = non_null(schema, defs);
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    for (name, property) in properties {
        let key = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        let target = non_null(property, defs);
        // The field's own words, else its section's (a value type's description is for the
        // schema's readers, not a key's).
        let generic = property
            .get("$ref")
            .and_then(Value::as_str)
            .is_some_and(|r| {
                ["EnvString", "Duration", "Timestamp", "ScopeExpr"]
                    .iter()
                    .any(|t| r.ends_with(t))
            });
        let description = property
            .get("description")
            .or_else(|| (!generic).then(|| target.get("description")).flatten())
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let computed = COMPUTED_DEFAULTS
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, d)| d.to_string());
        rows.push(Row {
            key: key.clone(),
            kind: kind(property, defs),
            default: property
                .get("default")
                .filter(|d| !d.is_null())
                .filter(|d| d.as_object().is_none_or(|o| o.is_empty()) && !is_empty_list(d))
                .map(value_text)
                .or(computed),
            description,
        });
        // A recursive type (a claim condition's `any:` of conditions) is described once:
        // its nested keys are the ones above.
        let def = type_name(property);
        if depth > 6 || def.is_some_and(|d| within.contains(&d)) {
            continue;
        }
        let mut within = within.to_vec();
        within.extend(def);
        let within = &within[..];
        // Into objects, list items and map values.
        if target.get("properties").is_some() {
            walk(target, &key, defs, rows, depth + 1, within);
        } else if let Some(items) = target.get("items") {
            walk(items, &format!("{key}[]"), defs, rows, depth + 1, within);
        } else if let Some(values) = target.get("additionalProperties").filter(|v| v.is_object()) {
            walk(
                values,
                &format!("{key}.<name>"),
                defs,
                rows,
                depth + 1,
                within,
            );
        }
    }
}

/// The named type (`$defs`) a property holds: itself, optional, or as list items.
fn type_name(property: &Value) -> Option<&str> {
    fn direct(v: &Value) -> Option<&str> {
        v.get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.rsplit('/').next())
            .or_else(|| v.get("items").and_then(direct))
    }
    direct(property).or_else(|| {
        property
            .get("anyOf")
            .and_then(Value::as_array)?
            .iter()
            .find_map(direct)
    })
}

/// A default as it would be written in YAML: text bare, the rest as JSON (which YAML reads).
fn value_text(v: &Value) -> String {
    v.as_str()
        .map(str::to_string)
        .unwrap_or_else(|| v.to_string())
}

fn is_empty_list(v: &Value) -> bool {
    v.as_array().is_some_and(Vec::is_empty)
}

/// The type of a property, in words.
fn kind(schema: &Value, defs: &Map<String, Value>) -> String {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap_or_default();
        let target = resolve(schema, defs);
        return match name {
            "Duration" => "duration".into(),
            "EnvString" => "text".into(),
            "Timestamp" => "RFC 3339 time".into(),
            "ScopeExpr" => "scope expression".into(),
            "Address" => "`host:port` or `{ address, weight }`".into(),
            _ if target.get("enum").is_some() || target.get("oneOf").is_some() => {
                kind(target, defs)
            }
            _ => "object".into(),
        };
    }
    if let Some(any) = schema.get("anyOf").and_then(Value::as_array) {
        let kinds: Vec<String> = any
            .iter()
            .filter(|s| s.get("type").and_then(Value::as_str) != Some("null"))
            .map(|s| kind(s, defs))
            .collect();
        return kinds.join(" or ");
    }
    if let Some(values) = enumerated(schema) {
        return format!("one of {}", values.join(", "));
    }
    match schema.get("type") {
        Some(Value::String(t)) => match t.as_str() {
            "array" => format!(
                "list of {}",
                schema
                    .get("items")
                    .map(|i| kind(i, defs))
                    .unwrap_or_default()
            ),
            "object" => match schema.get("additionalProperties").filter(|v| v.is_object()) {
                Some(v) => format!("map of {}", kind(v, defs)),
                None => "object".into(),
            },
            "integer" => "integer".into(),
            "string" => match schema.get("format").and_then(Value::as_str) {
                Some("ip") => "IP address".into(),
                _ => "text".into(),
            },
            other => other.to_string(),
        },
        // An optional value: `["string", "null"]`, described as its other type.
        Some(Value::Array(types)) => {
            let kinds: Vec<String> = types
                .iter()
                .filter_map(Value::as_str)
                .filter(|t| *t != "null")
                .map(|t| {
                    let mut one = schema.clone();
                    one["type"] = Value::String(t.to_string());
                    kind(&one, defs)
                })
                .collect();
            kinds.join(" or ")
        }
        _ => "value".into(),
    }
}

/// The values of an enumeration (`enum`, or `oneOf` of constants).
fn enumerated(schema: &Value) -> Option<Vec<String>> {
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return Some(values.iter().map(|v| format!("`{}`", plain(v))).collect());
    }
    let one_of = schema.get("oneOf").and_then(Value::as_array)?;
    one_of
        .iter()
        .map(|v| {
            v.get("const")
                .or_else(|| v.get("enum").and_then(|e| e.get(0)))
                .map(|c| format!("`{}`", plain(c)))
        })
        .collect()
}

fn plain(v: &Value) -> String {
    v.as_str()
        .map(str::to_string)
        .unwrap_or_else(|| v.to_string())
}

fn code(s: &str) -> String {
    format!("`{}`", s.replace('|', "\\|"))
}

/// A description as one table cell: its first paragraph, on one line.
fn cell(description: &str) -> String {
    description
        .split("\n\n")
        .next()
        .unwrap_or_default()
        .replace('\n', " ")
        .replace('|', "\\|")
}
