//! The shipped recipes (`config/examples/`) run as they are, with the environment pointing
//! them at real oidc-provider instances and a real upstream: every rule of each is allowed
//! and refused at least once, with the exact status, `error` and headers.
//!
//! Test provider users: alice (orgs acme, widgets), bob (widgets), carol (secure), dave
//! (secure, with an SSO session). Clients: see tests/authz-server/server.mjs.

mod support;

use reqwest::blocking::Response;
use scopegate::dev::DevIssuer;
use serde_json::{Value, json};
use support::*;

const GITHUB_API: &str = "https://api.github.example";
const CHAT_API: &str = "https://chat.googleapis.example";
const ZOHO_API: &str = "https://www.zohoapis.example";
const US1_API: &str = "https://api.us1.example";
const EU1_API: &str = "https://api.eu1.example";

fn send(gw: &TestGateway, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
    let method: reqwest::Method = method.parse().unwrap();
    let mut req = reqwest::blocking::Client::new().request(method, format!("{}{path}", gw.url));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().unwrap()
}

fn with_bearer(gw: &TestGateway, method: &str, path: &str, token: &str) -> Response {
    let value = format!("Bearer {token}");
    send(gw, method, path, &[("authorization", &value)])
}

/// Asserts a 200 from the upstream and returns what the upstream received.
fn allowed(r: Response) -> Value {
    assert_eq!(r.status(), 200, "{:?}", r.text());
    r.json().unwrap()
}

/// Asserts a refusal: status, JSON `error`, and for RFC 6750 errors the same `error` in
/// `WWW-Authenticate`. Returns the headers and the description.
fn refused(r: Response, status: u16, error: &str) -> (http::HeaderMap, String) {
    assert_eq!(r.status(), status);
    let headers = r.headers().clone();
    let body: Value = r.json().unwrap();
    assert_eq!(body["error"], error, "{body}");
    if matches!(
        error,
        "invalid_token" | "insufficient_scope" | "invalid_request"
    ) {
        let challenge = headers["www-authenticate"].to_str().unwrap();
        assert!(
            challenge.starts_with("Bearer realm=\"scopegate\"")
                && challenge.contains(&format!("error=\"{error}\"")),
            "{challenge}"
        );
    }
    let description = body["error_description"].as_str().unwrap_or("").to_string();
    (headers, description)
}

fn upstream_env(upstream: &Upstream) -> (&'static str, String) {
    ("UPSTREAM_URL", format!("http://{}", upstream.addr))
}

#[test]
fn github_orgs_recipe_enforces_membership_app_restrictions_sso_and_scope_hierarchy() {
    let auth = AuthServer::start();
    let upstream = Upstream::start();
    let gw = TestGateway::start_file(
        "config/examples/github-orgs.yaml",
        &[("GITHUB_ISSUER", auth.url.clone()), upstream_env(&upstream)],
    );
    let user = |sub, client, scope| auth.user_token(sub, client, scope, GITHUB_API);
    let alice_approved = user("alice", "ci-dashboard", "repo");
    let alice_third_party = user("alice", "random-app", "repo");

    // Allowed.
    assert_eq!(send(&gw, "GET", "/meta", &[]).status(), 200);
    let seen = allowed(with_bearer(&gw, "GET", "/orgs/acme/repos", &alice_approved));
    assert_eq!(seen["headers"]["x-auth-org"], json!(["acme"]));
    assert_eq!(seen["headers"]["x-auth-client-id"], json!(["ci-dashboard"]));
    assert_eq!(seen["headers"]["x-auth-principal"], json!(["user"]));
    // The organization restricts apps only on its private side.
    allowed(with_bearer(
        &gw,
        "GET",
        "/orgs/acme/public_members",
        &alice_third_party,
    ));
    // A non-restricting organization lets any app act for a member.
    allowed(with_bearer(
        &gw,
        "GET",
        "/orgs/widgets/repos",
        &alice_third_party,
    ));
    // Public resources need no membership.
    let bob = user("bob", "random-app", "repo");
    allowed(with_bearer(&gw, "GET", "/orgs/acme", &bob));
    // SSO session present.
    let dave = user("dave", "random-app", "repo");
    allowed(with_bearer(&gw, "GET", "/orgs/secure/repos", &dave));
    // Implications: repo ⊇ repo:status; admin:org ⊇ write:org ⊇ read:org.
    allowed(with_bearer(
        &gw,
        "POST",
        "/repos/acme/app/statuses/abc",
        &alice_approved,
    ));
    let admin = user("alice", "ci-dashboard", "admin:org");
    allowed(with_bearer(
        &gw,
        "PUT",
        "/orgs/acme/memberships/bob",
        &admin,
    ));
    allowed(with_bearer(&gw, "GET", "/orgs/acme/members", &admin));
    // Organization names compare case-insensitively in this recipe.
    allowed(with_bearer(&gw, "GET", "/orgs/ACME/repos", &alice_approved));

    // Refused.
    let (_, why) = refused(
        with_bearer(&gw, "GET", "/orgs/acme/repos", &alice_third_party),
        403,
        "organization_restricted",
    );
    assert!(why.contains("acme") && why.contains("an organization admin must approve"));
    let (_, why) = refused(
        with_bearer(&gw, "GET", "/orgs/acme/repos", &bob),
        403,
        "not_a_member",
    );
    assert!(why.contains("acme"), "{why}");
    let carol = user("carol", "random-app", "repo");
    let (_, why) = refused(
        with_bearer(&gw, "GET", "/orgs/secure/repos", &carol),
        403,
        "sso_required",
    );
    assert!(why.contains("secure"), "{why}");
    let read_org = user("alice", "ci-dashboard", "read:org");
    let (h, _) = refused(
        with_bearer(&gw, "GET", "/orgs/acme/repos", &read_org),
        403,
        "insufficient_scope",
    );
    assert_eq!(h["x-accepted-oauth-scopes"], "repo");
    assert_eq!(h["x-oauth-scopes"], "read:org");
    // public_repo does not cover repo:status; read:org does not cover write:org.
    let public_repo = user("alice", "ci-dashboard", "public_repo");
    refused(
        with_bearer(&gw, "POST", "/repos/acme/app/statuses/abc", &public_repo),
        403,
        "insufficient_scope",
    );
    let (h, _) = refused(
        with_bearer(&gw, "PUT", "/orgs/acme/memberships/bob", &read_org),
        403,
        "insufficient_scope",
    );
    assert!(
        h["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("scope=\"write:org\""),
        "{h:?}"
    );
    let r = send(&gw, "GET", "/orgs/acme/repos", &[]);
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers()["www-authenticate"],
        "Bearer realm=\"scopegate\""
    );
    refused(send(&gw, "GET", "/user/repos", &[]), 404, "not_found");

    assert_eq!(upstream.count(), 10);
}

#[test]
fn google_chat_recipe_accepts_each_methods_alternatives_per_principal_kind() {
    let auth = AuthServer::start();
    let upstream = Upstream::start();
    let gw = TestGateway::start_file(
        "config/examples/google-chat.yaml",
        &[("CHAT_ISSUER", auth.url.clone()), upstream_env(&upstream)],
    );
    let user = |scope| auth.user_token("alice", "chat-web", scope, CHAT_API);
    let app = |scope| auth.client_token("chat-bot", scope, CHAT_API);

    // get space: user chat.spaces.readonly | chat.spaces, app chat.bot, user admin scope.
    let seen = allowed(with_bearer(
        &gw,
        "GET",
        "/v1/spaces/AAA",
        &user("chat.spaces.readonly"),
    ));
    assert_eq!(seen["headers"]["x-auth-principal"], json!(["user"]));
    allowed(with_bearer(
        &gw,
        "GET",
        "/v1/spaces/AAA",
        &user("chat.spaces"),
    ));
    let bot = app("chat.bot");
    let seen = allowed(with_bearer(&gw, "GET", "/v1/spaces/AAA", &bot));
    assert_eq!(seen["headers"]["x-auth-principal"], json!(["app"]));
    assert_eq!(seen["headers"]["x-auth-subject"], json!(["chat-bot"]));
    allowed(with_bearer(
        &gw,
        "GET",
        "/v1/spaces/AAA",
        &user("chat.admin.spaces.readonly"),
    ));
    allowed(with_bearer(&gw, "GET", "/v1/spaces", &bot));
    // create message: chat.messages.create | chat.messages | chat.import (user), chat.bot (app).
    allowed(with_bearer(
        &gw,
        "POST",
        "/v1/spaces/AAA/messages",
        &user("chat.messages.create"),
    ));
    allowed(with_bearer(
        &gw,
        "POST",
        "/v1/spaces/AAA/messages",
        &user("chat.import"),
    ));
    allowed(with_bearer(&gw, "POST", "/v1/spaces/AAA/messages", &bot));
    // chat.messages ⊇ chat.messages.readonly.
    allowed(with_bearer(
        &gw,
        "GET",
        "/v1/spaces/AAA/messages/m1",
        &user("chat.messages"),
    ));
    // delete space: chat.delete | chat.import (user), chat.app.delete (app).
    allowed(with_bearer(
        &gw,
        "DELETE",
        "/v1/spaces/AAA",
        &user("chat.delete"),
    ));
    allowed(with_bearer(
        &gw,
        "DELETE",
        "/v1/spaces/AAA",
        &app("chat.app.delete"),
    ));

    // An app-only scope in a user token, and a user-only scope in an app token.
    let (h, _) = refused(
        with_bearer(&gw, "GET", "/v1/spaces/AAA", &user("chat.bot")),
        403,
        "insufficient_scope",
    );
    assert_eq!(
        h["x-accepted-oauth-scopes"],
        "chat.spaces.readonly, chat.spaces, chat.bot, chat.admin.spaces.readonly"
    );
    refused(
        with_bearer(&gw, "GET", "/v1/spaces/AAA", &app("chat.spaces.readonly")),
        403,
        "insufficient_scope",
    );
    // Read-only scope for a write; the bot's scope for a delete; chat.spaces for a delete.
    let (h, _) = refused(
        with_bearer(
            &gw,
            "POST",
            "/v1/spaces/AAA/messages",
            &user("chat.messages.readonly"),
        ),
        403,
        "insufficient_scope",
    );
    assert_eq!(h["x-oauth-scopes"], "chat.messages.readonly");
    refused(
        with_bearer(&gw, "DELETE", "/v1/spaces/AAA", &bot),
        403,
        "insufficient_scope",
    );
    refused(
        with_bearer(&gw, "DELETE", "/v1/spaces/AAA", &user("chat.spaces")),
        403,
        "insufficient_scope",
    );
    let r = with_bearer(&gw, "PUT", "/v1/spaces/AAA", &bot);
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "GET, HEAD, DELETE");

    assert_eq!(upstream.count(), 11);
}

#[test]
fn zoho_migration_recipe_accepts_authtokens_until_not_after_then_points_to_oauth() {
    let auth = AuthServer::start();
    let upstream = Upstream::start();
    let in_a_day = scopegate::clock::unix_now() + 24 * 3600;
    let rfc3339 = |t: u64| {
        time::OffsetDateTime::from_unix_timestamp(t as i64)
            .unwrap()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let gw = TestGateway::start_file(
        "config/examples/zoho-migration.yaml",
        &[
            ("ZOHO_ISSUER", auth.url.clone()),
            upstream_env(&upstream),
            ("REPORTS_NOT_AFTER", rfc3339(in_a_day)),
            ("MAILER_NOT_AFTER", rfc3339(in_a_day)),
        ],
    );
    let oauth = auth.client_token("zoho-crm-client", "ZohoCRM.modules.ALL", ZOHO_API);

    // OAuth under Zoho's scheme and under Bearer.
    let zoho_scheme = format!("Zoho-oauthtoken {oauth}");
    allowed(send(
        &gw,
        "POST",
        "/crm/v2/Leads",
        &[("authorization", &zoho_scheme)],
    ));
    allowed(with_bearer(&gw, "GET", "/crm/v2/Leads", &oauth));
    // A legacy authtoken in the query, before its not_after: the parameter is not forwarded.
    let seen = allowed(send(
        &gw,
        "GET",
        "/crm/v2/Leads?page=2&authtoken=zoho-reports-authtoken-5f2c",
        &[],
    ));
    assert_eq!(seen["query"], "page=2");
    assert_eq!(
        seen["headers"]["x-auth-subject"],
        json!(["reports@example.com"])
    );
    assert_eq!(
        seen["headers"]["x-auth-issuer"],
        json!(["credential:reports"])
    );
    assert_eq!(
        seen["headers"]["x-auth-scopes"],
        json!(["ZohoCRM.modules.READ"])
    );
    // A legacy authtoken under its own scheme.
    allowed(send(
        &gw,
        "GET",
        "/crm/v2/Contacts",
        &[("authorization", "Zoho-authtoken zoho-mailer-authtoken-33d0")],
    ));

    // Past its not_after (a fixed time in the recipe): refused, pointed to OAuth.
    let (_, why) = refused(
        send(
            &gw,
            "GET",
            "/crm/v2/Leads?authtoken=zoho-crm-sync-authtoken-81ab",
            &[],
        ),
        401,
        "invalid_token",
    );
    assert!(why.contains("OAuth"), "{why}");
    // An authtoken nobody configured.
    refused(
        send(&gw, "GET", "/crm/v2/Leads?authtoken=guess", &[]),
        401,
        "invalid_token",
    );
    // The legacy credential has only the scopes it was given.
    refused(
        send(
            &gw,
            "POST",
            "/crm/v2/Leads?authtoken=zoho-reports-authtoken-5f2c",
            &[],
        ),
        403,
        "insufficient_scope",
    );
    // An authtoken beside an OAuth token: which one counts would be a guess.
    refused(
        send(
            &gw,
            "GET",
            "/crm/v2/Leads?authtoken=zoho-reports-authtoken-5f2c",
            &[("authorization", &zoho_scheme)],
        ),
        400,
        "invalid_request",
    );

    let metrics = gw.metrics();
    for line in [
        "scopegate_legacy_credential_requests_total{id=\"reports\"} 2",
        "scopegate_legacy_credential_requests_total{id=\"crm-sync\"} 1",
        "scopegate_legacy_credential_requests_total{id=\"mailer\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} missing in\n{metrics}");
    }
    assert!(!metrics.contains("5f2c") && !metrics.contains("guess"));
    assert_eq!(upstream.count(), 4);

    // The same recipe deployed with the reports authtoken's sunset an hour ago.
    let later = TestGateway::start_file(
        "config/examples/zoho-migration.yaml",
        &[
            ("ZOHO_ISSUER", auth.url.clone()),
            upstream_env(&upstream),
            ("REPORTS_NOT_AFTER", rfc3339(in_a_day - 25 * 3600)),
        ],
    );
    let (_, why) = refused(
        send(
            &later,
            "GET",
            "/crm/v2/Leads?authtoken=zoho-reports-authtoken-5f2c",
            &[],
        ),
        401,
        "invalid_token",
    );
    assert!(why.contains("OAuth"), "{why}");
    assert_eq!(upstream.count(), 4);
}

const SESSIONS_REVOKED: &str =
    "https://schemas.openid.net/secevent/risc/event-type/sessions-revoked";

#[test]
fn multi_site_recipe_dispatches_by_issuer_restricts_routes_and_handles_an_uninstall() {
    let us1 = AuthServer::start();
    let eu1 = AuthServer::start();
    let upstream = Upstream::start();
    let transmitter = DevIssuer::new(us1.url.clone(), "https://gateway.example".into());
    let set_keys = JsonServer::start(transmitter.jwks());
    let gw = TestGateway::start_file(
        "config/examples/multi-site.yaml",
        &[
            ("US1_ISSUER", us1.url.clone()),
            ("EU1_ISSUER", eu1.url.clone()),
            ("SET_TRANSMITTER", us1.url.clone()),
            ("SET_JWKS_URI", set_keys.url.clone()),
            upstream_env(&upstream),
        ],
    );
    let scopes = "metrics_read dashboards_read";
    let us1_token = us1.client_token("dd-integration", scopes, US1_API);
    let eu1_token = eu1.client_token("dd-integration", scopes, EU1_API);
    let api_key = [("dd-api-key", "dd-api-key-us1-0c4e7a")];

    // Each site's tokens on the shared route, the site's own route; the API key as US1.
    let seen = allowed(with_bearer(&gw, "GET", "/api/v1/query", &us1_token));
    assert_eq!(seen["headers"]["x-auth-issuer"], json!(["us1"]));
    let seen = allowed(with_bearer(&gw, "GET", "/api/v1/query", &eu1_token));
    assert_eq!(seen["headers"]["x-auth-issuer"], json!(["eu1"]));
    allowed(with_bearer(
        &gw,
        "GET",
        "/us1/api/v1/dashboards/d1",
        &us1_token,
    ));
    allowed(with_bearer(
        &gw,
        "GET",
        "/eu1/api/v1/dashboards/d1",
        &eu1_token,
    ));
    let seen = allowed(send(&gw, "GET", "/api/v1/query", &api_key));
    assert_eq!(
        seen["headers"]["x-auth-subject"],
        json!(["api-key-reporting"])
    );
    assert_eq!(seen["headers"]["x-auth-issuer"], json!(["us1"]));
    allowed(send(&gw, "GET", "/us1/api/v1/dashboards/d1", &api_key));

    // A site's credentials on the other site's route.
    let (_, why) = refused(
        with_bearer(&gw, "GET", "/us1/api/v1/dashboards/d1", &eu1_token),
        401,
        "invalid_token",
    );
    assert!(why.contains("issuer"), "{why}");
    refused(
        with_bearer(&gw, "GET", "/eu1/api/v1/dashboards/d1", &us1_token),
        401,
        "invalid_token",
    );
    refused(
        send(&gw, "GET", "/eu1/api/v1/dashboards/d1", &api_key),
        401,
        "invalid_token",
    );
    // Each issuer has its own audience: a US1 token for the EU1 API is refused.
    let misaimed = us1.client_token("dd-integration", scopes, EU1_API);
    let (_, why) = refused(
        with_bearer(&gw, "GET", "/api/v1/query", &misaimed),
        401,
        "invalid_token",
    );
    assert!(why.contains("aud"), "{why}");
    // A token of an issuer nobody configured.
    let stranger = DevIssuer::new("https://auth.ap1.example".into(), US1_API.into());
    let now = scopegate::clock::unix_now();
    let foreign = stranger.sign(
        "at+jwt",
        &json!({"iss": "https://auth.ap1.example", "aud": US1_API, "sub": "x",
                "client_id": "x", "iat": now, "exp": now + 600, "scope": "metrics_read"}),
    );
    let (_, why) = refused(
        with_bearer(&gw, "GET", "/api/v1/query", &foreign),
        401,
        "invalid_token",
    );
    assert!(why.contains("issuer"), "{why}");

    // Uninstall on US1: the transmitter revokes every authorization of the client there.
    let set = transmitter.sign(
        "secevent+jwt",
        &json!({"iss": us1.url, "aud": "https://gateway.example", "iat": now, "jti": "uninstall-1",
                "events": {SESSIONS_REVOKED: {"subject": {"format": "client_id", "iss": us1.url,
                "client_id": "dd-integration"}}}}),
    );
    assert_eq!(gw.push_set(&set).0, 202);
    let (_, why) = refused(
        with_bearer(&gw, "GET", "/api/v1/query", &us1_token),
        401,
        "invalid_token",
    );
    assert!(why.contains("revoked"), "{why}");
    // The same client on the other site is another authorization.
    allowed(with_bearer(&gw, "GET", "/api/v1/query", &eu1_token));

    assert_eq!(upstream.count(), 7);
}
