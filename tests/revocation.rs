//! Revocation through pushed Security Event Tokens (RFC 8417 / RFC 8935): the test is the
//! transmitter, with its own key published at a JWKS URL it serves.

mod support;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use scopegate::dev::DevIssuer;
use serde_json::{Value, json};
use std::time::Instant;
use support::poll::PollServer;
use support::*;

type World = PushWorld;

fn world() -> World {
    PushWorld::start()
}

fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn set(tx: &DevIssuer, jti: &str, aud: &str, events: Value) -> String {
    let now = scopegate::clock::unix_now();
    tx.sign(
        "secevent+jwt",
        &json!({"iss": TRANSMITTER, "aud": aud, "iat": now, "jti": jti, "events": events}),
    )
}

fn status(w: &World, token: &str) -> u16 {
    get(&format!("{}/orgs/acme/repos", w.gw.url), Some(token))
        .status()
        .as_u16()
}

const TOKEN_REVOKED: &str = "https://schemas.openid.net/secevent/oauth/event-type/token-revoked";
const SESSIONS_REVOKED: &str =
    "https://schemas.openid.net/secevent/risc/event-type/sessions-revoked";

#[test]
fn a_jwt_is_refused_at_once_after_a_set_naming_its_jti() {
    let w = world();
    let token = w.auth.client_token("full", "repo", API);
    assert_eq!(status(&w, &token), 200);
    let jti = claims(&token)["jti"].as_str().unwrap().to_string();
    let event =
        json!({TOKEN_REVOKED: {"subject": {"format": "jwt_id", "iss": w.auth.url, "jti": jti}}});
    let (code, body) = w.gw.push_set(&set(&w.tx, "set-1", GATEWAY_AUD, event));
    assert_eq!(code, 202, "{body}");
    let accepted = Instant::now();
    let r = get(&format!("{}/orgs/acme/repos", w.gw.url), Some(&token));
    eprintln!(
        "push propagation: first refused request {:?} after the SET was accepted",
        accepted.elapsed()
    );
    assert_eq!(r.status(), 401);
    assert!(header(&r, "www-authenticate").contains("revoked"));
    let other = w.auth.client_token("full", "repo", API);
    assert_eq!(status(&w, &other), 200, "only that token");
}

#[test]
fn a_users_jwts_are_refused_after_sessions_revoked_for_the_subject() {
    let w = world();
    let alice = w.auth.user_token("alice", "full", "repo", API);
    let bob = w.auth.user_token("bob", "full", "repo", API);
    assert_eq!(status(&w, &alice), 200);
    let event = json!({SESSIONS_REVOKED: {"subject": {"format": "iss_sub", "iss": w.auth.url, "sub": "alice"}}});
    assert_eq!(
        w.gw.push_set(&set(&w.tx, "set-2", GATEWAY_AUD, event)).0,
        202
    );
    assert_eq!(status(&w, &alice), 401);
    assert_eq!(status(&w, &bob), 200);
}

#[test]
fn an_opaque_token_revoked_at_the_server_is_refused_at_once_after_token_revoked() {
    let w = world();
    let token = w.auth.client_token("full", "repo", OPAQUE_API);
    assert_eq!(status(&w, &token), 200);
    // Revoked at the authorization server: the gateway's cached answer still says active.
    let r = reqwest::blocking::Client::new()
        .post(format!("{}/token/revocation", w.auth.url))
        .basic_auth("full", Some("full-secret"))
        .form(&[("token", token.as_str())])
        .send()
        .unwrap();
    assert!(r.status().is_success());
    assert_eq!(status(&w, &token), 200, "served from the cache until told");
    let digest = aws_lc_rs_digest(&token);
    let event = json!({TOKEN_REVOKED: {"subject": {"format": "opaque", "id": digest}}});
    assert_eq!(
        w.gw.push_set(&set(&w.tx, "set-3", GATEWAY_AUD, event)).0,
        202
    );
    assert_eq!(status(&w, &token), 401);
    assert!(
        w.gw.metrics()
            .contains("scopegate_revocation_evicted_total 1")
    );
}

#[test]
fn every_token_of_an_uninstalled_client_is_refused() {
    let w = world();
    let bot = w.auth.client_token("bot", "chat.bot", API);
    let full = w.auth.client_token("full", "repo", API);
    assert_eq!(status(&w, &bot), 200);
    let event = json!({SESSIONS_REVOKED: {"subject": {"format": "client_id", "iss": w.auth.url, "client_id": "bot"}}});
    assert_eq!(
        w.gw.push_set(&set(&w.tx, "set-4", GATEWAY_AUD, event)).0,
        202
    );
    assert_eq!(status(&w, &bot), 401);
    assert_eq!(status(&w, &full), 200);
}

#[test]
fn a_set_about_an_issuer_the_gateway_does_not_know_is_refused_and_counted() {
    let w = world();
    let event = json!({SESSIONS_REVOKED: {"subject": {"format": "client_id",
        "iss": "https://elsewhere.example", "client_id": "bot"}}});
    let (code, body) =
        w.gw.push_set(&set(&w.tx, "set-elsewhere", GATEWAY_AUD, event));
    assert_eq!(
        (code, body["err"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    assert!(
        body["description"]
            .as_str()
            .unwrap()
            .contains("https://elsewhere.example"),
        "{body}"
    );
    assert!(
        w.gw.metrics()
            .contains("scopegate_sets_rejected_total{reason=\"invalid_request\"} 1"),
        "{}",
        w.gw.metrics()
    );
}

#[test]
fn bad_sets_are_refused_with_rfc8935_errors_and_revoke_nothing() {
    let w = world();
    let token = w.auth.client_token("full", "repo", API);
    assert_eq!(status(&w, &token), 200);
    let jti = claims(&token)["jti"].as_str().unwrap().to_string();
    let event =
        json!({TOKEN_REVOKED: {"subject": {"format": "jwt_id", "iss": w.auth.url, "jti": jti}}});

    let stranger = DevIssuer::new(TRANSMITTER.into(), GATEWAY_AUD.into());
    let (code, body) =
        w.gw.push_set(&set(&stranger, "bad-1", GATEWAY_AUD, event.clone()));
    assert_eq!(
        (code, body["err"].as_str()),
        (400, Some("invalid_key")),
        "{body}"
    );

    let (code, body) = w.gw.push_set(&set(
        &w.tx,
        "bad-2",
        "https://someone-else.test",
        event.clone(),
    ));
    assert_eq!(
        (code, body["err"].as_str()),
        (400, Some("invalid_audience")),
        "{body}"
    );

    let unknown = json!({"https://example.com/event-type/made-up": {"subject": {"format": "jwt_id", "iss": w.auth.url, "jti": jti}}});
    let (code, body) = w.gw.push_set(&set(&w.tx, "bad-3", GATEWAY_AUD, unknown));
    assert_eq!(
        (code, body["err"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );

    assert_eq!(
        status(&w, &token),
        200,
        "nothing was revoked by the refused SETs"
    );

    // A valid SET about another token, then the same `jti` again with this token.
    let other = json!({TOKEN_REVOKED: {"subject": {"format": "jwt_id", "iss": w.auth.url, "jti": "other"}}});
    assert_eq!(w.gw.push_set(&set(&w.tx, "dup", GATEWAY_AUD, other)).0, 202);
    let (code, body) = w.gw.push_set(&set(&w.tx, "dup", GATEWAY_AUD, event));
    assert_eq!(
        (code, body["err"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    assert_eq!(status(&w, &token), 200, "a replayed jti is not processed");
    let m = w.gw.metrics();
    assert!(
        m.contains("scopegate_sets_rejected_total{reason=\"invalid_request\"} 2"),
        "{m}"
    );
}

fn aws_lc_rs_digest(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(scopegate::token::hash(token))
}

#[test]
fn without_push_a_revocation_arrives_within_one_poll_interval_and_is_acknowledged() {
    let auth = AuthServer::start();
    let upstream = Upstream::start();
    let tx = DevIssuer::new(TRANSMITTER.into(), GATEWAY_AUD.into());
    let jwks = JsonServer::start(tx.jwks());
    let poll = PollServer::start();
    let yaml = config(&push_config(), &auth, &upstream).replace(
        "    push:\n      transmitter: \"https://transmitter.scopegate.test\"\n      jwks_uri: \"{jwks}\"\n",
        &format!(
            "    poll:\n      endpoint: \"{}\"\n      interval: 500ms\n      transmitter: \"https://transmitter.scopegate.test\"\n      jwks_uri: \"{}\"\n",
            poll.url, jwks.url
        ),
    );
    assert!(yaml.contains("poll:"), "{yaml}");
    let gw = TestGateway::start(&yaml);
    let repos = format!("{}/orgs/acme/repos", gw.url);
    let mut delays = Vec::new();
    for i in 0..20 {
        let token = auth.client_token("full", "repo", API);
        assert_eq!(get(&repos, Some(&token)).status(), 200);
        let jti = claims(&token)["jti"].as_str().unwrap().to_string();
        let event =
            json!({TOKEN_REVOKED: {"subject": {"format": "jwt_id", "iss": auth.url, "jti": jti}}});
        let set_jti = format!("poll-{i}");
        poll.queue
            .lock()
            .unwrap()
            .insert(set_jti, set(&tx, &format!("poll-{i}"), GATEWAY_AUD, event));
        let queued = Instant::now();
        while get(&repos, Some(&token)).status() == 200 {
            assert!(
                queued.elapsed() < std::time::Duration::from_secs(3),
                "not revoked by polling"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        delays.push(queued.elapsed());
    }
    delays.sort();
    eprintln!(
        "poll propagation over {} tries (interval 500ms): min {:?}, median {:?}, max {:?}",
        delays.len(),
        delays[0],
        delays[delays.len() / 2],
        delays[delays.len() - 1]
    );
    assert!(
        delays[delays.len() - 1] < std::time::Duration::from_millis(1000),
        "{delays:?}"
    );
    std::thread::sleep(std::time::Duration::from_millis(700));
    let acked = poll.acked.lock().unwrap().clone();
    assert!(
        acked.contains(&"poll-0".to_string()) && acked.contains(&"poll-8".to_string()),
        "{acked:?}"
    );
    assert!(
        gw.metrics().contains(
            "scopegate_revocation_events_total{source=\"poll\",type=\"token-revoked\"} 20"
        )
    );
}
