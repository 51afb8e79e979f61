//! The shipped recipes (`config/examples/`) run as they are, with the environment pointing
//! them at real oidc-provider instances and a real upstream: every rule of each is allowed
//! and refused at least once, with the exact status, `error` and headers. Each recipe is a
//! table of cases played against its gateway.
//!
//! Test provider users: alice (orgs acme, widgets), bob (widgets), carol (secure), dave
//! (secure, with an SSO session). Clients: see tests/authz-server/server.mjs.

mod support;

use scopegate::dev::DevIssuer;
use serde_json::json;
use support::recipe::*;
use support::*;

const GITHUB_API: &str = "https://api.github.example";
const CHAT_API: &str = "https://chat.googleapis.example";
const ZOHO_API: &str = "https://www.zohoapis.example";
const US1_API: &str = "https://api.us1.example";
const EU1_API: &str = "https://api.eu1.example";

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
    let bob = user("bob", "random-app", "repo");
    let carol = user("carol", "random-app", "repo");
    let dave = user("dave", "random-app", "repo");
    let admin = user("alice", "ci-dashboard", "admin:org");
    let read_org = user("alice", "ci-dashboard", "read:org");
    let public_repo = user("alice", "ci-dashboard", "public_repo");
    let org = [
        ("x-auth-org", "acme"),
        ("x-auth-client-id", "ci-dashboard"),
        ("x-auth-principal", "user"),
    ];
    play(
        &gw,
        &upstream,
        &[
            case("GET", "/meta", &[], Expect::Allowed(vec![])),
            allow("GET", "/orgs/acme/repos", &alice_approved, &org),
            // The organization restricts apps only on its private side.
            allow("GET", "/orgs/acme/public_members", &alice_third_party, &[]),
            // A non-restricting organization lets any app act for a member.
            allow("GET", "/orgs/widgets/repos", &alice_third_party, &[]),
            // Public resources need no membership.
            allow("GET", "/orgs/acme", &bob, &[]),
            // SSO session present.
            allow("GET", "/orgs/secure/repos", &dave, &[]),
            // Implications: repo ⊇ repo:status; admin:org ⊇ write:org ⊇ read:org.
            allow("POST", "/repos/acme/app/statuses/abc", &alice_approved, &[]),
            allow("PUT", "/orgs/acme/memberships/bob", &admin, &[]),
            allow("GET", "/orgs/acme/members", &admin, &[]),
            // Organization names compare case-insensitively in this recipe.
            allow("GET", "/orgs/ACME/repos", &alice_approved, &[]),
            refuse(
                "GET",
                "/orgs/acme/repos",
                &alice_third_party,
                403,
                "organization_restricted",
                "the organization acme restricts third-party applications: an organization admin must approve",
            ),
            refuse("GET", "/orgs/acme/repos", &bob, 403, "not_a_member", "acme"),
            refuse(
                "GET",
                "/orgs/secure/repos",
                &carol,
                403,
                "sso_required",
                "secure",
            ),
            refuse(
                "GET",
                "/orgs/acme/repos",
                &read_org,
                403,
                "insufficient_scope",
                "",
            )
            .with_headers(&[
                ("x-accepted-oauth-scopes", "repo"),
                ("x-oauth-scopes", "read:org"),
            ]),
            // public_repo does not cover repo:status; read:org does not cover write:org.
            refuse(
                "POST",
                "/repos/acme/app/statuses/abc",
                &public_repo,
                403,
                "insufficient_scope",
                "",
            ),
            refuse(
                "PUT",
                "/orgs/acme/memberships/bob",
                &read_org,
                403,
                "insufficient_scope",
                "write:org",
            ),
            case(
                "GET",
                "/orgs/acme/repos",
                &[],
                Expect::Refused {
                    status: 401,
                    error: "unauthorized",
                    says: "",
                    headers: vec![("www-authenticate", "Bearer realm=\"scopegate\"")],
                },
            ),
            case(
                "GET",
                "/user/repos",
                &[],
                Expect::Refused {
                    status: 404,
                    error: "not_found",
                    says: "",
                    headers: vec![],
                },
            ),
        ],
    );
}

/// A Google scope by its short name.
fn google(scope: &str) -> String {
    format!("https://www.googleapis.com/auth/{scope}")
}

/// What spaces.get accepts, as the 403 lists it.
const ACCEPTED_FOR_GET_SPACE: &str = "https://www.googleapis.com/auth/chat.spaces.readonly, https://www.googleapis.com/auth/chat.admin.spaces.readonly, https://www.googleapis.com/auth/chat.bot, https://www.googleapis.com/auth/chat.app.spaces";

#[test]
fn google_chat_recipe_accepts_each_methods_alternatives_per_principal_kind() {
    let auth = AuthServer::start();
    let upstream = Upstream::start();
    let gw = TestGateway::start_file(
        "config/examples/google-chat.yaml",
        &[("CHAT_ISSUER", auth.url.clone()), upstream_env(&upstream)],
    );
    // Google's scopes are URLs: `chat.bot` here is https://www.googleapis.com/auth/chat.bot.
    let user = |scope: &str| auth.user_token("alice", "chat-web", &google(scope), CHAT_API);
    let app = |scope: &str| auth.client_token("chat-bot", &google(scope), CHAT_API);
    let bot = app("chat.bot");
    play(
        &gw,
        &upstream,
        &[
            // get space: user chat.spaces.readonly | chat.spaces, app chat.bot, user admin scope.
            allow(
                "GET",
                "/v1/spaces/AAA",
                &user("chat.spaces.readonly"),
                &[("x-auth-principal", "user")],
            ),
            allow("GET", "/v1/spaces/AAA", &user("chat.spaces"), &[]),
            allow(
                "GET",
                "/v1/spaces/AAA",
                &bot,
                &[("x-auth-principal", "app"), ("x-auth-subject", "chat-bot")],
            ),
            allow(
                "GET",
                "/v1/spaces/AAA",
                &user("chat.admin.spaces.readonly"),
                &[],
            ),
            allow("GET", "/v1/spaces", &bot, &[]),
            allow("GET", "/v1/spaces/AAA", &app("chat.app.spaces"), &[]),
            // create message: chat.messages.create | chat.messages | chat.import (user), chat.bot (app).
            allow(
                "POST",
                "/v1/spaces/AAA/messages",
                &user("chat.messages.create"),
                &[],
            ),
            allow("POST", "/v1/spaces/AAA/messages", &user("chat.import"), &[]),
            allow("POST", "/v1/spaces/AAA/messages", &bot, &[]),
            // chat.messages ⊇ chat.messages.readonly.
            allow(
                "GET",
                "/v1/spaces/AAA/messages/m1",
                &user("chat.messages"),
                &[],
            ),
            // delete space: chat.delete | chat.import (user), chat.app.delete (app).
            allow("DELETE", "/v1/spaces/AAA", &user("chat.delete"), &[]),
            allow("DELETE", "/v1/spaces/AAA", &app("chat.app.delete"), &[]),
            // An app-only scope in a user token, and a user-only scope in an app token.
            refuse(
                "GET",
                "/v1/spaces/AAA",
                &user("chat.bot"),
                403,
                "insufficient_scope",
                "",
            )
            .with_headers(&[("x-accepted-oauth-scopes", ACCEPTED_FOR_GET_SPACE)]),
            refuse(
                "GET",
                "/v1/spaces/AAA",
                &app("chat.spaces.readonly"),
                403,
                "insufficient_scope",
                "",
            ),
            // Read-only scope for a write; the bot's scope for a delete; chat.spaces for a delete.
            refuse(
                "POST",
                "/v1/spaces/AAA/messages",
                &user("chat.messages.readonly"),
                403,
                "insufficient_scope",
                "",
            )
            .with_headers(&[(
                "x-oauth-scopes",
                "https://www.googleapis.com/auth/chat.messages.readonly",
            )]),
            refuse(
                "DELETE",
                "/v1/spaces/AAA",
                &bot,
                403,
                "insufficient_scope",
                "",
            ),
            refuse(
                "DELETE",
                "/v1/spaces/AAA",
                &user("chat.spaces"),
                403,
                "insufficient_scope",
                "",
            ),
            refuse("PUT", "/v1/spaces/AAA", &bot, 405, "method_not_allowed", "")
                .with_headers(&[("allow", "GET, HEAD, DELETE")]),
        ],
    );
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
            ("ZOHO_INTROSPECTION_CLIENT_ID", "gateway".into()),
            ("ZOHO_INTROSPECTION_CLIENT_SECRET", "gateway-secret".into()),
        ],
    );
    let oauth = auth.client_token("zoho-crm-client", "ZohoCRM.modules.ALL", ZOHO_API);
    let zoho_scheme = [("authorization", format!("Zoho-oauthtoken {oauth}"))];
    let zoho_scheme: Vec<(&'static str, &str)> =
        zoho_scheme.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // An access token in Zoho's own shape (`1000.` + 32 hex + `.` + 32 hex, as in Zoho's
    // OAuth documentation, www.zoho.com/crm/developer/docs/api/v8/access-refresh.html),
    // issued and introspected by the real provider.
    let zoho_token = auth.opaque_user_token(
        "lead-manager@example.com",
        "zoho-crm-client",
        "ZohoCRM.modules.ALL",
        ZOHO_API,
        "1000.8cb99d4c2f4e4a3b9be93a1d2e3f4a5b.9b8e7d6c5b4a39281706f5e4d3c2b1a0",
    );
    let zoho_opaque = [("authorization", format!("Zoho-oauthtoken {zoho_token}"))];
    let unknown_zoho = [(
        "authorization",
        "Zoho-oauthtoken 1000.00000000000000000000000000000000.11111111111111111111111111111111"
            .to_string(),
    )];
    let before = auth.introspections();
    let refused = |status, error, says| Expect::Refused {
        status,
        error,
        says,
        headers: vec![],
    };
    let seen = play(
        &gw,
        &upstream,
        &[
            // OAuth under Zoho's scheme and under Bearer.
            case(
                "POST",
                "/crm/v2/Leads",
                &zoho_scheme,
                Expect::Allowed(vec![]),
            ),
            allow("GET", "/crm/v2/Leads", &oauth, &[]),
            // Zoho's dotted opaque token under Zoho's scheme: introspected, not taken for a JWT.
            case(
                "POST",
                "/crm/v2/Leads",
                &[(zoho_opaque[0].0, zoho_opaque[0].1.as_str())],
                Expect::Allowed(vec![
                    ("x-auth-subject", "lead-manager@example.com"),
                    ("x-auth-client-id", "zoho-crm-client"),
                ]),
            ),
            // One the provider never issued: inactive.
            case(
                "GET",
                "/crm/v2/Leads",
                &[(unknown_zoho[0].0, unknown_zoho[0].1.as_str())],
                refused(401, "invalid_token", "not active"),
            ),
            // A legacy authtoken in the query, before its not_after: the parameter is not forwarded.
            case(
                "GET",
                "/crm/v2/Leads?page=2&authtoken=zoho-reports-authtoken-5f2c",
                &[],
                Expect::Allowed(vec![
                    ("x-auth-subject", "reports@example.com"),
                    ("x-auth-issuer", "credential:reports"),
                    ("x-auth-scopes", "ZohoCRM.modules.READ"),
                ]),
            ),
            // A legacy authtoken under its own scheme.
            case(
                "GET",
                "/crm/v2/Contacts",
                &[("authorization", "Zoho-authtoken zoho-mailer-authtoken-33d0")],
                Expect::Allowed(vec![]),
            ),
            // Past its not_after (a fixed time in the recipe): refused, pointed to OAuth.
            case(
                "GET",
                "/crm/v2/Leads?authtoken=zoho-crm-sync-authtoken-81ab",
                &[],
                refused(401, "invalid_token", "OAuth"),
            ),
            // An authtoken nobody configured.
            case(
                "GET",
                "/crm/v2/Leads?authtoken=guess",
                &[],
                refused(401, "invalid_token", ""),
            ),
            // The legacy credential has only the scopes it was given.
            case(
                "POST",
                "/crm/v2/Leads?authtoken=zoho-reports-authtoken-5f2c",
                &[],
                refused(403, "insufficient_scope", ""),
            ),
            // An authtoken beside an OAuth token: which one counts would be a guess.
            case(
                "GET",
                "/crm/v2/Leads?authtoken=zoho-reports-authtoken-5f2c",
                &zoho_scheme,
                refused(400, "invalid_request", ""),
            ),
        ],
    );
    assert_eq!(seen[3]["query"], "page=2");
    assert_eq!(
        auth.introspections() - before,
        2,
        "each Zoho-shaped token was introspected, once"
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

    // The same recipe deployed with the reports authtoken's sunset an hour ago.
    let later = TestGateway::start_file(
        "config/examples/zoho-migration.yaml",
        &[
            ("ZOHO_ISSUER", auth.url.clone()),
            upstream_env(&upstream),
            ("REPORTS_NOT_AFTER", rfc3339(in_a_day - 25 * 3600)),
            ("ZOHO_INTROSPECTION_CLIENT_ID", "gateway".into()),
            ("ZOHO_INTROSPECTION_CLIENT_SECRET", "gateway-secret".into()),
        ],
    );
    play(
        &later,
        &upstream,
        &[case(
            "GET",
            "/crm/v2/Leads?authtoken=zoho-reports-authtoken-5f2c",
            &[],
            refused(401, "invalid_token", "OAuth"),
        )],
    );
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
    let scopes = "timeseries_query metrics_read dashboards_read";
    let us1_token = us1.client_token("dd-integration", scopes, US1_API);
    let eu1_token = eu1.client_token("dd-integration", scopes, EU1_API);
    // Datadog's scopes imply nothing: listing metrics is not querying them.
    let metrics_only = us1.client_token("dd-integration", "metrics_read", US1_API);
    let api_key = [("dd-api-key", "dd-api-key-us1-0c4e7a")];
    let api_key_refused = Expect::Refused {
        status: 401,
        error: "invalid_token",
        says: "issuer",
        headers: vec![],
    };
    // A US1 token for the EU1 API: each issuer has its own audience.
    let misaimed = us1.client_token("dd-integration", scopes, EU1_API);
    // A token of an issuer nobody configured.
    let stranger = DevIssuer::new("https://auth.ap1.example".into(), US1_API.into());
    let now = scopegate::clock::unix_now();
    let foreign = stranger.sign(
        "at+jwt",
        &json!({"iss": "https://auth.ap1.example", "aud": US1_API, "sub": "x",
                "client_id": "x", "iat": now, "exp": now + 600, "scope": "timeseries_query"}),
    );
    play(
        &gw,
        &upstream,
        &[
            // Each site's tokens on the shared route, the site's own route; the API key as US1.
            allow(
                "GET",
                "/api/v1/query",
                &us1_token,
                &[("x-auth-issuer", "us1")],
            ),
            allow(
                "GET",
                "/api/v1/query",
                &eu1_token,
                &[("x-auth-issuer", "eu1")],
            ),
            allow("GET", "/api/v1/metrics", &metrics_only, &[]),
            refuse(
                "GET",
                "/api/v1/query",
                &metrics_only,
                403,
                "insufficient_scope",
                "",
            )
            .with_headers(&[("x-accepted-oauth-scopes", "timeseries_query")]),
            allow("GET", "/us1/api/v1/dashboard/d1", &us1_token, &[]),
            allow("GET", "/eu1/api/v1/dashboard/d1", &eu1_token, &[]),
            case(
                "GET",
                "/api/v1/query",
                &api_key,
                Expect::Allowed(vec![
                    ("x-auth-subject", "api-key-reporting"),
                    ("x-auth-issuer", "us1"),
                ]),
            ),
            case(
                "GET",
                "/us1/api/v1/dashboard/d1",
                &api_key,
                Expect::Allowed(vec![]),
            ),
            // A site's credentials on the other site's route.
            refuse(
                "GET",
                "/us1/api/v1/dashboard/d1",
                &eu1_token,
                401,
                "invalid_token",
                "issuer",
            ),
            refuse(
                "GET",
                "/eu1/api/v1/dashboard/d1",
                &us1_token,
                401,
                "invalid_token",
                "issuer",
            ),
            case("GET", "/eu1/api/v1/dashboard/d1", &api_key, api_key_refused),
            refuse(
                "GET",
                "/api/v1/query",
                &misaimed,
                401,
                "invalid_token",
                "aud",
            ),
            refuse(
                "GET",
                "/api/v1/query",
                &foreign,
                401,
                "invalid_token",
                "issuer",
            ),
        ],
    );

    // Uninstall on US1: the transmitter revokes every authorization of the client there.
    let set = transmitter.sign(
        "secevent+jwt",
        &json!({"iss": us1.url, "aud": "https://gateway.example", "iat": now, "jti": "uninstall-1",
                "events": {SESSIONS_REVOKED: {"subject": {"format": "client_id", "iss": us1.url,
                "client_id": "dd-integration"}}}}),
    );
    assert_eq!(gw.push_set(&set).0, 202);
    play(
        &gw,
        &upstream,
        &[
            refuse(
                "GET",
                "/api/v1/query",
                &us1_token,
                401,
                "invalid_token",
                "revoked",
            ),
            // The same client on the other site is another authorization.
            allow("GET", "/api/v1/query", &eu1_token, &[]),
        ],
    );
}
