//! The request log as an auditor reads it: one JSON line per request, with who called what
//! and why it was refused, and never a presented secret (token, legacy key, query token).

mod support;

use serde_json::Value;
use support::*;

const LEGACY_KEY: &str = "legacy-key-for-the-log-test";

#[test]
fn each_request_is_one_json_line_with_the_decision_and_no_secret() {
    let auth = AuthServer::start();
    let upstream = Upstream::start();
    let digest: String = scopegate::token::hash(LEGACY_KEY)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let yaml = Template::corp(&[API])
        // The client's trace context is continued only from here (not from 127.0.0.2).
        .server("trusted_proxies: [127.0.0.1]")
        .section("tokens:\n  query_parameter: true")
        .section(&format!(
            "credentials:\n  - {{ id: legacy, header: X-API-Key, sha256: {digest}, subject: legacy-bot, scopes: [repo] }}"
        ))
        .routes(
            "  - name: repos\n    match: { path: \"/orgs/{org}/repos\" }\n    upstream: api\n    require: { scopes: repo }",
        )
        .yaml()
        .replace("{listen}", "${SCOPEGATE_LISTEN}")
        .replace("{admin}", "${SCOPEGATE_ADMIN_LISTEN}");
    let dir = std::env::temp_dir().join(format!("scopegate-log-{}", free_port()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("scopegate.yaml");
    std::fs::write(&file, config(&yaml, &auth, &upstream)).unwrap();
    let log = dir.join("requests.log");
    let gw = TestGateway::start_file(
        file.to_str().unwrap(),
        &[(REQUEST_LOG_TO, log.display().to_string())],
    );

    let repo = auth.user_token("alice", "full", "repo", API);
    let read_org = auth.user_token("alice", "full", "read:org", API);
    let query = auth.user_token("bob", "full", "repo", API);
    let client = reqwest::blocking::Client::new();
    let url = |p: &str| format!("{}{p}", gw.url);
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let sent = [
        client
            .get(url("/orgs/acme/repos"))
            .bearer_auth(&repo)
            .header("traceparent", traceparent),
        client.get(url("/orgs/acme/repos")).bearer_auth(&read_org),
        client
            .get(url("/orgs/acme/repos"))
            .header("x-api-key", LEGACY_KEY),
        client.get(url(&format!(
            "/orgs/acme/repos?access_token={query}&page=2"
        ))),
        client.get(url("/orgs/acme/repos")),
        client.get(url("/nowhere")),
        // An untrusted peer's traceparent does not choose the trace id; a chunked body
        // without Content-Length is still sized.
        reqwest::blocking::Client::builder()
            .local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap())
            .build()
            .unwrap()
            .post(url("/orgs/acme/repos"))
            .bearer_auth(&repo)
            .header("traceparent", traceparent)
            .body(reqwest::blocking::Body::new(std::io::Cursor::new(vec![
                b'x';
                5000
            ]))),
    ];
    let statuses: Vec<u16> = sent
        .into_iter()
        .map(|r| r.send().unwrap().status().as_u16())
        .collect();
    assert_eq!(statuses, [200, 403, 200, 200, 401, 404, 200]);

    let lines = || -> Vec<Value> {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("each line is one JSON object"))
            .collect()
    };
    eventually("seven log lines", || lines().len() == 7);
    let lines = lines();
    let field = |i: usize, k: &str| lines[i][k].clone();

    // Allowed, with the identity and the trace id of the client's traceparent.
    assert_eq!(field(0, "scopegate.decision"), "allowed");
    assert_eq!(field(0, "http.response.status_code"), 200);
    assert_eq!(field(0, "user.id"), "alice");
    assert_eq!(field(0, "scopegate.client_id"), "full");
    assert_eq!(field(0, "scopegate.issuer"), "corp");
    assert_eq!(field(0, "scopegate.route"), "repos");
    assert_eq!(field(0, "url.path"), "/orgs/acme/repos");
    assert_eq!(field(0, "http.request.method"), "GET");
    assert_eq!(field(0, "scopegate.upstream.status_code"), 200);
    assert_eq!(field(0, "trace_id"), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(field(0, "client.address"), "127.0.0.1");
    assert!(field(0, "scopegate.request_id").is_string());
    assert!(field(0, "scopegate.upstream.duration_ms").is_number());
    // Refused, with the reason, the principal that was refused and the request id.
    assert_eq!(field(1, "scopegate.decision"), "refused");
    assert_eq!(field(1, "scopegate.reason"), "insufficient_scope");
    assert_eq!(field(1, "http.response.status_code"), 403);
    assert_eq!(field(1, "user.id"), "alice");
    for i in 1..7 {
        assert!(field(i, "scopegate.request_id").is_string(), "line {i}");
    }
    // The untrusted peer's trace context was not taken; its streamed body was counted.
    assert_eq!(field(6, "client.address"), "127.0.0.2");
    assert!(lines[6].get("trace_id").is_none(), "{}", lines[6]);
    assert_eq!(field(6, "http.request.body.size"), 5000);
    assert_eq!(field(2, "user.id"), "legacy-bot");
    assert_eq!(field(2, "scopegate.issuer"), "credential:legacy");
    assert_eq!(field(3, "user.id"), "bob");
    assert_eq!(field(4, "scopegate.reason"), "unauthorized");
    assert_eq!(field(5, "scopegate.reason"), "not_found");
    assert!(lines[5].get("scopegate.route").is_none());

    // No presented secret anywhere in the log, nor the query that carried one.
    let text = std::fs::read_to_string(&log).unwrap();
    for secret in [&repo, &read_org, &query, &LEGACY_KEY.to_string()] {
        assert!(!text.contains(secret.as_str()), "a secret in the log");
        // Not even a recognisable piece of one (a JWT's signature part).
        let tail = &secret[secret.len() - 20..];
        assert!(!text.contains(tail), "part of a secret in the log");
    }
    assert!(!text.contains("access_token"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}
