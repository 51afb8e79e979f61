//! CORS for browser apps: preflights answered by the gateway without a token (or passed to
//! the upstream where a route says so), the CORS headers on every answer — refusals included —
//! checked over HTTP, and then by a real browser: Debian's Chromium, driven through
//! chromedriver's WebDriver API, runs `fetch()` from a page of another origin and the test
//! reads what the page saw.

mod support;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;
use serde_json::{Value, json};
use std::process::{Child, Stdio};
use support::*;

const TEMPLATE: &str = r#"
server: { listen: "{listen}" }
admin: { listen: "{admin}" }
issuers:
  - { id: corp, issuer: "{issuer}", audiences: ["https://api.scopegate.test"], algorithms: [RS256] }
upstreams: { api: { url: "{upstream}" } }
cors:
  allow_origins: ["PAGE", "https://*.tenants.example"]
  max_age: 10m
routes:
  - name: repos
    match: { methods: [GET, DELETE], path: "/orgs/{org}/repos" }
    upstream: api
    require: { scopes: repo }
  - name: elsewhere
    match: { path: /elsewhere }
    upstream: api
    require: {}
    cors: { allow_origins: ["https://elsewhere.example"] }
  - name: upstream-preflights
    match: { methods: [GET, PUT], path: /legacy }
    upstream: api
    require: {}
    cors: { allow_origins: ["PAGE"], preflights: forward }
"#;

fn gateway(auth: &AuthServer, upstream: &Upstream, page: &str) -> TestGateway {
    TestGateway::start(&config(TEMPLATE, auth, upstream).replace("PAGE", page))
}

fn send(method: &str, url: &str, headers: &[(&str, &str)]) -> reqwest::blocking::Response {
    let mut req = reqwest::blocking::Client::new().request(method.parse().unwrap(), url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().unwrap()
}

#[test]
fn preflights_are_answered_without_a_token_and_every_answer_carries_the_cors_headers() {
    let auth = AuthServer::start();
    let upstream = Upstream::start();
    let page = "https://app.example";
    let gw = gateway(&auth, &upstream, page);
    let token = auth.client_token("full", "repo", API);
    let url = format!("{}/orgs/acme/repos", gw.url);

    // A preflight: answered by the gateway, nothing forwarded.
    let r = send(
        "OPTIONS",
        &url,
        &[
            ("origin", page),
            ("access-control-request-method", "DELETE"),
            ("access-control-request-headers", "authorization"),
        ],
    );
    assert_eq!(r.status(), 204);
    assert_eq!(header(&r, "access-control-allow-origin"), page);
    assert!(header(&r, "access-control-allow-methods").contains("DELETE"));
    assert_eq!(header(&r, "access-control-allow-headers"), "authorization");
    assert_eq!(header(&r, "access-control-max-age"), "600");
    assert_eq!(header(&r, "vary"), "Origin");
    assert_eq!(upstream.count(), 0);
    // Another origin, or a header not allowed: refused, and no CORS header lets it through.
    for (origin, asked_headers) in [("https://evil.example", "authorization"), (page, "x-admin")] {
        let r = send(
            "OPTIONS",
            &url,
            &[
                ("origin", origin),
                ("access-control-request-method", "GET"),
                ("access-control-request-headers", asked_headers),
            ],
        );
        assert_eq!(r.status(), 403, "{origin} {asked_headers}");
        assert!(r.headers().get("access-control-allow-origin").is_none());
        assert_eq!(r.json::<Value>().unwrap()["error"], "cors_refused");
    }
    // A wildcard origin's subdomain.
    let r = send(
        "OPTIONS",
        &url,
        &[
            ("origin", "https://acme.tenants.example"),
            ("access-control-request-method", "GET"),
        ],
    );
    assert_eq!(r.status(), 204);

    // The real call: allowed, readable by the page; a 401 too, with its challenge exposed.
    let auth_header = format!("Bearer {token}");
    let r = send(
        "GET",
        &url,
        &[("origin", page), ("authorization", &auth_header)],
    );
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "access-control-allow-origin"), page);
    assert!(header(&r, "access-control-expose-headers").contains("www-authenticate"));
    let r = send("GET", &url, &[("origin", page)]);
    assert_eq!(r.status(), 401);
    assert_eq!(header(&r, "access-control-allow-origin"), page);
    assert!(header(&r, "www-authenticate").starts_with("Bearer"));
    // Not an allowed origin: the answer says nothing a browser would let the page read.
    let r = send(
        "GET",
        &url,
        &[
            ("origin", "https://evil.example"),
            ("authorization", &auth_header),
        ],
    );
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("access-control-allow-origin").is_none());
    assert_eq!(header(&r, "vary"), "Origin");
    // No Origin (not a browser's cross-origin call): no CORS header at all.
    let r = send("GET", &url, &[("authorization", &auth_header)]);
    assert!(r.headers().get("vary").is_none());

    // A route whose preflights the upstream answers: forwarded without identity.
    let before = upstream.count();
    let r = send(
        "OPTIONS",
        &format!("{}/legacy", gw.url),
        &[("origin", page), ("access-control-request-method", "PUT")],
    );
    assert_eq!(r.status(), 200, "the echo upstream answered it");
    assert_eq!(upstream.count(), before + 1);
    let seen = r.json::<Value>().unwrap();
    assert_eq!(seen["method"], "OPTIONS");
    assert!(seen["headers"]["x-auth-subject"].is_null());
}

/// A chromedriver on a free port, with one browser session; both end when dropped.
struct Browser {
    driver: Child,
    url: String,
    session: String,
}

impl Browser {
    fn start() -> Browser {
        let port = free_port();
        let driver = support::tools::command("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::blocking::Client::new();
        eventually("chromedriver listens", || {
            http.get(format!("{url}/status")).send().is_ok()
        });
        let chromium = support::tools::need("chromium");
        let created: Value = http
            .post(format!("{url}/session"))
            .json(
                &json!({"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage"]}}}}),
            )
            .send()
            .unwrap()
            .json()
            .unwrap();
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {created}"))
            .to_string();
        Browser {
            driver,
            url,
            session,
        }
    }

    fn call(&self, what: &str, body: Value) -> Value {
        let r: Value = reqwest::blocking::Client::new()
            .post(format!("{}/session/{}/{what}", self.url, self.session))
            .json(&body)
            .send()
            .unwrap()
            .json()
            .unwrap();
        r["value"].clone()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = reqwest::blocking::Client::new()
            .delete(format!("{}/session/{}", self.url, self.session))
            .send();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// What the page runs: `fetch()` the API with the token, without it, and on a route that
/// allows another origin only; what it could read of each.
const PAGE_SCRIPT: &str = r#"
const [api, token, elsewhere] = arguments;
const done = arguments[arguments.length - 1];
(async () => {
  const out = {};
  let r = await fetch(api, { headers: { Authorization: 'Bearer ' + token } });
  out.allowed = { status: r.status, body: JSON.parse(await r.text()) };
  r = await fetch(api);
  out.refused = { status: r.status, challenge: r.headers.get('www-authenticate'),
                  error: (await r.json()).error };
  try {
    await fetch(elsewhere, { headers: { Authorization: 'Bearer ' + token } });
    out.elsewhere = 'read';
  } catch (e) {
    out.elsewhere = 'blocked: ' + e.name;
  }
  done(out);
})().catch((e) => done({ failed: String(e) }));
"#;

#[test]
fn a_page_of_another_origin_reads_the_api_and_its_401_in_a_real_browser() {
    let auth = AuthServer::start();
    let upstream = Upstream::start();
    // The page's origin: another port on loopback is another origin.
    let (page_addr, _page_runtime) = serve(|_req| async {
        let mut resp = Response::new(Full::new(Bytes::from_static(
            b"<!doctype html><title>app</title><p>app",
        )));
        resp.headers_mut()
            .insert("content-type", "text/html".parse().unwrap());
        resp
    });
    let page = format!("http://{page_addr}");
    let gw = gateway(&auth, &upstream, &page);
    let token = auth.client_token("full", "repo", API);
    let browser = Browser::start();
    browser.call("url", json!({"url": format!("{page}/")}));
    let seen = browser.call(
        "execute/async",
        json!({"script": PAGE_SCRIPT, "args": [
            format!("{}/orgs/acme/repos", gw.url), token, format!("{}/elsewhere", gw.url)]}),
    );
    assert!(seen.get("failed").is_none(), "{seen}");
    // The call with the token: the browser's preflight passed, the upstream answered.
    assert_eq!(seen["allowed"]["status"], 200, "{seen}");
    assert_eq!(
        seen["allowed"]["body"]["headers"]["x-auth-subject"],
        json!(["full"])
    );
    // Without a token: a 401 the page can read, challenge included.
    assert_eq!(seen["refused"]["status"], 401, "{seen}");
    assert_eq!(seen["refused"]["error"], "unauthorized");
    assert!(
        seen["refused"]["challenge"]
            .as_str()
            .is_some_and(|c| c.starts_with("Bearer realm=")),
        "{seen}"
    );
    // A route that allows another origin only: the browser gives the page nothing.
    assert_eq!(seen["elsewhere"], "blocked: TypeError", "{seen}");
}
