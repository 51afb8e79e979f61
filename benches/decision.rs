//! The decision core alone, without network or engine: what one request costs the gateway.
//!
//! `cargo bench --bench decision`. Tokens are signed with the throwaway keys in
//! `benches/keys/`.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use http::{HeaderMap, HeaderValue, Method, Uri};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, EncodingKey, Header};
use scopegate::clock::unix_now;
use scopegate::decision::{Gateway, Verdict};
use scopegate::request::{Connection, Head, normalize};
use scopegate::route::{HostMatch, HostTable, MethodSet, Pattern, RouteTable};
use scopegate::token::{Key, KeySet};
use std::hint::black_box;

const CONFIG: &str = r#"
server: { listen: "127.0.0.1:18080" }
admin: { listen: "127.0.0.1:19901" }
issuers:
  - id: corp
    issuer: https://auth.example.com
    discovery: false
    jwks_uri: http://127.0.0.1:1/jwks
    audiences: [https://api.example.com]
    algorithms: [RS256, ES256, EdDSA]
scopes:
  implies:
    repo: [repo:status, public_repo]
    admin:org: [write:org]
    write:org: [read:org]
upstreams:
  api: { url: "http://127.0.0.1:3000" }
routes:
  - { name: health, match: { path: /health }, upstream: api, auth: none }
  - name: list-org-repos
    match: { methods: [GET], path: "/orgs/{org}/repos" }
    upstream: api
    require: { scopes: { any: [repo, public_repo] } }
  - name: admin
    match: { path: "/admin/{*rest}" }
    upstream: api
    require: { scopes: { all: [admin:org, read:org] } }
"#;

struct Signer {
    alg: Algorithm,
    kid: &'static str,
    key: EncodingKey,
}

fn pem(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/benches/keys/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn keys() -> (Vec<Signer>, KeySet) {
    let signers = vec![
        Signer {
            alg: Algorithm::RS256,
            kid: "rs",
            key: EncodingKey::from_rsa_pem(&pem("rs256.pem")).unwrap(),
        },
        Signer {
            alg: Algorithm::ES256,
            kid: "es",
            key: EncodingKey::from_ec_pem(&pem("es256.pem")).unwrap(),
        },
        Signer {
            alg: Algorithm::EdDSA,
            kid: "ed",
            key: EncodingKey::from_ed_pem(&pem("eddsa.pem")).unwrap(),
        },
    ];
    let key = |kid: &str, alg, family, key| Key {
        kid: Some(kid.into()),
        alg: Some(alg),
        family,
        curve: None,
        key,
    };
    let set = KeySet {
        keys: vec![
            key(
                "rs",
                Algorithm::RS256,
                AlgorithmFamily::Rsa,
                DecodingKey::from_rsa_pem(&pem("rs256.pub.pem")).unwrap(),
            ),
            key(
                "es",
                Algorithm::ES256,
                AlgorithmFamily::Ec,
                DecodingKey::from_ec_pem(&pem("es256.pub.pem")).unwrap(),
            ),
            key(
                "ed",
                Algorithm::EdDSA,
                AlgorithmFamily::Ed,
                DecodingKey::from_ed_pem(&pem("eddsa.pub.pem")).unwrap(),
            ),
        ],
    };
    (signers, set)
}

fn token(s: &Signer, sub: &str, scope: &str) -> String {
    let mut h = Header::new(s.alg);
    h.typ = Some("at+jwt".into());
    h.kid = Some(s.kid.into());
    let now = unix_now();
    let claims = serde_json::json!({
        "iss": "https://auth.example.com", "aud": "https://api.example.com", "sub": sub,
        "client_id": "app", "scope": scope, "iat": now, "exp": now + 3600,
    });
    jsonwebtoken::encode(&h, &claims, &s.key).unwrap()
}

fn build(yaml: &str) -> Gateway {
    let compiled = scopegate::compile::from_text(yaml, "bench").unwrap();
    compiled.gateway(&prometheus::Registry::new()).0
}

fn gateway() -> (Gateway, Vec<Signer>) {
    let gw = build(CONFIG);
    let (signers, set) = keys();
    gw.state.issuers[0].set_keys(set);
    (gw, signers)
}

fn bearer(token: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    h.insert(
        http::header::HOST,
        HeaderValue::from_static("api.example.com"),
    );
    h
}

fn bench_path(c: &mut Criterion) {
    let mut g = c.benchmark_group("path_normalization");
    g.bench_function("clean", |b| {
        b.iter(|| normalize(black_box("/orgs/acme/repos")))
    });
    g.bench_function("encoded_and_dot_segments", |b| {
        b.iter(|| normalize(black_box("/orgs/%61cme/./x/../repos")))
    });
    g.finish();
}

fn bench_routes(c: &mut Criterion) {
    let mut g = c.benchmark_group("route_match");
    for n in [10usize, 1_000, 10_000] {
        let routes: Vec<(Pattern, MethodSet)> = (0..n)
            .map(|i| {
                (
                    Pattern::parse(&format!("/svc{i}/items/{{id}}")).unwrap(),
                    MethodSet::ALL,
                )
            })
            .collect();
        let table = RouteTable::build(&routes);
        let path = normalize(&format!("/svc{}/items/42", n - 1)).unwrap();
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| table.lookup(black_box(&Method::GET), black_box(&path)))
        });
    }
    g.finish();
    // The same lookups through the host tables the gateway uses: no route names a host (one
    // trie), and 100 hosts of 100 routes each plus a wildcard (three tries per lookup).
    let mut g = c.benchmark_group("route_match_hosts");
    let any: Vec<(HostMatch, Pattern, MethodSet)> = (0..10_000)
        .map(|i| {
            (
                HostMatch::Any,
                Pattern::parse(&format!("/svc{i}/items/{{id}}")).unwrap(),
                MethodSet::ALL,
            )
        })
        .collect();
    let hosts: Vec<(HostMatch, Pattern, MethodSet)> = (0..10_000)
        .map(|i| {
            let host = match i {
                0 => HostMatch::parse("*.example.com").unwrap(),
                _ => HostMatch::parse(&format!("h{}.example.com", i % 100)).unwrap(),
            };
            (
                host,
                Pattern::parse(&format!("/svc{i}/items/{{id}}")).unwrap(),
                MethodSet::ALL,
            )
        })
        .collect();
    let path = normalize("/svc9999/items/42").unwrap();
    for (name, routes) in [("10000_any_host", any), ("100_hosts_x_100", hosts)] {
        let table = HostTable::build(&routes);
        g.bench_function(name, |b| {
            b.iter(|| {
                table.lookup(
                    black_box(Some("h99.example.com")),
                    black_box(&Method::GET),
                    black_box(&path),
                )
            })
        });
    }
    g.finish();
}

fn bench_credential(c: &mut Criterion) {
    let (gw, signers) = gateway();
    let headers = bearer(&token(&signers[0], "alice", "repo"));
    c.bench_function("credential_extraction", |b| {
        b.iter(|| scopegate::credential::extract(black_box(&headers), None, &gw.rules.credentials))
    });
}

fn bench_cached_decision(c: &mut Criterion) {
    let (gw, signers) = gateway();
    let tok = token(&signers[0], "alice", "repo read:org");
    let headers = bearer(&tok);
    let uri: Uri = "/orgs/acme/repos?page=2".parse().unwrap();
    let conn = Connection::local();
    let head = Head {
        method: &Method::GET,
        uri: &uri,
        headers: &headers,
        conn: &conn,
    };
    let now = unix_now();
    // Warm the cache: the first decision verifies the signature.
    assert!(matches!(gw.decide(&head, now).verdict, Verdict::Forward(_)));
    c.bench_function("token_hash_sha256", |b| {
        b.iter(|| scopegate::token::hash(black_box(&tok)))
    });
    c.bench_function("decision_cached_token_allowed", |b| {
        b.iter(|| gw.decide(black_box(&head), now))
    });
    let uri: Uri = "/admin/users".parse().unwrap();
    let head = Head {
        method: &Method::GET,
        uri: &uri,
        headers: &headers,
        conn: &conn,
    };
    c.bench_function("decision_cached_token_refused_403", |b| {
        b.iter(|| gw.decide(black_box(&head), now))
    });
    let mut none = HeaderMap::new();
    none.insert(
        http::header::HOST,
        HeaderValue::from_static("api.example.com"),
    );
    let uri: Uri = "/orgs/acme/repos".parse().unwrap();
    let head = Head {
        method: &Method::GET,
        uri: &uri,
        headers: &none,
        conn: &conn,
    };
    c.bench_function("decision_no_token_refused_401", |b| {
        b.iter(|| gw.decide(black_box(&head), now))
    });
    bench_request_log(c, &gw, &signers[0]);
}

/// One request-log line of an allowed proxied request, formatted as JSON (what every
/// request pays on its thread when the log is on).
fn bench_request_log(c: &mut Criterion, gw: &Gateway, signer: &Signer) {
    let tok = token(signer, "alice", "repo");
    let headers = bearer(&tok);
    let uri: Uri = "/orgs/acme/repos".parse().unwrap();
    let conn = Connection::local();
    let head = Head {
        method: &Method::GET,
        uri: &uri,
        headers: &headers,
        conn: &conn,
    };
    let Verdict::Forward(f) = gw.decide(&head, unix_now()).verdict else {
        panic!("allowed")
    };
    let entry = scopegate::requestlog::Entry {
        time: Some(std::time::SystemTime::now()),
        front_end: "proxy",
        request_id: Some(HeaderValue::from_static("0af7651916cd43dd8448eb211c80319c")),
        route: Some("repos".into()),
        method: Some(Method::GET),
        path: Some(f.path.clone()),
        status: 200,
        principal: f.principal.clone(),
        client: Some("127.0.0.1".parse().unwrap()),
        upstream_status: Some(200),
        upstream_duration: Some(std::time::Duration::from_micros(412)),
        duration: Some(std::time::Duration::from_micros(655)),
        bytes_out: Some(2),
        ..Default::default()
    };
    let mut line = String::with_capacity(512);
    c.bench_function("request_log_json_line", |b| {
        b.iter(|| {
            line.clear();
            black_box(&entry).json_into(&mut line, scopegate::requestlog::Subject::Plain);
        })
    });
}

/// A request with a legacy API key among `n` configured: the secret is hashed and compared in
/// constant time with every digest, so the cost grows with `n`.
fn bench_legacy_credentials(c: &mut Criterion) {
    let mut g = c.benchmark_group("decision_legacy_credential");
    for n in [1usize, 100, 1_000] {
        let mut yaml = format!("{CONFIG}credentials:\n");
        for i in 0..n {
            yaml.push_str(&format!(
                "  - {{ id: k{i}, header: X-API-Key, sha256: {}, subject: s{i}, scopes: [repo] }}\n",
                scopegate::authn::sha256_hex(&format!("api-key-{i}"))
            ));
        }
        let gw = build(&yaml);
        let conn = Connection::local();
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::HOST,
            HeaderValue::from_static("api.example.com"),
        );
        headers.insert(
            "x-api-key",
            HeaderValue::from_str(&format!("api-key-{}", n - 1)).unwrap(),
        );
        let uri: Uri = "/orgs/acme/repos".parse().unwrap();
        let head = Head {
            method: &Method::GET,
            uri: &uri,
            headers: &headers,
            conn: &conn,
        };
        assert!(matches!(
            gw.decide(&head, unix_now()).verdict,
            Verdict::Forward(_)
        ));
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| gw.decide(black_box(&head), unix_now()))
        });
    }
    g.finish();
}

fn bench_scopes(c: &mut Criterion) {
    let (gw, signers) = gateway();
    let tok = token(&signers[2], "alice", "admin:org repo");
    let (rules, states) = (&gw.rules, &gw.state.issuers);
    let v = scopegate::token::verify(&tok, &rules.issuers, states, unix_now()).unwrap();
    let p = rules
        .principals
        .build(0, &rules.issuers[0], &v.claims)
        .unwrap();
    let req = rules.routes[2].requirement.as_ref().unwrap();
    c.bench_function("scope_evaluation_with_implications", |b| {
        b.iter(|| req.check(black_box(&p)).is_ok())
    });
}

fn bench_cold_verification(c: &mut Criterion) {
    let (gw, signers) = gateway();
    let mut g = c.benchmark_group("jwt_verification_cold");
    for s in &signers {
        let tok = token(s, "alice", "repo");
        g.bench_function(format!("{:?}", s.alg), |b| {
            b.iter(|| {
                scopegate::token::verify(
                    black_box(&tok),
                    &gw.rules.issuers,
                    &gw.state.issuers,
                    unix_now(),
                )
                .unwrap()
            })
        });
    }
    g.finish();
}

/// A route with three claim conditions; the same gateway mapping three claims to headers and
/// signing an identity assertion.
fn bench_claims(c: &mut Criterion) {
    let key = format!("{}/benches/keys/eddsa.pem", env!("CARGO_MANIFEST_DIR"));
    let yaml = format!(
        r#"{CONFIG}
  - name: payments
    match: {{ path: /payments }}
    upstream: api
    require:
      scopes: repo
      claims:
        all:
          - {{ claim: tid, equals: 72f988bf-86f1-41af-91ab-2d7cd011db47 }}
          - {{ claim: groups, contains: payments-admins }}
          - {{ claim: email, suffix: "@example.com" }}
forward:
  claim_headers: {{ X-Auth-Email: "{{email}}", X-Auth-Groups: "{{groups}}", X-Auth-Tenant: "{{tid}}" }}
  identity_assertion: {{ key: "{key}", issuer: https://gateway.example.com, audience: https://api.internal, claims: [email] }}
"#
    );
    let gw = build(&yaml);
    let (signers, set) = keys();
    gw.state.issuers[0].set_keys(set);
    let mut h = Header::new(signers[0].alg);
    h.typ = Some("at+jwt".into());
    h.kid = Some(signers[0].kid.into());
    let now = unix_now();
    let claims = serde_json::json!({
        "iss": "https://auth.example.com", "aud": "https://api.example.com", "sub": "ada",
        "client_id": "app", "scope": "repo", "iat": now, "exp": now + 3600,
        "tid": "72f988bf-86f1-41af-91ab-2d7cd011db47", "groups": ["Everyone", "payments-admins"],
        "email": "ada@example.com",
    });
    let tok = jsonwebtoken::encode(&h, &claims, &signers[0].key).unwrap();
    let headers = bearer(&tok);
    let uri: Uri = "/payments".parse().unwrap();
    let conn = Connection::local();
    let head = Head {
        method: &Method::GET,
        uri: &uri,
        headers: &headers,
        conn: &conn,
    };
    let Verdict::Forward(f) = gw.decide(&head, now).verdict else {
        panic!("the conditions hold for this token")
    };
    c.bench_function("decision_cached_token_allowed_3_claim_conditions", |b| {
        b.iter(|| gw.decide(black_box(&head), now))
    });
    let p = f.principal.unwrap();
    let policy = &gw.rules.forward;
    assert_eq!(policy.identity_headers(Some(&p), None).count(), 9);
    c.bench_function("identity_headers_3_mapped_claims_assertion_cached", |b| {
        b.iter(|| policy.identity_headers(black_box(Some(&p)), None).count())
    });
    let signer = policy.assertion.as_ref().unwrap();
    let mut t = now;
    c.bench_function("identity_assertion_minted_eddsa", |b| {
        // A new second every call: past the reuse window, so each call signs.
        b.iter(|| {
            t += 3600;
            signer.assertion(black_box(&p), t)
        })
    });
}

criterion_group!(
    benches,
    bench_path,
    bench_routes,
    bench_credential,
    bench_cached_decision,
    bench_legacy_credentials,
    bench_scopes,
    bench_claims,
    bench_cold_verification
);
criterion_main!(benches);
