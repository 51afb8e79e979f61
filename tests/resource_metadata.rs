//! RFC 9728 protected resource metadata, as a client meets it: the RFC's own examples (the
//! path-suffixed well-known URL, the document's members, the `resource_metadata` challenge)
//! and an MCP-style client that knows nothing but the API's URL — 401 → metadata →
//! authorization server discovery → token for the resource (RFC 8707) → 200 — against the
//! real authorization server.

mod support;

use serde_json::Value;
use support::*;

struct World {
    _auth: AuthServer,
    _upstream: Upstream,
    gw: TestGateway,
    /// The resource identifiers: the API's root, and its `/v1` part.
    root: String,
    v1: String,
}

fn world() -> World {
    let auth = AuthServer::start();
    let upstream = Upstream::start();
    let listen = free_port();
    let root = format!("http://127.0.0.1:{listen}");
    let v1 = format!("{root}/v1");
    let yaml = format!(
        r#"server:
  listen: "127.0.0.1:{listen}"
admin:
  listen: "127.0.0.1:{admin}"
issuers:
  - id: corp
    issuer: "{issuer}"
    audiences: ["{root}", "{v1}"]
    algorithms: [RS256]
upstreams:
  api: {{ url: "http://{up}" }}
routes:
  - {{ name: health, match: {{ path: /health }}, upstream: api, auth: none }}
  - {{ name: repos, match: {{ path: "/v1/orgs/{{org}}/repos" }}, upstream: api, require: {{ scopes: {{ any: [repo, public_repo] }} }} }}
  - {{ name: audit, match: {{ path: /audit }}, upstream: api, require: {{ scopes: read:audit_log }} }}
protected_resources:
  - {{ resource: "{v1}", resource_name: "Repositories API", resource_documentation: "https://docs.example.com/v1" }}
  - {{ resource: "{root}" }}
"#,
        admin = free_port(),
        issuer = auth.url,
        up = upstream.addr,
    );
    let gw = TestGateway::start(&yaml);
    World {
        _auth: auth,
        _upstream: upstream,
        gw,
        root,
        v1,
    }
}

/// The `resource_metadata` URL of a challenge (RFC 9728 §5.1).
fn resource_metadata(challenge: &str) -> Option<String> {
    let (_, rest) = challenge.split_once("resource_metadata=\"")?;
    Some(rest.split('"').next()?.to_string())
}

#[test]
fn the_documents_and_challenges_follow_rfc_9728s_examples() {
    let w = world();
    // §3.1: the well-known path goes between the host and the resource's path.
    let r = get(
        &format!("{}/.well-known/oauth-protected-resource/v1", w.root),
        None,
    );
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-type"), "application/json");
    let doc: Value = r.json().unwrap();
    // §3.3: `resource` is exactly the identifier the URL was made from.
    assert_eq!(doc["resource"], w.v1);
    // §2: the members, derived from the routes under /v1 and the issuers they accept.
    assert_eq!(
        doc["authorization_servers"],
        serde_json::json!([w._auth.url])
    );
    assert_eq!(
        doc["scopes_supported"],
        serde_json::json!(["repo", "public_repo"])
    );
    assert_eq!(
        doc["bearer_methods_supported"],
        serde_json::json!(["header"])
    );
    assert_eq!(doc["resource_name"], "Repositories API");
    assert_eq!(doc["resource_documentation"], "https://docs.example.com/v1");
    // The host's root: every protected route.
    let root: Value = get(
        &format!("{}/.well-known/oauth-protected-resource", w.root),
        None,
    )
    .json()
    .unwrap();
    assert_eq!(root["resource"], w.root);
    assert_eq!(
        root["scopes_supported"],
        serde_json::json!(["repo", "public_repo", "read:audit_log"])
    );
    // No other well-known path is served, and the documents are read-only.
    let unknown = get(
        &format!("{}/.well-known/oauth-protected-resource/v2", w.root),
        None,
    );
    assert_eq!(unknown.status(), 404);
    let post = reqwest::blocking::Client::new()
        .post(format!("{}/.well-known/oauth-protected-resource", w.root))
        .send()
        .unwrap();
    assert_eq!(post.status(), 405);
    assert_eq!(header(&post, "allow"), "GET, HEAD");

    // §5.1: every 401 challenge points to the metadata of the resource the request is for.
    let missing = get(&format!("{}/v1/orgs/acme/repos", w.root), None);
    assert_eq!(missing.status(), 401);
    assert_eq!(
        header(&missing, "www-authenticate"),
        format!(
            "Bearer realm=\"scopegate\", resource_metadata=\"{}/.well-known/oauth-protected-resource/v1\"",
            w.root
        )
    );
    let bad = get(&format!("{}/audit", w.root), Some("not-a-token"));
    assert_eq!(bad.status(), 401);
    let challenge = header(&bad, "www-authenticate");
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert_eq!(
        resource_metadata(&challenge).as_deref(),
        Some(format!("{}/.well-known/oauth-protected-resource", w.root).as_str())
    );
    // A 403 for a missing scope says which resource too.
    let token = w._auth.client_token("full", "read:org", &w.v1);
    let forbidden = get(&format!("{}/v1/orgs/acme/repos", w.root), Some(&token));
    assert_eq!(forbidden.status(), 403);
    let challenge = header(&forbidden, "www-authenticate");
    assert!(challenge.contains("insufficient_scope"), "{challenge}");
    assert!(challenge.contains("resource_metadata="), "{challenge}");
    // Counted and logged like any request, never decided.
    assert!(
        w.gw.metrics().contains(
            "scopegate_requests_total{front_end=\"proxy\",outcome=\"allowed\",route=\"-\"} 2"
        ),
        "{}",
        w.gw.metrics()
    );
}

#[test]
fn an_mcp_style_client_goes_from_a_401_to_a_token_and_a_200_knowing_only_the_url() {
    let w = world();
    let http = reqwest::blocking::Client::new();
    let api = format!("{}/v1/orgs/acme/repos", w.root);

    // 1. The API refuses and says where its metadata is.
    let first = http.get(&api).send().unwrap();
    assert_eq!(first.status(), 401);
    let metadata_url =
        resource_metadata(&header(&first, "www-authenticate")).expect("resource_metadata");

    // 2. The metadata names the resource, its authorization server and the scopes.
    let metadata: Value = http.get(&metadata_url).send().unwrap().json().unwrap();
    let resource = metadata["resource"].as_str().unwrap();
    assert!(
        api.starts_with(resource),
        "RFC 9728 §3.3: the resource is the one asked"
    );
    let issuer = metadata["authorization_servers"][0].as_str().unwrap();
    let scope = metadata["scopes_supported"][0].as_str().unwrap();

    // 3. The authorization server's metadata (RFC 8414, else OpenID Connect discovery).
    let discovered: Value = [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ]
    .iter()
    .find_map(|p| {
        let r = http.get(format!("{issuer}{p}")).send().ok()?;
        r.status().is_success().then(|| r.json().ok()).flatten()
    })
    .expect("the authorization server publishes its metadata");
    assert_eq!(discovered["issuer"], issuer);
    let token_endpoint = discovered["token_endpoint"].as_str().unwrap();

    // 4. A token for exactly this resource (RFC 8707), with an advertised scope.
    let answer: Value = http
        .post(token_endpoint)
        .basic_auth("full", Some("full-secret"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", scope),
            ("resource", resource),
        ])
        .send()
        .unwrap()
        .json()
        .unwrap();
    let token = answer["access_token"].as_str().expect("a token");

    // 5. The API answers, and the upstream sees who called.
    let done = http.get(&api).bearer_auth(token).send().unwrap();
    assert_eq!(done.status(), 200);
    let seen: Value = done.json().unwrap();
    assert_eq!(seen["headers"]["x-auth-scopes"], serde_json::json!([scope]));
}
