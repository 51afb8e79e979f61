//! An authorization server that fails, recovers, answers too much, and a gateway starved of
//! file descriptors: the gateway fails closed while it must, serves again as soon as it can,
//! and every bound holds. The introspection endpoint here is a small server written for the
//! test (faults on demand); the upstream is real.

mod support;

use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use support::*;

const HEALTHY: u8 = 0;
const FAILING: u8 = 1;
/// Answers 200 with a body over the gateway's 4 MiB cap.
const HUGE: u8 = 2;

/// An RFC 7662 endpoint: every token active for an hour while healthy; 500 while failing.
struct Introspection {
    url: String,
    mode: Arc<AtomicU8>,
    calls: Arc<AtomicUsize>,
    _rt: tokio::runtime::Runtime,
}

impl Introspection {
    fn start() -> Introspection {
        let mode = Arc::new(AtomicU8::new(HEALTHY));
        let calls = Arc::new(AtomicUsize::new(0));
        let (m, c) = (mode.clone(), calls.clone());
        let (addr, rt) = serve(move |_req| {
            c.fetch_add(1, Ordering::SeqCst);
            let mode = m.load(Ordering::SeqCst);
            async move {
                let exp = scopegate::clock::unix_now() + 3600;
                let (status, body) = match mode {
                    HEALTHY => (
                        200,
                        json!({"active": true, "sub": "alice", "client_id": "app",
                            "scope": "repo", "exp": exp, "iss": "https://faults.scopegate.test"})
                        .to_string(),
                    ),
                    HUGE => (200, format!("{{\"pad\":\"{}\"}}", "x".repeat(5 << 20))),
                    _ => (500, "{}".to_string()),
                };
                let mut r =
                    http::Response::new(http_body_util::Full::new(bytes::Bytes::from(body)));
                *r.status_mut() = http::StatusCode::from_u16(status).unwrap();
                r
            }
        });
        Introspection {
            url: format!("http://{addr}/introspect"),
            mode,
            calls,
            _rt: rt,
        }
    }

    fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
    }
}

/// A gateway whose only issuer checks opaque tokens at `endpoint`; `extra` goes under its
/// `introspection:`, `tokens` under `tokens:`.
fn gateway(endpoint: &str, extra: &str, tokens: &str) -> (TestGateway, Upstream) {
    let upstream = Upstream::start();
    let yaml = configuration(endpoint, extra, tokens, &upstream);
    (TestGateway::start(&yaml), upstream)
}

fn configuration(endpoint: &str, extra: &str, tokens: &str, upstream: &Upstream) -> String {
    format!(
        r#"server:
  listen: "127.0.0.1:{listen}"
admin:
  listen: "127.0.0.1:{admin}"
issuers:
  - id: faults
    issuer: https://faults.scopegate.test
    audiences: [api]
    discovery: false
    introspection: {{ endpoint: "{endpoint}", client_id: gw, client_secret: s{extra} }}
tokens:
{tokens}
upstreams:
  api: {{ url: "http://{up}" }}
routes:
  - {{ name: repos, match: {{ path: /repos }}, upstream: api, require: {{ scopes: repo }} }}
"#,
        listen = free_port(),
        admin = free_port(),
        up = upstream.addr,
    )
}

fn status(gw: &TestGateway, token: &str) -> u16 {
    get(&format!("{}/repos", gw.url), Some(token))
        .status()
        .as_u16()
}

fn metric(gw: &TestGateway, series: &str) -> Option<f64> {
    gw.metrics()
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

#[test]
fn after_an_outage_new_tokens_are_served_again_within_two_seconds_of_the_server_being_back() {
    let server = Introspection::start();
    let (gw, _up) = gateway(&server.url, "", "  cache: { max_ttl: 5m }");
    assert_eq!(status(&gw, "before-outage"), 200);

    // Down: new tokens are refused with 503 until the breaker opens; then calls stop.
    server.set(FAILING);
    for i in 0..8 {
        assert_eq!(status(&gw, &format!("during-{i}")), 503);
    }
    assert_eq!(
        metric(&gw, "scopegate_introspection_circuit{issuer=\"faults\"}"),
        Some(1.0),
        "open"
    );
    // For a second: every new token refused at once, the server asked only by the probes
    // (one per pause, 50 ms doubling to 250 ms), not once per token.
    let calls = server.calls.load(Ordering::SeqCst);
    let (start, mut asked) = (Instant::now(), 0);
    while start.elapsed() < Duration::from_secs(1) {
        assert_eq!(status(&gw, &format!("paused-{asked}")), 503);
        asked += 1;
    }
    let probes = server.calls.load(Ordering::SeqCst) - calls;
    println!("{asked} new tokens in 1 s while open: {probes} calls");
    assert!(
        probes <= 10 && asked >= 3 * probes,
        "{probes} calls for {asked} tokens"
    );
    assert!(
        metric(
            &gw,
            "scopegate_refusals_total{front_end=\"proxy\",reason=\"introspection_circuit_open\"}"
        )
        .unwrap_or(0.0)
            >= 1.0
    );
    // Cached tokens keep working meanwhile.
    assert_eq!(status(&gw, "before-outage"), 200);
    // Let the pause grow as long as it can.
    std::thread::sleep(Duration::from_secs(6));

    // Back: the next probe closes the breaker for everybody.
    server.set(HEALTHY);
    let back = Instant::now();
    let mut i = 0;
    while status(&gw, &format!("after-{i}")) != 200 {
        assert!(back.elapsed() < Duration::from_secs(5), "still closed");
        std::thread::sleep(Duration::from_millis(50));
        i += 1;
    }
    let recovered = back.elapsed();
    println!("first 200 {recovered:?} after the server was back");
    assert!(recovered <= Duration::from_secs(2), "{recovered:?}");
    assert_eq!(
        metric(&gw, "scopegate_introspection_circuit{issuer=\"faults\"}"),
        Some(0.0)
    );
}

#[test]
fn an_active_answer_is_served_stale_within_the_window_while_the_server_fails_then_not() {
    let server = Introspection::start();
    let (gw, _up) = gateway(
        &server.url,
        ", serve_stale_on_error: 3s",
        "  cache: { max_ttl: 1s }",
    );
    assert_eq!(status(&gw, "known"), 200);
    server.set(FAILING);
    std::thread::sleep(Duration::from_millis(1200));
    // Past its cache time, within the window: served, and counted as stale.
    assert_eq!(status(&gw, "known"), 200);
    assert!(
        metric(
            &gw,
            "scopegate_introspection_stale_total{issuer=\"faults\"}"
        )
        .unwrap_or(0.0)
            >= 1.0
    );
    // A token never seen is not: 503.
    assert_eq!(status(&gw, "never-seen"), 503);
    // Past the window: 503 too.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(status(&gw, "known"), 503);
}

#[test]
fn a_reload_during_an_outage_keeps_the_known_tokens_unless_what_they_depend_on_changed() {
    let server = Introspection::start();
    let (gw, _up) = gateway(&server.url, "", "  cache: { max_ttl: 5m }");
    assert_eq!(status(&gw, "known"), 200);
    server.set(FAILING);
    let reloaded = |n: u32| {
        gw.reload();
        eventually("the reload", || {
            gw.metrics().contains(&format!(
                "scopegate_config_reloads_total{{result=\"ok\"}} {n}"
            ))
        });
    };
    // A new route: nothing a cached answer depends on changed, the cache is kept.
    let yaml = std::fs::read_to_string(gw.config_path()).unwrap();
    let more = format!(
        "{yaml}  - {{ name: more, match: {{ path: /more }}, upstream: api, require: {{ scopes: repo }} }}\n"
    );
    gw.rewrite_config(&more);
    reloaded(1);
    assert_eq!(status(&gw, "known"), 200, "kept through the reload");
    // A scope the routes name changed (every scope's bit may move): the answers are
    // carried over with their scopes granted again.
    let scoped = more.replacen("scopes: repo", "scopes: { any: [admin, repo] }", 1);
    gw.rewrite_config(&scoped);
    reloaded(2);
    assert_eq!(
        status(&gw, "known"),
        200,
        "carried over with its scopes granted again"
    );
    // The issuer's audiences changed: what was accepted may not be any more; asked again,
    // and the server is down: 503.
    gw.rewrite_config(&scoped.replace("audiences: [api]", "audiences: [api, other]"));
    reloaded(3);
    assert_eq!(status(&gw, "known"), 503, "cache started afresh");
}

#[test]
fn an_introspection_answer_over_4_mib_is_refused_unread_as_a_503() {
    let server = Introspection::start();
    let (gw, _up) = gateway(&server.url, "", "  cache: { max_ttl: 5m }");
    server.set(HUGE);
    let r = get(&format!("{}/repos", gw.url), Some("huge-answer"));
    assert_eq!(r.status(), 503);
    let body: Value = r.json().unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    assert_eq!(
        metric(
            &gw,
            "scopegate_introspection_requests_total{issuer=\"faults\",result=\"error\"}"
        ),
        Some(1.0)
    );
    // Nothing was remembered: the server, healthy again, is asked and answers.
    server.set(HEALTHY);
    assert_eq!(status(&gw, "huge-answer"), 200);
}

#[test]
fn with_no_key_ever_fetched_a_set_with_an_unknown_key_fetches_at_most_once_a_second() {
    // The transmitter's JWKS: counts fetches, never has the key.
    let fetches = Arc::new(AtomicUsize::new(0));
    let counted = fetches.clone();
    let (jwks, _rt) = serve(move |_req| {
        counted.fetch_add(1, Ordering::SeqCst);
        async {
            http::Response::new(http_body_util::Full::new(bytes::Bytes::from(
                r#"{"keys":[]}"#,
            )))
        }
    });
    let upstream = Upstream::start();
    let yaml = format!(
        r#"server:
  listen: "127.0.0.1:{listen}"
admin:
  listen: "127.0.0.1:{admin}"
tokens:
  revocation:
    push:
      transmitter: "{TRANSMITTER}"
      jwks_uri: "http://{jwks}/jwks"
      audience: "{GATEWAY_AUD}"
upstreams:
  api: {{ url: "http://{up}" }}
routes:
  - {{ name: health, match: {{ path: /health }}, upstream: api, auth: none }}
"#,
        listen = free_port(),
        admin = free_port(),
        up = upstream.addr,
    );
    let gw = TestGateway::start(&yaml);
    let tx = scopegate::dev::DevIssuer::new(TRANSMITTER.into(), GATEWAY_AUD.into());
    let before = fetches.load(Ordering::SeqCst);
    let start = Instant::now();
    let mut pushed = 0;
    while start.elapsed() < Duration::from_secs(3) {
        let set = tx.sign(
            "secevent+jwt",
            &json!({"iss": TRANSMITTER, "aud": GATEWAY_AUD, "iat": scopegate::clock::unix_now(),
                "jti": format!("k-{pushed}"), "events": {}}),
        );
        assert_eq!(gw.push_set(&set).0, 400, "unknown key");
        pushed += 1;
    }
    let fetched = fetches.load(Ordering::SeqCst) - before;
    println!("{pushed} SETs with an unknown key in 3 s: {fetched} key fetches");
    assert!(pushed > 50);
    assert!(fetched <= 4, "{fetched} fetches for {pushed} SETs");
}

#[test]
fn starved_of_file_descriptors_the_gateway_keeps_serving_without_spinning_and_recovers() {
    let upstream = Upstream::start();
    let (listen, admin) = (free_port(), free_port());
    let dir = std::env::temp_dir().join(format!("scopegate-emfile-{}", free_port()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("scopegate.yaml");
    std::fs::write(
        &config,
        format!(
            "server: {{ listen: \"127.0.0.1:{listen}\" }}\nadmin: {{ listen: \"127.0.0.1:{admin}\" }}\nupstreams: {{ api: {{ url: \"http://{}\" }} }}\nroutes:\n  - {{ name: any, match: {{ path: \"/{{*rest}}\" }}, upstream: api, auth: none }}\n",
            upstream.addr
        ),
    )
    .unwrap();
    // 64 descriptors in all: what the process holds at start, and a few connections.
    let child = KillOnDrop(
        support::tools::command("prlimit")
            .arg("--nofile=64:64")
            .arg(env!("CARGO_BIN_EXE_scopegate"))
            .args(["run", "--config"])
            .arg(&config)
            .env("SCOPEGATE_LOG", "error")
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("prlimit (util-linux) runs the gateway with few descriptors"),
    );
    let addr: std::net::SocketAddr = format!("127.0.0.1:{listen}").parse().unwrap();
    eventually("listening", || std::net::TcpStream::connect(addr).is_ok());
    // One connection kept alive and served, before the starvation.
    use std::io::{Read, Write};
    // Reads the whole answer (head, then `content-length` bytes) so the next one starts clean.
    let ask = |s: &mut std::net::TcpStream| -> bool {
        if s.write_all(b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n").is_err() {
            return false;
        }
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if s.read_exact(&mut byte).is_err() {
                return false;
            }
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; length];
        s.read_exact(&mut body).is_ok() && head.starts_with("http/1.1 200")
    };
    let mut kept = std::net::TcpStream::connect(addr).unwrap();
    kept.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert!(ask(&mut kept));
    // Open connections until the gateway runs out of descriptors (it cannot accept more).
    let mut flood = Vec::new();
    // (Once the accept queue is full too, a connect waits for ever: give up after a second.)
    for _ in 0..200 {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            Ok(s) => flood.push(s),
            Err(_) => break,
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    // Starved: its CPU while the accept queue stays full, measured over two seconds.
    let cpu = || -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.0.id())).unwrap();
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap()
            .split_whitespace()
            .collect();
        let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
        ticks / 100.0
    };
    let (c0, t0) = (cpu(), Instant::now());
    std::thread::sleep(Duration::from_secs(2));
    let used = (cpu() - c0) / t0.elapsed().as_secs_f64();
    println!(
        "CPU while starved of descriptors: {:.1}% of a core",
        used * 100.0
    );
    assert!(used < 0.2, "no busy loop: {:.1}% of a core", used * 100.0);
    // The connection it already had is still served.
    assert!(ask(&mut kept), "existing connections keep being served");
    // Descriptors freed: new connections are accepted again.
    drop(flood);
    eventually("a new connection is served", || {
        std::net::TcpStream::connect(addr)
            .map(|mut s| {
                s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                ask(&mut s)
            })
            .unwrap_or(false)
    });
    let metrics = reqwest::blocking::get(format!("http://127.0.0.1:{admin}/metrics"))
        .unwrap()
        .text()
        .unwrap();
    let failed = "scopegate_connections_not_taken_total{listener=\"server.listen\",reason=\"accept_failed\"}";
    assert!(
        metrics.lines().any(|l| l.starts_with(failed)),
        "the starvation is counted: {metrics}"
    );
    drop(child);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The gateway started under `prlimit`, killed however the test ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
