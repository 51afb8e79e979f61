//! What each dialect's answers mean. The shapes come from the providers' pages named in
//! `google.rs` and `github.rs`.

use super::*;
use crate::principal::Kind;
use crate::scope::ScopeUniverse;
use crate::token::Claim;
use crate::token::dialect::Status;
use crate::token::issuer::{IntrospectionRules, OpaqueTokens};
use crate::token::testing;
use serde_json::json;

const NOW: u64 = 1_700_000_000;

fn issuer(dialect: Dialect, audiences: &[&str]) -> Issuer {
    let mut i = testing::issuer().with_introspection(
        Some(IntrospectionRules {
            client_id: "Iv1.8a61f9b3a7aba766".into(),
            ..IntrospectionRules::for_tests(dialect)
        }),
        OpaqueTokens::default(),
    );
    i.audiences = audiences.iter().map(|a| a.to_string()).collect();
    i
}

fn judged(dialect: Dialect, answer: serde_json::Value) -> Result<Principal, TokenError> {
    let audiences = ["1234567890-abc.apps.googleusercontent.com"];
    let issuer = issuer(dialect, &audiences);
    let principals = Principals::new(
        ScopeUniverse::build(&Default::default(), ["repo", "read:org", "email"]),
        Default::default(),
        std::slice::from_ref(&issuer),
    );
    judge(
        answer.as_object().unwrap(),
        0,
        &issuer,
        &principals,
        NOW,
        300,
    )
}

/// Google's documented answer for a user's access token (numbers as strings).
fn google(extra: serde_json::Value) -> serde_json::Value {
    let mut a = json!({
        "azp": "1234567890-abc.apps.googleusercontent.com",
        "aud": "1234567890-abc.apps.googleusercontent.com",
        "sub": "110169484474386276334",
        "scope": "openid email",
        "exp": (NOW + 3599).to_string(),
        "expires_in": "3599",
        "email": "alice@example.com",
        "email_verified": "true",
        "access_type": "online"
    });
    for (k, v) in extra.as_object().unwrap() {
        a[k] = v.clone();
    }
    a
}

#[test]
fn a_google_tokeninfo_answer_is_the_user_for_the_client_until_exp() {
    let p = judged(Dialect::GoogleTokeninfo, google(json!({}))).unwrap();
    assert_eq!(p.subject, "110169484474386276334");
    assert_eq!(p.kind, Kind::User);
    assert_eq!(
        p.client_id.as_deref().unwrap(),
        "1234567890-abc.apps.googleusercontent.com"
    );
    assert_eq!(p.expires_at, NOW + 3599);
    assert!(p.grant.token_scopes.to_str().unwrap().contains("email"));
}

#[test]
fn a_google_service_account_token_without_sub_is_the_app_itself() {
    let mut a = google(json!({"email": "ci-runner@project-1.iam.gserviceaccount.com"}));
    a.as_object_mut().unwrap().remove("sub");
    a.as_object_mut().unwrap().remove("exp");
    let p = judged(Dialect::GoogleTokeninfo, a).unwrap();
    assert_eq!(p.kind, Kind::App);
    assert_eq!(p.expires_at, NOW + 3599, "from expires_in");
}

#[test]
fn a_user_looking_google_answer_without_sub_is_refused_not_taken_for_an_app() {
    let mut a = google(json!({}));
    a.as_object_mut().unwrap().remove("sub");
    assert_eq!(
        judged(Dialect::GoogleTokeninfo, a.clone()).unwrap_err(),
        TokenError::MissingClaim(Claim::Sub)
    );
    let mut lookalike = google(json!({"email": "x@evil.example/.iam.gserviceaccount.com.evil"}));
    lookalike.as_object_mut().unwrap().remove("sub");
    assert_eq!(
        judged(Dialect::GoogleTokeninfo, lookalike).unwrap_err(),
        TokenError::MissingClaim(Claim::Sub)
    );
}

#[test]
fn a_google_token_of_another_client_expired_or_in_error_is_refused() {
    assert_eq!(
        judged(
            Dialect::GoogleTokeninfo,
            google(json!({"aud": "999-other.apps.googleusercontent.com"}))
        )
        .unwrap_err(),
        TokenError::WrongAudience
    );
    assert_eq!(
        judged(
            Dialect::GoogleTokeninfo,
            google(json!({"exp": (NOW - 60).to_string()}))
        )
        .unwrap_err(),
        TokenError::Expired
    );
    assert_eq!(
        judged(Dialect::GoogleTokeninfo, json!({"error": "invalid_token"})).unwrap_err(),
        TokenError::Inactive
    );
    assert_eq!(Dialect::GoogleTokeninfo.status(400), Status::Inactive);
    assert_eq!(Dialect::GoogleTokeninfo.status(500), Status::Failed);
}

/// GitHub's documented "Check a token" answer (abridged to what is read, plus the token).
fn github(extra: serde_json::Value) -> serde_json::Value {
    let mut a = json!({
        "id": 1,
        "scopes": ["repo", "read:org"],
        "token": "gho_16C7e42F292c6912E7710c838347Ae178B4a",
        "token_last_eight": "Ae178B4a",
        "app": {"name": "ci-dashboard", "client_id": "Iv1.8a61f9b3a7aba766"},
        "user": {"login": "octocat", "id": 1, "type": "User"},
        "expires_at": "2023-11-14T22:14:20Z",
        "created_at": "2011-09-06T17:26:27Z"
    });
    for (k, v) in extra.as_object().unwrap() {
        a[k] = v.clone();
    }
    a
}

#[test]
fn a_github_answer_without_the_users_numeric_id_is_refused() {
    let without = github(json!({"user": {"login": "octocat", "type": "User"}}));
    assert_eq!(
        judged(Dialect::Github, without).unwrap_err(),
        TokenError::MissingClaim(Claim::Sub)
    );
    let text_id = github(json!({"user": {"login": "octocat", "id": "1", "type": "User"}}));
    assert_eq!(
        judged(Dialect::Github, text_id).unwrap_err(),
        TokenError::BadClaim(Claim::Sub)
    );
}

#[test]
fn a_github_check_token_answer_is_the_user_with_the_apps_scopes() {
    // 2023-11-14T22:14:20Z is NOW + 60.
    let p = judged(Dialect::Github, github(json!({}))).unwrap();
    // The immutable id, not the login (which can be renamed and taken by someone else).
    assert_eq!(p.subject, "1");
    assert_eq!(p.kind, Kind::User);
    assert_eq!(p.client_id.as_deref().unwrap(), "Iv1.8a61f9b3a7aba766");
    assert_eq!(p.expires_at, NOW + 60);
    assert!(p.grant.token_scopes == "repo, read:org");
    // A token that never expires is trusted no longer than the cache's max_ttl.
    let p = judged(Dialect::Github, github(json!({"expires_at": null}))).unwrap();
    assert_eq!(p.expires_at, NOW + 300);
}

#[test]
fn a_github_token_of_another_app_expired_or_malformed_is_refused() {
    assert_eq!(
        judged(
            Dialect::Github,
            github(json!({"app": {"client_id": "Iv1.other"}}))
        )
        .unwrap_err(),
        TokenError::WrongAudience
    );
    assert_eq!(
        judged(
            Dialect::Github,
            github(json!({"expires_at": "2023-11-14T22:00:00Z"}))
        )
        .unwrap_err(),
        TokenError::Expired
    );
    assert_eq!(
        judged(Dialect::Github, github(json!({"expires_at": "soon"}))).unwrap_err(),
        TokenError::Malformed
    );
    assert_eq!(
        judged(Dialect::Github, github(json!({"scopes": "repo"}))).unwrap_err(),
        TokenError::Malformed
    );
    assert_eq!(Dialect::Github.status(404), Status::Inactive);
    assert_eq!(Dialect::Github.status(422), Status::Inactive);
    assert_eq!(
        Dialect::Github.status(401),
        Status::Failed,
        "our app's credentials"
    );
    assert_eq!(Dialect::Rfc7662.status(404), Status::Failed);
}

#[test]
fn only_github_logins_reach_the_membership_url() {
    assert_eq!(
        membership_path("acme-corp").as_deref(),
        Some("/user/memberships/orgs/acme-corp")
    );
    for bad in [
        "",
        "acme/../admin",
        "acme?x",
        "-acme",
        "acme-",
        "a--b",
        "ac%2fme",
        &"a".repeat(40),
    ] {
        assert_eq!(membership_path(bad), None, "{bad}");
    }
}

#[test]
fn a_membership_answer_reads_as_github_documents_it() {
    use crate::token::Membership::*;
    let read = |status, sso, body: serde_json::Value| {
        read_membership(status, sso, body.to_string().as_bytes())
    };
    assert_eq!(
        read(200, None, json!({"state": "active", "role": "member"})),
        Some(Member)
    );
    assert_eq!(
        read(200, None, json!({"state": "pending"})),
        Some(NotMember)
    );
    assert_eq!(
        read(404, None, json!({"message": "Not Found"})),
        Some(NotMember)
    );
    assert_eq!(
        read(
            403,
            Some("required; url=https://github.com/orgs/acme/sso?authorization_request=x"),
            json!({})
        ),
        Some(SsoRequired)
    );
    assert_eq!(
        read(
            403,
            None,
            json!({"message": "Although you appear to have the correct authorization credentials, the `acme` organization has enabled OAuth App access restrictions, meaning that data access to third-parties is limited."})
        ),
        Some(AppNotApproved)
    );
    assert_eq!(
        read(403, None, json!({"message": "Must have admin rights"})),
        Some(NotMember)
    );
    assert_eq!(
        read(500, None, json!({})),
        None,
        "a failure is not an answer"
    );
    assert_eq!(read(200, None, json!({})), None);
}
