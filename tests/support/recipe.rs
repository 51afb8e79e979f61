//! A recipe's cases as a table: each request and the answer it must get, played against a
//! gateway started from the recipe file, checking that exactly the allowed ones reached the
//! upstream.

use super::{TestGateway, Upstream};
use reqwest::blocking::Response;
use serde_json::{Value, json};

/// One request of a recipe and the answer it must get.
pub struct Case {
    pub method: &'static str,
    pub path: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub expect: Expect,
}

pub enum Expect {
    /// Forwarded; the upstream saw these headers with these values.
    Allowed(Vec<(&'static str, &'static str)>),
    /// Refused with this status and JSON `error` (also in `WWW-Authenticate` for RFC 6750
    /// errors); the description contains `says`, and the answer has `headers`.
    Refused {
        status: u16,
        error: &'static str,
        says: &'static str,
        headers: Vec<(&'static str, &'static str)>,
    },
}

pub fn case(
    method: &'static str,
    path: &'static str,
    headers: &[(&'static str, &str)],
    expect: Expect,
) -> Case {
    let headers = headers.iter().map(|(k, v)| (*k, v.to_string())).collect();
    Case {
        method,
        path,
        headers,
        expect,
    }
}

pub fn bearer(token: &str) -> (&'static str, String) {
    ("authorization", format!("Bearer {token}"))
}

/// `method path` with a bearer token, expected to be allowed with the upstream seeing `seen`.
pub fn allow(
    method: &'static str,
    path: &'static str,
    token: &str,
    seen: &[(&'static str, &'static str)],
) -> Case {
    Case {
        method,
        path,
        headers: vec![bearer(token)],
        expect: Expect::Allowed(seen.to_vec()),
    }
}

/// `method path` with a bearer token, expected to be refused.
pub fn refuse(
    method: &'static str,
    path: &'static str,
    token: &str,
    status: u16,
    error: &'static str,
    says: &'static str,
) -> Case {
    Case {
        method,
        path,
        headers: vec![bearer(token)],
        expect: Expect::Refused {
            status,
            error,
            says,
            headers: vec![],
        },
    }
}

impl Case {
    /// The refusal must also carry these headers.
    pub fn with_headers(mut self, expected: &[(&'static str, &'static str)]) -> Case {
        if let Expect::Refused { headers, .. } = &mut self.expect {
            headers.extend_from_slice(expected);
        }
        self
    }
}

fn send(gw: &TestGateway, c: &Case) -> Response {
    let method: reqwest::Method = c.method.parse().unwrap();
    let mut req = reqwest::blocking::Client::new().request(method, format!("{}{}", gw.url, c.path));
    for (k, v) in &c.headers {
        req = req.header(*k, v);
    }
    req.send().unwrap()
}

/// Plays every case against `gw` and checks that exactly the allowed ones reached the
/// upstream; returns what the upstream received for each allowed case, in order.
pub fn play(gw: &TestGateway, upstream: &Upstream, cases: &[Case]) -> Vec<Value> {
    let before = upstream.count();
    let mut seen = Vec::new();
    for c in cases {
        let what = format!("{} {}", c.method, c.path);
        let r = send(gw, c);
        match &c.expect {
            Expect::Allowed(headers) => {
                assert_eq!(r.status(), 200, "{what}: {:?}", r.text());
                let got: Value = r.json().unwrap();
                for (name, value) in headers {
                    assert_eq!(got["headers"][*name], json!([value]), "{what}: {name}");
                }
                seen.push(got);
            }
            Expect::Refused {
                status,
                error,
                says,
                headers,
            } => {
                assert_eq!(r.status(), *status, "{what}");
                let h = r.headers().clone();
                for (name, value) in headers {
                    assert_eq!(h[*name], *value, "{what}: {name}");
                }
                let body: Value = r.json().unwrap();
                assert_eq!(body["error"], *error, "{what}: {body}");
                if matches!(
                    *error,
                    "invalid_token" | "insufficient_scope" | "invalid_request"
                ) {
                    let challenge = h["www-authenticate"].to_str().unwrap();
                    assert!(
                        challenge.starts_with("Bearer realm=\"scopegate\"")
                            && challenge.contains(&format!("error=\"{error}\"")),
                        "{what}: {challenge}"
                    );
                }
                if *error == "claims_not_satisfied" {
                    // More scopes would not help: no challenge sends the client for them.
                    assert!(h.get("www-authenticate").is_none(), "{what}");
                }
                let description = body["error_description"].as_str().unwrap_or("");
                assert!(description.contains(says), "{what}: {description}");
            }
        }
    }
    let allowed = cases
        .iter()
        .filter(|c| matches!(c.expect, Expect::Allowed(_)))
        .count();
    assert_eq!(
        upstream.count() - before,
        allowed,
        "only the allowed cases reach the upstream"
    );
    seen
}

/// The recipes' `UPSTREAM_URL`: the test upstream.
pub fn upstream_env(upstream: &Upstream) -> (&'static str, String) {
    ("UPSTREAM_URL", format!("http://{}", upstream.addr))
}
