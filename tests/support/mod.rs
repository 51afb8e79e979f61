//! Test harness: the real authorization server (oidc-provider under Node), a real upstream
//! on loopback that records what reaches it, and the gateway started in-process.
#![allow(dead_code)] // each test binary uses its own part of the harness

pub mod certs;
pub mod npm;
pub mod poll;
pub mod providers;
pub mod proxies;
pub mod recipe;
pub mod redis;
mod template;
pub mod tools;
pub use template::Template;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const API: &str = "https://api.scopegate.test";
pub const OTHER_API: &str = "https://other.scopegate.test";
/// A resource server for which oidc-provider issues opaque access tokens.
pub const OPAQUE_API: &str = "https://opaque.scopegate.test";

/// A port free now for a listener the test configures by number. Taken below Linux's
/// ephemeral range (32768–60999), where servers bound to port 0 and outgoing connections get
/// theirs: a port picked there could be taken by one of those before the gateway binds it
/// ("address in use", then a gateway that never gets ready).
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    // Test binaries run at once: each starts at its own place in the range.
    let base = 20_000 + (std::process::id() * 7919) % 12_000;
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 20_000 + (base - 20_000 + n) % 12_000;
        if TcpListener::bind(("127.0.0.1", port as u16)).is_ok() {
            return port as u16;
        }
    }
}

/// oidc-provider, started for one test and killed when dropped.
pub struct AuthServer {
    child: Child,
    pub url: String,
    http: reqwest::blocking::Client,
}

/// Installs the pinned oidc-provider (`npm ci`) the first time a test needs it, so that
/// `cargo test` alone is enough on a machine with Node.js.
fn install_authz_server(dir: &std::path::Path) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if dir.join("node_modules/oidc-provider").exists() {
            return;
        }
        let status = tools::command("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(dir)
            .status()
            .expect("npm (Node.js) is needed to install the test authorization server");
        assert!(status.success(), "npm ci failed in {}", dir.display());
    });
}

impl AuthServer {
    /// Starts on a free port; a start that fails (e.g. the port was taken meanwhile by a
    /// parallel test) is retried on another port.
    pub fn start() -> AuthServer {
        let mut last = String::new();
        for _ in 0..3 {
            match AuthServer::try_start(free_port()) {
                Ok(s) => return s,
                Err(e) => last = e,
            }
        }
        panic!("the authorization server did not start: {last}");
    }

    /// Starts on a given port (to bring a stopped server back at the same issuer URL).
    pub fn start_on(port: u16) -> AuthServer {
        AuthServer::try_start(port)
            .or_else(|_| AuthServer::try_start(port))
            .unwrap_or_else(|e| panic!("the authorization server did not start: {e}"))
    }

    /// One start; one that does not report ready within 30 s is killed, so a stuck Node
    /// process fails the attempt instead of hanging the suite.
    fn try_start(port: u16) -> Result<AuthServer, String> {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/authz-server");
        install_authz_server(&dir);
        let log = dir.join(format!("server-{port}-{}.log", std::process::id()));
        let mut child = tools::command("node")
            .arg("server.mjs")
            .current_dir(&dir)
            .env("PORT", port.to_string())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("node must be installed to run the authorization server");
        let out = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(out).read_line(&mut line);
            let _ = tx.send(line);
        });
        let answer = rx.recv_timeout(Duration::from_secs(30));
        let result = match answer {
            Ok(line) if line.starts_with("READY") => Ok(AuthServer {
                child,
                url: format!("http://127.0.0.1:{port}"),
                http: reqwest::blocking::Client::new(),
            }),
            other => {
                let _ = child.kill();
                let _ = child.wait();
                Err(format!(
                    "port {port}: {other:?}; its log: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                ))
            }
        };
        let _ = std::fs::remove_file(&log);
        result
    }

    /// A client-credentials access token (RFC 9068 JWT for `resource`).
    pub fn client_token(&self, client: &str, scope: &str, resource: &str) -> String {
        let resp: Value = self
            .http
            .post(format!("{}/token", self.url))
            .basic_auth(client, Some(format!("{client}-secret")))
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", scope),
                ("resource", resource),
            ])
            .send()
            .unwrap()
            .json()
            .unwrap();
        resp["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token: {resp}"))
            .to_string()
    }

    /// Claims every token issued from now on to `who` (a subject, or a client for its own
    /// tokens) carries besides the provider's: a provider's claim shape (`groups`, `tid`,
    /// `realm_access`…), added through oidc-provider's `extraTokenClaims`.
    pub fn set_claims(&self, who: &str, claims: Value) {
        let status = self
            .http
            .post(format!("{}/control/claims", self.url))
            .json(&serde_json::json!({"who": who, "claims": claims}))
            .send()
            .unwrap()
            .status();
        assert!(status.is_success(), "{status}");
    }

    /// A user's access token, minted through the provider's own token model.
    pub fn user_token(&self, sub: &str, client: &str, scope: &str, resource: &str) -> String {
        let resp: Value = self
            .http
            .post(format!("{}/control/user-token", self.url))
            .json(&serde_json::json!({"sub": sub, "client_id": client, "scope": scope, "resource": resource}))
            .send()
            .unwrap()
            .json()
            .unwrap();
        resp["access_token"].as_str().unwrap().to_string()
    }

    /// A user's opaque access token whose value is `value` (a provider's own token shape,
    /// such as Zoho's `1000.<hex>.<hex>`), introspected by the provider like any other.
    pub fn opaque_user_token(
        &self,
        sub: &str,
        client: &str,
        scope: &str,
        resource: &str,
        value: &str,
    ) -> String {
        let resp: Value = self
            .http
            .post(format!("{}/control/user-token", self.url))
            .json(
                &serde_json::json!({"sub": sub, "client_id": client, "scope": scope,
                "resource": resource, "format": "opaque", "value": value}),
            )
            .send()
            .unwrap()
            .json()
            .unwrap();
        let token = resp["access_token"].as_str().unwrap().to_string();
        assert_eq!(
            token, value,
            "the provider issued the token in the shape asked"
        );
        token
    }

    pub fn port(&self) -> u16 {
        self.url.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// How many introspection requests the server answered.
    pub fn introspections(&self) -> u64 {
        let v: Value = self
            .http
            .get(format!("{}/control/introspections", self.url))
            .send()
            .unwrap()
            .json()
            .unwrap();
        v["count"].as_u64().unwrap()
    }

    /// Publishes a second key and signs new tokens with it.
    pub fn rotate(&self) {
        let r = self
            .http
            .post(format!("{}/control/rotate", self.url))
            .send()
            .unwrap();
        assert!(r.status().is_success());
    }
}

impl Drop for AuthServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Serves one JSON document at every path (a transmitter's JWKS in the tests).
pub struct JsonServer {
    pub url: String,
    _runtime: tokio::runtime::Runtime,
}

/// A real HTTP/1.1 server on a free loopback port, answering with `handler`; it runs on its
/// own runtime, which stops when the returned runtime is dropped.
pub fn serve<F, Fut>(handler: F) -> (SocketAddr, tokio::runtime::Runtime)
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let std_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    std_listener.set_nonblocking(true).unwrap();
    let addr = std_listener.local_addr().unwrap();
    runtime.spawn(async move {
        let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let handler = handler.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| {
                    let answer = handler(req);
                    async move { Ok::<_, hyper::Error>(answer.await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (addr, runtime)
}

impl JsonServer {
    pub fn start(doc: Value) -> JsonServer {
        let body = Bytes::from(doc.to_string());
        let (addr, runtime) = serve(move |_req| {
            let body = body.clone();
            async move { Response::new(Full::new(body)) }
        });
        JsonServer {
            url: format!("http://{addr}"),
            _runtime: runtime,
        }
    }
}

/// A real HTTP upstream on loopback that echoes each request as JSON and records it.
pub struct Upstream {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Value>>>,
    _runtime: tokio::runtime::Runtime,
}

impl Upstream {
    pub fn start() -> Upstream {
        let seen: Arc<Mutex<Vec<Value>>> = Arc::default();
        let record = seen.clone();
        let (addr, runtime) = serve(move |req| {
            let seen = scopegate::dev::describe_request(&req);
            record.lock().unwrap().push(seen.clone());
            async move {
                // Like most APIs, it reads the whole request before answering (so what the
                // gateway counted of a streamed body is final when the answer comes).
                let _ = http_body_util::BodyExt::collect(req.into_body()).await;
                Response::new(Full::new(Bytes::from(seen.to_string())))
            }
        });
        Upstream {
            addr,
            seen,
            _runtime: runtime,
        }
    }

    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

/// Given in the environment of [`TestGateway::start_file`]: the file that receives the
/// gateway's stdout (its request log).
pub const REQUEST_LOG_TO: &str = "SCOPEGATE_TEST_REQUEST_LOG";

/// The real `scopegate run` binary on free ports, killed when dropped.
pub struct TestGateway {
    child: Child,
    pub url: String,
    pub admin: String,
    pub addr: SocketAddr,
    _config: Option<tempfile_path::TempPath>,
}

/// Fills `{listen}`, `{admin}`, `{issuer}` and `{upstream}` in a YAML template.
pub fn config(template: &str, auth: &AuthServer, upstream: &Upstream) -> String {
    template
        .replace("{listen}", &format!("127.0.0.1:{}", free_port()))
        .replace("{admin}", &format!("127.0.0.1:{}", free_port()))
        .replace("{issuer}", &auth.url)
        .replace("{upstream}", &format!("http://{}", upstream.addr))
}

#[allow(unused_imports)] // used by some of the test binaries only
pub use tempfile_path::TempPath;

mod tempfile_path {
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A file under the target directory, removed when dropped.
    pub struct TempPath(pub PathBuf);

    impl TempPath {
        pub fn with(contents: &str) -> TempPath {
            static N: AtomicUsize = AtomicUsize::new(0);
            let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
            let path = dir.join(format!(
                "config-{}-{}.yaml",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::write(&path, contents).unwrap();
            TempPath(path)
        }
    }

    impl Drop for TempPath {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

fn yaml_value<'a>(yaml: &'a str, section: &str) -> &'a str {
    // `section:\n  listen: "ADDR"` as written by the test templates.
    let at = yaml.find(&format!("{section}:")).unwrap();
    let rest = &yaml[at..];
    let start = rest.find("listen: \"").unwrap() + 9;
    let len = rest[start..].find('"').unwrap();
    &rest[start..start + len]
}

impl TestGateway {
    pub fn start(yaml: &str) -> TestGateway {
        let gw = TestGateway::start_unready(yaml);
        gw.wait_ready();
        gw
    }

    /// Starts without waiting for `/readyz` (for tests of what happens before it is ready).
    pub fn start_unready(yaml: &str) -> TestGateway {
        TestGateway::start_unready_with(yaml, &[])
    }

    /// [`TestGateway::start`] with `env` in the gateway's environment.
    pub fn start_with(yaml: &str, env: &[(&str, String)]) -> TestGateway {
        let gw = TestGateway::start_unready_with(yaml, env);
        gw.wait_ready();
        gw
    }

    fn start_unready_with(yaml: &str, env: &[(&str, String)]) -> TestGateway {
        let addr: SocketAddr = yaml_value(yaml, "server").parse().unwrap();
        let admin: SocketAddr = yaml_value(yaml, "admin").parse().unwrap();
        let config = tempfile_path::TempPath::with(yaml);
        let mut gw = TestGateway::spawn(&config.0, addr, admin, env);
        gw._config = Some(config);
        gw
    }

    /// Runs a shipped configuration file as it is, with `env` for its `${NAME:-default}`
    /// values; the listeners (`SCOPEGATE_LISTEN`, `SCOPEGATE_ADMIN_LISTEN`) get free ports.
    pub fn start_file(path: &str, env: &[(&str, String)]) -> TestGateway {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let mut env = env.to_vec();
        env.push(("SCOPEGATE_LISTEN", addr.to_string()));
        env.push(("SCOPEGATE_ADMIN_LISTEN", admin.to_string()));
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path);
        let gw = TestGateway::spawn(&path, addr, admin, &env);
        gw.wait_ready();
        gw
    }

    fn spawn(
        config: &std::path::Path,
        addr: SocketAddr,
        admin: SocketAddr,
        env: &[(&str, String)],
    ) -> TestGateway {
        let stdout = match env.iter().find(|(k, _)| *k == REQUEST_LOG_TO) {
            Some((_, path)) => Stdio::from(std::fs::File::create(path).unwrap()),
            None => Stdio::null(),
        };
        let child = Command::new(env!("CARGO_BIN_EXE_scopegate"))
            .args(["run", "--config"])
            .arg(config)
            .env("SCOPEGATE_LOG", "warn")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(stdout)
            .spawn()
            .unwrap();
        TestGateway {
            child,
            url: format!("http://{addr}"),
            admin: format!("http://{admin}"),
            addr,
            _config: None,
        }
    }

    /// Waits until the proxy accepts connections and every issuer's keys were fetched once
    /// (up to 60 s: on a 2-core CI machine, a test binary starting six authorization servers
    /// and gateways at once was once slower than 30 s).
    pub fn wait_ready(&self) {
        for _ in 0..2400 {
            if TcpStream::connect(self.addr).is_ok()
                && let Ok(r) = reqwest::blocking::get(format!("{}/readyz", self.admin))
                && r.status() == 200
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("gateway not ready");
    }

    /// Rewrites the configuration file of a gateway started from YAML.
    pub fn rewrite_config(&self, yaml: &str) {
        let path = &self._config.as_ref().expect("started from YAML").0;
        // Written beside and renamed: the gateway never reads a half-written file.
        let partial = path.with_extension("partial");
        std::fs::write(&partial, yaml).unwrap();
        std::fs::rename(&partial, path).unwrap();
    }

    /// Pushes a Security Event Token to `/events` (RFC 8935): the status and the JSON body.
    pub fn push_set(&self, set: &str) -> (u16, Value) {
        let r = reqwest::blocking::Client::new()
            .post(format!("{}/events", self.admin))
            .header("content-type", "application/secevent+jwt")
            .body(set.to_string())
            .send()
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().unwrap_or(Value::Null))
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        self.child.wait().unwrap()
    }

    /// The gateway's process id.
    #[allow(dead_code)] // used by some of the test binaries only
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process (SIGKILL: no drain, nothing given back) and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The configuration file of a gateway started from YAML.
    pub fn config_path(&self) -> &std::path::Path {
        &self._config.as_ref().expect("started from YAML").0
    }

    /// Sends SIGHUP: read the configuration again.
    pub fn reload(&self) {
        let status = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    pub fn metrics(&self) -> String {
        reqwest::blocking::get(format!("{}/metrics", self.admin))
            .unwrap()
            .text()
            .unwrap()
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends raw bytes and reads the whole answer (the connection is closed by the request).
pub fn raw(addr: SocketAddr, request: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    (status, text)
}

pub fn get(url: &str, token: Option<&str>) -> reqwest::blocking::Response {
    let mut req = reqwest::blocking::Client::new().get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().unwrap()
}

pub fn header(r: &reqwest::blocking::Response, name: &str) -> String {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

/// Polls `f` every 50 ms until it holds; fails the test after 10 s.
pub fn eventually(what: &str, f: impl Fn() -> bool) {
    for _ in 0..200 {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not happen within 10 s");
}

/// The `iss` of the Security Event Tokens the tests push, and their `aud`.
pub const TRANSMITTER: &str = "https://transmitter.scopegate.test";
pub const GATEWAY_AUD: &str = "https://gateway.scopegate.test";

/// A protected route behind the real issuer (JWTs, and opaque tokens by introspection),
/// with pushed SETs accepted from the test's transmitter (`{jwks}`: its keys).
pub fn push_config() -> String {
    Template::corp(&[API, OPAQUE_API])
        // Reloads only on SIGHUP: the tests that rewrite this file count each reload.
        .server("reload: { on_file_change: false }")
        .issuer("introspection: { client_id: gateway, client_secret: gateway-secret }")
        .section(
            "tokens:\n  revocation:\n    push:\n      transmitter: \"https://transmitter.scopegate.test\"\n      jwks_uri: \"{jwks}\"\n      audience: \"https://gateway.scopegate.test\"",
        )
        .routes(
            "  - name: repos\n    match: { path: \"/orgs/{org}/repos\" }\n    upstream: api\n    require: { scopes: { any: [repo, chat.bot] } }",
        )
        .yaml()
}

/// A gateway on [`push_config`], with the transmitter that signs its SETs held by the test.
pub struct PushWorld {
    pub auth: AuthServer,
    pub upstream: Upstream,
    _jwks: JsonServer,
    pub tx: scopegate::dev::DevIssuer,
    pub gw: TestGateway,
    /// The configuration as started.
    pub yaml: String,
}

impl PushWorld {
    pub fn start() -> PushWorld {
        let auth = AuthServer::start();
        let upstream = Upstream::start();
        let tx = scopegate::dev::DevIssuer::new(TRANSMITTER.into(), GATEWAY_AUD.into());
        let jwks = JsonServer::start(tx.jwks());
        let yaml = config(&push_config(), &auth, &upstream).replace("{jwks}", &jwks.url);
        let gw = TestGateway::start(&yaml);
        PushWorld {
            auth,
            upstream,
            _jwks: jwks,
            tx,
            gw,
            yaml,
        }
    }
}
