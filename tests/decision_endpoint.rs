//! The decision endpoint behind the proxies teams already run: real nginx (`auth_request`)
//! and Caddy (`forward_auth`) from the OS packages in front of a real upstream, Envoy's
//! `ext_authz` gRPC API through a client generated from Envoy's protos, and each caller's
//! HTTP conventions directly. The same decisions as the proxy: a JWT, an opaque token, a
//! legacy key, an organization refusal and a revoked token, each checked at the upstream
//! (identity present, spoofed copies absent) or in the refusal.

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
            "tokens:\n  revocation:\n    push:\n      transmitter: \"https://transmitter.scopegate.test\"\n      jwks_uri: \"{jwks}\"\n      audience: \"https://gateway.scopegate.test\"",
        )
        .section(&format!(
            "credentials:\n  - {{ id: legacy, header: X-API-Key, sha256: {}, subject: legacy-bot, scopes: [repo], orgs: [acme] }}",
            digest(LEGACY_KEY)
        ))
        .routes(
            "  - name: repos\n    match: { path: \"/orgs/{org}/repos\" }\n    upstream: api\n    require: { scopes: repo, org: { param: org } }\n  - name: health\n    match: { path: /health }\n    upstream: api\n    auth: none",
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
    /// Allowed: the identity the upstream sees (absent headers must be absent); refused:
    /// the status and, where the caller passes it, the `error`.
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

/// Spoofed identity headers every client request carries.
fn spoofed() -> Vec<(&'static str, &'static str)> {
    IDENTITY.iter().map(|h| (*h, "mallory")).collect()
}

/// Plays the cases through a proxy at `url`; returns (allowed, denied) as counted.
fn play_through(w: &World, url: &str, caller: &str, passes_body: bool) -> (usize, usize) {
    let client = reqwest::blocking::Client::new();
    let (mut allowed, mut denied) = (0, 0);
    for c in cases(&w.tokens) {
        let before = w.upstream.count();
        let mut req = client.get(format!("{url}{}", c.path));
        for (k, v) in spoofed() {
            req = req.header(k, v);
        }
        if let Some((k, v)) = &c.credential {
            req = req.header(*k, v);
        }
        let r = req.send().unwrap();
        let status = r.status().as_u16();
        let challenge = r
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_string());
        let body = r.text().unwrap_or_default();
        let what = format!("{caller}, {}", c.what);
        match &c.expect {
            Ok(identity) => {
                assert_eq!(status, 200, "{what}: {body}");
                let seen = w.upstream.seen.lock().unwrap().last().cloned().unwrap();
                let headers = &seen["headers"];
                for h in IDENTITY {
                    let h = h.to_ascii_lowercase();
                    let want = identity.iter().find(|(n, _)| *n == h).map(|(_, v)| *v);
                    match want {
                        Some(v) => assert_eq!(headers[&h], json!([v]), "{what}: {h}"),
                        None => assert!(
                            headers[&h]
                                .as_array()
                                .is_none_or(|a| !a.contains(&json!("mallory"))),
                            "{what}: a spoofed {h} reached the upstream: {headers}"
                        ),
                    }
                }
                allowed += 1;
            }
            Err((want, error)) => {
                assert_eq!(status, *want, "{what}: {body}");
                assert_eq!(w.upstream.count(), before, "{what}: reached the upstream");
                if *want == 401 {
                    let challenge = challenge.unwrap_or_default();
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

#[test]
fn nginx_auth_request_and_caddy_forward_auth_enforce_the_gateways_decisions() {
    let w = world();
    let upstream = w.upstream.addr.to_string();
    let nginx = Proxy::nginx(&w.decision, &upstream, SECRET);
    // nginx passes the status and the challenge, not the decision's body.
    assert_eq!(play_through(&w, &nginx.url, "nginx", false), (3, 3));
    let caddy = Proxy::caddy(&w.decision, &upstream, SECRET);
    // Caddy passes the decision's whole answer.
    assert_eq!(play_through(&w, &caddy.url, "caddy", true), (3, 3));
    let metrics = w.gw.metrics();
    for line in [
        "scopegate_decision_endpoint_requests_total{front_end=\"nginx\",outcome=\"allowed\",route=\"repos\"} 3",
        "scopegate_decision_endpoint_requests_total{front_end=\"forward_auth\",outcome=\"403\",route=\"repos\"} 1",
        "scopegate_decision_endpoint_requests_total{front_end=\"forward_auth\",outcome=\"401\",route=\"repos\"} 2",
    ] {
        assert!(metrics.contains(line), "{line} missing in\n{metrics}");
    }
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
    // nginx
    let r = call(
        &w,
        "/nginx",
        &[
            secret,
            ("x-original-uri", "/orgs/acme/repos?page=2"),
            ("x-original-method", "GET"),
            ("authorization", &auth),
        ],
    );
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-auth-subject"), "alice");
    assert_eq!(header(&r, "x-scopegate-path"), "/orgs/acme/repos?page=2");
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
    // Envoy over HTTP: the original path after the prefix, the original method.
    let r = call(
        &w,
        "/envoy/orgs/acme/repos",
        &[secret, ("authorization", &auth)],
    );
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-auth-org"), "acme");
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
    let r = call(
        &w,
        "/nginx",
        &[
            secret,
            ("x-original-uri", "/orgs/acme%2frepos"),
            ("authorization", &auth),
        ],
    );
    assert_eq!(r.status(), 400);
    // Identity headers in the call are never read.
    let r = call(
        &w,
        "/nginx",
        &[
            secret,
            ("x-original-uri", "/orgs/acme/repos"),
            ("x-auth-subject", "alice"),
        ],
    );
    assert_eq!(r.status(), 401);
    // Only the trusted caller is answered.
    let r = call(&w, "/nginx", &[("x-original-uri", "/health")]);
    assert_eq!(r.status(), 403);
    let body: Value = r.json().unwrap();
    assert_eq!(body["error"], "untrusted_caller");
    let r = call(
        &w,
        "/nginx",
        &[
            ("x-scopegate-secret", "guess"),
            ("x-original-uri", "/health"),
        ],
    );
    assert_eq!(r.status(), 403);
    // A caller that forgot its convention is told, and nothing is decided.
    let r = call(&w, "/nginx", &[secret]);
    assert_eq!(r.status(), 400);
    let body: Value = r.json().unwrap();
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("X-Original-URI")
    );
    let r = call(
        &w,
        "/nginx",
        &[secret, ("x-original-uri", "http://evil.example/health")],
    );
    assert_eq!(r.status(), 400);
    let r = call(&w, "/other", &[secret]);
    assert_eq!(r.status(), 404);
    // A public route: allowed, no identity.
    let r = call(&w, "/nginx", &[secret, ("x-original-uri", "/health")]);
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("x-auth-subject").is_none());
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

    fn check(
        w: &World,
        path: &str,
        credential: Option<(&str, String)>,
        secret: &str,
    ) -> Result<envoy_types::pb::envoy::service::auth::v3::CheckResponse, tonic::Status> {
        let mut headers: HashMap<String, String> = spoofed()
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
            .collect();
        headers.insert(":authority".into(), "api.example.com".into());
        if let Some((k, v)) = credential {
            headers.insert(k.into(), v);
        }
        let request = CheckRequest {
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
        };
        let url = format!("http://{}", w.grpc);
        let secret = secret.to_string();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                let mut client = AuthorizationClient::connect(url).await.unwrap();
                let mut req = tonic::Request::new(request);
                req.metadata_mut()
                    .insert("x-scopegate-secret", secret.parse().unwrap());
                client.check(req).await.map(|r| r.into_inner())
            })
    }

    #[test]
    fn envoy_ext_authz_over_grpc_sets_the_identity_or_carries_the_refusal() {
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
        // Without the shared secret, Envoy is told no (and refuses the client).
        let e = check(&w, "/health", None, "guess").unwrap_err();
        assert_eq!(e.code(), tonic::Code::PermissionDenied);
        assert!(w.gw.metrics().contains(
            "scopegate_decision_endpoint_requests_total{front_end=\"envoy_grpc\",outcome=\"allowed\",route=\"repos\"} 3"
        ));
    }
}

#[test]
fn the_decision_endpoint_listens_on_a_unix_socket_without_a_secret() {
    let auth = AuthServer::start();
    let upstream = Upstream::start();
    let socket = std::env::temp_dir().join(format!("scopegate-decision-{}.sock", free_port()));
    let yaml = Template::corp(&[API])
        .section(&format!("decision:\n  listen: \"unix:{}\"", socket.display()))
        .routes(
            "  - name: repos\n    match: { path: \"/orgs/{org}/repos\" }\n    upstream: api\n    require: { scopes: repo }",
        );
    let _gw = TestGateway::start(&config(&yaml.yaml(), &auth, &upstream));
    let token = auth.user_token("alice", "full", "repo", API);
    let ask = |auth: &str| {
        use std::io::{Read, Write};
        let mut s = std::os::unix::net::UnixStream::connect(&socket).unwrap();
        write!(
            s,
            "GET /nginx HTTP/1.1\r\nHost: decision\r\nX-Original-URI: /orgs/acme/repos\r\n{auth}Connection: close\r\n\r\n"
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
fn the_shipped_nginx_and_caddy_configurations_are_valid_for_their_servers() {
    let root = env!("CARGO_MANIFEST_DIR");
    let dir = std::env::temp_dir().join(format!("scopegate-proxies-{}", free_port()));
    std::fs::create_dir_all(&dir).unwrap();
    let wrapper = dir.join("nginx.conf");
    std::fs::write(
        &wrapper,
        format!("events {{}}\nhttp {{\n  include {root}/config/proxies/nginx.conf;\n}}\n"),
    )
    .unwrap();
    let nginx = std::process::Command::new("nginx")
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
    let caddy = std::process::Command::new("caddy")
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
}
