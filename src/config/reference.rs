//! The configuration described from its types: the JSON Schema (`scopegate schema`,
//! committed as `docs/scopegate.schema.json` for editors) and the reference page made from
//! it (`docs/configuration.md`: every key with its type, default, an example and what it
//! does). Tests hold both files equal to what the code generates, so they cannot drift.

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

/// Examples for keys that have no default, by key (`issuers[].issuer`).
const EXAMPLES: &[(&str, &str)] = &[
    ("cluster.hmac_key", "${SCOPEGATE_CLUSTER_KEY}"),
    ("cluster.hmac_key_previous", "${SCOPEGATE_CLUSTER_KEY_OLD}"),
    ("cluster.password", "${REDIS_PASSWORD}"),
    ("cluster.redis", "rediss://redis.internal:6379/0"),
    ("cluster.tls.ca", "/etc/scopegate/redis-ca.pem"),
    ("cluster.tls.cert", "/etc/scopegate/redis-client.pem"),
    ("cluster.tls.key", "/etc/scopegate/redis-client.key"),
    ("cluster.username", "scopegate"),
    ("credentials[].client_id", "legacy-reporting"),
    ("credentials[].header", "X-API-Key"),
    ("credentials[].id", "reporting-key"),
    ("credentials[].issuer", "corp"),
    ("credentials[].not_after", "2027-06-30T00:00:00Z"),
    ("credentials[].orgs", "[acme]"),
    ("credentials[].query", "api_key"),
    ("credentials[].scheme", "Zoho-authtoken"),
    ("credentials[].scopes", "[repo]"),
    (
        "credentials[].sha256",
        "b2b8bf26d7e2c1599f58e182a07b953bb6c2b90a499cc2ca36bda55f3f5bbe25",
    ),
    ("credentials[].subject", "legacy-reporting"),
    ("decision.grpc_listen", "127.0.0.1:9101"),
    ("decision.listen", "127.0.0.1:9100"),
    ("decision.shared_secret", "${SCOPEGATE_DECISION_SECRET}"),
    ("issuers[].audiences", "[https://api.example.com]"),
    ("issuers[].id", "corp"),
    ("issuers[].introspection.client_id", "gateway"),
    (
        "issuers[].introspection.client_secret",
        "${SCOPEGATE_INTROSPECTION_SECRET}",
    ),
    (
        "issuers[].introspection.endpoint",
        "https://auth.example.com/oauth2/introspect",
    ),
    ("issuers[].introspection.expires_in_field", "expires_in"),
    ("issuers[].introspection.serve_stale_on_error", "60s"),
    ("issuers[].issuer", "https://auth.example.com"),
    (
        "issuers[].jwks_uri",
        "https://auth.example.com/.well-known/jwks.json",
    ),
    ("issuers[].scopes_supported", "[repo, read:org]"),
    ("issuers[].token_pattern", "gh[ou]_[A-Za-z0-9]{36}"),
    ("issuers[].token_prefix", "1000."),
    ("organization_policy.source.access_token", "${POLICY_TOKEN}"),
    (
        "organization_policy.source.file",
        "/etc/scopegate/organizations.yaml",
    ),
    (
        "organization_policy.source.url",
        "https://policies.internal/organizations.json",
    ),
    ("organizations.<name>.approved_clients", "[ci-dashboard]"),
    (
        "protected_resources[].authorization_servers",
        "[https://auth.example.com]",
    ),
    ("protected_resources[].resource", "https://api.example.com"),
    (
        "protected_resources[].resource_documentation",
        "https://docs.example.com/api",
    ),
    ("protected_resources[].resource_name", "Example API"),
    (
        "protected_resources[].resource_policy_uri",
        "https://example.com/privacy",
    ),
    (
        "protected_resources[].resource_tos_uri",
        "https://example.com/terms",
    ),
    ("protected_resources[].scopes_supported", "[repo, read:org]"),
    ("routes[].issuers", "[corp]"),
    ("routes[].match.methods", "[GET, POST]"),
    ("routes[].match.path", "/orgs/{org}/repos"),
    ("routes[].max_body_bytes", "1048576"),
    ("routes[].name", "list-org-repos"),
    ("routes[].require.any[].principal", "app"),
    ("routes[].require.any[].scopes", "chat.bot"),
    ("routes[].require.org.header", "X-Org"),
    ("routes[].require.org.name", "acme"),
    ("routes[].require.org.param", "org"),
    ("routes[].require.principal", "user"),
    ("routes[].require.scopes", "{ any: [repo, public_repo] }"),
    ("routes[].upstream", "api"),
    ("server.listen", "0.0.0.0:8080"),
    ("server.tls.cert", "/etc/scopegate/tls.crt"),
    ("server.tls.key", "/etc/scopegate/tls.key"),
    ("server.trusted_proxies", "[10.0.0.2]"),
    ("tokens.revocation.poll.access_token", "${SET_POLL_TOKEN}"),
    (
        "tokens.revocation.poll.audience",
        "https://gateway.example.com",
    ),
    (
        "tokens.revocation.poll.endpoint",
        "https://auth.example.com/sets/poll",
    ),
    ("tokens.revocation.poll.issuer", "corp"),
    (
        "tokens.revocation.poll.jwks_uri",
        "https://auth.example.com/.well-known/jwks.json",
    ),
    (
        "tokens.revocation.poll.transmitter",
        "https://auth.example.com",
    ),
    (
        "tokens.revocation.push.audience",
        "https://gateway.example.com",
    ),
    ("tokens.revocation.push.issuer", "corp"),
    (
        "tokens.revocation.push.jwks_uri",
        "https://auth.example.com/.well-known/jwks.json",
    ),
    (
        "tokens.revocation.push.transmitter",
        "https://auth.example.com",
    ),
    (
        "traces.otlp_endpoint",
        "http://otel-collector:4318/v1/traces",
    ),
    ("upstreams.<name>.url", "http://10.0.0.10:3000"),
    (
        "upstreams.<name>.addresses",
        "[10.0.0.10:3000, { address: 10.0.0.11:3000, weight: 2 }]",
    ),
    ("upstreams.<name>.health.check.path", "/healthz"),
    ("upstreams.<name>.timeouts.connect", "500ms"),
    ("upstreams.<name>.timeouts.response", "10s"),
    ("upstreams.<name>.tls.ca", "/etc/scopegate/internal-ca.pem"),
    (
        "upstreams.<name>.tls.cert",
        "/etc/scopegate/gateway-client.pem",
    ),
    (
        "upstreams.<name>.tls.key",
        "/etc/scopegate/gateway-client.key",
    ),
    ("upstreams.<name>.tls.server_name", "api.internal"),
    ("routes[].match.host", "api.example.com"),
    (
        "routes[].require.claims",
        "{ claim: groups, contains: payments-admins }",
    ),
    (
        "routes[].require.any[].claims",
        "{ claim: idtyp, equals: app }",
    ),
    (
        "issuers[].app_tokens.claims",
        "{ claim: gty, equals: client-credentials }",
    ),
    (
        "forward.identity_assertion.key",
        "/etc/scopegate/assertion-key.pem",
    ),
    (
        "forward.identity_assertion.previous_key",
        "/etc/scopegate/assertion-key-2026-06.pem",
    ),
    (
        "forward.identity_assertion.issuer",
        "https://gateway.example.com",
    ),
    (
        "forward.identity_assertion.audience",
        "https://api.internal",
    ),
    (
        "forward.identity_assertion.jwks_path",
        "/.well-known/scopegate/jwks.json",
    ),
    ("forward.identity_assertion.claims", "[email, groups]"),
    ("cors.max_age", "10m"),
    (
        "cors.allow_origins",
        "[https://app.example.com, https://*.example.com]",
    ),
    ("routes[].cors.allow_origins", "[https://admin.example.com]"),
    ("routes[].cors.max_age", "1h"),
    ("rate_limits[].per", "client_id"),
    ("rate_limits[].requests", "1000"),
    ("rate_limits[].every", "1m"),
    ("rate_limits[].burst", "100"),
    ("rate_limits[].name", "per-client"),
    ("routes[].rate_limits[].per", "claim:tid"),
    ("routes[].rate_limits[].requests", "10"),
    ("routes[].rate_limits[].every", "1s"),
    ("routes[].rate_limits[].burst", "20"),
    ("routes[].rate_limits[].name", "search-per-tenant"),
    (
        "forward.claim_headers",
        "{ X-Auth-Email: \"{email}\", X-Auth-Groups: \"{groups}\" }",
    ),
    ("routes[].rewrite", "/v2/users/{id}"),
    ("routes[].strip_prefix", "/api"),
];

/// One documented key.
struct Row {
    key: String,
    kind: String,
    default: Option<String>,
    description: String,
}

/// The reference page.
pub fn markdown() -> String {
    let schema = schema();
    let defs = schema
        .get("$defs")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut rows = Vec::new();
    walk(&schema, "", &defs, &mut rows, 0, &[]);
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
    let schema = schema();
    let defs = schema
        .get("$defs")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut rows = Vec::new();
    walk(&schema, "", &defs, &mut rows, 0, &[]);
    rows.into_iter()
        .filter(|r| example(r).is_none())
        .map(|r| r.key)
        .collect()
}

/// Examples of a claim condition's keys, wherever conditions are written
/// (`routes[].require.claims`, `require.any[].claims`, `issuers[].app_tokens.claims`).
const CLAIM_EXAMPLES: &[(&str, &str)] = &[
    (
        "any",
        "[{ claim: groups, contains: payments-admins }, { claim: realm_access.roles, contains: auditor }]",
    ),
    (
        "all",
        "[{ claim: tid, equals: 72f988bf-86f1-41af-91ab-2d7cd011db47 }, { claim: email_verified, equals: true }]",
    ),
    ("claim", "realm_access.roles"),
    ("contains", "auditor"),
    ("equals", "client-credentials"),
    ("matches", "[a-z]+@example\\.com"),
    ("one_of", "[1.0, 2.0]"),
    ("prefix", "service-account-"),
    ("suffix", "\"@example.com\""),
];

fn example(row: &Row) -> Option<String> {
    if let Some((_, e)) = EXAMPLES.iter().find(|(k, _)| *k == row.key) {
        return Some(code(e));
    }
    if let Some((_, last)) = row.key.rsplit_once(".claims.")
        && let Some((_, e)) = CLAIM_EXAMPLES.iter().find(|(k, _)| *k == last)
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
