//! Several replicas, one truth: three gateways share a real Redis (`redis-server` from the
//! OS packages, started by the test). A revocation pushed to one replica is refused by all,
//! and a replica started afterwards refuses it from its first request.

mod support;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::redis::Redis;
use support::*;

/// What every replica of a test shares to authenticate what it writes to Redis.
const HMAC_KEY: &str = "test-cluster-key-0123456789abcdef0123";
const PREFIX: &str = "gw-test:";

const TOKEN_REVOKED: &str = "https://schemas.openid.net/secevent/oauth/event-type/token-revoked";

fn revoke(tx: &scopegate::dev::DevIssuer, jti: &str, token: &str) -> String {
    let now = scopegate::clock::unix_now();
    let digest = URL_SAFE_NO_PAD.encode(scopegate::token::hash(token));
    tx.sign(
        "secevent+jwt",
        &json!({"iss": TRANSMITTER, "aud": GATEWAY_AUD, "iat": now, "jti": jti,
            "events": {TOKEN_REVOKED: {"subject": {"format": "opaque", "id": digest}}}}),
    )
}

/// What every replica of a test shares besides Redis: the authorization server, the
/// upstream, and the SET transmitter with its published keys.
struct Parts {
    auth: AuthServer,
    upstream: Upstream,
    tx: scopegate::dev::DevIssuer,
    jwks: JsonServer,
}

impl Parts {
    fn start() -> Parts {
        let tx = scopegate::dev::DevIssuer::new(TRANSMITTER.into(), GATEWAY_AUD.into());
        Parts {
            auth: AuthServer::start(),
            upstream: Upstream::start(),
            jwks: JsonServer::start(tx.jwks()),
            tx,
        }
    }

    /// The configuration of a replica: [`push_config`] with `cluster:` on `redis` (the
    /// replicas' shared HMAC key, a deployment's own prefix) and the `extra` lines under it,
    /// then `edit`.
    fn yaml(&self, redis: &str, extra: &str, edit: impl Fn(String) -> String) -> String {
        let yaml = format!(
            "{}cluster:\n  redis: \"{redis}\"\n  hmac_key: \"{HMAC_KEY}\"\n  key_prefix: \"{PREFIX}\"\n{extra}",
            push_config()
        );
        edit(config(&yaml, &self.auth, &self.upstream)).replace("{jwks}", &self.jwks.url)
    }

    /// A ready replica.
    fn replica(&self, redis: &str, extra: &str) -> TestGateway {
        TestGateway::start(&self.yaml(redis, extra, |y| y))
    }
}

/// Turns [`push_config`]'s push into polling `endpoint` every 200 ms.
fn polling(endpoint: &str) -> impl Fn(String) -> String + '_ {
    move |yaml| {
        yaml.replace(
            "    push:\n      transmitter: \"https://transmitter.scopegate.test\"\n      jwks_uri: \"{jwks}\"\n",
            &format!(
                "    poll:\n      endpoint: \"{endpoint}\"\n      interval: 200ms\n      transmitter: \"https://transmitter.scopegate.test\"\n      jwks_uri: \"{{jwks}}\"\n"
            ),
        )
    }
}

/// What `gw` answers to `token` on the protected route.
fn status(gw: &TestGateway, token: &str) -> u16 {
    get(&format!("{}/orgs/acme/repos", gw.url), Some(token))
        .status()
        .as_u16()
}

#[test]
fn a_revocation_pushed_to_one_replica_is_refused_by_all_and_by_one_started_later() {
    let redis = Redis::start();
    let parts = Parts::start();
    let (auth, tx) = (&parts.auth, &parts.tx);
    let replica = || parts.replica(&redis.url, "");
    let (a, b) = (replica(), replica());
    let mut c = replica();
    let first = auth.client_token("full", "repo", OPAQUE_API);
    let second = auth.client_token("full", "repo", OPAQUE_API);
    for gw in [&a, &b, &c] {
        assert_eq!(status(gw, &first), 200);
    }

    // Pushed to A only.
    let pushed = Instant::now();
    assert_eq!(a.push_set(&revoke(tx, "c-1", &first)).0, 202);
    assert_eq!(status(&a, &first), 401, "at once where it was pushed");
    eventually("B and C refuse it too", || {
        status(&b, &first) == 401 && status(&c, &first) == 401
    });
    println!(
        "propagated to both other replicas within {:?}",
        pushed.elapsed()
    );
    assert_eq!(status(&b, &second), 200, "only that token");

    // A replica restarted (a rolling update) forgets nothing.
    c.terminate();
    let c = replica();
    assert_eq!(status(&c, &first), 401, "refused from the first request");
    assert_eq!(status(&c, &second), 200);

    // And it follows what the others revoke from then on.
    assert_eq!(b.push_set(&revoke(tx, "c-2", &second)).0, 202);
    eventually("the new replica follows", || status(&c, &second) == 401);
    assert_eq!(status(&a, &second), 401);
}

#[test]
fn revocations_received_while_redis_is_down_apply_locally_and_reach_the_others_when_it_is_back() {
    let dir = std::env::temp_dir().join(format!("scopegate-redis-{}", free_port()));
    let redis = Redis::on(free_port(), Some(dir.clone()));
    let url = redis.url.clone();
    let parts = Parts::start();
    let (auth, tx) = (&parts.auth, &parts.tx);
    let replica = || parts.replica(&url, "");
    let (a, b) = (replica(), replica());
    let before = auth.client_token("full", "repo", OPAQUE_API);
    let during = auth.client_token("full", "repo", OPAQUE_API);
    assert_eq!(a.push_set(&revoke(tx, "d-1", &before)).0, 202);
    eventually("B refuses the first", || status(&b, &before) == 401);

    // Redis goes away: both keep serving with what they know. A push is applied where it
    // lands, and answered 503: not acknowledged before the other replicas can have it.
    let (port, kept) = redis.kill();
    let (pushed, body) = a.push_set(&revoke(tx, "d-2", &during));
    assert_eq!(pushed, 503, "{body}");
    assert_eq!(body["err"], "temporarily_unavailable");
    assert_eq!(status(&a, &during), 401, "applied where it was pushed");
    assert_eq!(status(&b, &before), 401, "nothing forgotten");
    eventually("A says it is degraded", || {
        let m = a.metrics();
        m.contains("scopegate_cluster_redis_up 0")
            && m.contains("scopegate_cluster_pending_revocations 1")
    });
    let ready = reqwest::blocking::get(format!("{}/readyz", a.admin)).unwrap();
    assert_eq!(ready.status(), 200, "degraded, still ready");

    // Redis is back: what A kept reaches B (written by A's retry, before any redelivery),
    // and nothing was lost; the transmitter's redelivery is then acknowledged.
    let _redis = Redis::on(port, kept);
    eventually("B refuses what was revoked during the outage", || {
        status(&b, &during) == 401
    });
    assert_eq!(a.push_set(&revoke(tx, "d-2", &during)).0, 202);
    eventually("A is no longer degraded", || {
        a.metrics().contains("scopegate_cluster_redis_up 1")
    });
    let c = replica();
    assert_eq!(
        status(&c, &before),
        401,
        "persisted across the Redis restart"
    );
    assert_eq!(status(&c, &during), 401);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_replica_starting_without_redis_waits_unless_told_to_start_with_local_state() {
    let parts = Parts::start();
    let nowhere = format!("redis://127.0.0.1:{}", free_port());
    let replica = |extra: &str| TestGateway::start_unready(&parts.yaml(&nowhere, extra, |y| y));
    let readyz = |gw: &TestGateway| match reqwest::blocking::get(format!("{}/readyz", gw.admin)) {
        Ok(r) => (r.status().as_u16(), r.text().unwrap_or_default()),
        // Not listening yet.
        Err(_) => (0, String::new()),
    };
    let waiting = replica("");
    let lenient = replica("  start_without_redis: true\n");
    eventually("the lenient one is ready", || readyz(&lenient).0 == 200);
    eventually("the other one answers", || readyz(&waiting).0 != 0);
    let (status, body) = readyz(&waiting);
    assert_eq!(status, 503);
    assert!(
        body.contains("waiting for the revocations shared in Redis"),
        "{body}"
    );
}

#[test]
fn two_replicas_polling_one_stream_take_turns_and_every_event_is_applied_once_everywhere() {
    let redis = Redis::start();
    let parts = Parts::start();
    let (auth, tx) = (&parts.auth, &parts.tx);
    let poll = support::poll::PollServer::start();
    let poll_instead_of_push = polling(&poll.url);
    let replica = || TestGateway::start(&parts.yaml(&redis.url, "", &poll_instead_of_push));
    let (a, b) = (replica(), replica());
    let tokens: Vec<String> = (0..5)
        .map(|_| auth.client_token("full", "repo", OPAQUE_API))
        .collect();
    for (i, t) in tokens.iter().enumerate() {
        assert_eq!(status(&a, t), 200);
        let jti = format!("p-{i}");
        poll.queue
            .lock()
            .unwrap()
            .insert(jti.clone(), revoke(tx, &jti, t));
    }
    eventually("both replicas refuse every polled revocation", || {
        tokens
            .iter()
            .all(|t| status(&a, t) == 401 && status(&b, t) == 401)
    });
    eventually("every event acknowledged", || {
        poll.queue.lock().unwrap().is_empty()
    });
    let mut acked = poll.acked.lock().unwrap().clone();
    acked.sort();
    assert_eq!(
        acked,
        ["p-0", "p-1", "p-2", "p-3", "p-4"],
        "acknowledged once each: one poller at a time"
    );
}

#[test]
fn three_replicas_sharing_introspection_make_one_authorization_server_call_per_new_token() {
    let redis = Redis::start();
    let parts = Parts::start();
    let auth = &parts.auth;
    let replica = || parts.replica(&redis.url, "  share_introspection: true\n");
    let replicas = [replica(), replica(), replica()];
    let token = auth.client_token("full", "repo", OPAQUE_API);
    let before = auth.introspections();
    // The same new token on the three replicas at once.
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let asks: Vec<_> = replicas
            .iter()
            .map(|gw| {
                let (url, token) = (format!("{}/orgs/acme/repos", gw.url), token.clone());
                s.spawn(move || get(&url, Some(&token)).status().as_u16())
            })
            .collect();
        asks.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(statuses, [200, 200, 200]);
    assert_eq!(
        auth.introspections() - before,
        1,
        "one authorization-server call for three replicas"
    );
    let shared: u64 = replicas
        .iter()
        .map(|gw| {
            gw.metrics()
                .lines()
                .find_map(|l| l.strip_prefix("scopegate_introspection_shared_total "))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        })
        .sum();
    assert_eq!(shared, 2, "two replicas took the third one's answer");
    // What is stored is the answer, never the token.
    let stored = support::tools::command("redis-cli")
        .args(["-u", &redis.url, "--scan"])
        .output()
        .unwrap();
    let keys = String::from_utf8_lossy(&stored.stdout);
    assert!(keys.contains("introspection:"), "{keys}");
    assert!(!keys.contains(&token), "a token in a key");
}

#[test]
fn organization_policies_from_a_url_are_fetched_by_one_replica_and_shared() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let redis = Redis::start();
    let parts = Parts::start();
    let auth = &parts.auth;
    let fetches = Arc::new(AtomicUsize::new(0));
    let counted = fetches.clone();
    let (addr, _rt) = serve(move |_req| {
        counted.fetch_add(1, Ordering::SeqCst);
        async move {
            http::Response::new(http_body_util::Full::new(bytes::Bytes::from(
                r#"{"acme": {"restrict_third_party_apps": false}}"#,
            )))
        }
    });
    let source = |yaml: String| {
        yaml.replace(
            "routes:\n",
            &format!(
                "organization_policy:\n  source:\n    url: \"http://{addr}/orgs.json\"\n    refresh: 1s\nroutes:\n"
            ),
        )
    };
    let replica = || TestGateway::start(&parts.yaml(&redis.url, "", source));
    let replicas = [replica(), replica(), replica()];
    let start = Instant::now();
    let before = fetches.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_secs(4));
    let fetched = fetches.load(Ordering::SeqCst) - before;
    let refreshes = (start.elapsed().as_millis() / 1000) as usize;
    // One replica fetches every second; three fetching each would be three times that.
    assert!(
        fetched <= refreshes + 2,
        "{fetched} fetches in {refreshes} refresh periods for three replicas"
    );
    let token = auth.client_token("full", "repo", API);
    for gw in &replicas {
        assert_eq!(
            get(&format!("{}/orgs/acme/repos", gw.url), Some(&token)).status(),
            200
        );
    }
}

#[test]
fn a_polled_revocation_is_acknowledged_only_once_it_is_durable_in_redis() {
    let dir = std::env::temp_dir().join(format!("scopegate-redis-ack-{}", free_port()));
    let redis = Redis::on(free_port(), Some(dir.clone()));
    let parts = Parts::start();
    let poll = support::poll::PollServer::start();
    let poll_instead_of_push = polling(&poll.url);
    let gw = TestGateway::start(&parts.yaml(&redis.url, "", &poll_instead_of_push));
    let token = parts.auth.client_token("full", "repo", OPAQUE_API);
    assert_eq!(status(&gw, &token), 200);

    let (port, kept) = redis.kill();
    poll.queue
        .lock()
        .unwrap()
        .insert("a-1".into(), revoke(&parts.tx, "a-1", &token));
    eventually("applied here while Redis is down", || {
        status(&gw, &token) == 401
    });
    std::thread::sleep(Duration::from_millis(800));
    assert!(
        poll.acked.lock().unwrap().is_empty(),
        "not acknowledged while only this replica knows it"
    );

    let _redis = Redis::on(port, kept);
    eventually("acknowledged once durable", || {
        poll.acked.lock().unwrap().iter().any(|j| j == "a-1")
    });
    assert!(poll.queue.lock().unwrap().is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

/// `redis-cli` against `url`, its output.
fn redis_cli(url: &str, args: &[&str]) -> String {
    let out = support::tools::command("redis-cli")
        .args(["-u", url])
        .args(args)
        .output()
        .expect("redis-cli (apt-get install redis-server) is needed for this test");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The digest a replica names keys with: the first 16 hex digits of the SHA-256 of the
/// parts, each followed by NUL.
fn name_digest(parts: &[&str]) -> String {
    let joined: String = parts.iter().map(|p| format!("{p}\0")).collect();
    scopegate::token::hash(&joined)[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A counter of `gw`'s metrics, 0 when absent.
fn counter(gw: &TestGateway, series: &str) -> u64 {
    gw.metrics()
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn an_introspection_answer_forged_or_moved_in_redis_is_refused_and_the_provider_asked() {
    let redis = Redis::start();
    let parts = Parts::start();
    let auth = &parts.auth;
    let replica = || parts.replica(&redis.url, "  share_introspection: true\n");
    let (a, b) = (replica(), replica());
    let iss = auth.url.clone();
    let endpoint = format!("{}/token/introspection", auth.url);
    let answer_key = |token: &str| {
        format!(
            "{PREFIX}introspection:{}:{}",
            name_digest(&[&iss, &endpoint]),
            hex(&scopegate::token::hash(token))
        )
    };
    // Written by someone with write access to Redis and without the key: a never-issued
    // token "active" as root with admin scopes.
    let made_up = "made-up-token-never-issued-0001";
    let forged =
        r#"{"answer":{"active":true,"sub":"root","client_id":"full","scope":"repo admin"}}"#;
    redis_cli(&redis.url, &["SET", &answer_key(made_up), forged]);
    assert_eq!(
        status(&a, made_up),
        401,
        "the provider was asked: it never issued it"
    );
    assert!(counter(&a, "scopegate_cluster_rejected_total{kind=\"answer\"}") >= 1);

    // A genuine answer (sealed by a replica) moved to another token's key.
    let real = auth.client_token("full", "repo", OPAQUE_API);
    assert_eq!(status(&a, &real), 200);
    let genuine = redis_cli(&redis.url, &["GET", &answer_key(&real)]);
    assert!(genuine.starts_with("v1."), "sealed: {genuine}");
    let other = "made-up-token-never-issued-0002";
    redis_cli(&redis.url, &["SET", &answer_key(other), &genuine]);
    let before = auth.introspections();
    assert_eq!(status(&b, other), 401);
    assert_eq!(
        auth.introspections() - before,
        1,
        "B asked the provider itself"
    );
    assert!(counter(&b, "scopegate_cluster_rejected_total{kind=\"answer\"}") >= 1);
    // The genuine one still serves B without a call.
    let before = auth.introspections();
    assert_eq!(status(&b, &real), 200);
    assert_eq!(auth.introspections(), before, "taken from Redis, checked");
}

#[test]
fn a_forged_or_stale_poll_lease_is_taken_over_and_polling_never_stops() {
    let redis = Redis::start();
    let parts = Parts::start();
    let (auth, tx) = (&parts.auth, &parts.tx);
    let poll = support::poll::PollServer::start();
    let poll_instead_of_push = polling(&poll.url);
    let replica = || TestGateway::start(&parts.yaml(&redis.url, "", &poll_instead_of_push));
    let lease_key = format!("{PREFIX}lease:{}", name_digest(&[&poll.url]));
    let queue = |i: usize, token: &str| {
        let jti = format!("l-{i}");
        poll.queue
            .lock()
            .unwrap()
            .insert(jti.clone(), revoke(tx, &jti, token));
    };

    // A lease written by someone without the key, for ten minutes: not believed.
    redis_cli(
        &redis.url,
        &[
            "SET",
            &lease_key,
            "mallory|v1.0000.1.AAAA.mallory",
            "PX",
            "600000",
        ],
    );
    let mut a = replica();
    let first = auth.client_token("full", "repo", OPAQUE_API);
    queue(1, &first);
    eventually("A polls despite the forged lease", || {
        status(&a, &first) == 401
    });
    assert!(counter(&a, "scopegate_cluster_rejected_total{kind=\"lease\"}") >= 1);
    assert!(redis_cli(&redis.url, &["GET", &lease_key]).contains("v1."));

    // The holder dies without giving the lease back: B takes over within a few intervals
    // (200 ms each), not after the lease's TTL.
    let b = replica();
    std::thread::sleep(Duration::from_millis(600));
    let killed = Instant::now();
    a.kill();
    let second = auth.client_token("full", "repo", OPAQUE_API);
    queue(2, &second);
    eventually("B polls once A is gone", || status(&b, &second) == 401);
    println!("taken over {:?} after the holder died", killed.elapsed());
    assert!(killed.elapsed() < Duration::from_secs(5));
    eventually("acknowledged", || poll.queue.lock().unwrap().is_empty());
}

#[test]
fn writes_refused_while_subscribed_are_answered_503_and_reach_every_replica_once_redis_takes_them()
{
    let redis = Redis::start();
    let parts = Parts::start();
    let (auth, tx) = (&parts.auth, &parts.tx);
    let (a, b) = (parts.replica(&redis.url, ""), parts.replica(&redis.url, ""));
    let token = auth.client_token("full", "repo", OPAQUE_API);
    assert_eq!(status(&b, &token), 200);
    // Redis refuses writes (as with OOM under noeviction, MISCONF, READONLY after a
    // failover) while every subscription stays up.
    redis_cli(&redis.url, &["CONFIG", "SET", "min-replicas-to-write", "1"]);
    let (pushed, body) = a.push_set(&revoke(tx, "w-1", &token));
    assert_eq!(pushed, 503, "{body}");
    assert_eq!(status(&a, &token), 401, "applied where it was pushed");
    eventually("A counts it pending", || {
        a.metrics()
            .contains("scopegate_cluster_pending_revocations 1")
    });
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(status(&b, &token), 200, "not yet in Redis: B cannot know");

    // A reload meanwhile keeps what is still to be written.
    a.rewrite_config(
        &std::fs::read_to_string(a.config_path())
            .unwrap()
            .replace("any: [repo, chat.bot]", "any: [repo, chat.bot, read:org]"),
    );
    a.reload();
    eventually("the reload", || {
        a.metrics()
            .contains("scopegate_config_reloads_total{result=\"ok\"} 1")
    });

    // Redis takes writes again: A's retry writes it, B refuses the token.
    redis_cli(&redis.url, &["CONFIG", "SET", "min-replicas-to-write", "0"]);
    eventually("B refuses the token", || status(&b, &token) == 401);
    eventually("nothing pending", || {
        a.metrics()
            .contains("scopegate_cluster_pending_revocations 0")
    });
    assert_eq!(a.push_set(&revoke(tx, "w-1", &token)).0, 202, "redelivered");
}

/// A CA, and a certificate it signed for `localhost` and 127.0.0.1, made with `openssl`.
#[test]
fn redis_over_tls_with_a_private_ca_and_a_password_that_never_shows() {
    let dir = std::env::temp_dir().join(format!("scopegate-redis-tls-{}", free_port()));
    std::fs::create_dir_all(&dir).unwrap();
    support::certs::make(&dir);
    let port = free_port();
    let password = "redis-password-4f1c9a";
    let file = |n: &str| dir.join(n).display().to_string();
    let child = support::tools::command("redis-server")
        .args([
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .args([
            "--tls-cert-file",
            &file("server.pem"),
            "--tls-key-file",
            &file("server.key"),
        ])
        .args([
            "--tls-ca-cert-file",
            &file("ca.pem"),
            "--tls-auth-clients",
            "no",
        ])
        .args([
            "--requirepass",
            password,
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server (apt-get install redis-server) is needed for this test");
    let _redis = Redis {
        child,
        url: String::new(),
        port,
        dir: None,
    };
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::sleep(Duration::from_millis(20));
    }
    let parts = Parts::start();
    let tls = format!(
        "  password: \"${{TEST_REDIS_PASSWORD}}\"\n  tls: {{ ca: \"{}\" }}\n",
        file("ca.pem")
    );
    let url = format!("rediss://localhost:{port}");
    // One file for every replica, its listeners from the environment.
    let yaml = parts.yaml(&url, &tls, |y| y);
    let listeners = |y: &str, key: &str, var: &str| -> String {
        let marker = format!("{key}:\n  listen: \"");
        let at = y.find(&marker).unwrap() + marker.len();
        let end = at + y[at..].find('"').unwrap();
        format!("{}${{{var}}}{}", &y[..at], &y[end..])
    };
    let yaml = listeners(&yaml, "server", "SCOPEGATE_LISTEN");
    let yaml = listeners(&yaml, "admin", "SCOPEGATE_ADMIN_LISTEN");
    let config = dir.join("replica.yaml");
    std::fs::write(&config, yaml).unwrap();
    let env = [("TEST_REDIS_PASSWORD", password.to_string())];
    let a = TestGateway::start_file(config.to_str().unwrap(), &env);
    let b = TestGateway::start_file(config.to_str().unwrap(), &env);
    let token = parts.auth.client_token("full", "repo", OPAQUE_API);
    assert_eq!(status(&b, &token), 200);
    assert_eq!(a.push_set(&revoke(&parts.tx, "t-1", &token)).0, 202);
    eventually("B refuses it, told over TLS", || status(&b, &token) == 401);

    // A wrong password: the replica says Redis is unreachable, and never what it tried.
    let wrong = "wrong-password-77e2b0";
    let out = dir.join("wrong.out");
    let (listen, admin) = (free_port(), free_port());
    let mut gw = Command::new(env!("CARGO_BIN_EXE_scopegate"))
        .args(["run", "--config"])
        .arg(&config)
        .env("TEST_REDIS_PASSWORD", wrong)
        .env("SCOPEGATE_LISTEN", format!("127.0.0.1:{listen}"))
        .env("SCOPEGATE_ADMIN_LISTEN", format!("127.0.0.1:{admin}"))
        .env("SCOPEGATE_LOG", "info")
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(dir.join("wrong.err")).unwrap())
        .spawn()
        .unwrap();
    let admin_url = format!("http://127.0.0.1:{admin}");
    eventually("the replica answers on its admin port", || {
        reqwest::blocking::get(format!("{admin_url}/metrics")).is_ok()
    });
    std::thread::sleep(Duration::from_secs(2));
    let metrics = reqwest::blocking::get(format!("{admin_url}/metrics"))
        .unwrap()
        .text()
        .unwrap();
    let readyz = reqwest::blocking::get(format!("{admin_url}/readyz"))
        .unwrap()
        .text()
        .unwrap();
    let _ = gw.kill();
    let _ = gw.wait();
    assert!(
        metrics.contains("scopegate_cluster_redis_up 0"),
        "{metrics}"
    );
    let logs = std::fs::read_to_string(dir.join("wrong.err")).unwrap()
        + &std::fs::read_to_string(&out).unwrap();
    assert!(logs.contains("cluster"), "the failure is said: {logs}");
    for seen in [&logs, &metrics, &readyz] {
        assert!(!seen.contains(wrong), "the password shows: {seen}");
        assert!(!seen.contains(password));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_policy_document_forged_in_redis_is_refused_and_the_real_restrictions_stay() {
    let redis = Redis::start();
    let parts = Parts::start();
    let auth = &parts.auth;
    // acme approves only `approved`; the forged document would open it to every client.
    let (addr, _rt) = serve(|_req| async {
        http::Response::new(http_body_util::Full::new(bytes::Bytes::from(
            r#"{"acme": {"restrict_third_party_apps": true, "approved_clients": ["approved"]}}"#,
        )))
    });
    let url = format!("http://{addr}/orgs.json");
    let with_source = |yaml: String| {
        yaml.replace(
            "routes:\n",
            &format!(
                "organization_policy:\n  source:\n    url: \"{url}\"\n    refresh: 1s\nroutes:\n  - name: members\n    match: {{ path: \"/teams/{{org}}\" }}\n    upstream: api\n    require: {{ scopes: repo, org: {{ param: org }} }}\n"
            ),
        )
    };
    let replicas = [
        TestGateway::start(&parts.yaml(&redis.url, "", with_source)),
        TestGateway::start(&parts.yaml(&redis.url, "", with_source)),
    ];
    let key = format!("{PREFIX}shared:organizations:{}", name_digest(&[&url]));
    let forged = r#"{"acme": {"restrict_third_party_apps": false}}"#;
    let token = auth.user_token("alice", "full", "repo", API);
    let status = |gw: &TestGateway| {
        get(&format!("{}/teams/acme", gw.url), Some(&token))
            .status()
            .as_u16()
    };
    // For four refreshes the forged document is written back every few milliseconds, so the
    // replica that reads Redis meets it: it refuses it every time.
    let start = Instant::now();
    let mut round = 0;
    while start.elapsed() < Duration::from_secs(4) {
        redis_cli(&redis.url, &["SET", &key, forged]);
        if round % 20 == 0 {
            for gw in &replicas {
                assert_eq!(status(gw), 403, "the client is still not approved");
            }
        }
        round += 1;
        std::thread::sleep(Duration::from_millis(5));
    }
    let rejected: u64 = replicas
        .iter()
        .map(|gw| counter(gw, "scopegate_cluster_rejected_total{kind=\"document\"}"))
        .sum();
    assert!(rejected >= 1, "the forged document was read and refused");
    // The document in Redis is a sealed one again (the lease holder's).
    eventually("a replica writes the real document back", || {
        redis_cli(&redis.url, &["GET", &key]).starts_with("v1.")
    });
}
