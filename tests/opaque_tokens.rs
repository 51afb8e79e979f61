//! Opaque access tokens from the real oidc-provider, checked by RFC 7662 introspection.

mod support;

use std::time::Duration;
use support::*;

/// Opaque tokens of the real issuer, introspected with a 1 s timeout.
fn config_template() -> String {
    // Generous budgets: these tests are about what introspection answers mean and cost.
    limited("{ per_client_per_second: 1000, per_second: 1000 }")
}

/// [`config_template`] with `tokens.introspection_limits` as given.
fn limited(limits: &str) -> String {
    Template::corp(&[OPAQUE_API])
        .issuer("introspection:\n      client_id: gateway\n      client_secret: gateway-secret\n      timeout: 1s")
        .section("tokens:\n  cache: { max_ttl: 5m, negative_ttl: 5s }\n  introspection_limits: LIMITS")
        .section("scopes:\n  implies:\n    repo: [repo:status, public_repo]")
        .routes(r#"  - name: list-org-repos
    match: { methods: [GET], path: "/orgs/{org}/repos" }
    upstream: api
    require:
      scopes: { any: [repo, public_repo] }"#)
        .yaml()
        .replace("LIMITS", limits)
}

fn url(gw: &TestGateway) -> String {
    format!("{}/orgs/acme/repos", gw.url)
}

#[test]
fn an_opaque_token_is_accepted_with_its_scopes_and_refused_without_them() {
    let auth = AuthServer::start();
    let upstream = Upstream::start();
    let gw = TestGateway::start(&config(&config_template(), &auth, &upstream));
    let token = auth.client_token("full", "repo", OPAQUE_API);
    assert!(
        !token.contains('.'),
        "oidc-provider issued a JWT, not an opaque token"
    );
    let r = get(&url(&gw), Some(&token));
    assert_eq!(r.status(), 200);
    let seen: serde_json::Value = r.json().unwrap();
    assert_eq!(seen["headers"]["x-auth-subject"][0], "full");
    assert_eq!(seen["headers"]["x-auth-principal"][0], "app");
    assert_eq!(
        seen["headers"]["x-auth-scopes"][0],
        "public_repo repo repo:status"
    );
    // Served from the cache afterwards: one introspection for both requests.
    assert_eq!(get(&url(&gw), Some(&token)).status(), 200);
    assert_eq!(auth.introspections(), 1);

    let reader = auth.client_token("reader", "read:org", OPAQUE_API);
    let r = get(&url(&gw), Some(&reader));
    assert_eq!(r.status(), 403);
    assert_eq!(header(&r, "x-oauth-scopes"), "read:org");
}

#[test]
fn an_unknown_opaque_token_is_inactive_and_refused() {
    let auth = AuthServer::start();
    let upstream = Upstream::start();
    let gw = TestGateway::start(&config(&config_template(), &auth, &upstream));
    let r = get(&url(&gw), Some("made-up-opaque-token"));
    assert_eq!(r.status(), 401);
    assert!(header(&r, "www-authenticate").contains("the token is not active"));
    // The refusal is remembered for negative_ttl: no second call.
    assert_eq!(get(&url(&gw), Some("made-up-opaque-token")).status(), 401);
    assert_eq!(auth.introspections(), 1);
    assert_eq!(upstream.count(), 0);
}

#[test]
fn concurrent_requests_with_one_new_token_cause_exactly_one_introspection() {
    let auth = AuthServer::start();
    let upstream = Upstream::start();
    let gw = TestGateway::start(&config(&config_template(), &auth, &upstream));
    let token = auth.client_token("full", "repo", OPAQUE_API);
    let target = url(&gw);
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..100)
            .map(|_| s.spawn(|| get(&target, Some(&token)).status().as_u16()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
    assert_eq!(auth.introspections(), 1);
    let m = gw.metrics();
    assert!(
        m.contains("scopegate_introspection_requests_total{issuer=\"corp\",result=\"active\"} 1"),
        "{m}"
    );
}

#[test]
fn when_the_authorization_server_is_down_cached_tokens_pass_new_ones_get_503_then_it_recovers() {
    let auth = AuthServer::start();
    let port = auth.port();
    let upstream = Upstream::start();
    let gw = TestGateway::start(&config(&config_template(), &auth, &upstream));
    let cached = auth.client_token("full", "repo", OPAQUE_API);
    let fresh = auth.client_token("full", "repo", OPAQUE_API);
    assert_eq!(get(&url(&gw), Some(&cached)).status(), 200);
    drop(auth);

    assert_eq!(
        get(&url(&gw), Some(&cached)).status(),
        200,
        "a cached answer outlives the outage"
    );
    let r = get(&url(&gw), Some(&fresh));
    assert_eq!(
        r.status(),
        503,
        "fail closed, never 401 for the server's fault"
    );
    assert_eq!(header(&r, "retry-after"), "5");
    assert!(
        gw.metrics()
            .contains("scopegate_introspection_requests_total{issuer=\"corp\",result=\"error\"} 1")
    );

    // Back (an in-memory provider forgets its tokens, so a new one is issued).
    let auth = AuthServer::start_on(port);
    std::thread::sleep(Duration::from_millis(100));
    let again = auth.client_token("full", "repo", OPAQUE_API);
    assert_eq!(get(&url(&gw), Some(&again)).status(), 200);
}

#[test]
fn a_thousand_requests_with_a_hundred_distinct_tokens_cost_a_hundred_introspections() {
    let auth = AuthServer::start();
    let upstream = Upstream::start();
    let gw = TestGateway::start(&config(&config_template(), &auth, &upstream));
    let tokens: Vec<String> = (0..100)
        .map(|_| auth.client_token("full", "repo", OPAQUE_API))
        .collect();
    let client = reqwest::blocking::Client::new();
    for i in 0..1000 {
        let r = client
            .get(url(&gw))
            .bearer_auth(&tokens[i % 100])
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let calls = auth.introspections();
    eprintln!("introspection calls for 1000 requests over 100 distinct tokens: {calls}");
    assert_eq!(calls, 100);
    let m = gw.metrics();
    assert!(
        m.contains("scopegate_token_cache_hits_total{kind=\"opaque\"} 900"),
        "{m}"
    );
}

/// A client flooding made-up opaque tokens: the authorization server sees at most that
/// client's budget of calls, cached tokens keep passing throughout, and a new legitimate
/// token from another client address is still introspected.
#[test]
fn a_flood_of_made_up_opaque_tokens_stays_within_the_budget_and_legitimate_tokens_pass() {
    let auth = AuthServer::start();
    let upstream = Upstream::start();
    let yaml = limited("{ per_client_per_second: 5, per_second: 40 }");
    let gw = TestGateway::start(&config(&yaml, &auth, &upstream));
    let cached = auth.client_token("full", "repo", OPAQUE_API);
    let client = reqwest::blocking::Client::new();
    let get_with = |c: &reqwest::blocking::Client, token: &str| {
        c.get(url(&gw))
            .bearer_auth(token)
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(get_with(&client, &cached), 200);
    let before = auth.introspections();
    let start = std::time::Instant::now();
    let (mut junk, mut cached_ok, mut cached_sent, mut refused_503) = (0, 0, 0, 0);
    while start.elapsed() < Duration::from_secs(2) {
        junk += 1;
        match get_with(&client, &format!("junk-{junk}-made-up-opaque-token")) {
            503 => refused_503 += 1,
            401 => {}
            other => panic!("a made-up token got {other}"),
        }
        if junk % 5 == 0 {
            cached_sent += 1;
            cached_ok += usize::from(get_with(&client, &cached) == 200);
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let calls = auth.introspections() - before;
    println!(
        "{junk} made-up tokens in {seconds:.1} s: {calls} introspections, {refused_503} answered 503; cached token {cached_ok}/{cached_sent}"
    );
    // One second's burst, then 5 per second.
    assert!(calls as f64 <= 5.0 + 5.0 * seconds + 1.0, "{calls} calls");
    assert!(
        junk > 50 && refused_503 > 0,
        "the flood was a flood: {junk}"
    );
    assert_eq!(cached_ok, cached_sent, "every cached token served");
    // Another client address has its own budget.
    let other = reqwest::blocking::Client::builder()
        .local_address(Some("127.0.0.2".parse().unwrap()))
        .build()
        .unwrap();
    let fresh = auth.client_token("full", "repo", OPAQUE_API);
    assert_eq!(get_with(&other, &fresh), 200);
    assert!(
        gw.metrics()
            .contains("scopegate_introspection_refused_total{reason=\"client_budget\"}"),
        "{}",
        gw.metrics()
    );
}

/// An authorization server that answers 429 is left alone for its `Retry-After`: new tokens
/// get 503 meanwhile without a call, and it is not taken for an outage (the breaker stays
/// closed).
#[test]
fn a_429_from_the_authorization_server_is_honoured_and_not_an_outage() {
    let auth = AuthServer::start();
    let upstream = Upstream::start();
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = calls.clone();
    let (throttler, _rt) = serve(move |_req| {
        counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async {
            let mut r = http::Response::new(http_body_util::Full::new(bytes::Bytes::new()));
            *r.status_mut() = http::StatusCode::TOO_MANY_REQUESTS;
            r.headers_mut().insert("retry-after", "2".parse().unwrap());
            r
        }
    });
    let yaml = config_template().replace(
        "timeout: 1s",
        &format!("timeout: 1s\n      endpoint: \"http://{throttler}/introspect\""),
    );
    let gw = TestGateway::start(&config(&yaml, &auth, &upstream));
    let first = get(&url(&gw), Some("new-token-1"));
    assert_eq!(first.status(), 503);
    assert_eq!(header(&first, "retry-after"), "5");
    for i in 2..12 {
        assert_eq!(
            get(&url(&gw), Some(&format!("new-token-{i}"))).status(),
            503
        );
    }
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1, "paused");
    let m = gw.metrics();
    assert!(
        !m.contains("scopegate_introspection_circuit_open{issuer=\"corp\"} 1"),
        "{m}"
    );
    assert!(m.contains("result=\"throttled\"} 1"), "{m}");
    std::thread::sleep(Duration::from_millis(2200));
    assert_eq!(get(&url(&gw), Some("new-token-99")).status(), 503);
    assert_eq!(
        calls.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "asked again after the pause"
    );
}
