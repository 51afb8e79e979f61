//! The identity-provider recipes (`config/examples/okta.yaml`, `entra-id.yaml`, `auth0.yaml`,
//! `keycloak.yaml`) run as they are against the real oidc-provider issuing tokens in each
//! provider's shape (its claims added through `extraTokenClaims`; each test names the
//! provider's documentation page the shapes come from): scopes read from the provider's
//! claim, app tokens told by the provider's rule, claim conditions, claim headers at the
//! upstream. Then what goes to the upstream beyond headers: the signed identity assertion,
//! rate limits and report mode, through the real gateway.

mod support;

use serde_json::{Value, json};
use support::recipe::*;
use support::*;

/// The recipes' audience (their APIs' identifier).
const PAYMENTS: &str = "https://payments.example.com";

fn recipe(file: &str, issuer_env: &'static str, auth: &AuthServer, up: &Upstream) -> TestGateway {
    TestGateway::start_file(file, &[(issuer_env, auth.url.clone()), upstream_env(up)])
}

fn claims_refused(method: &'static str, path: &'static str, token: &str) -> Case {
    refuse(method, path, token, 403, "claims_not_satisfied", "claims")
}

#[test]
fn okta_tokens_scp_cid_and_groups_decide_and_the_groups_member_alone_refunds() {
    // Okta "Access token" claims (developer.okta.com/docs/api/openapi/okta-oauth/guides/
    // overview): `scp` array, `cid`, `uid`; `groups` from a groups claim rule.
    let auth = AuthServer::start();
    let upstream = Upstream::start();
    let user = |login: &str, uid: &str, groups: Value| {
        auth.set_claims(
            login,
            json!({"scp": ["openid", "payments.read", "payments.write"], "cid": "payments-web",
                   "uid": uid, "groups": groups}),
        );
        auth.user_token(login, "payments-web", "payments.read", PAYMENTS)
    };
    let ada = user(
        "ada@example.com",
        "00u1ada",
        json!(["Everyone", "payments-admins"]),
    );
    let bob = user("bob@example.com", "00u2bob", json!(["Everyone"]));
    auth.set_claims(
        "payments-batch",
        json!({"scp": ["payments.read", "payments.settle"], "cid": "payments-batch"}),
    );
    let batch = auth.client_token("payments-batch", "payments.read", PAYMENTS);
    let gw = recipe("config/examples/okta.yaml", "OKTA_ISSUER", &auth, &upstream);
    play(
        &gw,
        &upstream,
        &[
            allow(
                "GET",
                "/payments",
                &ada,
                &[
                    ("x-auth-subject", "ada@example.com"),
                    ("x-auth-client-id", "payments-web"),
                    ("x-auth-user-id", "00u1ada"),
                    ("x-auth-groups", "Everyone,payments-admins"),
                    ("x-auth-principal", "user"),
                ],
            ),
            allow("POST", "/payments/p1/refund", &ada, &[]),
            claims_refused("POST", "/payments/p1/refund", &bob),
            allow(
                "POST",
                "/settlements",
                &batch,
                &[
                    ("x-auth-principal", "app"),
                    ("x-auth-client-id", "payments-batch"),
                ],
            ),
            // `scp` is what counts: the token's `scope` (payments.read) has no settle.
            refuse(
                "POST",
                "/settlements",
                &ada,
                403,
                "insufficient_scope",
                "app token",
            ),
            refuse(
                "POST",
                "/payments/p1/refund",
                &batch,
                403,
                "insufficient_scope",
                "user token",
            ),
        ],
    );
}

#[test]
fn entra_id_users_need_the_tenant_and_scp_and_daemons_are_told_by_idtyp_and_use_roles() {
    // Entra ID "Access token claims reference" (learn.microsoft.com/en-us/entra/
    // identity-platform/access-token-claims-reference): v2.0 tokens, `scp` space-separated
    // for delegated access, `roles` for app roles, `tid`, `azp`, `oid`, `idtyp: app`.
    const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    let auth = AuthServer::start();
    let upstream = Upstream::start();
    let user = |sub: &str, tid: &str, roles: Value| {
        auth.set_claims(
            sub,
            json!({"ver": "2.0", "scp": "Payments.Read Payments.ReadWrite", "tid": tid,
                   "azp": "payments-web", "oid": format!("oid-{sub}"), "roles": roles}),
        );
        auth.user_token(sub, "payments-web", "Payments.Read", PAYMENTS)
    };
    let ada = user(
        "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ",
        TENANT,
        json!(["Approver"]),
    );
    let bob = user(
        "BBBBBBBBBBBBBBBBBBBBBIkzqFVrSaSaFHy782bbtaQ",
        TENANT,
        json!([]),
    );
    let guest = user(
        "CCCCCCCCCCCCCCCCCCCCCIkzqFVrSaSaFHy782bbtaQ",
        "f8cdef31-a31e-4b4a-93e4-5f571e91255a",
        json!(["Approver"]),
    );
    // An app-only token: no `scp`, `roles`, `idtyp: app`.
    auth.set_claims(
        "payments-batch",
        json!({"ver": "2.0", "tid": TENANT, "azp": "payments-batch", "idtyp": "app",
               "oid": "oid-daemon", "roles": ["Payments.Read.All"]}),
    );
    let daemon = auth.client_token("payments-batch", "payments.read", PAYMENTS);
    let gw = recipe(
        "config/examples/entra-id.yaml",
        "ENTRA_ISSUER",
        &auth,
        &upstream,
    );
    play(
        &gw,
        &upstream,
        &[
            allow(
                "GET",
                "/payments",
                &ada,
                &[
                    ("x-auth-principal", "user"),
                    ("x-auth-client-id", "payments-web"),
                    ("x-auth-tenant", TENANT),
                ],
            ),
            allow(
                "GET",
                "/payments",
                &daemon,
                &[
                    ("x-auth-principal", "app"),
                    ("x-auth-object-id", "oid-daemon"),
                ],
            ),
            allow("POST", "/payments/p1/approve", &ada, &[]),
            claims_refused("POST", "/payments/p1/approve", &bob),
            // Another tenant's user, with every scope and role: refused.
            claims_refused("GET", "/payments", &guest),
            claims_refused("POST", "/payments/p1/approve", &guest),
            refuse(
                "POST",
                "/payments/p1/approve",
                &daemon,
                403,
                "insufficient_scope",
                "user",
            ),
        ],
    );
}

#[test]
fn auth0_permissions_decide_gty_marks_machine_tokens_and_a_namespaced_role_gates_refunds() {
    // Auth0 "Access Token Profiles" and "Enable Role-Based Access Control for APIs"
    // (auth0.com/docs): `permissions` array, `azp`, `gty: client-credentials` on M2M tokens,
    // custom claims namespaced by a URL.
    let auth = AuthServer::start();
    let upstream = Upstream::start();
    let user = |sub: &str, permissions: Value, roles: Value| {
        auth.set_claims(
            sub,
            json!({"permissions": permissions, "azp": "payments-web",
                   "https://example.com/roles": roles}),
        );
        auth.user_token(sub, "payments-web", "read:payments", PAYMENTS)
    };
    let ada = user(
        "auth0|ada",
        json!(["read:payments", "refund:payments"]),
        json!(["finance"]),
    );
    let bob = user(
        "auth0|bob",
        json!(["read:payments", "refund:payments"]),
        json!(["support"]),
    );
    auth.set_claims(
        "payments-batch",
        json!({"permissions": ["read:payments", "settle:payments"], "azp": "payments-batch",
               "gty": "client-credentials"}),
    );
    let m2m = auth.client_token("payments-batch", "read:payments", PAYMENTS);
    let gw = recipe(
        "config/examples/auth0.yaml",
        "AUTH0_ISSUER",
        &auth,
        &upstream,
    );
    play(
        &gw,
        &upstream,
        &[
            allow(
                "POST",
                "/payments/p1/refund",
                &ada,
                &[("x-auth-roles", "finance"), ("x-auth-subject", "auth0|ada")],
            ),
            claims_refused("POST", "/payments/p1/refund", &bob),
            // `gty` makes it an app token (its `sub` is not what tells, in Auth0 it is
            // `<client>@clients`); settling is for apps.
            allow("POST", "/settlements", &m2m, &[("x-auth-principal", "app")]),
            refuse(
                "POST",
                "/settlements",
                &ada,
                403,
                "insufficient_scope",
                "app token",
            ),
            allow("GET", "/payments", &m2m, &[]),
        ],
    );
}

#[test]
fn keycloak_realm_and_client_roles_decide_service_accounts_are_apps_and_introspection_agrees() {
    // Keycloak Server Administration Guide (www.keycloak.org/docs/latest/server_admin),
    // "Role scope mappings" and "Service accounts": `realm_access.roles`,
    // `resource_access.<client>.roles`, `azp`, `preferred_username`,
    // `service-account-<client>` for client-credentials tokens.
    let auth = AuthServer::start();
    let upstream = Upstream::start();
    let user = |sub: &str, name: &str, realm: Value, client: Value| {
        auth.set_claims(
            sub,
            json!({"azp": "payments-web", "preferred_username": name,
                   "realm_access": {"roles": realm},
                   "resource_access": {"payments-api": {"roles": client}}}),
        );
        auth.user_token(sub, "payments-web", "payments.read", PAYMENTS)
    };
    let ada = user(
        "0b5d4c2e-ada",
        "ada",
        json!(["offline_access", "auditor"]),
        json!(["admin"]),
    );
    let bob = user("7f3a9e1d-bob", "bob", json!(["offline_access"]), json!([]));
    // The same claims behind an opaque token: RFC 7662 introspection answers them.
    let ada_opaque: String = {
        let resp: Value = reqwest::blocking::Client::new()
            .post(format!("{}/control/user-token", auth.url))
            .json(&json!({"sub": "0b5d4c2e-ada", "client_id": "payments-web",
                          "scope": "payments.read", "resource": PAYMENTS, "format": "opaque"}))
            .send()
            .unwrap()
            .json()
            .unwrap();
        resp["access_token"].as_str().unwrap().to_string()
    };
    assert!(!ada_opaque.contains('.'), "an opaque token");
    auth.set_claims(
        "payments-batch",
        json!({"azp": "payments-batch", "preferred_username": "service-account-payments-batch",
               "realm_access": {"roles": ["offline_access"]}}),
    );
    let service = auth.client_token("payments-batch", "payments.read", PAYMENTS);
    let gw = recipe(
        "config/examples/keycloak.yaml",
        "KEYCLOAK_ISSUER",
        &auth,
        &upstream,
    );
    play(
        &gw,
        &upstream,
        &[
            allow(
                "GET",
                "/audit",
                &ada,
                &[
                    ("x-auth-username", "ada"),
                    ("x-auth-realm-roles", "offline_access,auditor"),
                ],
            ),
            allow("GET", "/audit", &ada_opaque, &[("x-auth-username", "ada")]),
            claims_refused("GET", "/audit", &bob),
            allow("GET", "/admin/users", &ada, &[]),
            allow("GET", "/admin/users", &ada_opaque, &[]),
            claims_refused("GET", "/admin/users", &bob),
            allow("POST", "/batch", &service, &[("x-auth-principal", "app")]),
            refuse(
                "POST",
                "/batch",
                &ada,
                403,
                "insufficient_scope",
                "app token",
            ),
            refuse(
                "GET",
                "/admin/users",
                &service,
                403,
                "insufficient_scope",
                "user token",
            ),
        ],
    );
    assert!(
        auth.introspections() >= 1,
        "the opaque token was introspected"
    );
}

#[test]
fn the_upstream_verifies_the_signed_assertion_and_rate_limits_and_report_mode_hold_end_to_end() {
    let auth = AuthServer::start();
    let upstream = Upstream::start();
    auth.set_claims("ada", json!({"email": "ada@example.com"}));
    let ada = auth.user_token("ada", "payments-web", "payments.read", PAYMENTS);
    let key = format!("{}/benches/keys/eddsa.pem", env!("CARGO_MANIFEST_DIR"));
    let yaml = config(
        r#"
server: { listen: "{listen}" }
admin: { listen: "{admin}" }
issuers:
  - { id: corp, issuer: "{issuer}", audiences: [https://payments.example.com], algorithms: [RS256] }
upstreams: { api: { url: "{upstream}" } }
forward:
  identity_assertion:
    key: "KEY"
    issuer: https://gateway.test
    audience: https://api.internal
    claims: [email]
    jwks_path: /.well-known/scopegate-jwks.json
routes:
  - name: limited
    match: { path: /limited }
    upstream: api
    require: { scopes: payments.read }
    rate_limits: [ { per: subject, requests: 2, every: 1m } ]
  - name: trial
    match: { path: /trial }
    upstream: api
    mode: report
    require: { scopes: payments.write }
"#,
        &auth,
        &upstream,
    )
    .replace("KEY", &key);
    let gw = TestGateway::start(&yaml);
    let client = reqwest::blocking::Client::new();

    // The assertion: a client's copy never passes; the gateway's verifies with its JWKS,
    // from the admin port and from the public path alike.
    let r = client
        .get(format!("{}/limited", gw.url))
        .bearer_auth(&ada)
        .header("x-auth-assertion", "forged")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let seen: Value = r.json().unwrap();
    let sent = seen["headers"]["x-auth-assertion"].as_array().unwrap();
    assert_eq!(sent.len(), 1);
    let assertion = sent[0].as_str().unwrap();
    let admin_jwks: jsonwebtoken::jwk::JwkSet =
        get(&format!("{}/.well-known/jwks.json", gw.admin), None)
            .json()
            .unwrap();
    let public_jwks: jsonwebtoken::jwk::JwkSet =
        get(&format!("{}/.well-known/scopegate-jwks.json", gw.url), None)
            .json()
            .unwrap();
    assert_eq!(admin_jwks.keys.len(), 1);
    assert_eq!(
        public_jwks.keys[0].common.key_id,
        admin_jwks.keys[0].common.key_id
    );
    let kid = jsonwebtoken::decode_header(assertion).unwrap().kid.unwrap();
    let jwk = admin_jwks.find(&kid).unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    v.set_audience(&["https://api.internal"]);
    v.set_issuer(&["https://gateway.test"]);
    let claims = jsonwebtoken::decode::<Value>(
        assertion,
        &jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap(),
        &v,
    )
    .unwrap()
    .claims;
    assert_eq!(claims["sub"], "ada");
    assert_eq!(claims["email"], "ada@example.com");
    assert_eq!(claims["client_id"], "payments-web");
    let lifetime = claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap();
    assert!(lifetime <= 60, "{lifetime}");

    // Two requests a minute for ada: the third is a 429 that never reaches the upstream.
    assert_eq!(
        get(&format!("{}/limited", gw.url), Some(&ada)).status(),
        200
    );
    let before = upstream.count();
    let r = get(&format!("{}/limited", gw.url), Some(&ada));
    assert_eq!(r.status(), 429);
    assert!(header(&r, "retry-after").parse::<u64>().unwrap() >= 1);
    assert_eq!(
        header(&r, "ratelimit-policy"),
        "\"limited-subject\";q=2;w=60"
    );
    assert!(header(&r, "ratelimit").starts_with("\"limited-subject\";r=0;t="));
    assert_eq!(r.json::<Value>().unwrap()["error"], "rate_limited");
    assert_eq!(upstream.count(), before, "a 429 is never forwarded");

    // Report mode: what would be a 403 (no payments.write) or a 401 is forwarded, counted.
    let r = get(&format!("{}/trial", gw.url), Some(&ada));
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().unwrap()["headers"]["x-auth-subject"],
        json!(["ada"])
    );
    let r = get(&format!("{}/trial", gw.url), None);
    assert_eq!(r.status(), 200);
    assert!(r.json::<Value>().unwrap()["headers"]["x-auth-subject"].is_null());
    let metrics = gw.metrics();
    for reason in ["insufficient_scope", "unauthorized"] {
        let line = format!(
            "scopegate_would_refuse_total{{front_end=\"proxy\",reason=\"{reason}\",route=\"trial\"}} 1"
        );
        assert!(metrics.contains(&line), "{line} in\n{metrics}");
    }
}
