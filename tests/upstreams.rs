//! Upstreams as deployments have them, with real servers on loopback: routes by host,
//! prefixes stripped and paths rewritten (also in the decision endpoint's answer), several
//! upstream processes with one killed mid-test (retried, ejected, back once restarted), a
//! name whose address changes (followed without a restart, and kept when it stops
//! resolving), mutual TLS to an upstream that requires a client certificate, and the
//! workers' own connections to a plain HTTP/1 upstream (reused, closed when idle too long,
//! never reused after the upstream closed them or an answer was cut short).

mod support;

use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

/// An upstream *process* (Python's http.server) on `ip:port`, answering every request with
/// where it listens and what it received; killed when dropped.
struct Process {
    child: Child,
    ip: String,
    port: u16,
}

const SERVER: &str = r#"
import http.server, json, sys
ip, port = sys.argv[1], int(sys.argv[2])
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def answer(self):
        body = json.dumps({"at": f"{ip}:{port}", "path": self.path, "host": self.headers.get("Host")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_GET = do_DELETE = do_PUT = do_POST = answer
http.server.ThreadingHTTPServer((ip, port), H).serve_forever()
"#;

impl Process {
    fn start(ip: &str, port: u16) -> Process {
        let child = Command::new("python3")
            .args(["-c", SERVER, ip, &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr: std::net::SocketAddr = format!("{ip}:{port}").parse().unwrap();
        eventually("the upstream process listens", || {
            std::net::TcpStream::connect(addr).is_ok()
        });
        Process {
            child,
            ip: ip.to_string(),
            port,
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn at(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

fn gateway_yaml(body: &str) -> String {
    format!(
        "server:\n  listen: \"127.0.0.1:{}\"\nadmin:\n  listen: \"127.0.0.1:{}\"\n{body}",
        free_port(),
        free_port()
    )
}

/// `GET path` on the gateway: the status and which upstream answered.
fn where_to(gw: &TestGateway, path: &str) -> (u16, String) {
    let r = get(&format!("{}{path}", gw.url), None);
    let status = r.status().as_u16();
    let at = r
        .json::<Value>()
        .ok()
        .and_then(|v| v["at"].as_str().map(str::to_string))
        .unwrap_or_default();
    (status, at)
}

#[test]
fn a_killed_upstream_is_retried_around_ejected_and_taken_back_once_restarted() {
    let port = |_| free_port();
    let mut upstreams: Vec<Process> = (0..3)
        .map(|i| Process::start("127.0.0.1", port(i)))
        .collect();
    let addresses: Vec<String> = upstreams
        .iter()
        .map(|p| format!("\"{}\"", p.at()))
        .collect();
    let gw = TestGateway::start(&gateway_yaml(&format!(
        "upstreams:\n  api:\n    url: \"http://127.0.0.1:{}\"\n    addresses: [{}]\n    health: {{ failures: 2, eject_for: 1s }}\nroutes:\n  - {{ name: items, match: {{ path: /items }}, upstream: api, auth: none, retry: true }}\n",
        upstreams[0].port,
        addresses.join(", ")
    )));
    // All three serve.
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..30 {
        let (status, at) = where_to(&gw, "/items");
        assert_eq!(status, 200);
        seen.insert(at);
    }
    assert_eq!(seen.len(), 3, "round robin over {seen:?}");
    // One dies mid-test: no request fails (each that met it was retried on another).
    let dead = upstreams[1].at();
    upstreams[1].kill();
    let mut failed = 0;
    let mut answered_by_dead = 0;
    for _ in 0..150 {
        let (status, at) = where_to(&gw, "/items");
        failed += usize::from(status != 200);
        answered_by_dead += usize::from(at == dead);
    }
    let metrics = gw.metrics();
    let counter = |name: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(&format!("{name}{{upstream=\"api\"}}")))
            .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    println!(
        "after the kill: {failed} of 150 failed, {} retries, {} ejections",
        counter("scopegate_upstream_retries_total"),
        counter("scopegate_upstream_ejections_total")
    );
    assert_eq!(failed, 0, "within the retry budget, nothing fails");
    assert_eq!(answered_by_dead, 0);
    assert!(counter("scopegate_upstream_retries_total") >= 1);
    assert!(
        counter("scopegate_upstream_ejections_total") >= 1,
        "{metrics}"
    );
    // Back: once its ejection is over, it serves again.
    let port = upstreams[1].port;
    upstreams[1] = Process::start("127.0.0.1", port);
    std::thread::sleep(Duration::from_millis(1200));
    eventually("the restarted upstream serves again", || {
        (0..6).any(|_| where_to(&gw, "/items").1 == dead)
    });
}

#[test]
fn a_name_whose_address_changes_is_followed_without_a_restart_and_kept_when_it_stops_resolving() {
    let port = free_port();
    let (first, second) = (
        Process::start("127.0.0.2", port),
        Process::start("127.0.0.3", port),
    );
    let hosts = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("hosts-{}", free_port()));
    let point = |ip: &str| {
        // Written beside and renamed, as a resolver's file would be.
        let partial = hosts.with_extension("partial");
        std::fs::write(&partial, format!("{ip} api.scopegate.invalid\n")).unwrap();
        std::fs::rename(&partial, &hosts).unwrap();
    };
    point("127.0.0.2");
    let gw = TestGateway::start_with(
        &gateway_yaml(&format!(
            "upstreams:\n  api: {{ url: \"http://api.scopegate.invalid:{port}\", resolve_every: 200ms }}\nroutes:\n  - {{ name: any, match: {{ path: \"/{{*rest}}\" }}, upstream: api, auth: none }}\n"
        )),
        &[("SCOPEGATE_HOSTS_FILE", hosts.display().to_string())],
    );
    assert_eq!(where_to(&gw, "/a"), (200, first.at()));
    point("127.0.0.3");
    let changed = Instant::now();
    eventually("the new address is used", || {
        where_to(&gw, "/b").1 == second.at()
    });
    println!("followed in {:?}", changed.elapsed());
    // The name stops resolving (not in the file, NXDOMAIN from DNS): the last address stays.
    std::fs::write(&hosts, "# nothing\n").unwrap();
    eventually("a failed resolution is counted", || {
        gw.metrics()
            .contains("scopegate_upstream_resolve_failures_total{upstream=\"api\"}")
    });
    assert_eq!(where_to(&gw, "/c"), (200, second.at()));
    let _ = std::fs::remove_file(&hosts);
}

#[test]
fn routes_by_host_strip_and_rewrite_paths_and_the_decision_endpoint_follows_the_same_rules() {
    let (a, b) = (Upstream::start(), Upstream::start());
    let decision = format!("127.0.0.1:{}", free_port());
    let yaml = gateway_yaml(&format!(
        r#"issuers: [{{ id: corp, issuer: "https://corp.example", audiences: [x], jwks_uri: "https://corp.example/jwks" }}]
decision: {{ listen: "{decision}" }}
upstreams:
  a: {{ url: "http://{}/base", host_header: upstream }}
  b: {{ url: "http://{}" }}
routes:
  - {{ name: api, match: {{ host: api.example.com, path: "/v1/{{*rest}}" }}, upstream: a, auth: none, strip_prefix: /v1 }}
  - {{ name: people, match: {{ host: "*.chat.example.com", path: "/v1/users/{{id}}" }}, upstream: b, auth: none, rewrite: "/people/{{id}}" }}
  - {{ name: others, match: {{ path: "/v1/{{*rest}}" }}, upstream: b, require: {{}} }}
"#,
        a.addr, b.addr
    ));
    let gw = TestGateway::start_unready(&yaml);
    eventually("listening", || {
        std::net::TcpStream::connect(gw.addr).is_ok()
    });
    let http = reqwest::blocking::Client::new();
    let ask = |host: &str, path: &str| {
        http.get(format!("{}{path}", gw.url))
            .header("host", host)
            .send()
            .unwrap()
    };
    let last = |u: &Upstream| u.seen.lock().unwrap().last().cloned().unwrap();
    // By exact host, the prefix stripped and the upstream's base path put in front.
    assert_eq!(ask("api.example.com", "/v1/users/7").status(), 200);
    let seen = last(&a);
    assert_eq!(seen["path"], "/base/users/7");
    assert_eq!(
        seen["headers"]["host"],
        serde_json::json!([a.addr.to_string()])
    );
    // By wildcard host (any depth, any case, a port), rewritten with the parameter.
    assert_eq!(ask("EU.Chat.example.com:8443", "/v1/users/7").status(), 200);
    assert_eq!(last(&b)["path"], "/people/7");
    // Any other host: the route for every host, which wants a token.
    assert_eq!(ask("other.org", "/v1/users/7").status(), 401);
    // The decision endpoint matches the original host and answers the rewritten target.
    let call = |host: &str| {
        http.get(format!("http://{decision}/nginx"))
            .header("x-original-uri", "/v1/users/7")
            .header("x-original-method", "GET")
            .header("x-original-host", host)
            .send()
            .unwrap()
    };
    let r = call("api.example.com");
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-scopegate-target"), "/users/7");
    assert_eq!(call("other.org").status(), 401);
}

/// A TLS upstream on loopback that requires a client certificate signed by `ca`.
fn mutual_tls_upstream(dir: &std::path::Path) -> (u16, tokio::runtime::Runtime) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(dir.join("ca.pem")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider.clone())
            .build()
            .unwrap();
    let chain: Vec<CertificateDer> = CertificateDer::pem_file_iter(dir.join("server.pem"))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    runtime.spawn(async move {
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = hyper::service::service_fn(|_req| async {
                    Ok::<_, hyper::Error>(hyper::Response::new(http_body_util::Full::new(
                        bytes::Bytes::from_static(b"{\"mtls\":true}"),
                    )))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    (port, runtime)
}

#[test]
fn an_upstream_that_requires_a_client_certificate_gets_the_configured_one() {
    let dir =
        std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("mtls-{}", free_port()));
    std::fs::create_dir_all(&dir).unwrap();
    support::certs::make(&dir);
    let (port, _rt) = mutual_tls_upstream(&dir);
    let file = |n: &str| dir.join(n).display().to_string();
    let gw = TestGateway::start(&gateway_yaml(&format!(
        r#"upstreams:
  with_cert:
    url: "https://localhost:{port}"
    tls: {{ ca: "{ca}", cert: "{cert}", key: "{key}", min_version: "1.3" }}
  without_cert:
    url: "https://localhost:{port}"
    tls: {{ ca: "{ca}" }}
  public_roots: {{ url: "https://localhost:{port}" }}
routes:
  - {{ name: a, match: {{ path: /a }}, upstream: with_cert, auth: none }}
  - {{ name: b, match: {{ path: /b }}, upstream: without_cert, auth: none }}
  - {{ name: c, match: {{ path: /c }}, upstream: public_roots, auth: none }}
"#,
        ca = file("ca.pem"),
        cert = file("client.pem"),
        key = file("client.key"),
    )));
    let r = get(&format!("{}/a", gw.url), None);
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().unwrap(), "{\"mtls\":true}");
    assert_eq!(
        get(&format!("{}/b", gw.url), None).status(),
        502,
        "no client certificate"
    );
    assert_eq!(
        get(&format!("{}/c", gw.url), None).status(),
        502,
        "a private CA is not trusted by default"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A plain HTTP/1 upstream written for the connection tests: it counts the connections it
/// was opened and closed on, answers each request with the number of its connection, and
/// misbehaves on two paths: `/close-after` closes the connection 100 ms after answering
/// (an upstream's own keep-alive timeout, with nothing said), `/short` announces 100 bytes,
/// sends 10 and stalls, `/early` answers before it reads the request's body, `/twice`
/// answers twice.
struct Counting {
    port: u16,
    opened: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    closed: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Counting {
    fn start() -> Counting {
        use std::io::{BufRead, BufReader, Read, Write};
        use std::sync::atomic::{AtomicUsize, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let opened = std::sync::Arc::new(AtomicUsize::new(0));
        let closed = std::sync::Arc::new(AtomicUsize::new(0));
        let (o, c) = (opened.clone(), closed.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let id = o.fetch_add(1, Ordering::SeqCst) + 1;
                let closed = c.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            break;
                        }
                        let path = line.split(' ').nth(1).unwrap_or("").to_string();
                        let mut length = 0;
                        loop {
                            let mut h = String::new();
                            reader.read_line(&mut h).unwrap_or(0);
                            if h.trim().is_empty() {
                                break;
                            }
                            if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:")
                            {
                                length = v.trim().parse().unwrap_or(0);
                            }
                        }
                        let answer = id.to_string();
                        if path == "/early" {
                            // Answered before the body is read, as an upstream refusing it would.
                            let _ = stream
                                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nearly");
                        }
                        let mut body = vec![0; length];
                        if reader.read_exact(&mut body).is_err() {
                            break;
                        }
                        if path == "/early" {
                            continue;
                        }
                        if path == "/twice" {
                            // A second answer nobody asked for, in the same write: what a
                            // desynchronised upstream would hand the next client.
                            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nAHTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nSMUGGLED");
                            std::thread::sleep(Duration::from_secs(1));
                            break;
                        }
                        if path == "/short" {
                            let _ = stream.write_all(
                                b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789",
                            );
                            std::thread::sleep(Duration::from_secs(3));
                            break;
                        }
                        let _ = write!(
                            stream,
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{answer}",
                            answer.len()
                        );
                        if path == "/close-after" {
                            std::thread::sleep(Duration::from_millis(100));
                            break;
                        }
                    }
                    let _ = stream.shutdown(std::net::Shutdown::Both);
                    closed.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        Counting {
            port,
            opened,
            closed,
        }
    }

    fn opened(&self) -> usize {
        self.opened.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn closed(&self) -> usize {
        self.closed.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// A request through `gw` is answered within 2 s, by the upstream's second connection.
fn answered_at_once_on_a_second_connection(gw: &TestGateway) {
    let started = Instant::now();
    let r = get(&format!("{}/items", gw.url), None);
    assert_eq!(r.text().unwrap(), "2");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "{took:?}");
}

fn counting_gateway(up: &Counting) -> TestGateway {
    TestGateway::start(&gateway_yaml(&format!(
        "upstreams:\n  api:\n    url: \"http://127.0.0.1:{}\"\n    timeouts: {{ idle: 1s, body: 1s }}\nroutes:\n  - {{ name: all, match: {{ path: \"/{{*rest}}\" }}, upstream: api, auth: none }}\n",
        up.port
    )))
}

#[test]
fn a_plain_upstream_connection_is_reused_by_later_requests_and_closed_once_idle_past_its_timeout() {
    let up = Counting::start();
    let gw = counting_gateway(&up);
    // Twenty requests, each on a new client connection, one after the other: one upstream
    // connection carries them all.
    for _ in 0..20 {
        let r = get(&format!("{}/items", gw.url), None);
        assert_eq!(r.status(), 200);
        assert_eq!(r.text().unwrap(), "1", "answered on the first connection");
    }
    assert_eq!(up.opened(), 1);
    // Idle past `timeouts.idle` (1 s), the gateway closes it without being asked.
    eventually("the idle upstream connection is closed", || {
        up.closed() == 1
    });
    let r = get(&format!("{}/items", gw.url), None);
    assert_eq!(
        r.text().unwrap(),
        "2",
        "a new connection after the idle one closed"
    );
}

#[test]
fn an_upstream_connection_the_upstream_closed_while_idle_is_not_used_again_and_no_request_fails() {
    let up = Counting::start();
    let gw = counting_gateway(&up);
    // POSTs are never tried twice: each answered 200 proves no request met a closed connection.
    let client = reqwest::blocking::Client::new();
    for i in 1..=5 {
        let r = client
            .post(format!("{}/close-after", gw.url))
            .body("payload")
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.text().unwrap(), i.to_string(), "a connection of its own");
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn an_answer_cut_short_does_not_leave_its_upstream_connection_to_the_next_request() {
    let up = Counting::start();
    let gw = counting_gateway(&up);
    let cut = get(&format!("{}/short", gw.url), None);
    assert_eq!(cut.status(), 200);
    assert!(
        cut.bytes().is_err(),
        "the client sees the body end unfinished"
    );
    // The stalled connection is the gateway's only one to this upstream: the next request
    // gets a new one and its answer at once, not after the stall.
    answered_at_once_on_a_second_connection(&gw);
}

#[test]
fn a_connection_still_sending_a_body_its_upstream_answered_early_does_not_hold_up_the_next_request()
{
    use std::io::{Read, Write};
    let up = Counting::start();
    let gw = counting_gateway(&up);
    let addr: std::net::SocketAddr = gw.url.trim_start_matches("http://").parse().unwrap();
    // A client sends half of its body; the upstream answers at once, and the gateway's
    // connection to it goes on waiting for the other half.
    let mut slow = std::net::TcpStream::connect(addr).unwrap();
    slow.write_all(b"POST /early HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nhalf.")
        .unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut answer = [0u8; 256];
    let n = slow.read(&mut answer).unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]).to_string();
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.ends_with("early"),
        "{answer}"
    );
    // Another request meanwhile gets its answer at once, on a connection of its own.
    answered_at_once_on_a_second_connection(&gw);
    drop(slow);
}

#[test]
fn an_answer_nobody_asked_for_on_an_upstream_connection_never_reaches_the_next_client() {
    let up = Counting::start();
    let gw = counting_gateway(&up);
    let first = get(&format!("{}/twice", gw.url), None);
    assert_eq!(first.text().unwrap(), "A");
    // The connection that carried the extra answer is not used again: the next client gets
    // its own answer from a new connection.
    for _ in 0..5 {
        let next = get(&format!("{}/items", gw.url), None).text().unwrap();
        assert_ne!(next, "SMUGGLED");
        assert_eq!(next, "2");
    }
}
