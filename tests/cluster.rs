//! Several replicas, one truth: three gateways share a real Redis (`redis-server` from the
//! OS packages, started by the test). A revocation pushed to one replica is refused by all,
//! and a replica started afterwards refuses it from its first request.

mod support;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

struct Redis {
    child: Child,
    url: String,
    port: u16,
    /// Where it persists (appendonly), kept across a restart.
    dir: Option<std::path::PathBuf>,
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Redis {
    fn start() -> Redis {
        Redis::on(free_port(), None)
    }

    /// On `port`; with `dir`, persisted there (appendonly, as a production Redis is).
    fn on(port: u16, dir: Option<std::path::PathBuf>) -> Redis {
        let mut cmd = Command::new("redis-server");
        cmd.args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ]);
        match &dir {
            Some(d) => {
                std::fs::create_dir_all(d).unwrap();
                cmd.args(["--appendonly", "yes", "--appendfsync", "always", "--dir"])
                    .arg(d);
            }
            None => {
                cmd.args(["--appendonly", "no"]);
            }
        }
        let child = cmd
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server (apt-get install redis-server) is needed for this test");
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "redis did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Redis {
            child,
            url: format!("redis://127.0.0.1:{port}"),
            port,
            dir,
        }
    }

    /// Stops it, as a crash would; returns its port and directory to start it again.
    fn kill(mut self) -> (u16, Option<std::path::PathBuf>) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        (self.port, self.dir.take())
    }
}

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

    /// The configuration of a replica: [`push_config`] with `cluster:` on `redis` and the
    /// `extra` lines under it, then `edit`.
    fn yaml(&self, redis: &str, extra: &str, edit: impl Fn(String) -> String) -> String {
        let yaml = format!("{}cluster:\n  redis: \"{redis}\"\n{extra}", push_config());
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

    // Redis goes away: both keep serving with what they know.
    let (port, kept) = redis.kill();
    assert_eq!(a.push_set(&revoke(tx, "d-2", &during)).0, 202);
    assert_eq!(status(&a, &during), 401, "applied where it was pushed");
    assert_eq!(status(&b, &before), 401, "nothing forgotten");
    eventually("A says it is degraded", || {
        let m = a.metrics();
        m.contains("scopegate_cluster_redis_up 0")
            && m.contains("scopegate_cluster_pending_revocations 1")
    });
    let ready = reqwest::blocking::get(format!("{}/readyz", a.admin)).unwrap();
    assert_eq!(ready.status(), 200, "degraded, still ready");

    // Redis is back: what A kept reaches B, and nothing was lost.
    let _redis = Redis::on(port, kept);
    eventually("B refuses what was revoked during the outage", || {
        status(&b, &during) == 401
    });
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
    let stored = std::process::Command::new("redis-cli")
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
