//! Hostile input at the edge, as raw bytes over TCP: one case per class and variant of
//! request that two HTTP stacks could read differently (framing, Host, targets, header names,
//! headers other layers trust, RFC 6750 details, organizations, credentials on public
//! routes), each checked for its status, its JSON answer, and whether anything reached the
//! upstream; then a port of the classic CL.TE / TE.CL mutation list, where no ambiguous
//! request may be forwarded.

mod support;

use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use support::*;

fn config_template() -> String {
    Template::corp(&[API])
        .routes(
            r#"  - { name: pub, match: { path: /pub }, upstream: api, auth: none }
  - { name: setup, match: { path: "/v1/spaces:setup" }, upstream: api, require: {} }
  - { name: v1-public, match: { path: "/v1/{*rest}" }, upstream: api, auth: none }
  - name: repos
    match: { path: "/orgs/{org}/repos" }
    upstream: api
    require: { scopes: repo, org: { param: org } }
  - name: profile
    match: { path: "/orgs/{org}/profile" }
    upstream: api
    require: { scopes: repo, org: { param: org, visibility: public } }
  - name: team
    match: { path: /team }
    upstream: api
    require: { scopes: repo, org: { header: X-Org, visibility: public } }"#,
        )
        .section(
            "organizations:\n  acme: { restrict_third_party_apps: true, approved_clients: [full] }",
        )
        .yaml()
}

struct World {
    auth: AuthServer,
    upstream: Upstream,
    gw: TestGateway,
}

fn world() -> World {
    let auth = AuthServer::start();
    let upstream = Upstream::start();
    let gw = TestGateway::start(&config(&config_template(), &auth, &upstream));
    World { auth, upstream, gw }
}

/// Sends `request` and reads until the gateway closes (or 3 s of silence): the status of the
/// first answer, the whole answer, and whether the connection was closed.
fn send(w: &World, request: &[u8]) -> (u16, String, bool) {
    let mut s = TcpStream::connect(w.gw.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = loop {
        match s.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => break false,
        }
    };
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text, closed)
}

fn body(answer: &str) -> Value {
    let json = answer.split("\r\n\r\n").nth(1).unwrap_or("");
    serde_json::from_str(json).unwrap_or(Value::Null)
}

/// One hostile request.
struct Case {
    class: &'static str,
    request: String,
    status: u16,
    /// Reaches the upstream (one request).
    forwarded: bool,
}

fn case(class: &'static str, request: &str, status: u16, forwarded: bool) -> Case {
    Case {
        class,
        request: request.to_string(),
        status,
        forwarded,
    }
}

/// A request head with `lines` between the request line and the end of the head.
fn req(line: &str, lines: &[&str]) -> String {
    let mut r = format!("{line}\r\n");
    for l in lines {
        r.push_str(l);
        r.push_str("\r\n");
    }
    r.push_str("\r\n");
    r
}

#[test]
fn every_hostile_class_is_refused_or_forwarded_unambiguously() {
    let w = world();
    let repo = w.auth.client_token("full", "repo", API);
    let bearer = format!("Authorization: Bearer {repo}");
    let dup_claims = {
        // The real token with its claims repeated once more: an ambiguous JWT.
        let parts: Vec<&str> = repo.split('.').collect();
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let claims = String::from_utf8(b64.decode(parts[1]).unwrap()).unwrap();
        let twice = claims.replacen('{', r#"{"sub":"root","#, 1);
        format!("{}.{}.{}", parts[0], b64.encode(twice), parts[2])
    };
    let long_target = format!("/pub?{}", "a".repeat(9000));
    let cases = vec![
        // Framing.
        case(
            "CL+TE",
            &req(
                "POST /pub HTTP/1.1",
                &[
                    "Host: a",
                    "Content-Length: 5",
                    "Transfer-Encoding: chunked",
                    "Connection: close",
                ],
            ),
            400,
            false,
        ),
        case(
            "TE+CL",
            &req(
                "POST /pub HTTP/1.1",
                &["Host: a", "Transfer-Encoding: chunked", "Content-Length: 5"],
            ),
            400,
            false,
        ),
        case(
            "TE list",
            &req(
                "POST /pub HTTP/1.1",
                &["Host: a", "Transfer-Encoding: gzip, chunked"],
            ),
            501,
            false,
        ),
        case(
            "TE twice",
            &req(
                "POST /pub HTTP/1.1",
                &[
                    "Host: a",
                    "Transfer-Encoding: chunked",
                    "Transfer-Encoding: chunked",
                ],
            ),
            400,
            false,
        ),
        case(
            "TE chunked twice",
            &req(
                "POST /pub HTTP/1.1",
                &["Host: a", "Transfer-Encoding: chunked, chunked"],
            ),
            400,
            false,
        ),
        case(
            "TE unknown",
            &req(
                "POST /pub HTTP/1.1",
                &["Host: a", "Transfer-Encoding: xchunked"],
            ),
            501,
            false,
        ),
        case(
            "TE quoted",
            &req(
                "POST /pub HTTP/1.1",
                &["Host: a", "Transfer-Encoding: \"chunked\""],
            ),
            400,
            false,
        ),
        case(
            "CL conflicting",
            &req(
                "POST /pub HTTP/1.1",
                &["Host: a", "Content-Length: 1", "Content-Length: 2"],
            ),
            400,
            false,
        ),
        case(
            "CL signed",
            &req("POST /pub HTTP/1.1", &["Host: a", "Content-Length: +1"]),
            400,
            false,
        ),
        case(
            "TE in HTTP/1.0",
            &req(
                "POST /pub HTTP/1.0",
                &["Host: a", "Transfer-Encoding: chunked"],
            ),
            400,
            false,
        ),
        // Host.
        case(
            "Host missing",
            &req("GET /pub HTTP/1.1", &["Connection: close"]),
            400,
            false,
        ),
        case(
            "Host twice",
            &req(
                "GET /pub HTTP/1.1",
                &["Host: a", "Host: a", "Connection: close"],
            ),
            400,
            false,
        ),
        case(
            "Host list",
            &req("GET /pub HTTP/1.1", &["Host: a, b", "Connection: close"]),
            400,
            false,
        ),
        case(
            "Host userinfo",
            &req("GET /pub HTTP/1.1", &["Host: u@a", "Connection: close"]),
            400,
            false,
        ),
        case(
            "Host bad port",
            &req("GET /pub HTTP/1.1", &["Host: a:x", "Connection: close"]),
            400,
            false,
        ),
        case(
            "Host vs absolute target",
            &req(
                "GET http://b/pub HTTP/1.1",
                &["Host: a", "Connection: close"],
            ),
            400,
            false,
        ),
        // Request targets.
        case(
            "raw #",
            &req("GET /pub#x HTTP/1.1", &["Host: a", "Connection: close"]),
            400,
            false,
        ),
        case(
            "%3F",
            &req("GET /pub%3Fx HTTP/1.1", &["Host: a", "Connection: close"]),
            400,
            false,
        ),
        case(
            "%23",
            &req("GET /pub%23x HTTP/1.1", &["Host: a", "Connection: close"]),
            400,
            false,
        ),
        // The encoded colon is the protected route, not the public catch-all after it.
        case(
            "%3A",
            &req(
                "GET /v1/spaces%3Asetup HTTP/1.1",
                &["Host: a", "Connection: close"],
            ),
            401,
            false,
        ),
        case(
            "request line over the limit",
            &req(&format!("GET {long_target} HTTP/1.1"), &["Host: a"]),
            414,
            false,
        ),
        // RFC 6750.
        case(
            "no scheme",
            &req(
                "GET /v1/spaces:setup HTTP/1.1",
                &["Host: a", "Authorization: abc", "Connection: close"],
            ),
            401,
            false,
        ),
        case(
            "query token while off",
            &req(
                &format!("GET /v1/spaces:setup?access_token={repo} HTTP/1.1"),
                &["Host: a", "Connection: close"],
            ),
            401,
            false,
        ),
        case(
            "token in the header and the query, the query way off",
            &req(
                &format!("GET /v1/spaces:setup?access_token={repo} HTTP/1.1"),
                &["Host: a", &bearer, "Connection: close"],
            ),
            400,
            false,
        ),
        case(
            "a tab between scheme and token",
            &req(
                "GET /v1/spaces:setup HTTP/1.1",
                &[
                    "Host: a",
                    &format!("Authorization: Bearer\t{repo}"),
                    "Connection: close",
                ],
            ),
            400,
            false,
        ),
        case(
            "`..` over an empty segment",
            &req(
                "GET /orgs/evil//../acme/repos HTTP/1.1",
                &["Host: a", &bearer, "Connection: close"],
            ),
            400,
            false,
        ),
        case(
            "JWT repeating a claim",
            &req(
                "GET /v1/spaces:setup HTTP/1.1",
                &[
                    "Host: a",
                    &format!("Authorization: Bearer {dup_claims}"),
                    "Connection: close",
                ],
            ),
            401,
            false,
        ),
        // Organizations.
        case(
            "org header twice",
            &req(
                "GET /team HTTP/1.1",
                &[
                    "Host: a",
                    &bearer,
                    "X-Org: acme",
                    "X-Org: other",
                    "Connection: close",
                ],
            ),
            400,
            false,
        ),
        case(
            "org spelled ACME.",
            &req(
                "GET /orgs/ACME./repos HTTP/1.1",
                &["Host: a", &bearer, "Connection: close"],
            ),
            403,
            false,
        ),
    ];
    for c in &cases {
        let before = w.upstream.count();
        let (status, answer, closed) = send(&w, c.request.as_bytes());
        assert_eq!(status, c.status, "{}: {answer}", c.class);
        assert_eq!(
            w.upstream.count() - before,
            usize::from(c.forwarded),
            "{}: forwarded?",
            c.class
        );
        assert!(
            body(&answer)["error"].is_string(),
            "{}: a JSON answer: {answer}",
            c.class
        );
        if c.status == 400 || c.status == 501 || c.status == 414 {
            assert!(closed, "{}: the connection is closed", c.class);
        }
    }
    println!("{} hostile cases", cases.len());
}

#[test]
fn headers_other_layers_trust_never_reach_the_upstream() {
    let w = world();
    let (status, _, _) = send(
        &w,
        req(
            "GET /pub?access_token=abc&x=1 HTTP/1.1",
            &[
                "Host: a",
                "X_Auth_Subject: root",
                "X_Forwarded_For: 1.2.3.4",
                "Transfer_Encoding: chunked",
                "X-Custom_Name: 1",
                "True-Client-IP: 1.2.3.4",
                "CF-Connecting-IP: 1.2.3.4",
                "X-Original-URI: /admin",
                "X-Middleware-Subrequest: middleware",
                "X-Envoy-Internal: true",
                "X-Auth-Org: evil",
                "Authorization: Bearer forged.jwt.value",
                "Connection: close",
            ],
        )
        .as_bytes(),
    );
    assert_eq!(status, 200);
    let seen = w.upstream.seen.lock().unwrap().last().unwrap().clone();
    let headers = seen["headers"].as_object().unwrap();
    for name in headers.keys() {
        assert!(!name.contains('_'), "{name} reached the upstream");
    }
    for name in [
        "true-client-ip",
        "cf-connecting-ip",
        "x-original-uri",
        "x-middleware-subrequest",
        "x-envoy-internal",
        "x-auth-org",
        "x-auth-subject",
        // A public route does not check credentials, so it does not pass them on.
        "authorization",
    ] {
        assert!(headers.get(name).is_none(), "{name} reached the upstream");
    }
    assert_eq!(seen["query"], "x=1", "the query credential is removed");
    assert_eq!(headers["x-forwarded-for"][0], "127.0.0.1");
}

#[test]
fn x_auth_org_is_set_only_for_a_checked_organization() {
    let w = world();
    let repo = w.auth.client_token("full", "repo", API);
    let at = |path: &str| {
        let r = get(&format!("{}{path}", w.gw.url), Some(&repo));
        assert_eq!(r.status(), 200, "{path}");
        let seen: Value = r.json().unwrap();
        seen["headers"]["x-auth-org"].clone()
    };
    assert_eq!(at("/orgs/acme/profile"), Value::Null, "public: not checked");
}

/// The CL.TE / TE.CL permutations of the classic smuggling scanners (smuggler.py's
/// mutation list, James Kettle's header obfuscations): each sent with a body that a
/// front-end reading one length and a back-end reading the other would split into two
/// requests. Whatever the gateway does, the upstream must never see a second request.
#[test]
fn no_smuggling_mutation_gets_an_ambiguous_request_forwarded() {
    let w = world();
    let te = [
        "Transfer-Encoding: chunked",
        "Transfer-Encoding : chunked",
        "Transfer-Encoding:chunked",
        "Transfer-Encoding:\tchunked",
        "Transfer-Encoding: \tchunked",
        "Transfer-Encoding: chunked ",
        "Transfer-Encoding: xchunked",
        "Transfer-Encoding: chunked-false",
        "Transfer-Encoding: chunk",
        "Transfer-Encoding: Chunked",
        "Transfer-Encoding: CHUNKED",
        "Transfer-encoding: chunked",
        "TRANSFER-ENCODING: chunked",
        "Transfer-Encoding: \"chunked\"",
        "Transfer-Encoding: 'chunked'",
        "Transfer-Encoding: chunked, identity",
        "Transfer-Encoding: identity, chunked",
        "Transfer-Encoding: gzip, chunked",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: x",
        "Transfer-Encoding: x\r\nTransfer-Encoding: chunked",
        "Transfer-Encoding: chunked\r\nTransfer-encoding: identity",
        "Transfer_Encoding: chunked",
        "X-Transfer-Encoding: chunked",
        "Transfer-Encoding\r\n: chunked",
        " Transfer-Encoding: chunked",
        "\tTransfer-Encoding: chunked",
        "X: x\r\n Transfer-Encoding: chunked",
        "X: x\nTransfer-Encoding: chunked",
        "Transfer-Encoding: chunked\r\n ",
        "Transfer-Encoding: \u{b}chunked",
        "Transfer-Encoding: \u{c}chunked",
        "Transfer-Encoding:\u{b}chunked",
        "Transfer-Encoding: chunked;",
        "Transfer-Encoding: chunked;q=0.5",
        "Transfer-Encoding: ,chunked",
        "Transfer-Encoding: chunked,",
        "Content-Encoding: chunked",
    ];
    // A body that is a complete chunked message followed by a request, and whose length as
    // Content-Length covers only the chunked part: the two readings differ.
    // A protected route without a credential: the gateway refuses it when it sees it, so
    // it reaches the upstream only if it was hidden from the gateway.
    let smuggled = "GET /v1/spaces:setup HTTP/1.1\r\nHost: a\r\n\r\n";
    let chunked = "0\r\n\r\n";
    let mut forwarded = 0;
    let mut refused = 0;
    for (i, mutation) in te.iter().enumerate() {
        for cl_first in [true, false] {
            let length = format!("Content-Length: {}", chunked.len());
            let fields = if cl_first {
                format!("Host: a\r\n{length}\r\n{mutation}")
            } else {
                format!("Host: a\r\n{mutation}\r\n{length}")
            };
            let request = format!("POST /pub HTTP/1.1\r\n{fields}\r\n\r\n{chunked}{smuggled}");
            let before = w.upstream.count();
            let (status, answer, _) = send(&w, request.as_bytes());
            let after = w.upstream.count();
            let seen = w.upstream.seen.lock().unwrap().clone();
            assert!(
                seen[before..]
                    .iter()
                    .all(|r| r["path"] != "/v1/spaces:setup"),
                "mutation {i} {mutation:?}: a smuggled request reached the upstream: {answer}"
            );
            assert!(after - before <= 1, "mutation {i} {mutation:?}");
            if after > before {
                forwarded += 1;
                // Forwarded only when unambiguous: framed by Content-Length alone, and the
                // client's framing headers not copied.
                let r = &seen[before];
                assert!(
                    r["headers"].get("transfer-encoding").is_none(),
                    "{mutation:?}"
                );
            } else {
                refused += 1;
                assert!(
                    (400..600).contains(&status),
                    "mutation {i} {mutation:?}: {answer}"
                );
            }
        }
    }
    println!(
        "{} mutations: {refused} refused, {forwarded} forwarded unambiguously",
        te.len() * 2
    );
}

/// Sends one HTTP/2 request (prior knowledge, cleartext) with `headers` besides the
/// pseudo-headers of `uri`; the status, or `None` when the stream was reset.
fn h2_status(w: &World, uri: &str, headers: &[(&str, &str)]) -> Option<u16> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(w.gw.addr).await.unwrap();
        let (mut client, conn) = h2::client::handshake(tcp).await.unwrap();
        tokio::spawn(conn);
        let mut req = http::Request::builder().method("GET").uri(uri);
        for (k, v) in headers {
            req = req.header(*k, http::HeaderValue::from_bytes(v.as_bytes()).unwrap());
        }
        let (resp, _) = client.send_request(req.body(()).unwrap(), true).ok()?;
        resp.await.ok().map(|r| r.status().as_u16())
    })
}

#[test]
fn http2_requests_meet_the_same_rules_as_http11() {
    let w = world();
    let url = |path: &str| format!("http://{}{path}", w.gw.addr);
    assert_eq!(h2_status(&w, &url("/pub"), &[]), Some(200));
    let before = w.upstream.count();
    for (what, headers) in [
        ("leading space", vec![("x-a", " v")]),
        ("trailing space", vec![("x-a", "v ")]),
        ("trailing tab", vec![("x-a", "v\t")]),
        (
            "host disagrees with :authority",
            vec![("host", "other.test")],
        ),
    ] {
        assert_eq!(h2_status(&w, &url("/pub"), &headers), Some(400), "{what}");
    }
    assert_eq!(h2_status(&w, &url("/pub%3Fx"), &[]), Some(400));
    assert_eq!(h2_status(&w, &url("/v1/spaces%3Asetup"), &[]), Some(401));
    assert_eq!(
        w.upstream.count(),
        before,
        "nothing malformed was forwarded"
    );
}

/// An HTTP/2 HEADERS frame (stream 1, END_STREAM | END_HEADERS) whose block writes each field
/// as an HPACK literal without indexing, names and values raw: what no client library sends.
fn raw_h2_request(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut block = Vec::new();
    for (name, value) in fields {
        assert!(name.len() < 127 && value.len() < 127);
        block.push(0x00);
        block.push(name.len() as u8);
        block.extend_from_slice(name.as_bytes());
        block.push(value.len() as u8);
        block.extend_from_slice(value.as_bytes());
    }
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    out.extend_from_slice(&[0, 0, 0, 0x4, 0, 0, 0, 0, 0]); // empty SETTINGS
    let len = block.len() as u32;
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.extend_from_slice(&[0x1, 0x5, 0, 0, 0, 1]);
    out.extend_from_slice(&block);
    out
}

#[test]
fn an_http2_path_with_a_fragment_is_decided_and_forwarded_without_it() {
    // HTTP/2 (hyper's h2) drops what follows `#` in `:path` before the gateway sees the
    // request: nothing after it is matched or forwarded, so `/pub#/../orgs/acme/repos` is the
    // public `/pub` at the upstream, never the protected route.
    let w = world();
    let mut s = TcpStream::connect(w.gw.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    s.write_all(&raw_h2_request(&[
        (":method", "GET"),
        (":scheme", "http"),
        (":path", "/pub#/../orgs/acme/repos"),
        (":authority", "a"),
    ]))
    .unwrap();
    eventually("the request forwarded", || w.upstream.count() == 1);
    let seen = w.upstream.seen.lock().unwrap()[0].clone();
    assert_eq!(seen["path"], "/pub");
    assert!(seen["headers"].get("x-auth-subject").is_none());
}
