//! The recipes for providers that check tokens through endpoints of their own
//! (`config/examples/github-token.yaml`, `google-tokens.yaml`), run as they are against test
//! servers that follow the providers' published shapes (`support/providers.rs` names each
//! documentation page): allowed, expired, wrong client, missing scope, not a member, provider
//! down, each checked at the upstream or in the refusal.

mod support;

use serde_json::json;
use support::providers::{
    ALICE_GITHUB_ID, GITHUB_APP, GOOGLE_CLIENT, OTHER_GOOGLE_CLIENT, Providers,
};
use support::recipe::*;
use support::*;

/// The github-token recipe as the app `GITHUB_APP.0` with `secret`.
fn github_gateway(providers: &Providers, upstream: &Upstream, secret: &str) -> TestGateway {
    TestGateway::start_file(
        "config/examples/github-token.yaml",
        &[
            ("GITHUB_API", providers.github_api.clone()),
            ("GITHUB_CLIENT_ID", GITHUB_APP.0.into()),
            ("GITHUB_CLIENT_SECRET", secret.into()),
            upstream_env(upstream),
        ],
    )
}

fn refused(status: u16, error: &'static str, says: &'static str) -> Expect {
    Expect::Refused {
        status,
        error,
        says,
        headers: vec![],
    }
}

#[test]
fn github_token_recipe_admits_members_through_the_approved_app_with_the_scope() {
    let gh = Providers::start();
    let upstream = Upstream::start();
    let gw = github_gateway(&gh, &upstream, GITHUB_APP.1);

    let alice = gh.github_token(GITHUB_APP.0, "alice", &["repo", "read:org"]);
    let admin = gh.github_token(GITHUB_APP.0, "alice", &["admin:org", "read:org"]);
    let reader = gh.github_token(GITHUB_APP.0, "alice", &["read:org"]);
    let bob = gh.github_token(GITHUB_APP.0, "bob", &["repo", "read:org"]);
    let other_app = gh.github_token("Iv1.0ther0000000000", "alice", &["repo", "read:org"]);
    let expired = gh.github_app_user_token(GITHUB_APP.0, "alice", 0);
    for t in [&alice, &admin, &reader] {
        gh.github_membership(t, "acme", "active");
    }
    gh.github_membership(&alice, "invited", "pending");
    gh.github_membership(&alice, "locked", "restricted");
    gh.github_membership(&alice, "secure", "sso");
    let never_issued = "gho_000000000000000000000000000000000000";

    let member = [
        ("x-auth-subject", ALICE_GITHUB_ID),
        ("x-auth-login", "alice"),
        ("x-auth-client-id", GITHUB_APP.0),
        ("x-auth-org", "acme"),
        ("x-auth-principal", "user"),
        ("x-auth-issuer", "github"),
    ];
    let seen = play(
        &gw,
        &upstream,
        &[
            allow("GET", "/orgs/acme/builds", &alice, &member),
            // GitHub logins are case-insensitive; the membership answer is the same one.
            allow("POST", "/orgs/ACME/builds", &alice, &[]),
            // admin:org covers write:org (GitHub's scope table).
            allow("PUT", "/orgs/acme/settings", &admin, &[]),
            // GitHub's own clients send `Authorization: token …`.
            case(
                "GET",
                "/whoami",
                &[("authorization", &format!("token {alice}"))],
                Expect::Allowed(vec![("x-auth-login", "alice")]),
            ),
            refuse(
                "GET",
                "/orgs/acme/builds",
                &reader,
                403,
                "insufficient_scope",
                "",
            )
            .with_headers(&[("x-accepted-oauth-scopes", "repo")]),
            refuse(
                "GET",
                "/orgs/acme/builds",
                &bob,
                403,
                "not_a_member",
                "acme",
            ),
            refuse(
                "GET",
                "/orgs/invited/builds",
                &alice,
                403,
                "not_a_member",
                "invited",
            ),
            refuse(
                "GET",
                "/orgs/locked/builds",
                &alice,
                403,
                "organization_restricted",
                "approve",
            ),
            refuse(
                "GET",
                "/orgs/secure/builds",
                &alice,
                403,
                "sso_required",
                "secure",
            ),
            // A name that is no GitHub login is nobody's organization (and is never sent).
            refuse("GET", "/orgs/-x-/builds", &alice, 403, "not_a_member", ""),
            refuse(
                "GET",
                "/whoami",
                &other_app,
                401,
                "invalid_token",
                "not active",
            ),
            refuse(
                "GET",
                "/whoami",
                &expired,
                401,
                "invalid_token",
                "not active",
            ),
            refuse(
                "GET",
                "/whoami",
                never_issued,
                401,
                "invalid_token",
                "not active",
            ),
        ],
    );
    // Only the gateway's identity headers: a client's copy of one never reaches the upstream.
    assert_eq!(
        seen[0]["headers"]["x-auth-subject"],
        json!([ALICE_GITHUB_ID])
    );
    // One check per new token; one membership call per token and organization.
    assert_eq!(
        gh.check_calls(),
        7,
        "alice, admin, reader, bob, other, expired, never"
    );
    assert_eq!(
        gh.membership_calls(),
        6,
        "alice: acme, invited, locked, secure; admin: acme; bob: acme; reader: none (scope first)"
    );

    // GitHub down: what was checked keeps working; nothing new is decided without it.
    gh.set_down(true);
    let fresh = gh.github_token(GITHUB_APP.0, "carol", &["repo"]);
    play(
        &gw,
        &upstream,
        &[
            allow(
                "GET",
                "/orgs/acme/builds",
                &alice,
                &[("x-auth-org", "acme")],
            ),
            case(
                "GET",
                "/whoami",
                &[("authorization", &format!("Bearer {fresh}"))],
                refused(503, "temporarily_unavailable", ""),
            ),
            case(
                "GET",
                "/orgs/widgets/builds",
                &[("authorization", &format!("Bearer {alice}"))],
                refused(503, "temporarily_unavailable", ""),
            ),
        ],
    );
    let metrics = gw.metrics();
    for line in [
        "scopegate_membership_requests_total{issuer=\"github\",result=\"member\"} 2",
        "scopegate_membership_requests_total{issuer=\"github\",result=\"app_not_approved\"} 1",
        "scopegate_membership_requests_total{issuer=\"github\",result=\"sso_required\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} missing in\n{metrics}");
    }
    assert!(!metrics.contains(&alice[4..]), "no token in the metrics");
}

#[test]
fn a_github_app_secret_github_refuses_is_a_503_not_a_401() {
    let gh = Providers::start();
    let upstream = Upstream::start();
    let gw = github_gateway(&gh, &upstream, "rotated-away");
    let alice = gh.github_token(GITHUB_APP.0, "alice", &["repo"]);
    // GitHub answers 401 "Bad credentials" for the app: the token is not at fault.
    play(
        &gw,
        &upstream,
        &[case(
            "GET",
            "/whoami",
            &[("authorization", &format!("Bearer {alice}"))],
            refused(503, "temporarily_unavailable", ""),
        )],
    );
}

#[test]
fn google_tokens_recipe_admits_tokens_of_the_client_and_refuses_the_rest() {
    let google = Providers::start();
    let upstream = Upstream::start();
    let gw = TestGateway::start_file(
        "config/examples/google-tokens.yaml",
        &[
            ("GOOGLE_TOKENINFO", google.tokeninfo.clone()),
            ("GOOGLE_CLIENT_ID", GOOGLE_CLIENT.into()),
            upstream_env(&upstream),
        ],
    );
    let scope = |s: &str| format!("https://www.googleapis.com/auth/{s}");
    let user = |scopes: &[&str], seconds| {
        let scopes: Vec<String> = scopes.iter().map(|s| scope(s)).collect();
        google.google_token(
            GOOGLE_CLIENT,
            Some("110169484474386276334"),
            &scopes.join(" "),
            seconds,
        )
    };
    let reader = user(&["calendar.readonly", "userinfo.email"], 3600);
    let writer = user(&["calendar"], 3600);
    let service = google.google_token(
        GOOGLE_CLIENT,
        None,
        &format!("{} {}", scope("cloud-platform"), scope("calendar.readonly")),
        3600,
    );
    let other_client = google.google_token(
        OTHER_GOOGLE_CLIENT,
        Some("110169484474386276334"),
        &scope("calendar"),
        3600,
    );
    let expired = user(&["calendar"], 0);
    let short = user(&["calendar.events.readonly"], 2);

    play(
        &gw,
        &upstream,
        &[
            allow(
                "GET",
                "/v1/me",
                &reader,
                &[
                    ("x-auth-subject", "110169484474386276334"),
                    ("x-auth-client-id", GOOGLE_CLIENT),
                    ("x-auth-principal", "user"),
                    ("x-auth-issuer", "google"),
                ],
            ),
            allow("GET", "/v1/events", &reader, &[]),
            // calendar covers calendar.events (Google's Calendar scopes).
            allow("POST", "/v1/events", &writer, &[]),
            // A service account's token: the client itself.
            allow(
                "POST",
                "/v1/jobs/nightly",
                &service,
                &[
                    ("x-auth-principal", "app"),
                    ("x-auth-subject", GOOGLE_CLIENT),
                ],
            ),
            allow("GET", "/v1/events", &service, &[]),
            allow("GET", "/v1/events", &short, &[]),
            refuse("POST", "/v1/events", &reader, 403, "insufficient_scope", ""),
            refuse(
                "POST",
                "/v1/jobs/nightly",
                &writer,
                403,
                "insufficient_scope",
                "",
            ),
            refuse("GET", "/v1/me", &service, 403, "insufficient_scope", ""),
            // A valid Google token issued to another company's app.
            refuse(
                "GET",
                "/v1/events",
                &other_client,
                401,
                "invalid_token",
                "aud",
            ),
            refuse(
                "GET",
                "/v1/events",
                &expired,
                401,
                "invalid_token",
                "not active",
            ),
            refuse(
                "GET",
                "/v1/events",
                "ya29.never-issued",
                401,
                "invalid_token",
                "not active",
            ),
        ],
    );
    assert_eq!(google.tokeninfo_calls(), 7, "one call per new token");

    // The cached answer ends with the token's exp: then Google says it is no longer valid.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    play(
        &gw,
        &upstream,
        &[refuse(
            "GET",
            "/v1/events",
            &short,
            401,
            "invalid_token",
            "not active",
        )],
    );

    google.set_down(true);
    let fresh = user(&["calendar"], 3600);
    play(
        &gw,
        &upstream,
        &[
            allow("GET", "/v1/events", &writer, &[]),
            case(
                "GET",
                "/v1/events",
                &[("authorization", &format!("Bearer {fresh}"))],
                refused(503, "temporarily_unavailable", ""),
            ),
        ],
    );
}
