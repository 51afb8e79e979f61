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
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Redis {
    fn start() -> Redis {
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
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
        }
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

#[test]
fn a_revocation_pushed_to_one_replica_is_refused_by_all_and_by_one_started_later() {
    let redis = Redis::start();
    let auth = AuthServer::start();
    let upstream = Upstream::start();
    let tx = scopegate::dev::DevIssuer::new(TRANSMITTER.into(), GATEWAY_AUD.into());
    let jwks = JsonServer::start(tx.jwks());
    let replica = || {
        let yaml = format!(
            "{}cluster:\n  redis: \"{}\"\n  key_prefix: \"test-{}:\"\n",
            push_config(),
            redis.url,
            std::process::id()
        );
        TestGateway::start(&config(&yaml, &auth, &upstream).replace("{jwks}", &jwks.url))
    };
    let (a, b) = (replica(), replica());
    let mut c = replica();
    let first = auth.client_token("full", "repo", OPAQUE_API);
    let second = auth.client_token("full", "repo", OPAQUE_API);
    let status = |gw: &TestGateway, t: &str| {
        get(&format!("{}/orgs/acme/repos", gw.url), Some(t))
            .status()
            .as_u16()
    };
    for gw in [&a, &b, &c] {
        assert_eq!(status(gw, &first), 200);
    }

    // Pushed to A only.
    let pushed = Instant::now();
    assert_eq!(a.push_set(&revoke(&tx, "c-1", &first)).0, 202);
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
    assert_eq!(b.push_set(&revoke(&tx, "c-2", &second)).0, 202);
    eventually("the new replica follows", || status(&c, &second) == 401);
    assert_eq!(status(&a, &second), 401);
}
