//! The command line as a user meets it: `check` on good and bad files, and `dev` whose
//! printed curl lines must give the answers they announce.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A file under the target directory, removed when dropped.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn with(contents: &str) -> TempFile {
        let path = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "cli-{}-{}",
            std::process::id(),
            contents.len()
        ));
        std::fs::write(&path, contents).unwrap();
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn scopegate(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_scopegate"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write(name: &str, yaml: &str) -> String {
    let path = format!("{}/{name}", env!("CARGO_TARGET_TMPDIR"));
    std::fs::write(&path, yaml).unwrap();
    path
}

const BASE: &str =
    "server: { listen: 127.0.0.1:1 }\nupstreams: { api: { url: http://127.0.0.1:2 } }\n";

#[test]
fn check_accepts_the_shipped_configs() {
    for file in [
        "config/dev.yaml",
        "config/scopegate.yaml",
        "config/examples/github-orgs.yaml",
        "config/examples/google-chat.yaml",
        "config/examples/zoho-migration.yaml",
        "config/examples/multi-site.yaml",
        "config/examples/github-token.yaml",
        "config/examples/google-tokens.yaml",
        "config/examples/okta.yaml",
        "config/examples/entra-id.yaml",
        "config/examples/auth0.yaml",
        "config/examples/keycloak.yaml",
    ] {
        let path = format!("{}/{file}", env!("CARGO_MANIFEST_DIR"));
        let (ok, out, err) = scopegate(&["check", "--config", &path]);
        assert!(ok, "{file}: {out}{err}");
        assert!(out.contains(": ok ("), "{out}");
    }
}

#[test]
fn check_names_file_line_column_and_what_was_expected() {
    let path = write(
        "unknown-key.yaml",
        &format!(
            "{BASE}routes:\n  - name: r\n    match: {{ path: /r, methodz: [GET] }}\n    upstream: api\n    auth: none\n"
        ),
    );
    let (ok, _, err) = scopegate(&["check", "--config", &path]);
    assert!(!ok);
    assert!(err.contains("unknown-key.yaml:5:"), "{err}");
    assert!(
        err.contains("unknown field `methodz`, expected one of host, methods, path"),
        "{err}"
    );
}

#[test]
fn check_reports_every_error_of_a_file_each_at_its_line_and_column() {
    let path = write(
        "three-errors.yaml",
        "server:
  listen: 127.0.0.1:1
  timeouts: { idle: 5x }
issuers: [{ id: corp, issuer: https://a, audiences: [x] }]
upstreams: { api: { url: http://127.0.0.1:2 } }
routes:
  - name: a
    match: { path: /a }
    upstream: apii
    require: { scopes: repo }
  - name: b
    match: { path: /b }
    upstream: api
    issuers: [crop]
    require: {}
",
    );
    let (ok, _, err) = scopegate(&["check", "--config", &path]);
    assert!(!ok);
    let lines: Vec<&str> = err.lines().collect();
    // In the order of the file, each with file:line:column.
    let expected = [
        "three-errors.yaml:3:21: `5x`: unknown unit `x` (use ms, s, m or h)",
        "three-errors.yaml:9:15: route `a`: upstream `apii` is not defined (known: api)",
        "three-errors.yaml:14:14: route `b`: issuers: `crop` is not a configured issuer",
    ];
    assert_eq!(lines.len(), expected.len(), "{err}");
    for (line, want) in lines.iter().zip(expected) {
        assert!(
            line.ends_with(want),
            "{line} does not end with {want}\n{err}"
        );
    }
}

#[test]
fn check_refuses_a_route_without_require_and_names_it() {
    let path = write(
        "no-require.yaml",
        &format!(
            "{BASE}issuers: [{{ id: a, issuer: https://a, audiences: [x] }}]\nroutes:\n  - {{ name: open, match: {{ path: /r }}, upstream: api }}\n"
        ),
    );
    let (ok, _, err) = scopegate(&["check", "--config", &path]);
    assert!(!ok);
    assert!(
        err.contains("route `open`: a protected route needs `require:`"),
        "{err}"
    );
}

#[test]
fn check_reports_a_missing_environment_variable_with_its_position() {
    let path = write(
        "env.yaml",
        "server: { listen: \"${SCOPEGATE_TEST_SURELY_UNSET}\" }\nupstreams: {}\nroutes: []\n",
    );
    let (ok, _, err) = scopegate(&["check", "--config", &path]);
    assert!(!ok);
    assert!(err.contains("env.yaml:1:"), "{err}");
    assert!(
        err.contains("`SCOPEGATE_TEST_SURELY_UNSET` is not set"),
        "{err}"
    );
}

#[test]
fn check_warns_about_a_shadowed_route_but_succeeds() {
    let path = write(
        "shadow.yaml",
        &format!(
            "{BASE}routes:\n  - {{ name: all, match: {{ path: \"/{{*x}}\" }}, upstream: api, auth: none }}\n  - {{ name: health, match: {{ path: /health }}, upstream: api, auth: none }}\n"
        ),
    );
    let (ok, out, err) = scopegate(&["check", "--config", &path]);
    assert!(ok, "{err}");
    assert!(
        err.contains("warning: route `health` is never reached"),
        "{err}"
    );
    assert!(out.contains("1 warnings"), "{out}");
}

#[test]
fn check_only_warns_about_upstream_names_that_resolve_where_the_gateway_runs_and_run_refuses_them()
{
    // A service name of the cluster the configuration is for.
    let path = write(
        "cluster.yaml",
        "server: { listen: 127.0.0.1:1 }\nupstreams: { api: { url: http://orders.shop.svc.cluster.invalid:8080 } }\nroutes:\n  - { name: h, match: { path: /h }, upstream: api, auth: none }\n",
    );
    let (ok, out, err) = scopegate(&["check", "--config", &path]);
    assert!(ok, "{err}");
    assert!(
        err.contains("upstreams.api.url `http://orders.shop.svc.cluster.invalid:8080`: the host does not resolve here"),
        "{err}"
    );
    assert!(out.contains("1 warnings"), "{out}");
    // Starting resolves them: a gateway with nowhere to forward does not start.
    let (ok, _, err) = scopegate(&["run", "--config", &path]);
    assert!(!ok);
    assert!(err.contains("the host does not resolve"), "{err}");
}

#[test]
fn the_log_has_no_colour_codes_when_it_is_not_a_terminal() {
    let port = |l: std::net::TcpListener| l.local_addr().unwrap().port();
    let free = || port(std::net::TcpListener::bind("127.0.0.1:0").unwrap());
    let path = write(
        "plain.yaml",
        &format!(
            "server: {{ listen: 127.0.0.1:{} }}\nadmin: {{ listen: 127.0.0.1:{} }}\nupstreams: {{ api: {{ url: http://127.0.0.1:2 }} }}\nroutes:\n  - {{ name: h, match: {{ path: /h }}, upstream: api, auth: none }}\n",
            free(),
            free()
        ),
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_scopegate"))
        .args(["run", "--config", &path])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The first log line, as a collector reading the pipe would store it.
    let mut line = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        line.contains("INFO") && line.contains("serving"),
        "{line:?}"
    );
    assert!(!line.contains('\u{1b}'), "colour codes in {line:?}");
}

#[test]
fn health_exits_zero_only_when_the_admin_port_answers_200() {
    let port = |l: std::net::TcpListener| l.local_addr().unwrap().port();
    let free = || port(std::net::TcpListener::bind("127.0.0.1:0").unwrap());
    let admin = free();
    let path = write(
        "health.yaml",
        &format!(
            "server: {{ listen: 127.0.0.1:{} }}\nadmin: {{ listen: 127.0.0.1:{admin} }}\nupstreams: {{ api: {{ url: http://127.0.0.1:2 }} }}\nroutes:\n  - {{ name: h, match: {{ path: /h }}, upstream: api, auth: none }}\n",
            free()
        ),
    );
    let url = format!("http://127.0.0.1:{admin}/healthz");
    let (ok, _, err) = scopegate(&["health", "--url", &url]);
    assert!(!ok, "nothing listens yet");
    assert!(!err.is_empty());
    let mut child = Command::new(env!("CARGO_BIN_EXE_scopegate"))
        .args(["run", "--config", &path])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let mut healthy = false;
    while start.elapsed() < Duration::from_secs(10) && !healthy {
        healthy = scopegate(&["health", "--url", &url]).0;
        std::thread::sleep(Duration::from_millis(50));
    }
    let nope = format!("http://127.0.0.1:{admin}/nope");
    let (ok, _, err) = scopegate(&["health", "--url", &nope]);
    let _ = child.kill();
    let _ = child.wait();
    assert!(healthy, "the running gateway is healthy");
    assert!(!ok && err.contains("404"), "{err}");
}

/// `scopegate dev` on its fixed ports; its curl lines must answer as announced.
/// A free port on loopback.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `scopegate dev` (killed when dropped) and the `curl` lines it printed, each with the
/// status announced above it (`None` when none was). Its output stays open while it runs:
/// a closed pipe would end it at its next line.
struct Dev(
    std::process::Child,
    #[allow(dead_code)] std::io::Lines<BufReader<std::process::ChildStdout>>,
);

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn dev(args: &[&str], expected_lines: usize) -> (Dev, Vec<(Option<u16>, String)>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_scopegate"))
        .arg("dev")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut banner, mut cases, mut expect) = (false, Vec::new(), None);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) && cases.len() < expected_lines {
        let Some(Ok(line)) = lines.next() else { break };
        let line = line.trim().to_string();
        banner |= line.contains("DEVELOPMENT ONLY");
        if let Some(comment) = line.strip_prefix("# ") {
            expect = comment
                .rsplit_once(" -> ")
                .and_then(|(_, code)| code.parse::<u16>().ok());
        } else if let Some(cmd) = line.strip_prefix("curl ") {
            cases.push((expect.take(), cmd.to_string()));
        }
    }
    let dev = Dev(child, lines);
    assert!(banner, "no development banner");
    assert_eq!(cases.len(), expected_lines, "{cases:?}");
    (dev, cases)
}

/// Runs a printed curl line (`-X`, every `-H`, the URL) and gives the status.
fn curl(cmd: &str) -> (u16, String) {
    let words: Vec<&str> = cmd.split_whitespace().collect();
    let method = words[words.iter().position(|w| *w == "-X").unwrap() + 1];
    let url = words.last().unwrap();
    let mut req = reqwest::blocking::Client::new().request(method.parse().unwrap(), *url);
    for header in cmd.split("-H '").skip(1) {
        let (name, value) = header.split('\'').next().unwrap().split_once(": ").unwrap();
        req = req.header(name, value);
    }
    let r = req.send().unwrap();
    (r.status().as_u16(), r.text().unwrap_or_default())
}

#[test]
fn dev_prints_curl_lines_that_give_the_announced_answers() {
    let (port, admin) = (free_port(), free_port());
    let (_dev, cases) = dev(
        &[
            "--port",
            &port.to_string(),
            "--admin-port",
            &admin.to_string(),
        ],
        8,
    );
    for (code, cmd) in &cases {
        assert!(cmd.contains(&format!("http://127.0.0.1:{port}/")), "{cmd}");
        assert_eq!(
            curl(cmd).0,
            code.expect("every persona says its answer"),
            "{cmd}"
        );
    }
}

#[test]
fn dev_with_your_config_prints_a_caller_per_route_that_the_route_admits() {
    let (port, admin) = (free_port(), free_port());
    let config = write(
        "dev-own-routes.yaml",
        "server: { listen: \"127.0.0.1:1\" }
upstreams: { api: { url: \"http://127.0.0.1:2\" } }
routes:
  - { name: open, match: { path: /health }, upstream: echo, auth: none }
  - name: write-invoice
    match: { methods: [POST], path: \"/invoices/{id}\" }
    upstream: echo
    require: { scopes: { all: [invoices.write, { any: [billing, admin] }] } }
  - name: bot
    match: { path: \"/bot/{*rest}\" }
    upstream: echo
    require: { any: [{ principal: app, scopes: bot.post }, { scopes: admin }] }
",
    );
    let (_dev, cases) = dev(
        &[
            "--config",
            &config,
            "--port",
            &port.to_string(),
            "--admin-port",
            &admin.to_string(),
        ],
        2,
    );
    for (code, cmd) in &cases {
        assert_eq!(*code, None, "a user's route announces no answer: {cmd}");
        let (status, body) = curl(cmd);
        assert_eq!(status, 200, "{cmd}: {body}");
        // The echo upstream saw the identity the gateway set.
        assert!(body.contains("x-auth-subject"), "{body}");
    }
    assert!(cases[0].1.contains("-X POST"), "{}", cases[0].1);
    assert!(cases[0].1.contains("/invoices/acme"), "{}", cases[0].1);
    assert!(cases[1].1.contains("/bot/example"), "{}", cases[1].1);
    // A name dev needs is refused, saying which.
    let clash = write(
        "dev-clash.yaml",
        "server: { listen: \"127.0.0.1:1\" }\nissuers: [{ id: dev, issuer: https://a, audiences: [x] }]\nupstreams: {}\nroutes: []\n",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_scopegate"))
        .args(["dev", "--config", &clash])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("dev adds an issuer `dev`"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn hash_credential_reads_stdin_and_prints_the_line_to_paste() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_scopegate"))
        .arg("hash-credential")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // `echo test |` adds a newline that is not part of the secret.
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"test\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n"
    );
}

#[test]
fn check_refuses_credentials_that_are_ambiguous_unhashed_or_undated() {
    let protected = "issuers: [{ id: corp, issuer: https://i.example, audiences: [a] }]\nroutes:\n  - { name: r, match: { path: /r }, upstream: api, require: {} }\n";
    let hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    for (name, credential, expected) in [
        (
            "two-ways",
            format!("{{ id: k, header: X-Key, query: key, sha256: {hash}, subject: s }}"),
            "credential `k`: set exactly one of `header`, `scheme` or `query`",
        ),
        (
            "plain-secret",
            "{ id: k, header: X-Key, sha256: hunter2, subject: s }".to_string(),
            "credential `k`: `sha256` must be 64 hex digits",
        ),
        (
            "bad-time",
            format!("{{ id: k, header: X-Key, sha256: {hash}, subject: s, not_after: tomorrow }}"),
            "`tomorrow` is not an RFC 3339 time",
        ),
        (
            "bearer-scheme",
            format!("{{ id: k, scheme: bearer, sha256: {hash}, subject: s }}"),
            "scheme `bearer` is also in tokens.schemes",
        ),
        (
            "unknown-issuer",
            format!("{{ id: k, header: X-Key, sha256: {hash}, subject: s, issuer: eu1 }}"),
            "issuer `eu1` is not defined",
        ),
    ] {
        let path = write(
            &format!("credential-{name}.yaml"),
            &format!("{BASE}{protected}credentials:\n  - {credential}\n"),
        );
        let (ok, _, err) = scopegate(&["check", "--config", &path]);
        assert!(!ok, "{name}");
        assert!(err.contains(expected), "{name}: {err}");
    }
}

#[test]
fn explain_decides_legacy_credentials_given_as_headers_or_in_the_query() {
    let config = format!(
        "{}/config/examples/zoho-migration.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    // A secret header comes from a file, not the command line.
    let headers = TempFile::with("Authorization: Zoho-authtoken zoho-mailer-authtoken-33d0\n");
    let (ok, out, err) = scopegate(&[
        "explain",
        "--config",
        &config,
        "--header-file",
        headers.0.to_str().unwrap(),
        "GET",
        "/crm/v2/Leads",
    ]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("subject: mailer@example.com"), "{out}");
    assert!(!out.contains("zoho-mailer-authtoken-33d0"), "{out}");
    assert!(
        out.contains(
            "decision endpoint: 200 with these identity headers and x-scopegate-target: /crm/v2/Leads"
        ),
        "{out}"
    );
    let (ok, out, _) = scopegate(&[
        "explain",
        "--config",
        &config,
        "GET",
        "/crm/v2/Leads?authtoken=zoho-crm-sync-authtoken-81ab",
    ]);
    assert!(!ok);
    assert!(
        out.contains("401") && out.contains("use an OAuth 2.0 access token"),
        "{out}"
    );
    assert!(
        out.contains("nginx auth_request passes 401 Unauthorized and WWW-Authenticate"),
        "{out}"
    );
}
