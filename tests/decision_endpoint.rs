//! The decision endpoint behind the proxies teams already run, with the shipped
//! configurations as they are: real nginx (`auth_request`) and Caddy (`forward_auth`) from
//! the OS packages in front of a real upstream; Envoy's `ext_authz` gRPC API through a
//! client generated from Envoy's protos; each caller's HTTP conventions directly. Every
//! protection the proxy gives is checked at the client and at the upstream, per caller:
//! the same decisions (a JWT, an opaque token, a legacy key, an organization refusal, a
//! revoked token), identity headers that no client can spoof or invent (underscore
//! spellings and Caddy's placeholders included), the strip list, credentials on public
//! routes, the decided target forwarded instead of the client's spelling, divergent paths and
//! oversized bodies refused, and every call counted and logged under its front end.

mod support;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use support::proxies::{IDENTITY, Proxy};
use support::*;

const SECRET: &str = "decision-secret-0123456789";
const LEGACY_KEY: &str = "legacy-key-0123";
const TOKEN_REVOKED: &str = "https://schemas.openid.net/secevent/oauth/event-type/token-revoked";

struct World {
    _auth: AuthServer,
    upstream: Upstream,
    _jwks: JsonServer,
    gw: TestGateway,
    /// host:port of the HTTP front ends, and of the gRPC one.
    decision: String,
    grpc: String,
    tokens: Tokens,
}

struct Tokens {
    alice_jwt: String,
    alice_opaque: String,
    bob_jwt: String,
    revoked: String,
}

fn world() -> World {
    let auth = AuthServer::start();
    let upstream = Upstream::start();
    let tx = scopegate::dev::DevIssuer::new(TRANSMITTER.into(), GATEWAY_AUD.into());
    let jwks = JsonServer::start(tx.jwks());
    let (decision, grpc) = (
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
    );
    let digest = |s: &str| {
        scopegate::token::hash(s)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let yaml = Template::corp(&[API, OPAQUE_API])
        .issuer("introspection: { client_id: gateway, client_secret: gateway-secret }")
        .section(&format!(
            "decision:\n  listen: \"{decision}\"\n  grpc_listen: \"{grpc}\"\n  shared_secret: \"{SECRET}\""
        ))
        .section(
            "tokens:\n  query_parameter: true\n  revocation:\n    push:\n      transmitter: \"https://transmitter.scopegate.test\"\n      jwks_uri: \"{jwks}\"\n      audience: \"https://gateway.scopegate.test\"",
        )
        .section("protected_resources:\n  - { resource: \"https://api.example.com\" }")
        .section(&format!(
            "credentials:\n  - {{ id: legacy, header: X-API-Key, sha256: {}, subject: legacy-bot, scopes: [repo], orgs: [acme] }}",
            digest(LEGACY_KEY)
        ))
        .routes(
            "  - name: repos\n    match: { path: \"/orgs/{org}/repos\" }\n    upstream: api\n    require: { scopes: repo, org: { param: org } }\n  - name: upload\n    match: { methods: [POST], path: /upload }\n    upstream: api\n    require: { scopes: repo }\n    max_body_bytes: 100\n  - name: health\n    match: { path: /health }\n    upstream: api\n    auth: none",
        );
    let yaml = config(&yaml.yaml(), &auth, &upstream).replace("{jwks}", &jwks.url);
    let gw = TestGateway::start(&yaml);
    let tokens = Tokens {
        alice_jwt: auth.user_token("alice", "full", "repo", API),
        alice_opaque: auth.user_token("alice", "full", "repo", OPAQUE_API),
        bob_jwt: auth.user_token("bob", "full", "repo", API),
        revoked: auth.user_token("alice", "full", "repo", OPAQUE_API),
    };
    // Revoked by a pushed Security Event Token naming the token's digest.
    let now = scopegate::clock::unix_now();
    let event = json!({TOKEN_REVOKED: {"subject": {"format": "opaque",
        "id": URL_SAFE_NO_PAD.encode(scopegate::token::hash(&tokens.revoked))}}});
    let set = tx.sign(
        "secevent+jwt",
        &json!({"iss": TRANSMITTER, "aud": GATEWAY_AUD, "iat": now, "jti": "decision-1", "events": event}),
    );
    assert_eq!(gw.push_set(&set).0, 202);
    World {
        _auth: auth,
        upstream,
        _jwks: jwks,
        gw,
        decision,
        grpc,
        tokens,
    }
}

/// One client request through a caller, and what must come of it.
struct Case {
    what: &'static str,
    credential: Option<(&'static str, String)>,
    path: &'static str,
    /// Allowed: the identity the upstream sees (every other identity header must be absent
    /// or empty); refused: the status and, where the caller passes it, the `error`.
    expect: Result<Vec<(&'static str, &'static str)>, (u16, &'static str)>,
}

fn cases(t: &Tokens) -> Vec<Case> {
    let bearer = |t: &str| Some(("authorization", format!("Bearer {t}")));
    vec![
        Case {
            what: "a JWT",
            credential: bearer(&t.alice_jwt),
            path: "/orgs/acme/repos",
            expect: Ok(vec![
                ("x-auth-subject", "alice"),
                ("x-auth-client-id", "full"),
                ("x-auth-org", "acme"),
                ("x-auth-principal", "user"),
            ]),
        },
        Case {
            what: "an opaque token",
            credential: bearer(&t.alice_opaque),
            path: "/orgs/acme/repos",
            expect: Ok(vec![("x-auth-subject", "alice"), ("x-auth-org", "acme")]),
        },
        Case {
            what: "a legacy key",
            credential: Some(("x-api-key", LEGACY_KEY.to_string())),
            path: "/orgs/acme/repos",
            // The key has no client: the client's spoofed X-Auth-Client-Id must be gone too.
            expect: Ok(vec![
                ("x-auth-subject", "legacy-bot"),
                ("x-auth-issuer", "credential:legacy"),
            ]),
        },
        Case {
            what: "an organization refusal",
            credential: bearer(&t.bob_jwt),
            path: "/orgs/acme/repos",
            expect: Err((403, "not_a_member")),
        },
        Case {
            what: "a revoked token",
            credential: bearer(&t.revoked),
            path: "/orgs/acme/repos",
            expect: Err((401, "invalid_token")),
        },
        Case {
            what: "no credential",
            credential: None,
            path: "/orgs/acme/repos",
            expect: Err((401, "unauthorized")),
        },
    ]
}

/// Headers every client request carries that must never reach the API: spoofed identity
/// headers, underscore spellings of them, headers other layers trust (method override,
/// original URL), prefixed internal headers, and a client's own trace context.
fn hostile_headers() -> Vec<(&'static str, &'static str)> {
    let mut h: Vec<(&str, &str)> = IDENTITY.iter().map(|h| (*h, "mallory")).collect();
    h.extend([
        ("X_auth_org", "evil-org"),
        ("X_auth_scopes", "admin"),
        ("X-HTTP-Method-Override", "DELETE"),
        ("X-Original-URL", "/admin"),
        ("X-Forwarded-Host", "evil.example"),
        ("X-Envoy-Internal", "true"),
        ("X-Middleware-Subrequest", "middleware"),
        ("X-WEBAUTH-USER", "admin"),
        ("X-Consumer-Username", "admin"),
    ]);
    h
}

/// That `headers` (the upstream's record: lower-case names → values) holds none of the
/// hostile headers' names or values, and the identity expected: these values for a caller
/// (`Some`, other identity headers as the gateway set them), none at all for an anonymous
/// one (`None`: every identity header absent or empty).
fn assert_clean(what: &str, headers: &Value, identity: Option<&[(&str, &str)]>) {
    let map = headers.as_object().unwrap();
    for (name, values) in map {
        let values: Vec<&str> = values
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert!(
            !name.contains('_'),
            "{what}: {name} reached the API: {headers}"
        );
        for (hostile, _) in hostile_headers() {
            let hostile = hostile.to_ascii_lowercase();
            if IDENTITY.iter().any(|i| i.eq_ignore_ascii_case(&hostile)) {
                continue;
            }
            assert_ne!(*name, hostile, "{what}: {name} reached the API");
        }
        for v in &values {
            // No spoofed value, and no placeholder text a caller wrote for a missing answer.
            assert!(
                !["mallory", "evil-org", "admin", "DELETE", "/admin"].contains(v),
                "{what}: {name}: {v} reached the API"
            );
            assert!(!v.contains('{'), "{what}: {name}: {v}: a placeholder");
        }
    }
    for h in IDENTITY {
        let h = h.to_ascii_lowercase();
        let seen = &headers[&h];
        match identity {
            Some(identity) => {
                if let Some((_, v)) = identity.iter().find(|(n, _)| *n == h) {
                    assert_eq!(*seen, json!([v]), "{what}: {h}");
                }
            }
            // Absent, or empty (Caddy sets the empty answer).
            None => assert!(
                seen.is_null() || *seen == json!([""]),
                "{what}: {h} is {seen}"
            ),
        }
    }
}

/// Plays the cases through a proxy at `url`; returns (allowed, denied) as counted.
fn play_through(w: &World, url: &str, caller: &str, passes_body: bool) -> (usize, usize) {
    let client = reqwest::blocking::Client::new();
    let (mut allowed, mut denied) = (0, 0);
    for c in cases(&w.tokens) {
        let before = w.upstream.count();
        let mut req = client.get(format!("{url}{}", c.path));
        for (k, v) in hostile_headers() {
            req = req.header(k, v);
        }
        if let Some((k, v)) = &c.credential {
            req = req.header(*k, v);
        }
        let r = req.send().unwrap();
        let status = r.status().as_u16();
        let challenge = header(&r, "www-authenticate");
        let body = r.text().unwrap_or_default();
        let what = format!("{caller}, {}", c.what);
        match &c.expect {
            Ok(identity) => {
                assert_eq!(status, 200, "{what}: {body}");
                let seen = w.upstream.seen.lock().unwrap().last().cloned().unwrap();
                assert_clean(&what, &seen["headers"], Some(identity));
                let id = &seen["headers"]["x-request-id"];
                assert!(id.as_array().is_some_and(|a| a.len() == 1), "{what}: {id}");
                allowed += 1;
            }
            Err((want, error)) => {
                assert_eq!(status, *want, "{what}: {body}");
                assert_eq!(w.upstream.count(), before, "{what}: reached the upstream");
                if *want == 401 {
                    assert!(
                        challenge.starts_with("Bearer realm=\"scopegate\""),
                        "{what}: {challenge}"
                    );
                }
                if passes_body {
                    let body: Value = serde_json::from_str(&body).unwrap();
                    assert_eq!(body["error"], *error, "{what}");
                }
                denied += 1;
            }
        }
    }
    (allowed, denied)
}

/// A client request through a caller, sent as raw bytes (an HTTP client library would
/// resolve the dot segments itself): the status, what the upstream saw (when reached), and
/// the answer's headers (lower-case names).
fn through(
    w: &World,
    url: &str,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: Option<Vec<u8>>,
) -> (
    u16,
    Option<Value>,
    std::collections::HashMap<String, String>,
) {
    use std::io::{Read, Write};
    let before = w.upstream.count();
    let addr = url.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut req = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    let body = body.unwrap_or_default();
    if !body.is_empty() {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    // The proxy may answer before it reads the body (a refused request).
    let _ = s.write_all(&body);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).to_string();
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no answer: {text:?}"));
    let answer = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let seen = (w.upstream.count() > before)
        .then(|| w.upstream.seen.lock().unwrap().last().cloned().unwrap());
    (status, seen, answer)
}

/// What the proxy forwards and what the caller forwards agree: public-route credentials,
/// the decided target, divergent paths, oversized bodies, query credentials.
fn forwarding_protections(w: &World, url: &str, caller: &str, is_nginx: bool) {
    // nginx passes a decision's 401 and 403 and turns every other refusal into a 500.
    let refused = |status: u16| if is_nginx { 500 } else { status };
    let what = |s: &str| format!("{caller}: {s}");

    // A public route: credentials that were not checked do not reach the API, and no
    // identity is invented for the anonymous caller.
    let (status, seen, _) = through(
        w,
        url,
        "GET",
        "/health?access_token=not-checked&page=2",
        &[
            ("authorization", "Bearer not-checked"),
            ("x-api-key", "not-checked-either"),
        ],
        None,
    );
    assert_eq!(status, 200, "{}", what("public route"));
    let seen = seen.expect("forwarded");
    let h = &seen["headers"];
    assert!(
        h["authorization"].is_null(),
        "{}: {h}",
        what("public route")
    );
    assert!(h["x-api-key"].is_null(), "{}: {h}", what("public route"));
    assert_eq!(seen["query"], "page=2", "{}", what("public route query"));
    assert_clean(&what("public route"), h, None);
    // Other schemes are not the gateway's credentials: they pass.
    let (_, seen, _) = through(
        w,
        url,
        "GET",
        "/health",
        &[("authorization", "Basic dTpw")],
        None,
    );
    assert_eq!(
        seen.unwrap()["headers"]["authorization"],
        json!(["Basic dTpw"])
    );

    // The decided target is forwarded, not the client's spelling.
    let auth = format!("Bearer {}", w.tokens.alice_jwt);
    let (status, seen, _) = through(
        w,
        url,
        "GET",
        "/orgs/acme/./repos/../repos?page=2",
        &[("authorization", &auth)],
        None,
    );
    assert_eq!(status, 200, "{}", what("dot segments"));
    let seen = seen.unwrap();
    assert_eq!(
        seen["path"],
        "/orgs/acme/repos",
        "{}",
        what("decided target")
    );
    assert_eq!(seen["query"], "page=2");

    // A target whose RFC 3986 resolution differs from the path matched is refused.
    let (status, seen, _) = through(
        w,
        url,
        "GET",
        "/orgs/evil//../acme/repos",
        &[("authorization", &auth)],
        None,
    );
    assert_eq!(status, refused(400), "{}", what("divergent path"));
    assert!(seen.is_none(), "{}", what("divergent path reached the API"));

    // A query credential: not forwarded, and the answer is private (RFC 6750 §2.3) where
    // the caller can set it.
    let target = format!(
        "/orgs/acme/repos?access_token={}&page=3",
        w.tokens.alice_jwt
    );
    let (status, seen, answer) = through(w, url, "GET", &target, &[], None);
    assert_eq!(status, 200, "{}", what("query credential"));
    assert_eq!(seen.unwrap()["query"], "page=3");
    if is_nginx {
        assert_eq!(
            answer.get("cache-control").map(String::as_str),
            Some("private"),
            "{}",
            what("cache")
        );
    }

    // A route's body limit holds in decision mode too: the declared length is refused.
    let (status, seen, _) = through(
        w,
        url,
        "POST",
        "/upload",
        &[("authorization", &auth)],
        Some(vec![b'x'; 1000]),
    );
    assert_eq!(
        status,
        refused(413),
        "{}",
        what("body over the route's limit")
    );
    assert!(seen.is_none());
    let (status, _, _) = through(
        w,
        url,
        "POST",
        "/upload",
        &[("authorization", &auth)],
        Some(vec![b'x'; 50]),
    );
    assert_eq!(status, 200, "{}", what("body within the limit"));
}

#[test]
fn nginx_and_caddy_with_the_shipped_configurations_forward_only_what_the_proxy_would() {
    let w = world();
    let upstream = w.upstream.addr.to_string();
    let nginx = Proxy::nginx(&w.decision, &upstream, SECRET);
    // nginx passes the status and the challenge, not the decision's body.
    assert_eq!(play_through(&w, &nginx.url, "nginx", false), (3, 3));
    forwarding_protections(&w, &nginx.url, "nginx", true);
    let caddy = Proxy::caddy(&w.decision, &upstream, SECRET);
    // Caddy passes the decision's whole answer.
    assert_eq!(play_through(&w, &caddy.url, "caddy", true), (3, 3));
    forwarding_protections(&w, &caddy.url, "caddy", false);
    // Every call is counted under its front end, in the families the alerts read.
    let metrics = w.gw.metrics();
    for line in [
        "scopegate_requests_total{front_end=\"nginx\",outcome=\"allowed\",route=\"repos\"} 5",
        "scopegate_requests_total{front_end=\"forward_auth\",outcome=\"401\",route=\"repos\"} 2",
        "scopegate_requests_total{front_end=\"forward_auth\",outcome=\"400\",route=\"-\"} 1",
        "scopegate_refusals_total{front_end=\"nginx\",reason=\"not_a_member\"} 1",
        "scopegate_refusals_total{front_end=\"forward_auth\",reason=\"payload_too_large\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} missing in\n{metrics}");
    }
    resource_metadata_through(&nginx.url, "nginx");
    resource_metadata_through(&caddy.url, "caddy");
}

/// RFC 9728 through a caller: the well-known URL answered by the decision listener, and the
/// 401 challenge pointing to it.
fn resource_metadata_through(url: &str, caller: &str) {
    let r = get(&format!("{url}/.well-known/oauth-protected-resource"), None);
    assert_eq!(r.status(), 200, "{caller}");
    let doc: Value = r.json().unwrap();
    assert_eq!(doc["resource"], "https://api.example.com", "{caller}");
    assert_eq!(doc["scopes_supported"], json!(["repo"]), "{caller}");
    let refused = get(&format!("{url}/orgs/acme/repos"), None);
    assert_eq!(refused.status(), 401, "{caller}");
    assert!(
        header(&refused, "www-authenticate").contains(
            "resource_metadata=\"https://api.example.com/.well-known/oauth-protected-resource\""
        ),
        "{caller}: {}",
        header(&refused, "www-authenticate")
    );
}

/// A call to the decision endpoint as a caller makes it.
fn call(w: &World, path: &str, headers: &[(&str, &str)]) -> reqwest::blocking::Response {
    let mut req = reqwest::blocking::Client::new().get(format!("http://{}{path}", w.decision));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().unwrap()
}

#[test]
fn each_callers_conventions_name_the_original_request() {
    let w = world();
    let auth = format!("Bearer {}", w.tokens.alice_jwt);
    let secret = ("x-scopegate-secret", SECRET);
    let get = ("x-original-method", "GET");
    // nginx
    let r = call(
        &w,
        "/nginx",
        &[
            secret,
            get,
            ("x-original-uri", "/orgs/acme/repos?page=2"),
            ("authorization", &auth),
            ("x-http-method-override", "DELETE"),
            ("x_auth_org", "evil"),
        ],
    );
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-auth-subject"), "alice");
    assert_eq!(header(&r, "x-scopegate-target"), "/orgs/acme/repos?page=2");
    assert_eq!(header(&r, "x-scopegate-path"), "/orgs/acme/repos");
    assert_eq!(header(&r, "x-scopegate-query"), "page=2");
    // What the caller must drop: the headers the proxy would not forward.
    let mut remove: Vec<String> = header(&r, "x-scopegate-remove")
        .split(", ")
        .map(str::to_string)
        .collect();
    remove.sort();
    assert_eq!(remove, ["x-http-method-override", "x_auth_org"]);
    assert!(!header(&r, "x-request-id").is_empty());
    // Traefik / Caddy
    let r = call(
        &w,
        "/forward-auth",
        &[
            secret,
            ("x-forwarded-uri", "/orgs/acme/./repos"),
            ("x-forwarded-method", "GET"),
            ("x-forwarded-host", "api.example.com"),
            ("x-forwarded-proto", "https"),
            ("authorization", &auth),
        ],
    );
    assert_eq!(r.status(), 200);
    assert_eq!(
        header(&r, "x-scopegate-path"),
        "/orgs/acme/repos",
        "normalized as the proxy does"
    );
    // Every identity header is answered, empty when the gateway sets none: no caller can
    // leave a client's copy or write a placeholder of its own.
    let r = call(&w, "/nginx", &[secret, get, ("x-original-uri", "/health")]);
    assert_eq!(r.status(), 200);
    for h in IDENTITY {
        assert_eq!(
            r.headers().get(h).map(|v| v.as_bytes()),
            Some(&b""[..]),
            "{h}"
        );
    }
    // A public route's credentials are listed for removal.
    let r = call(
        &w,
        "/nginx",
        &[
            secret,
            get,
            ("x-original-uri", "/health?access_token=x&y=1"),
            ("authorization", "Bearer not-checked"),
        ],
    );
    assert_eq!(header(&r, "x-scopegate-remove"), "authorization");
    assert_eq!(header(&r, "x-scopegate-target"), "/health?y=1");
    // Envoy over HTTP: the original path after the prefix, the original method; what must
    // go is overwritten empty, since Envoy cannot remove by a list.
    let r = call(
        &w,
        "/envoy/orgs/acme/repos",
        &[
            secret,
            ("authorization", &auth),
            ("x-original-url", "/admin"),
        ],
    );
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-auth-org"), "acme");
    assert_eq!(header(&r, "x-original-url"), "");
    // The legacy key sets no client: Envoy gets it empty, overwriting a client's copy.
    let r = call(
        &w,
        "/envoy/orgs/acme/repos",
        &[secret, ("x-api-key", LEGACY_KEY)],
    );
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-auth-client-id"), "");
    assert_eq!(header(&r, "x-auth-subject"), "legacy-bot");
    let r = call(
        &w,
        "/envoy/orgs/widgets/members",
        &[secret, ("authorization", &auth)],
    );
    assert_eq!(r.status(), 404, "the proxy's own refusal: no route");

    // The same hostile-input rules as the proxy.
    for target in ["/orgs/acme%2frepos", "/orgs/evil//../acme/repos"] {
        let r = call(
            &w,
            "/nginx",
            &[
                secret,
                get,
                ("x-original-uri", target),
                ("authorization", &auth),
            ],
        );
        assert_eq!(r.status(), 400, "{target}");
    }
    // Identity headers in the call are never read.
    let r = call(
        &w,
        "/nginx",
        &[
            secret,
            get,
            ("x-original-uri", "/orgs/acme/repos"),
            ("x-auth-subject", "alice"),
        ],
    );
    assert_eq!(r.status(), 401);
    // Only the trusted caller is answered, with the secret exactly once.
    let r = call(&w, "/nginx", &[get, ("x-original-uri", "/health")]);
    assert_eq!(r.status(), 403);
    let body: Value = r.json().unwrap();
    assert_eq!(body["error"], "untrusted_caller");
    for headers in [
        vec![
            ("x-scopegate-secret", "guess"),
            get,
            ("x-original-uri", "/health"),
        ],
        vec![secret, secret, get, ("x-original-uri", "/health")],
    ] {
        assert_eq!(call(&w, "/nginx", &headers).status(), 403);
    }
    // A caller that forgot its convention is told, and nothing is decided: a missing
    // method is not taken for the call's own GET.
    for (headers, named) in [
        (vec![secret, get], "X-Original-URI"),
        (
            vec![secret, ("x-original-uri", "/orgs/acme/repos")],
            "X-Original-Method",
        ),
    ] {
        let r = call(&w, "/nginx", &headers);
        assert_eq!(r.status(), 400);
        let body: Value = r.json().unwrap();
        assert!(
            body["error_description"].as_str().unwrap().contains(named),
            "{body}"
        );
    }
    let r = call(
        &w,
        "/nginx",
        &[
            secret,
            get,
            ("x-original-uri", "http://evil.example/health"),
        ],
    );
    assert_eq!(r.status(), 400);
    let r = call(&w, "/other", &[secret]);
    assert_eq!(r.status(), 404);
    let metrics = w.gw.metrics();
    for line in [
        "scopegate_refusals_total{front_end=\"nginx\",reason=\"untrusted_caller\"} 3",
        "scopegate_refusals_total{front_end=\"nginx\",reason=\"caller_misconfigured\"} 3",
        "scopegate_refusals_total{front_end=\"decision\",reason=\"unknown_front_end\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} missing in\n{metrics}");
    }
}

mod grpc {
    //! Envoy's `ext_authz` gRPC API, called by a client generated from Envoy's protos.
    use super::*;
    use envoy_types::pb::envoy::config::core::v3::{Address, SocketAddress, address};
    use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
    use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
    use envoy_types::pb::envoy::service::auth::v3::{
        AttributeContext, CheckRequest, attribute_context,
    };
    use std::collections::HashMap;

    fn request(path: &str, headers: HashMap<String, String>) -> CheckRequest {
        CheckRequest {
            attributes: Some(AttributeContext {
                source: Some(attribute_context::Peer {
                    address: Some(Address {
                        address: Some(address::Address::SocketAddress(SocketAddress {
                            address: "198.51.100.7".into(),
                            ..Default::default()
                        })),
                    }),
                    ..Default::default()
                }),
                request: Some(attribute_context::Request {
                    http: Some(attribute_context::HttpRequest {
                        method: "GET".into(),
                        path: path.into(),
                        host: "api.example.com".into(),
                        scheme: "https".into(),
                        headers,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        }
    }

    fn send(
        w: &World,
        request: CheckRequest,
        secrets: &[&str],
    ) -> Result<envoy_types::pb::envoy::service::auth::v3::CheckResponse, tonic::Status> {
        let url = format!("http://{}", w.grpc);
        let secrets: Vec<String> = secrets.iter().map(|s| s.to_string()).collect();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                let mut client = AuthorizationClient::connect(url)
                    .await
                    .unwrap()
                    .max_encoding_message_size(64 << 20);
                let mut req = tonic::Request::new(request);
                for s in secrets {
                    req.metadata_mut()
                        .append("x-scopegate-secret", s.parse().unwrap());
                }
                client.check(req).await.map(|r| r.into_inner())
            })
    }

    fn check(
        w: &World,
        path: &str,
        credential: Option<(&str, String)>,
        secret: &str,
    ) -> Result<envoy_types::pb::envoy::service::auth::v3::CheckResponse, tonic::Status> {
        let mut headers: HashMap<String, String> = hostile_headers()
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
            .collect();
        headers.insert(":authority".into(), "api.example.com".into());
        if let Some((k, v)) = credential {
            headers.insert(k.into(), v);
        }
        send(w, request(path, headers), &[secret])
    }

    #[test]
    fn envoy_ext_authz_over_grpc_sets_the_identity_and_removes_what_the_proxy_would() {
        let w = world();
        let t = &w.tokens;
        let (mut allowed, mut denied) = (0, 0);
        for c in cases(t) {
            let response = check(&w, c.path, c.credential.clone(), SECRET).unwrap();
            let code = response.status.as_ref().map_or(0, |s| s.code);
            match (&c.expect, response.http_response) {
                (Ok(identity), Some(HttpResponse::OkResponse(ok))) => {
                    assert_eq!(code, 0, "{}", c.what);
                    let set: HashMap<String, String> = ok
                        .headers
                        .iter()
                        .filter_map(|h| h.header.as_ref())
                        .map(|h| (h.key.clone(), h.value.clone()))
                        .collect();
                    for (name, value) in identity {
                        assert_eq!(
                            set.get(*name).map(String::as_str),
                            Some(*value),
                            "{}: {name}",
                            c.what
                        );
                    }
                    // Every identity header is either set (overwriting) or removed.
                    for h in IDENTITY {
                        let h = h.to_ascii_lowercase();
                        assert!(
                            set.contains_key(&h) || ok.headers_to_remove.contains(&h),
                            "{}: the client's {h} would pass",
                            c.what
                        );
                    }
                    // Every hostile header the client sent is removed.
                    for (h, _) in hostile_headers() {
                        let h = h.to_ascii_lowercase();
                        assert!(
                            set.contains_key(&h) || ok.headers_to_remove.contains(&h),
                            "{}: {h} would pass: {:?}",
                            c.what,
                            ok.headers_to_remove
                        );
                    }
                    allowed += 1;
                }
                (Err((status, error)), Some(HttpResponse::DeniedResponse(d))) => {
                    assert_eq!(
                        d.status.as_ref().map(|s| s.code),
                        Some(i32::from(*status)),
                        "{}",
                        c.what
                    );
                    assert_eq!(code, if *status == 401 { 16 } else { 7 }, "{}", c.what);
                    let body: Value = serde_json::from_str(&d.body).unwrap();
                    assert_eq!(body["error"], *error, "{}", c.what);
                    if *status == 401 {
                        assert!(
                            d.headers.iter().any(|h| h
                                .header
                                .as_ref()
                                .is_some_and(|h| h.key == "www-authenticate")),
                            "{}",
                            c.what
                        );
                    }
                    denied += 1;
                }
                (expect, other) => panic!("{}: expected {expect:?}, got {other:?}", c.what),
            }
        }
        assert_eq!((allowed, denied), (3, 3));
        assert!(w.gw.metrics().contains(
            "scopegate_requests_total{front_end=\"envoy_grpc\",outcome=\"allowed\",route=\"repos\"} 3"
        ));
    }

    #[test]
    fn the_secret_is_checked_before_a_message_is_decoded_and_messages_are_bounded() {
        let w = world();
        // Without the secret, or with it twice, nothing is decided.
        for secrets in [vec!["guess"], vec![SECRET, SECRET]] {
            let e = check_with(&w, "/health", &secrets).unwrap_err();
            assert_eq!(e.code(), tonic::Code::PermissionDenied, "{secrets:?}");
        }
        // A 4 MiB message without the secret is refused without being read: the answer
        // comes at once.
        let big: HashMap<String, String> = [("x-padding".to_string(), "x".repeat(4 << 20))].into();
        let start = std::time::Instant::now();
        let e = send(&w, request("/health", big.clone()), &["guess"]).unwrap_err();
        assert_eq!(e.code(), tonic::Code::PermissionDenied);
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
        // With the secret, a message over the listener's bound is refused too.
        let e = send(&w, request("/health", big), &[SECRET]).unwrap_err();
        assert_eq!(e.code(), tonic::Code::OutOfRange, "{e:?}");
        // And the listener still answers.
        assert!(check_with(&w, "/health", &[SECRET]).is_ok());
        let metrics = w.gw.metrics();
        assert!(
            metrics.contains(
                "scopegate_refusals_total{front_end=\"envoy_grpc\",reason=\"untrusted_caller\"} 3"
            ),
            "{metrics}"
        );
    }

    fn check_with(
        w: &World,
        path: &str,
        secrets: &[&str],
    ) -> Result<envoy_types::pb::envoy::service::auth::v3::CheckResponse, tonic::Status> {
        send(w, request(path, HashMap::new()), secrets)
    }
}

#[test]
fn the_decision_endpoint_listens_on_a_unix_socket_with_its_mode() {
    use std::os::unix::fs::PermissionsExt;
    let auth = AuthServer::start();
    let upstream = Upstream::start();
    let socket = std::env::temp_dir().join(format!("scopegate-decision-{}.sock", free_port()));
    let yaml = Template::corp(&[API])
        .section(&format!(
            "decision:\n  listen: \"unix:{}\"\n  socket_mode: \"0660\"",
            socket.display()
        ))
        .routes(
            "  - name: repos\n    match: { path: \"/orgs/{org}/repos\" }\n    upstream: api\n    require: { scopes: repo }",
        );
    let _gw = TestGateway::start(&config(&yaml.yaml(), &auth, &upstream));
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);
    let token = auth.user_token("alice", "full", "repo", API);
    let ask = |auth: &str| {
        use std::io::{Read, Write};
        let mut s = std::os::unix::net::UnixStream::connect(&socket).unwrap();
        write!(
            s,
            "GET /nginx HTTP/1.1\r\nHost: decision\r\nX-Original-URI: /orgs/acme/repos\r\nX-Original-Method: GET\r\n{auth}Connection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        answer
    };
    let allowed = ask(&format!("Authorization: Bearer {token}\r\n"));
    assert!(allowed.starts_with("HTTP/1.1 200"), "{allowed}");
    assert!(allowed.contains("x-auth-subject: alice"), "{allowed}");
    let refused = ask("");
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
    let _ = std::fs::remove_file(&socket);
}

#[test]
fn the_shipped_configurations_are_valid_for_their_servers_and_clear_the_whole_strip_list() {
    let root = env!("CARGO_MANIFEST_DIR");
    let dir = std::env::temp_dir().join(format!("scopegate-proxies-{}", free_port()));
    std::fs::create_dir_all(&dir).unwrap();
    let wrapper = dir.join("nginx.conf");
    std::fs::write(
        &wrapper,
        format!("events {{}}\nhttp {{\n  include {root}/config/proxies/nginx.conf;\n}}\n"),
    )
    .unwrap();
    let nginx = support::tools::command("nginx")
        .arg("-t")
        .arg("-p")
        .arg(&dir)
        .arg("-e")
        .arg(dir.join("error.log"))
        .arg("-c")
        .arg(&wrapper)
        .output()
        .unwrap();
    assert!(
        nginx.status.success(),
        "{}",
        String::from_utf8_lossy(&nginx.stderr)
    );
    let caddy = support::tools::command("caddy")
        .args(["adapt", "--validate", "--adapter", "caddyfile", "--config"])
        .arg(format!("{root}/config/proxies/Caddyfile"))
        .env("SCOPEGATE_DECISION_SECRET", SECRET)
        .env("HOME", &dir)
        .env("XDG_DATA_HOME", &dir)
        .env("XDG_CONFIG_HOME", &dir)
        .output()
        .unwrap();
    assert!(
        caddy.status.success(),
        "{}",
        String::from_utf8_lossy(&caddy.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
    // Each shipped configuration removes every header of the gateway's default strip list
    // (nginx by an empty `proxy_set_header`, Caddy by `request_header -`, Traefik by an
    // empty custom request header), so they cannot drift apart.
    let nginx = support::proxies::shipped("nginx.conf").to_ascii_lowercase();
    let caddy = support::proxies::shipped("Caddyfile").to_ascii_lowercase();
    let traefik = support::proxies::shipped("traefik.yaml").to_ascii_lowercase();
    for name in scopegate::config::schema::default_strip_headers() {
        let n = name.to_ascii_lowercase();
        assert!(
            nginx.contains(&format!("proxy_set_header {n} ")),
            "nginx.conf keeps {name}"
        );
        assert!(
            caddy.contains(&format!("request_header -{n}\n")),
            "Caddyfile keeps {name}"
        );
        assert!(
            traefik.contains(&format!("{n}: \"\"")),
            "traefik.yaml keeps {name}"
        );
    }
}
