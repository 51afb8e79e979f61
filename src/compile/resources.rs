//! `protected_resources:` into the RFC 9728 documents the gateway publishes: each resource's
//! `scopes_supported` and `authorization_servers` come from the routes under its path unless
//! the configuration names them.

use crate::config::{ConfigError, File, schema};
use crate::resource::{ProtectedResources, Published, WELL_KNOWN};
use crate::route::{Pattern, Segment};
use crate::token::Issuer;
use bytes::Bytes;
use serde_json::{Map, Value, json};

pub fn compile(
    file: &File,
    issuers: &[Issuer],
    origin: &str,
) -> Result<ProtectedResources, ConfigError> {
    let mut published: Vec<Published> = Vec::new();
    for (i, r) in file.protected_resources.iter().enumerate() {
        let here =
            |msg: String| ConfigError::new(origin, format!("protected_resources[{i}]: {msg}"));
        let p = resource(file, issuers, r).map_err(here)?;
        if published.iter().any(|q| q.well_known == p.well_known) {
            return Err(here(format!(
                "`{}` is published at {} already",
                r.resource.0, p.well_known
            )));
        }
        published.push(p);
    }
    Ok(ProtectedResources::new(published))
}

fn resource(
    file: &File,
    issuers: &[Issuer],
    r: &schema::ProtectedResource,
) -> Result<Published, String> {
    let id = r.resource.0.as_str();
    let uri: http::Uri = id
        .parse()
        .map_err(|_| format!("`{id}` is not an absolute URL"))?;
    let authority = uri
        .authority()
        .filter(|_| uri.scheme().is_some())
        .ok_or_else(|| format!("`{id}` is not an absolute URL"))?;
    // RFC 9728 §1.2: https, no query, no fragment (http only for loopback, to try it out).
    if !super::is_secure_url(id, false) {
        return Err(format!(
            "`{id}`: use https (http only for loopback addresses)"
        ));
    }
    if uri.query().is_some() || id.contains('#') {
        return Err(format!(
            "`{id}`: a resource identifier has no query or fragment"
        ));
    }
    let prefix = uri.path().trim_end_matches('/').to_string();
    let prefix_segments: Vec<&str> = prefix.split('/').skip(1).collect();
    // The routes that serve requests under the resource's path.
    let routes: Vec<&schema::Route> = file
        .routes
        .iter()
        .filter(|route| route.auth == schema::Auth::Token)
        .filter(|route| {
            Pattern::parse(&route.matcher.path).is_ok_and(|p| reaches(&p, &prefix_segments))
        })
        .collect();
    let scopes: Vec<String> = match &r.scopes_supported {
        Some(s) => s.clone(),
        None => {
            let mut all: Vec<String> = Vec::new();
            for name in routes.iter().flat_map(|route| route.scopes()) {
                if !all.iter().any(|s| s == name) {
                    all.push(name.to_string());
                }
            }
            all
        }
    };
    let servers: Vec<String> = match &r.authorization_servers {
        Some(list) => list.iter().map(|s| s.0.clone()).collect(),
        None => {
            let mut all: Vec<String> = Vec::new();
            for route in &routes {
                let accepted = issuers
                    .iter()
                    .filter(|i| route.issuers.as_ref().is_none_or(|ids| ids.contains(&i.id)));
                for i in accepted {
                    if !all.contains(&i.iss) {
                        all.push(i.iss.clone());
                    }
                }
            }
            all
        }
    };
    let mut methods = vec!["header"];
    if file.tokens.query_parameter {
        methods.push("query");
    }
    let mut doc = Map::new();
    doc.insert("resource".into(), json!(id));
    if !servers.is_empty() {
        doc.insert("authorization_servers".into(), json!(servers));
    }
    doc.insert("scopes_supported".into(), json!(scopes));
    doc.insert("bearer_methods_supported".into(), json!(methods));
    let optional = [
        ("resource_name", r.resource_name.clone()),
        (
            "resource_documentation",
            r.resource_documentation.as_ref().map(|s| s.0.clone()),
        ),
        (
            "resource_policy_uri",
            r.resource_policy_uri.as_ref().map(|s| s.0.clone()),
        ),
        (
            "resource_tos_uri",
            r.resource_tos_uri.as_ref().map(|s| s.0.clone()),
        ),
    ];
    for (name, value) in optional {
        if let Some(v) = value {
            doc.insert(name.into(), Value::String(v));
        }
    }
    let well_known = format!("{WELL_KNOWN}{prefix}");
    let scheme = uri.scheme_str().unwrap_or("https");
    Ok(Published {
        challenge_parameter: format!("resource_metadata=\"{scheme}://{authority}{well_known}\""),
        prefix,
        well_known,
        document: Bytes::from(Value::Object(doc).to_string()),
    })
}

/// Whether a route with `pattern` can serve a path under `prefix`: each of the prefix's
/// segments is the route's static segment or taken by a parameter.
fn reaches(pattern: &Pattern, prefix: &[&str]) -> bool {
    for (i, want) in prefix.iter().enumerate() {
        match pattern.segments.get(i) {
            Some(Segment::Static(s)) if s == want => {}
            Some(Segment::Param(_)) => {}
            Some(Segment::CatchAll(_)) => return true,
            _ => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    fn published(resources: &str) -> Result<crate::resource::ProtectedResources, String> {
        let yaml = format!(
            r#"server: {{ listen: 127.0.0.1:1 }}
issuers:
  - {{ id: corp, issuer: https://as1.example.com, audiences: [x] }}
  - {{ id: partner, issuer: https://as2.example.net, audiences: [x] }}
upstreams: {{ api: {{ url: http://127.0.0.1:2 }} }}
routes:
  - {{ name: profile, match: {{ path: /v1/profile }}, upstream: api, require: {{ scopes: profile }} }}
  - {{ name: mail, match: {{ path: "/v1/{{user}}/email" }}, upstream: api, issuers: [corp], require: {{ scopes: {{ any: [email, phone] }} }} }}
  - {{ name: v2, match: {{ path: /v2/x }}, upstream: api, issuers: [partner], require: {{ scopes: v2 }} }}
  - {{ name: open, match: {{ path: /v1/health }}, upstream: api, auth: none }}
protected_resources:
{resources}"#
        );
        crate::compile::from_text(&yaml, "t")
            .map(|c| c.rules.resources)
            .map_err(|e| e.to_string())
    }

    fn doc(r: &crate::resource::ProtectedResources, path: &str) -> Value {
        serde_json::from_slice(r.document_at(path).expect(path)).unwrap()
    }

    #[test]
    fn a_resource_document_is_derived_from_the_routes_under_its_path() {
        let r = published(
            "  - { resource: https://resource.example.com/v1, resource_name: Example }\n  - { resource: \"https://resource.example.com/\" }",
        )
        .unwrap();
        let v1 = doc(&r, "/.well-known/oauth-protected-resource/v1");
        assert_eq!(v1["resource"], "https://resource.example.com/v1");
        assert_eq!(
            v1["authorization_servers"],
            serde_json::json!(["https://as1.example.com", "https://as2.example.net"])
        );
        assert_eq!(
            v1["scopes_supported"],
            serde_json::json!(["profile", "email", "phone"])
        );
        assert_eq!(
            v1["bearer_methods_supported"],
            serde_json::json!(["header"])
        );
        assert_eq!(v1["resource_name"], "Example");
        // The host's root: every route, the trailing slash dropped from the well-known URL.
        let root = doc(&r, "/.well-known/oauth-protected-resource");
        assert_eq!(root["resource"], "https://resource.example.com/");
        assert_eq!(
            root["scopes_supported"],
            serde_json::json!(["profile", "email", "phone", "v2"])
        );
        assert_eq!(
            r.challenge_for("/v1/alice/email"),
            Some(
                "resource_metadata=\"https://resource.example.com/.well-known/oauth-protected-resource/v1\""
            )
        );
        assert_eq!(
            r.challenge_for("/v2/x"),
            Some(
                "resource_metadata=\"https://resource.example.com/.well-known/oauth-protected-resource\""
            )
        );
    }

    #[test]
    fn a_resource_identifier_is_an_https_url_without_query_and_published_once() {
        for (bad, why) in [
            ("http://api.example.com", "use https"),
            ("https://api.example.com/?x=1", "no query or fragment"),
            ("api.example.com", "not an absolute URL"),
        ] {
            let e = published(&format!("  - {{ resource: \"{bad}\" }}")).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        let e = published(
            "  - { resource: https://a.example/v1 }\n  - { resource: https://b.example/v1/ }",
        )
        .unwrap_err();
        assert!(
            e.contains("published at /.well-known/oauth-protected-resource/v1 already"),
            "{e}"
        );
        // Loopback over http, to try it out.
        assert!(published("  - { resource: \"http://127.0.0.1:8080\" }").is_ok());
    }
}
