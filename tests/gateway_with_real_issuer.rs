//! End to end: real oidc-provider tokens, the gateway in-process, a real upstream.

mod support;

use serde_json::Value;
use support::*;

/// Routes of every kind: public, scope alternatives, user/app alternatives, a catch-all.
fn config_template() -> String {
    Template::corp(&[API])
        .issuer("clock_skew: 0s")
        .section("scopes:\n  implies:\n    repo: [repo:status, public_repo]\n    admin:org: [write:org]\n    write:org: [read:org]")
        .routes(r#"  - name: health
    match: { path: /health }
    upstream: api
    auth: none
  - name: list-org-repos
    match: { methods: [GET], path: "/orgs/{org}/repos" }
    upstream: api
    require:
      scopes: { any: [repo, public_repo] }
  - name: get-space
    match: { methods: [GET], path: "/v1/spaces/{space}" }
    upstream: api
    require:
      any:
        - { principal: user, scopes: { any: [chat.spaces.readonly, chat.spaces] } }
        - { principal: app, scopes: chat.bot }
  - name: admin
    match: { path: "/admin/{*rest}" }
    upstream: api
    require:
      scopes: { all: [admin:org, read:audit_log] }"#)
        .yaml()
}

struct World {
    auth: AuthServer,
    upstream: Upstream,
    gw: TestGateway,
}

fn world_with(template: &str) -> World {
    let auth = AuthServer::start();
    let upstream = Upstream::start();
    let gw = TestGateway::start(&config(template, &auth, &upstream));
    World { auth, upstream, gw }
}

fn world() -> World {
    world_with(&config_template())
}

fn body(r: reqwest::blocking::Response) -> Value {
    r.json().unwrap()
}

#[test]
fn allowed_request_reaches_upstream_with_identity_headers_and_the_normalized_path() {
    let w = world();
    let token = w.auth.client_token("full", "repo read:org", API);
    let (status, text) = raw(
        w.gw.addr,
        &format!(
            "GET /orgs/%61cme/./x/../repos?page=2 HTTP/1.1\r\nHost: api\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
        ),
    );
    assert_eq!(status, 200, "{text}");
    let seen = w.upstream.seen.lock().unwrap()[0].clone();
    assert_eq!(seen["path"], "/orgs/acme/repos");
    assert_eq!(seen["query"], "page=2");
    let h = &seen["headers"];
    assert_eq!(h["x-auth-subject"][0], "full");
    assert_eq!(h["x-auth-client-id"][0], "full");
    assert_eq!(h["x-auth-principal"][0], "app");
    assert_eq!(h["x-auth-issuer"][0], "corp");
    assert_eq!(
        h["x-auth-scopes"][0],
        "public_repo read:org repo repo:status"
    );
    assert_eq!(h["x-forwarded-for"][0], "127.0.0.1");
    assert_eq!(h["x-request-id"][0].as_str().unwrap().len(), 32);
}

#[test]
fn user_and_app_tokens_are_told_apart_and_matched_to_their_alternative() {
    let w = world();
    let user = w.auth.user_token("alice", "full", "chat.spaces", API);
    let app = w.auth.client_token("bot", "chat.bot", API);
    let user_with_bot_scope = w.auth.user_token("alice", "full", "chat.bot", API);
    let r = get(&format!("{}/v1/spaces/AAA", w.gw.url), Some(&user));
    assert_eq!(r.status(), 200);
    assert_eq!(body(r)["headers"]["x-auth-principal"][0], "user");
    assert_eq!(
        get(&format!("{}/v1/spaces/AAA", w.gw.url), Some(&app)).status(),
        200
    );
    // chat.bot is an app scope: a user token carrying it is not enough.
    let r = get(
        &format!("{}/v1/spaces/AAA", w.gw.url),
        Some(&user_with_bot_scope),
    );
    assert_eq!(r.status(), 403);
}

#[test]
fn missing_scope_is_refused_with_the_exact_rfc6750_and_github_headers() {
    let w = world();
    let token = w.auth.client_token("reader", "read:org", API);
    let r = get(&format!("{}/orgs/acme/repos", w.gw.url), Some(&token));
    assert_eq!(r.status(), 403);
    assert_eq!(
        header(&r, "www-authenticate"),
        "Bearer realm=\"scopegate\", error=\"insufficient_scope\", error_description=\"this request needs a token with repo or public_repo\", scope=\"repo public_repo\""
    );
    assert_eq!(header(&r, "x-accepted-oauth-scopes"), "repo, public_repo");
    assert_eq!(header(&r, "x-oauth-scopes"), "read:org");
    assert_eq!(body(r)["error"], "insufficient_scope");
    assert_eq!(w.upstream.count(), 0);
}

#[test]
fn implied_scopes_satisfy_narrower_requirements() {
    let w = world();
    let token = w.auth.client_token("full", "admin:org read:audit_log", API);
    assert_eq!(
        get(&format!("{}/admin/users", w.gw.url), Some(&token)).status(),
        200
    );
    let token = w.auth.client_token("full", "write:org read:audit_log", API);
    assert_eq!(
        get(&format!("{}/admin/users", w.gw.url), Some(&token)).status(),
        403
    );
}

#[test]
fn no_token_gets_a_bare_challenge_and_a_bad_token_invalid_token() {
    let w = world();
    let r = get(&format!("{}/orgs/acme/repos", w.gw.url), None);
    assert_eq!(r.status(), 401);
    assert_eq!(header(&r, "www-authenticate"), "Bearer realm=\"scopegate\"");
    let r = get(&format!("{}/orgs/acme/repos", w.gw.url), Some("not.a.jwt"));
    assert_eq!(r.status(), 401);
    assert!(header(&r, "www-authenticate").contains("error=\"invalid_token\""));
    let opaque = get(
        &format!("{}/orgs/acme/repos", w.gw.url),
        Some("opaque-token-value"),
    );
    assert_eq!(opaque.status(), 401);
    assert_eq!(w.upstream.count(), 0);
}

#[test]
fn a_tampered_token_is_refused_as_a_bad_signature_without_echoing_it() {
    let w = world();
    let token = w.auth.client_token("full", "repo", API);
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    // Claim more scopes in the payload; the signature no longer matches.
    let payload = String::from_utf8(
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &parts[1])
            .unwrap(),
    )
    .unwrap()
    .replace("\"repo\"", "\"repo admin:org\"");
    parts[1] = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload);
    let forged = parts.join(".");
    let r = get(&format!("{}/orgs/acme/repos", w.gw.url), Some(&forged));
    assert_eq!(r.status(), 401);
    let text = r.text().unwrap();
    assert!(text.contains("signature"), "{text}");
    assert!(!text.contains(&forged[..20]));
}

#[test]
fn a_token_for_another_audience_is_refused() {
    let w = world();
    let token = w.auth.client_token("full", "repo", OTHER_API);
    let r = get(&format!("{}/orgs/acme/repos", w.gw.url), Some(&token));
    assert_eq!(r.status(), 401);
    assert!(header(&r, "www-authenticate").contains("(aud)"));
}

#[test]
fn an_expired_token_is_refused() {
    let w = world();
    let token = w.auth.client_token("short", "repo", API);
    assert_eq!(
        get(&format!("{}/orgs/acme/repos", w.gw.url), Some(&token)).status(),
        200
    );
    // The token lives 1 s and the issuer allows no clock skew; the cached answer must not
    // outlive `exp` either.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let r = get(&format!("{}/orgs/acme/repos", w.gw.url), Some(&token));
    assert_eq!(r.status(), 401);
    assert!(header(&r, "www-authenticate").contains("expired"));
}

#[test]
fn a_token_signed_by_a_newly_rotated_key_is_accepted_after_one_refresh() {
    let w = world();
    let before = w.auth.client_token("full", "repo", API);
    assert_eq!(
        get(&format!("{}/orgs/acme/repos", w.gw.url), Some(&before)).status(),
        200
    );
    w.auth.rotate();
    let after = w.auth.client_token("full", "repo", API);
    assert!(after != before);
    assert_eq!(
        get(&format!("{}/orgs/acme/repos", w.gw.url), Some(&after)).status(),
        200
    );
    let m = w.gw.metrics();
    assert!(
        m.contains("scopegate_jwks_refreshes_total{issuer=\"corp\",result=\"ok\"} 2"),
        "{m}"
    );
    assert!(m.contains("scopegate_jwks_keys{issuer=\"corp\"} 2"), "{m}");
}

#[test]
fn spoofed_identity_headers_never_reach_the_upstream() {
    let w = world();
    let token = w.auth.client_token("reader", "read:org", API);
    let req = "GET /health HTTP/1.1\r\nHost: api\r\nX-Auth-Subject: root\r\nX-Auth-Scopes: admin:org\r\nX-Original-URL: /admin/x\r\nConnection: close\r\n\r\n";
    assert_eq!(raw(w.gw.addr, req).0, 200);
    // On a protected route, with `Connection` naming the gateway's own header.
    let req = format!(
        "GET /v1/spaces/A HTTP/1.1\r\nHost: api\r\nAuthorization: Bearer {token}\r\nX-Auth-Principal: app\r\nX-Auth-Subject: root\r\nConnection: close, X-Auth-Subject\r\n\r\n"
    );
    assert_eq!(
        raw(w.gw.addr, &req).0,
        403,
        "read:org is not enough for a space"
    );
    let token = w.auth.client_token("bot", "chat.bot", API);
    let req = format!(
        "GET /v1/spaces/A HTTP/1.1\r\nHost: api\r\nAuthorization: Bearer {token}\r\nX-Auth-Subject: root\r\nConnection: close, X-Auth-Subject\r\n\r\n"
    );
    assert_eq!(raw(w.gw.addr, &req).0, 200);
    let seen = w.upstream.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert!(seen[0]["headers"].get("x-auth-subject").is_none());
    assert!(seen[0]["headers"].get("x-auth-scopes").is_none());
    assert!(seen[0]["headers"].get("x-original-url").is_none());
    assert_eq!(
        seen[1]["headers"]["x-auth-subject"],
        serde_json::json!(["bot"])
    );
    assert!(seen[1]["headers"].get("connection").is_none());
}

#[test]
fn conflicting_content_lengths_are_refused_and_nothing_is_forwarded() {
    let w = world();
    let (status, text) = raw(
        w.gw.addr,
        "POST /health HTTP/1.1\r\nHost: api\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde",
    );
    assert_eq!(status, 400, "{text}");
    assert_eq!(w.upstream.count(), 0);
}

/// A request framed two ways is refused before the engine parses it: 400 with a JSON body,
/// the connection closed, nothing forwarded, and the request hidden in its body never read.
#[test]
fn content_length_with_transfer_encoding_is_refused_and_closes() {
    let w = world();
    let (status, text) = raw(
        w.gw.addr,
        "POST /health HTTP/1.1\r\nHost: api\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin/x HTTP/1.1\r\nHost: api\r\n\r\n",
    );
    assert_eq!(status, 400, "{text}");
    assert!(
        text.to_ascii_lowercase().contains("connection: close"),
        "{text}"
    );
    assert!(
        text.contains("both Content-Length and Transfer-Encoding"),
        "{text}"
    );
    assert_eq!(
        text.matches("HTTP/1.1 ").count(),
        1,
        "the smuggled request was answered: {text}"
    );
    assert_eq!(w.upstream.count(), 0);
}

#[test]
fn hostile_paths_are_refused_before_routing() {
    let w = world();
    for path in [
        "/orgs/acme%2Frepos",
        "/admin%5cx",
        "/health;x=1",
        "/%2e%2e/health",
        "/a%00",
        "/%C0%AE%C0%AE/health",
        "/x%zz",
    ] {
        let (status, text) = raw(
            w.gw.addr,
            &format!("GET {path} HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n"),
        );
        assert_eq!(status, 400, "{path}: {text}");
    }
    assert_eq!(w.upstream.count(), 0);
}

#[test]
fn unknown_paths_are_404_and_wrong_methods_405_with_allow() {
    let w = world();
    let r = get(&format!("{}/nothing", w.gw.url), None);
    assert_eq!(r.status(), 404);
    assert_eq!(body(r)["error"], "not_found");
    let r = reqwest::blocking::Client::new()
        .delete(format!("{}/orgs/acme/repos", w.gw.url))
        .send()
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(header(&r, "allow"), "GET, HEAD");
    assert_eq!(w.upstream.count(), 0);
}

#[test]
fn requests_are_counted_by_route_and_outcome() {
    let w = world();
    let token = w.auth.client_token("full", "repo", API);
    get(&format!("{}/orgs/acme/repos", w.gw.url), Some(&token));
    get(&format!("{}/orgs/acme/repos", w.gw.url), Some(&token));
    get(&format!("{}/orgs/acme/repos", w.gw.url), None);
    get(&format!("{}/nope", w.gw.url), None);
    let m = w.gw.metrics();
    for line in [
        "scopegate_requests_total{front_end=\"proxy\",outcome=\"allowed\",route=\"list-org-repos\"} 2",
        "scopegate_requests_total{front_end=\"proxy\",outcome=\"401\",route=\"list-org-repos\"} 1",
        "scopegate_requests_total{front_end=\"proxy\",outcome=\"404\",route=\"-\"} 1",
        "scopegate_refusals_total{front_end=\"proxy\",reason=\"not_found\"} 1",
        "scopegate_token_cache_hits_total{kind=\"jwt\"} 1",
        "scopegate_token_cache_misses_total{kind=\"jwt\"} 1",
    ] {
        assert!(m.contains(line), "missing {line} in\n{m}");
    }
    assert!(!m.contains(&token[..30]));
}

#[test]
fn the_query_token_is_an_unsupported_method_unless_enabled_and_then_never_forwarded_and_private() {
    let w = world();
    let token = w.auth.client_token("full", "repo", API);
    let r = get(
        &format!("{}/orgs/acme/repos?access_token={token}", w.gw.url),
        None,
    );
    // RFC 6750 §3.1: an unsupported method gets the bare challenge, no error code.
    assert_eq!(r.status(), 401);
    assert_eq!(header(&r, "www-authenticate"), "Bearer realm=\"scopegate\"");
    drop(w);

    let enabled = config_template().replace(
        "scopes:\n  implies:",
        "tokens:\n  query_parameter: true\nscopes:\n  implies:",
    );
    let w = world_with(&enabled);
    let token = w.auth.client_token("full", "repo", API);
    let r = get(
        &format!("{}/orgs/acme/repos?a=1&access_token={token}&b=2", w.gw.url),
        None,
    );
    assert_eq!(r.status(), 200);
    // RFC 6750 §2.3: no shared cache may keep an answer to a URL that carried a token.
    assert_eq!(header(&r, "cache-control"), "private");
    assert_eq!(body(r)["query"], "a=1&b=2");
    let by_header = get(&format!("{}/orgs/acme/repos", w.gw.url), Some(&token));
    assert_eq!(header(&by_header, "cache-control"), "");
    let both = get(
        &format!("{}/orgs/acme/repos?access_token={token}", w.gw.url),
        Some(&token),
    );
    assert_eq!(both.status(), 400);
}

#[test]
fn upstream_down_is_a_502_with_a_json_body() {
    let auth = AuthServer::start();
    let upstream = Upstream::start();
    let yaml = config(&config_template(), &auth, &upstream).replace(
        &upstream.addr.to_string(),
        &format!("127.0.0.1:{}", free_port()),
    );
    let gw = TestGateway::start(&yaml);
    let r = get(&format!("{}/health", gw.url), None);
    assert_eq!(r.status(), 502);
    assert_eq!(body(r)["error"], "bad_gateway");
}

#[test]
fn the_tls_listener_serves_http2_and_http1_with_the_same_decisions() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let status = support::tools::command("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "1",
        ])
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl makes the test certificate");
    assert!(status.success());
    let tls = config_template().replace(
        "  listen: \"{listen}\"\n",
        &format!(
            "  listen: \"{{listen}}\"\n  tls: {{ cert: \"{}\", key: \"{}\" }}\n  timeouts: {{ tls_handshake: 1s }}\n",
            cert.display(),
            key.display()
        ),
    );
    let w = world_with(&tls);
    let token = w.auth.client_token("full", "repo", API);
    let url = format!("https://localhost:{}/orgs/acme/repos", w.gw.addr.port());
    for http2 in [true, false] {
        let mut client = reqwest::blocking::Client::builder().danger_accept_invalid_certs(true);
        client = if http2 {
            client.http2_prior_knowledge()
        } else {
            client.http1_only()
        };
        let client = client.build().unwrap();
        let r = client.get(&url).bearer_auth(&token).send().unwrap();
        assert_eq!(
            r.version(),
            if http2 {
                http::Version::HTTP_2
            } else {
                http::Version::HTTP_11
            }
        );
        assert_eq!(r.status(), 200);
        let seen: Value = r.json().unwrap();
        assert_eq!(seen["headers"]["x-forwarded-proto"][0], "https");
        assert_eq!(client.get(&url).send().unwrap().status(), 401);
    }
    // A client that never starts its handshake is let go after `timeouts.tls_handshake`.
    let mut silent = std::net::TcpStream::connect(w.gw.addr).unwrap();
    silent
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let started = std::time::Instant::now();
    let mut buf = [0u8; 16];
    let n = std::io::Read::read(&mut silent, &mut buf).unwrap_or(usize::MAX);
    assert_eq!(n, 0, "closed by the gateway");
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
}

#[test]
fn explain_names_the_route_and_the_reason_without_printing_the_token() {
    let auth = AuthServer::start();
    let upstream = Upstream::start();
    let file = TempPath::with(&config(&config_template(), &auth, &upstream));
    // The token is read from stdin: never on the command line, which every user can list.
    let explain = |token: &str| {
        use std::io::Write;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_scopegate"))
            .args(["explain", "--config"])
            .arg(&file.0)
            .args(["--token-file", "-", "GET", "/orgs/acme/repos"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(child.stdin.take().unwrap(), "{token}").unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let reader = auth.client_token("reader", "read:org", API);
    let (ok, text) = explain(&reader);
    assert!(!ok, "{text}");
    assert!(text.contains("route: list-org-repos"), "{text}");
    assert!(text.contains("decision: refused, 403"), "{text}");
    assert!(text.contains("insufficient_scope"), "{text}");
    assert!(!text.contains(&reader[..40]), "{text}");
    let full = auth.client_token("full", "repo", API);
    let (ok, text) = explain(&full);
    assert!(ok, "{text}");
    assert!(
        text.contains("decision: allowed, forwarded to `api` as GET /orgs/acme/repos"),
        "{text}"
    );
    assert!(text.contains("principal: app"), "{text}");
    assert!(
        text.contains("effective scopes: public_repo repo repo:status"),
        "{text}"
    );
    assert_eq!(upstream.count(), 0, "explain never forwards");
}
