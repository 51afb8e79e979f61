//! Upstreams as deployments have them, with real servers on loopback: routes by host,
//! prefixes stripped and paths rewritten (also in the decision endpoint's answer), several
//! upstream processes with one killed mid-test (retried, ejected, back once restarted), a
//! name whose address changes (followed without a restart, and kept when it stops
//! resolving), and mutual TLS to an upstream that requires a client certificate.

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
