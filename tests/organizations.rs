//! Organization access restrictions end to end, with real tokens whose `orgs` / `sso_orgs`
//! claims come from oidc-provider (alice: acme, widgets; bob: widgets; carol and dave: secure,
//! dave with an SSO session).

mod support;

use serde_json::Value;
use support::*;

/// A restricting, an SSO-requiring and an open (default) organization; a private and a
/// public resource of each.
fn config_template() -> String {
    Template::corp(&[API])
        .section("organizations:\n  acme: { restrict_third_party_apps: true, approved_clients: [full] }\n  secure: { require_sso: true }\n  default: { restrict_third_party_apps: false }")
        .routes(r#"  - name: private-repos
    match: { methods: [GET], path: "/orgs/{org}/repos" }
    upstream: api
    require: { scopes: repo, org: { param: org } }
  - name: public-profile
    match: { methods: [GET], path: "/orgs/{org}/profile" }
    upstream: api
    require: { scopes: repo, org: { param: org, visibility: public } }"#)
        .yaml()
}

fn refused(r: reqwest::blocking::Response) -> (u16, String, String) {
    let status = r.status().as_u16();
    let body: Value = r.json().unwrap();
    (
        status,
        body["error"].as_str().unwrap_or("").to_string(),
        body["error_description"].as_str().unwrap_or("").to_string(),
    )
}

#[test]
fn organization_rules_allow_and_refuse_as_github_does() {
    let auth = AuthServer::start();
    let upstream = Upstream::start();
    let gw = TestGateway::start(&config(&config_template(), &auth, &upstream));
    let at = |path: &str, token: &str| get(&format!("{}{path}", gw.url), Some(token));

    // A member through an approved client reaches the restricting organization's private side.
    let alice_full = auth.user_token("alice", "full", "repo", API);
    let r = at("/orgs/acme/repos", &alice_full);
    assert_eq!(r.status(), 200);
    let seen: Value = r.json().unwrap();
    assert_eq!(seen["headers"]["x-auth-org"][0], "acme");

    // The same member through an unapproved app: private refused, public allowed.
    let alice_reader = auth.user_token("alice", "reader", "repo", API);
    let (status, error, description) = refused(at("/orgs/acme/repos", &alice_reader));
    assert_eq!((status, error.as_str()), (403, "organization_restricted"));
    assert!(
        description.contains("acme") && description.contains("organization admin must approve"),
        "{description}"
    );
    assert_eq!(at("/orgs/acme/profile", &alice_reader).status(), 200);

    // Any app may act for a member of a non-restricting organization.
    assert_eq!(at("/orgs/widgets/repos", &alice_reader).status(), 200);

    // A non-member is refused the private side, not the public one.
    let bob = auth.user_token("bob", "full", "repo", API);
    let (status, error, description) = refused(at("/orgs/acme/repos", &bob));
    assert_eq!((status, error.as_str()), (403, "not_a_member"));
    assert!(description.contains("acme"));
    assert_eq!(at("/orgs/acme/profile", &bob).status(), 200);

    // SSO: a member without a session for the organization is refused; with one, allowed.
    let carol = auth.user_token("carol", "full", "repo", API);
    let (status, error, _) = refused(at("/orgs/secure/repos", &carol));
    assert_eq!((status, error.as_str()), (403, "sso_required"));
    let dave = auth.user_token("dave", "full", "repo", API);
    assert_eq!(at("/orgs/secure/repos", &dave).status(), 200);

    // Scopes are still checked first.
    let no_repo = auth.user_token("alice", "full", "read:org", API);
    assert_eq!(at("/orgs/acme/repos", &no_repo).status(), 403);
    assert_eq!(upstream.count(), 5);
}

/// [`config_template`] with its policies from a source (`source` is `file: …` or `url: …`) besides
/// one inline entry, re-read every second.
fn sourced(auth: &AuthServer, upstream: &Upstream, source: &str) -> String {
    let inline = "organizations:\n  acme: { restrict_third_party_apps: true, approved_clients: [full] }\n  secure: { require_sso: true }\n  default: { restrict_third_party_apps: false }\n";
    assert!(config_template().contains(inline));
    let with_source = format!(
        "organization_policy:\n  source: {{ {source}, refresh: 1s }}\norganizations:\n  widgets: {{ restrict_third_party_apps: true, approved_clients: [full] }}\n"
    );
    config(
        &config_template().replace(inline, &with_source),
        auth,
        upstream,
    )
}

#[test]
fn an_approval_written_to_the_policy_file_reaches_the_gateway_without_a_restart() {
    let auth = AuthServer::start();
    let upstream = Upstream::start();
    let policies =
        TempPath::with("acme: { restrict_third_party_apps: true, approved_clients: [full] }\n");
    let yaml = sourced(
        &auth,
        &upstream,
        &format!("file: \"{}\"", policies.0.display()),
    );
    let gw = TestGateway::start(&yaml);
    let status = |path: &str, token: &str| get(&format!("{}{path}", gw.url), Some(token)).status();
    let reader = auth.user_token("alice", "reader", "repo", API);
    let full = auth.user_token("alice", "full", "repo", API);

    // The file's entry for acme, the inline one for widgets.
    assert_eq!(status("/orgs/acme/repos", &full), 200);
    assert_eq!(status("/orgs/acme/repos", &reader), 403);
    assert_eq!(status("/orgs/widgets/repos", &reader), 403);

    // An admin approves `reader`.
    std::fs::write(
        &policies.0,
        "acme: { restrict_third_party_apps: true, approved_clients: [full, reader] }\n",
    )
    .unwrap();
    eventually("the approval", || {
        status("/orgs/acme/repos", &reader) == 200
    });

    // A broken document changes nothing and is counted.
    std::fs::write(&policies.0, "acme: { restrict_third_party_apps: maybe }\n").unwrap();
    eventually("the failed read", || {
        gw.metrics()
            .contains("scopegate_organization_source_reloads_total{result=\"error\"}")
    });
    assert_eq!(status("/orgs/acme/repos", &reader), 200);
    assert_eq!(status("/orgs/widgets/repos", &reader), 403);
}

#[test]
fn organization_policies_can_come_from_a_url_as_json() {
    let auth = AuthServer::start();
    let upstream = Upstream::start();
    let source = JsonServer::start(serde_json::json!({
        "acme": {"restrict_third_party_apps": true, "approved_clients": ["reader"]},
        "default": {"require_sso": true}
    }));
    let yaml = sourced(&auth, &upstream, &format!("url: \"{}\"", source.url));
    let gw = TestGateway::start(&yaml);
    let status = |path: &str, token: &str| get(&format!("{}{path}", gw.url), Some(token)).status();
    let reader = auth.user_token("alice", "reader", "repo", API);
    let full = auth.user_token("alice", "full", "repo", API);
    assert_eq!(status("/orgs/acme/repos", &reader), 200);
    let r = get(&format!("{}/orgs/acme/repos", gw.url), Some(&full));
    assert_eq!(refused(r).1, "organization_restricted");
    // The document's `default` now applies to organizations it does not list.
    let r = get(&format!("{}/orgs/other/repos", gw.url), Some(&full));
    assert_eq!(refused(r).1, "not_a_member");
    let carol = auth.user_token("carol", "full", "repo", API);
    let r = get(&format!("{}/orgs/secure/repos", gw.url), Some(&carol));
    assert_eq!(refused(r).1, "sso_required");
}

#[test]
fn until_a_url_source_was_read_private_organization_resources_fail_closed() {
    let auth = AuthServer::start();
    let upstream = Upstream::start();
    // A port nothing listens on: the policy source cannot be read.
    let unreachable = format!("http://127.0.0.1:{}/orgs.json", free_port());
    let yaml = sourced(&auth, &upstream, &format!("url: \"{unreachable}\""));
    let gw = TestGateway::start_unready(&yaml);
    let readyz = || {
        reqwest::blocking::get(format!("{}/readyz", gw.admin))
            .ok()
            .map(|r| (r.status().as_u16(), r.text().unwrap_or_default()))
    };
    eventually("keys fetched, policies still missing", || {
        readyz().is_some_and(|(s, body)| s == 503 && body.contains("organization policies"))
    });
    let full = auth.user_token("alice", "full", "repo", API);
    let r = get(&format!("{}/orgs/acme/repos", gw.url), Some(&full));
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    // Public resources do not depend on the policies.
    assert_eq!(
        get(&format!("{}/orgs/acme/profile", gw.url), Some(&full)).status(),
        200
    );
    assert!(
        gw.metrics()
            .contains("scopegate_organization_source_reloads_total{result=\"error\"}")
    );
}

#[test]
fn an_unchanged_url_document_is_not_downloaded_again_and_a_new_one_is() {
    use std::sync::{Arc, Mutex};
    let auth = AuthServer::start();
    let upstream = Upstream::start();
    // (etag, document, full answers, 304 answers)
    type Source = (String, String, u32, u32);
    let state: Arc<Mutex<Source>> = Arc::new(Mutex::new((
        "\"v1\"".into(),
        r#"{"acme": {"restrict_third_party_apps": true, "approved_clients": ["full"]}}"#.into(),
        0,
        0,
    )));
    let served = state.clone();
    let (addr, _runtime) = serve(move |req| {
        let state = served.clone();
        async move {
            let mut s = state.lock().unwrap();
            let tag = s.0.clone();
            if req
                .headers()
                .get("if-none-match")
                .is_some_and(|v| v == tag.as_str())
            {
                s.3 += 1;
                let mut r = http::Response::new(http_body_util::Full::new(bytes::Bytes::new()));
                *r.status_mut() = http::StatusCode::NOT_MODIFIED;
                return r;
            }
            s.2 += 1;
            let mut r =
                http::Response::new(http_body_util::Full::new(bytes::Bytes::from(s.1.clone())));
            r.headers_mut().insert("etag", tag.parse().unwrap());
            r
        }
    });
    let yaml = sourced(
        &auth,
        &upstream,
        &format!("url: \"http://{addr}/orgs.json\""),
    );
    let gw = TestGateway::start(&yaml);
    let status = |token: &str| get(&format!("{}/orgs/acme/repos", gw.url), Some(token)).status();
    let reader = auth.user_token("alice", "reader", "repo", API);
    assert_eq!(status(&reader), 403);
    eventually("a 304", || state.lock().unwrap().3 >= 2);
    assert_eq!(
        state.lock().unwrap().2,
        1,
        "the same document was downloaded twice"
    );
    assert_eq!(status(&reader), 403);

    *state.lock().unwrap() = (
        "\"v2\"".into(),
        r#"{"acme": {"restrict_third_party_apps": true, "approved_clients": ["full", "reader"]}}"#
            .into(),
        1,
        0,
    );
    eventually("the new document", || status(&reader) == 200);
    assert!(
        gw.metrics()
            .contains("scopegate_organization_source_reloads_total{result=\"unchanged\"}")
    );
}
