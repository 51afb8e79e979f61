//! Test servers for the providers that check tokens through endpoints of their own. The real
//! ones cannot be reached from CI; these follow the request and answer shapes of the
//! providers' published pages, named at each handler.

use super::serve;
use base64::Engine;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// The GitHub OAuth app the gateway is configured as (client id in GitHub's `Iv1.` shape).
pub const GITHUB_APP: (&str, &str) = ("Iv1.8a61f9b3a7aba766", "github-app-secret");
/// The Google OAuth client whose tokens the API accepts, and another one.
pub const GOOGLE_CLIENT: &str = "1234567890-scopegate.apps.googleusercontent.com";
pub const OTHER_GOOGLE_CLIENT: &str = "999999999-other.apps.googleusercontent.com";

#[derive(Default)]
struct Known {
    /// Google: access token → tokeninfo answer.
    google: HashMap<String, Value>,
    /// GitHub: access token → check-token answer.
    github: HashMap<String, Value>,
    /// GitHub: (token, org) → membership answer (status, `X-GitHub-SSO`, body).
    memberships: HashMap<(String, String), (u16, Option<String>, Value)>,
}

#[derive(Default)]
struct Shared {
    known: Mutex<Known>,
    /// Every endpoint answers 503, as a provider in an outage.
    down: AtomicBool,
    tokeninfo_calls: AtomicUsize,
    check_calls: AtomicUsize,
    membership_calls: AtomicUsize,
}

pub struct Providers {
    /// Google's tokeninfo endpoint.
    pub tokeninfo: String,
    /// GitHub's API root.
    pub github_api: String,
    shared: Arc<Shared>,
    _runtime: tokio::runtime::Runtime,
}

fn answer(status: u16, body: Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

/// `name=value` pairs of a query or form body (test tokens need no percent-decoding).
fn param<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.split('&')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
}

impl Providers {
    pub fn start() -> Providers {
        let shared = Arc::new(Shared::default());
        let state = shared.clone();
        let (addr, runtime) = serve(move |req: Request<Incoming>| {
            let state = state.clone();
            async move { state.handle(req).await }
        });
        Providers {
            tokeninfo: format!("http://{addr}/tokeninfo"),
            github_api: format!("http://{addr}"),
            shared,
            _runtime: runtime,
        }
    }

    /// A Google access token (`ya29.` + base64url) of `client` for `sub` (a service account
    /// when `None`), with `scope`, valid for `seconds` more.
    pub fn google_token(
        &self,
        client: &str,
        sub: Option<&str>,
        scope: &str,
        seconds: u64,
    ) -> String {
        let token = format!("ya29.a0Af{}", unique(&[client, sub.unwrap_or("sa"), scope]));
        let exp = scopegate::clock::unix_now() + seconds;
        let mut info = json!({
            "azp": client, "aud": client, "scope": scope,
            "exp": exp.to_string(), "expires_in": seconds.to_string(),
            "access_type": "online",
        });
        if let Some(sub) = sub {
            info["sub"] = sub.into();
            info["email"] = format!("{sub}@example.com").into();
            info["email_verified"] = "true".into();
        }
        self.shared
            .known
            .lock()
            .unwrap()
            .google
            .insert(token.clone(), info);
        token
    }

    /// A GitHub OAuth-app user token (`gho_` + 36 characters) of `app` for `login`; it does
    /// not expire.
    pub fn github_token(&self, app: &str, login: &str, scopes: &[&str]) -> String {
        self.github_token_with("gho_", app, login, scopes, None)
    }

    /// A GitHub App user-to-server token (`ghu_`), expiring in `seconds`.
    pub fn github_app_user_token(&self, app: &str, login: &str, seconds: u64) -> String {
        let at = time::OffsetDateTime::from_unix_timestamp(
            (scopegate::clock::unix_now() + seconds) as i64,
        )
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
        self.github_token_with("ghu_", app, login, &[], Some(at))
    }

    fn github_token_with(
        &self,
        prefix: &str,
        app: &str,
        login: &str,
        scopes: &[&str],
        expires_at: Option<String>,
    ) -> String {
        let seed = [
            app,
            login,
            &scopes.join(","),
            prefix,
            expires_at.as_deref().unwrap_or(""),
        ];
        let token = format!("{prefix}{}", &unique(&seed)[..36]);
        let check = json!({
            "id": 1, "url": "https://api.github.com/authorizations/1",
            "scopes": scopes, "token": token, "token_last_eight": &token[token.len() - 8..],
            "hashed_token": "25f94a2a5c7fbaf499c665bc73d67c1c87e496da8985131633ee0a95819db2e8",
            "app": {"url": "http://my-github-app.com", "name": "my github app", "client_id": app},
            "note": null, "note_url": null, "fingerprint": null,
            "created_at": "2011-09-06T17:26:27Z", "updated_at": "2011-09-06T20:39:23Z",
            "expires_at": expires_at,
            "user": {"login": login, "id": github_user_id(login), "type": "User", "site_admin": false},
        });
        self.shared
            .known
            .lock()
            .unwrap()
            .github
            .insert(token.clone(), check);
        token
    }

    /// What `GET /user/memberships/orgs/{org}` answers for `token`: `active`, `pending`,
    /// `sso` (403 with `X-GitHub-SSO`), `restricted` (403, OAuth App access restrictions).
    pub fn github_membership(&self, token: &str, org: &str, how: &str) {
        let entry = match how {
            "active" | "pending" => (
                200,
                None,
                json!({"url": format!("https://api.github.com/orgs/{org}/memberships/x"),
                       "state": how, "role": "member",
                       "organization_url": format!("https://api.github.com/orgs/{org}"),
                       "organization": {"login": org}, "user": {"login": "x"}}),
            ),
            "sso" => (
                403,
                Some(format!(
                    "required; url=https://github.com/orgs/{org}/sso?authorization_request=AZSCKtL4U8yX1H3sCQIVnVgmjmon5fWxks5YrqhJgah0b2tlbl9pZM4EuMz4"
                )),
                json!({"message": "Resource protected by organization SAML enforcement. You must grant your OAuth token access to this organization."}),
            ),
            "restricted" => (
                403,
                None,
                json!({"message": format!("Although you appear to have the correct authorization credentials, the `{org}` organization has enabled OAuth App access restrictions, meaning that data access to third-parties is limited. For more information on these restrictions, including how to enable this app, visit https://docs.github.com/articles/restricting-access-to-your-organization-s-data/")}),
            ),
            other => panic!("no such membership answer: {other}"),
        };
        self.shared
            .known
            .lock()
            .unwrap()
            .memberships
            .insert((token.to_string(), org.to_string()), entry);
    }

    /// Takes every endpoint down (503) or brings it back.
    pub fn set_down(&self, down: bool) {
        self.shared.down.store(down, Ordering::SeqCst);
    }

    pub fn tokeninfo_calls(&self) -> usize {
        self.shared.tokeninfo_calls.load(Ordering::SeqCst)
    }
    pub fn check_calls(&self) -> usize {
        self.shared.check_calls.load(Ordering::SeqCst)
    }
    pub fn membership_calls(&self) -> usize {
        self.shared.membership_calls.load(Ordering::SeqCst)
    }
}

/// Characters for a made-up token, distinct per call.
fn unique(parts: &[&str]) -> String {
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let n = CALLS.fetch_add(1, Ordering::SeqCst).to_string();
    let digest = scopegate::token::hash(&[parts.join("\n"), n].join("\n"));
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

impl Shared {
    async fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let (parts, body) = req.into_parts();
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let body = String::from_utf8_lossy(&body).to_string();
        let path = parts.uri.path().to_string();
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        if self.down.load(Ordering::SeqCst) {
            return answer(503, json!({"message": "Service Unavailable"}));
        }
        let known = |f: &dyn Fn(&Known) -> Option<Value>| f(&self.known.lock().unwrap());

        // Google, developers.google.com/identity/protocols/oauth2/javascript-implicit-flow
        // ("Token validation"): `access_token` as a parameter; 200 with the token's data,
        // 400 `invalid_token` for a token that is not (or no longer) valid.
        if path == "/tokeninfo" {
            self.tokeninfo_calls.fetch_add(1, Ordering::SeqCst);
            let token = param(parts.uri.query().unwrap_or(""), "access_token")
                .or_else(|| param(&body, "access_token"))
                .unwrap_or("");
            let now = scopegate::clock::unix_now();
            let live =
                |info: &Value| info["exp"].as_str().and_then(|e| e.parse::<u64>().ok()) > Some(now);
            return match known(&|k| k.google.get(token).cloned()) {
                // Expired tokens are answered like unknown ones.
                Some(info) if live(&info) => answer(200, info),
                _ => answer(
                    400,
                    json!({"error": "invalid_token", "error_description": "Invalid Value"}),
                ),
            };
        }

        // GitHub requires a User-Agent on every request
        // (docs.github.com/en/rest/using-the-rest-api/getting-started-with-the-rest-api#user-agent).
        if header("user-agent").is_none() {
            return answer(
                403,
                json!({"message": "Request forbidden by administrative rules. Please make sure your request has a User-Agent header"}),
            );
        }

        // GitHub, docs.github.com/en/rest/apps/oauth-applications#check-a-token:
        // Basic client_id:client_secret, `{"access_token": …}`; 404 for an invalid token.
        if let Some(client_id) = path
            .strip_prefix("/applications/")
            .and_then(|p| p.strip_suffix("/token"))
        {
            self.check_calls.fetch_add(1, Ordering::SeqCst);
            let basic = base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", GITHUB_APP.0, GITHUB_APP.1));
            if parts.method != http::Method::POST
                || client_id != GITHUB_APP.0
                || header("authorization") != Some(format!("Basic {basic}"))
            {
                return answer(401, json!({"message": "Bad credentials"}));
            }
            let token: Value = serde_json::from_str(&body).unwrap_or_default();
            let token = token["access_token"].as_str().unwrap_or("").to_string();
            let expired = |check: &Value| {
                check["expires_at"].as_str().is_some_and(|at| {
                    time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
                        .is_ok_and(|at| at.unix_timestamp() <= scopegate::clock::unix_now() as i64)
                })
            };
            return match known(&|k| k.github.get(&token).cloned()) {
                // An expired token is an invalid one: 404.
                Some(check) if check["app"]["client_id"] == client_id && !expired(&check) => {
                    answer(200, check)
                }
                _ => answer(404, json!({"message": "Not Found"})),
            };
        }

        // GitHub, docs.github.com/en/rest/orgs/members#get-an-organization-membership-for-the-authenticated-user
        if let Some(org) = path.strip_prefix("/user/memberships/orgs/") {
            self.membership_calls.fetch_add(1, Ordering::SeqCst);
            let token = header("authorization")
                .and_then(|a| a.strip_prefix("Bearer ").map(str::to_string))
                .unwrap_or_default();
            if known(&|k| k.github.get(&token).cloned()).is_none() {
                return answer(401, json!({"message": "Bad credentials"}));
            }
            let entry = self
                .known
                .lock()
                .unwrap()
                .memberships
                .get(&(token, org.to_string()))
                .cloned();
            return match entry {
                Some((status, sso, body)) => {
                    let mut r = answer(status, body);
                    if let Some(sso) = sso {
                        r.headers_mut().insert("x-github-sso", sso.parse().unwrap());
                    }
                    r
                }
                None => answer(404, json!({"message": "Not Found"})),
            };
        }
        answer(
            StatusCode::NOT_FOUND.as_u16(),
            json!({"message": "Not Found"}),
        )
    }
}

/// alice's GitHub user id.
#[allow(dead_code)] // used by some of the test binaries only
pub const ALICE_GITHUB_ID: &str = "583231";

/// A GitHub user's immutable numeric id, as the check-token answer's `user.id` carries it
/// (the login can be renamed and then taken by someone else; the id cannot).
#[allow(dead_code)] // used by some of the test binaries only
pub fn github_user_id(login: &str) -> u64 {
    match login {
        "alice" => ALICE_GITHUB_ID.parse().unwrap(),
        "bob" => 9_919,
        other => 1_000_000 + other.bytes().map(u64::from).sum::<u64>(),
    }
}
