//! The decision core alone: static credentials, JWTs and opaque tokens decided with no
//! network, and the network half replaced by a backend the test controls.

use super::*;
use crate::answer::Unreachable;
use crate::authn::sha256_hex;
use crate::request::Connection;
use crate::token::testing::{self, Signer};
use crate::token::{Cached, TokenError, TokenHash};
use http::{HeaderMap, Method, Uri};
use std::sync::atomic::{AtomicUsize, Ordering};

const CONFIG: &str = r#"
server: { listen: "127.0.0.1:1" }
admin: { listen: "127.0.0.1:2" }
issuers:
  - { id: us1, issuer: "https://issuer.test", audiences: ["https://api.test"], algorithms: [EdDSA], discovery: false, jwks_uri: "http://127.0.0.1:3/jwks", introspection: { endpoint: "http://127.0.0.1:3/introspect", client_id: gw, client_secret: s } }
forward: { authorization: strip }
credentials:
  - { id: site-key, header: X-API-Key, sha256: SITE, subject: s1, issuer: us1, scopes: [read] }
  - { id: free-key, query: key, sha256: FREE, subject: s2, scopes: [read] }
  - { id: old-key, header: X-API-Key, sha256: OLD, subject: s3, scopes: [read], not_after: 2020-01-01T00:00:00Z }
upstreams:
  api: { url: "http://127.0.0.1:4" }
routes:
  - { name: any, match: { path: /any }, upstream: api, require: { scopes: read } }
  - { name: us1-only, match: { path: /us1 }, upstream: api, issuers: [us1], require: {} }
  - { name: trial, match: { path: /trial }, upstream: api, mode: report, require: { scopes: admin } }
  - { name: limited, match: { path: /limited }, upstream: api, require: {}, rate_limits: [ { per: subject, requests: 2, every: 1m } ] }
"#;

fn gateway() -> Gateway {
    let yaml = CONFIG
        .replace("SITE", &sha256_hex("site-secret"))
        .replace("FREE", &sha256_hex("free-secret"))
        .replace("OLD", &sha256_hex("old-secret"));
    let compiled = crate::compile::from_text(&yaml, "t").unwrap();
    compiled.gateway(&prometheus::Registry::new()).0
}

fn head<'a>(uri: &'a Uri, headers: &'a HeaderMap, conn: &'a Connection) -> Head<'a> {
    Head {
        method: &Method::GET,
        uri,
        headers,
        conn,
    }
}

/// An HTTP/1.1 request: `headers` and a `Host`.
fn with_host(headers: &HeaderMap) -> HeaderMap {
    let mut h = headers.clone();
    h.insert(http::header::HOST, "api.test".parse().unwrap());
    h
}

fn decide(gw: &Gateway, uri: &str, headers: &HeaderMap) -> Decided {
    let uri: Uri = uri.parse().unwrap();
    let headers = with_host(headers);
    gw.decide(&head(&uri, &headers, &Connection::local()), unix_now())
}

fn header(name: &'static str, value: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(name, value.parse().unwrap());
    h
}

fn bearer(token: &str) -> HeaderMap {
    header("authorization", &format!("Bearer {token}"))
}

fn refusal(d: Decided) -> Refusal {
    match d.verdict {
        Verdict::Refuse(r) => r,
        Verdict::Forward(_) => panic!("forwarded"),
    }
}

#[test]
fn a_rate_limit_refuses_a_callers_third_request_with_429_and_leaves_others_alone() {
    let gw = gateway();
    let site = header("x-api-key", "site-secret");
    for _ in 0..2 {
        assert!(matches!(
            decide(&gw, "/limited", &site).verdict,
            Verdict::Forward(_)
        ));
    }
    let r = refusal(decide(&gw, "/limited", &site));
    assert_eq!((r.status().as_u16(), r.reason()), (429, "rate_limited"));
    let answer = r.render();
    let names: Vec<&str> = answer.headers.iter().map(|(n, _)| n.as_str()).collect();
    for h in ["retry-after", "ratelimit-policy", "ratelimit"] {
        assert!(names.contains(&h), "{names:?}");
    }
    // Another subject has its own bucket; a refusal for who the caller is takes none.
    assert!(matches!(
        decide(&gw, "/limited?key=free-secret", &HeaderMap::new()).verdict,
        Verdict::Forward(_)
    ));
    assert_eq!(
        refusal(decide(&gw, "/limited", &header("x-api-key", "nope"))).reason(),
        "invalid_token"
    );
}

#[test]
fn a_route_in_report_mode_forwards_what_it_would_refuse_and_says_why() {
    let gw = gateway();
    // No credential: forwarded without identity, the refusal kept.
    let d = decide(&gw, "/trial?x=1", &HeaderMap::new());
    assert_eq!(
        d.would_refuse.as_ref().map(Refusal::reason),
        Some("unauthorized")
    );
    match d.verdict {
        Verdict::Forward(f) => {
            assert!(f.principal.is_none());
            assert_eq!(f.path_and_query, "/trial?x=1");
        }
        Verdict::Refuse(_) => panic!("refused in report mode"),
    }
    // A valid credential without the scope: forwarded with its identity.
    let d = decide(&gw, "/trial", &header("x-api-key", "site-secret"));
    assert_eq!(
        d.would_refuse.as_ref().map(Refusal::reason),
        Some("insufficient_scope")
    );
    match d.verdict {
        Verdict::Forward(f) => assert_eq!(f.principal.unwrap().subject, "s1"),
        Verdict::Refuse(_) => panic!("refused in report mode"),
    }
    // What is wrong with the request itself is still refused.
    let d = decide(&gw, "/trial/../trial/%2e%2e", &HeaderMap::new());
    assert!(d.would_refuse.is_none());
    assert!(matches!(d.verdict, Verdict::Refuse(_)));
    // An enforcing route refuses as before.
    let d = decide(&gw, "/any", &HeaderMap::new());
    assert!(d.would_refuse.is_none());
    assert_eq!(refusal(d).reason(), "unauthorized");
}

#[test]
fn a_query_credential_is_removed_from_the_forwarded_query() {
    let gw = gateway();
    match decide(&gw, "/any?a=1&key=free-secret&b=2", &HeaderMap::new()).verdict {
        Verdict::Forward(f) => assert_eq!(f.path_and_query, "/any?a=1&b=2"),
        Verdict::Refuse(r) => panic!("refused: {:?}", r.outcome()),
    }
}

#[test]
fn a_route_restricted_to_an_issuer_takes_only_credentials_of_that_issuer() {
    let gw = gateway();
    assert!(matches!(
        decide(&gw, "/us1", &header("x-api-key", "site-secret")).verdict,
        Verdict::Forward(_)
    ));
    assert!(matches!(
        refusal(decide(&gw, "/us1?key=free-secret", &HeaderMap::new())),
        Refusal::IssuerNotAccepted
    ));
}

#[test]
fn an_unknown_secret_is_an_invalid_token_and_counts_for_no_credential() {
    let gw = gateway();
    assert!(matches!(
        refusal(decide(&gw, "/any", &header("x-api-key", "free-secret"))),
        Refusal::InvalidToken(TokenError::Unknown)
    ));
    assert!(gw.state.metrics.legacy_uses.iter().all(|c| c.get() == 0));
    decide(&gw, "/any", &header("x-api-key", "site-secret"));
    assert_eq!(gw.state.metrics.legacy_uses[0].get(), 1);
}

#[test]
fn a_retired_legacy_credential_is_refused_and_still_counted() {
    let gw = gateway();
    assert!(matches!(
        refusal(decide(&gw, "/any", &header("x-api-key", "old-secret"))),
        Refusal::RetiredCredential
    ));
    assert_eq!(gw.state.metrics.legacy_uses[2].get(), 1);
}

#[test]
fn strip_removes_a_legacy_credential_header_before_forwarding() {
    let gw = gateway();
    let Verdict::Forward(f) = decide(&gw, "/any", &header("x-api-key", "site-secret")).verdict
    else {
        panic!("refused");
    };
    let out = gw.rules.forward.rewrite(
        header("x-api-key", "site-secret"),
        &Connection::local(),
        crate::forward::Settled {
            principal: f.principal.as_deref(),
            org: None,
            strip_credentials: f.strip_credentials,
            request_id: http::HeaderValue::from_static("r-1"),
        },
    );
    assert!(!out.contains_key("x-api-key"));
    assert_eq!(out["x-auth-subject"], "s1");
    assert_eq!(out["x-auth-issuer"], "us1");
}

/// The network half, played by the test: counts what it is asked and answers as told.
struct Backend {
    keys_asked: AtomicUsize,
    introspections: AtomicUsize,
    answer: Result<Cached, Unreachable>,
}

impl Default for Backend {
    /// An authorization server that fails.
    fn default() -> Backend {
        Backend {
            keys_asked: AtomicUsize::default(),
            introspections: AtomicUsize::default(),
            answer: Err(Unreachable::Introspection),
        }
    }
}

impl super::Backend for Backend {
    async fn refresh_keys(&self, _issuer: usize) {
        self.keys_asked.fetch_add(1, Ordering::Relaxed);
    }

    async fn introspect(
        &self,
        token: &str,
        digest: TokenHash,
        _client: Option<std::net::IpAddr>,
    ) -> Result<Cached, Unreachable> {
        assert_eq!(digest, crate::token::hash(token), "the token's digest");
        self.introspections.fetch_add(1, Ordering::Relaxed);
        self.answer.clone()
    }

    async fn membership(&self, _token: &str, _digest: TokenHash, _issuer: usize, _org: &str) {
        unreachable!("no issuer of these tests asks for memberships")
    }
}

fn run<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

fn decide_with(gw: &Gateway, headers: &HeaderMap, backend: &Backend) -> Decided {
    let uri: Uri = "/any".parse().unwrap();
    let headers = with_host(headers);
    run(gw.decide_with(&head(&uri, &headers, &Connection::local()), backend))
}

#[test]
fn a_cached_jwt_stays_refused_once_its_jti_is_revoked() {
    let gw = gateway();
    let signer = Signer::new("k1");
    gw.state.issuers[0].set_keys(signer.jwks());
    let mut claims = testing::claims(unix_now());
    claims["jti"] = "t-1".into();
    let token = signer.sign(&signer.header(), &claims);
    assert!(matches!(
        decide(&gw, "/any", &bearer(&token)).verdict,
        Verdict::Forward(_)
    ));
    gw.state.revocations.add(
        &[crate::token::Revoked::Jti {
            iss: testing::ISS.into(),
            jti: "t-1".into(),
        }],
        unix_now(),
        u64::MAX,
        60,
    );
    assert!(matches!(
        refusal(decide(&gw, "/any", &bearer(&token))),
        Refusal::InvalidToken(TokenError::Revoked)
    ));
}

#[test]
fn an_unknown_kid_needs_keys_then_one_refresh_decides_without_running_the_pipeline_again() {
    let gw = gateway();
    let old = Signer::new("k1");
    gw.state.issuers[0].set_keys(old.jwks());
    let rotated = Signer::new("k2");
    let token = rotated.sign(&rotated.header(), &testing::claims(unix_now()));
    let without = decide(&gw, "/any", &bearer(&token));
    assert_eq!(
        without.need,
        Some(Ask::Authn(Need::Keys {
            issuer: 0,
            ever_fetched: true
        }))
    );
    assert!(matches!(
        refusal(without),
        Refusal::InvalidToken(TokenError::UnknownKey)
    ));
    // The refresh finds no new key: the refusal stands, settled after one refresh.
    let backend = Backend::default();
    let refused = decide_with(&gw, &bearer(&token), &backend);
    assert_eq!(backend.keys_asked.load(Ordering::Relaxed), 1);
    assert!(refused.need.is_none(), "decide_with settles what it can");
    assert!(matches!(
        refusal(refused),
        Refusal::InvalidToken(TokenError::UnknownKey)
    ));
    // Once the issuer publishes it (as the key sync would install it):
    gw.state.issuers[0].set_keys(rotated.jwks());
    let allowed = decide_with(&gw, &bearer(&token), &backend);
    assert!(matches!(allowed.verdict, Verdict::Forward(_)));
    assert_eq!(
        backend.keys_asked.load(Ordering::Relaxed),
        1,
        "a known key needs no refresh"
    );
}

#[test]
fn keys_never_fetched_are_a_503_not_a_401() {
    let gw = gateway();
    let signer = Signer::new("k1");
    let token = signer.sign(&signer.header(), &testing::claims(unix_now()));
    let d = decide_with(&gw, &bearer(&token), &Backend::default());
    assert!(matches!(
        refusal(d),
        Refusal::Unavailable(Unreachable::IssuerKeys)
    ));
}

#[test]
fn an_opaque_token_is_decided_by_the_introspection_answer() {
    let gw = gateway();
    let opaque = "opaque-token-1";
    assert_eq!(
        decide(&gw, "/any", &bearer(opaque)).need,
        Some(Ask::Authn(Need::Introspection))
    );
    let unreachable = Backend::default();
    assert!(matches!(
        refusal(decide_with(&gw, &bearer(opaque), &unreachable)),
        Refusal::Unavailable(Unreachable::Introspection)
    ));
    assert_eq!(unreachable.introspections.load(Ordering::Relaxed), 1);
    let inactive = Backend {
        answer: Ok(Cached::Invalid(TokenError::Inactive)),
        ..Backend::default()
    };
    assert!(matches!(
        refusal(decide_with(&gw, &bearer(opaque), &inactive)),
        Refusal::InvalidToken(TokenError::Inactive)
    ));
    let principal = gw
        .rules
        .principals
        .build(
            0,
            &gw.rules.issuers[0],
            testing::claims(unix_now()).as_object().unwrap(),
        )
        .unwrap();
    let active = Backend {
        answer: Ok(Cached::Valid(Arc::new(principal))),
        ..Backend::default()
    };
    match decide_with(&gw, &bearer(opaque), &active).verdict {
        Verdict::Forward(f) => assert_eq!(f.principal.unwrap().subject, "alice"),
        Verdict::Refuse(r) => panic!("refused: {r:?}"),
    }
}

#[test]
fn an_active_answer_is_served_stale_only_on_a_server_failure_within_the_window() {
    let yaml = CONFIG
        .replace(
            "client_secret: s }",
            "client_secret: s, serve_stale_on_error: 60s }",
        )
        .replace("SITE", &sha256_hex("site-secret"))
        .replace("FREE", &sha256_hex("free-secret"))
        .replace("OLD", &sha256_hex("old-secret"));
    let gw = crate::compile::from_text(&yaml, "t")
        .unwrap()
        .gateway(&prometheus::Registry::new())
        .0;
    let now = unix_now();
    let principal = gw
        .rules
        .principals
        .build(
            0,
            &gw.rules.issuers[0],
            testing::claims(now).as_object().unwrap(),
        )
        .unwrap();
    let principal = Arc::new(principal);
    let opaque = "opaque-stale-1";
    // Cached as active 5 minutes and 10 seconds ago: past its 5-minute freshness, within the
    // 60-second window.
    let cached_at = now - gw.state.cache.max_ttl().as_secs() - 10;
    gw.state.cache.insert_valid(
        crate::token::hash(opaque),
        principal.clone(),
        cached_at,
        Some(std::time::Duration::from_secs(60)),
    );
    // The server fails: served stale, and said so.
    let d = decide_with(&gw, &bearer(opaque), &Backend::default());
    assert!(d.stale);
    assert!(matches!(d.verdict, Verdict::Forward(_)));
    // The server answers: never stale, whatever it says.
    let inactive = Backend {
        answer: Ok(Cached::Invalid(TokenError::Inactive)),
        ..Backend::default()
    };
    assert!(matches!(
        refusal(decide_with(&gw, &bearer(opaque), &inactive)),
        Refusal::InvalidToken(TokenError::Inactive)
    ));
    // The gateway's own bounds (budgets) are not a server failure: 503.
    let spent = Backend {
        answer: Err(Unreachable::IntrospectionBudget),
        ..Backend::default()
    };
    let stale_again = || {
        gw.state.cache.insert_valid(
            crate::token::hash(opaque),
            principal.clone(),
            cached_at,
            Some(std::time::Duration::from_secs(60)),
        )
    };
    stale_again();
    assert!(matches!(
        refusal(decide_with(&gw, &bearer(opaque), &spent)),
        Refusal::Unavailable(Unreachable::IntrospectionBudget)
    ));
    // A revocation received meanwhile still applies.
    stale_again();
    gw.state.revocations.add(
        &[crate::token::Revoked::Token(crate::token::hash(opaque))],
        now,
        now + 3600,
        3600,
    );
    assert!(matches!(
        refusal(decide_with(&gw, &bearer(opaque), &Backend::default())),
        Refusal::InvalidToken(TokenError::Revoked)
    ));
}
