use super::*;

fn header<'a>(a: &'a Rendered, name: &str) -> Option<&'a str> {
    a.headers
        .iter()
        .find(|(n, _)| n.as_str() == name)
        .map(|(_, v)| v.to_str().unwrap())
}

fn body(a: &Rendered) -> serde_json::Value {
    serde_json::from_slice(&a.body).unwrap()
}

#[test]
fn no_credential_is_401_with_a_bare_challenge() {
    let a = Refusal::NoCredential.render();
    assert_eq!(a.status, 401);
    assert_eq!(
        header(&a, "www-authenticate"),
        Some("Bearer realm=\"scopegate\"")
    );
    assert_eq!(body(&a)["error"], "unauthorized");
}

#[test]
fn invalid_token_is_401_with_error_and_description() {
    let a = Refusal::InvalidToken(TokenError::Expired).render();
    assert_eq!(a.status, 401);
    assert_eq!(
        header(&a, "www-authenticate"),
        Some(
            "Bearer realm=\"scopegate\", error=\"invalid_token\", error_description=\"the token has expired\""
        )
    );
    assert_eq!(body(&a)["error_description"], "the token has expired");
}

#[test]
fn retired_credentials_and_other_issuers_are_401_invalid_token_saying_why() {
    let a = Refusal::RetiredCredential.render();
    assert_eq!(a.status, 401);
    let w = header(&a, "www-authenticate").unwrap();
    assert!(w.contains("error=\"invalid_token\""), "{w}");
    assert!(w.contains("use an OAuth 2.0 access token"), "{w}");
    let a = Refusal::IssuerNotAccepted.render();
    assert_eq!(a.status, 401);
    assert_eq!(
        body(&a)["error_description"],
        "the token's issuer is not accepted for this resource"
    );
}

#[test]
fn an_unsupported_authentication_method_is_401_with_the_bare_challenge() {
    for e in [
        CredentialError::QueryParameterDisabled,
        CredentialError::NoScheme,
    ] {
        let a = Refusal::InvalidRequest(e).render();
        assert_eq!(a.status, 401);
        assert_eq!(
            header(&a, "www-authenticate"),
            Some("Bearer realm=\"scopegate\"")
        );
        assert_eq!(body(&a)["error_description"], e.description());
    }
}

#[test]
fn malformed_request_is_400_invalid_request() {
    let a = Refusal::InvalidRequest(CredentialError::TwoAuthorizationHeaders).render();
    assert_eq!(a.status, 400);
    assert!(
        header(&a, "www-authenticate")
            .unwrap()
            .contains("error=\"invalid_request\"")
    );
}

#[test]
fn insufficient_scope_is_403_with_scope_and_github_headers() {
    let a = Refusal::InsufficientScope {
        forbidden: Arc::new(Forbidden::new(
            "repo public_repo",
            "repo, public_repo",
            "a token with repo or public_repo",
        )),
        granted: HeaderValue::from_static("read:org"),
    }
    .render();
    assert_eq!(a.status, 403);
    let w = header(&a, "www-authenticate").unwrap();
    assert!(w.contains("error=\"insufficient_scope\""), "{w}");
    assert!(w.ends_with("scope=\"repo public_repo\""), "{w}");
    assert_eq!(
        header(&a, "x-accepted-oauth-scopes"),
        Some("repo, public_repo")
    );
    assert_eq!(header(&a, "x-oauth-scopes"), Some("read:org"));
    assert_eq!(body(&a)["error"], "insufficient_scope");
}

#[test]
fn routing_refusals_have_their_status_and_allow() {
    assert_eq!(Refusal::NotFound.render().status, 404);
    let allow = MethodSet::parse(&["GET".into()]).unwrap();
    let a = Refusal::MethodNotAllowed(allow).render();
    assert_eq!(a.status, 405);
    assert_eq!(header(&a, "allow"), Some("GET, HEAD"));
    assert_eq!(
        Refusal::BadPath(PathError::EncodedSlash).render().status,
        400
    );
}

#[test]
fn hostile_framing_is_400_and_closes_the_connection() {
    let a = Refusal::BadFraming(FramingError::ContentLengthAndTransferEncoding).render();
    assert_eq!(a.status, 400);
    assert!(a.close);
    assert_eq!(
        Refusal::BadFraming(FramingError::UriTooLong)
            .render()
            .status,
        414
    );
    assert_eq!(
        Refusal::BadFraming(FramingError::HeadersTooLarge)
            .render()
            .status,
        431
    );
}

#[test]
fn unavailable_is_503_with_retry_after() {
    let a = Refusal::Unavailable(Unreachable::Introspection).render();
    assert_eq!(a.status, 503);
    assert_eq!(header(&a, "retry-after"), Some("5"));
}

#[test]
fn unmet_claim_conditions_are_a_403_that_asks_for_no_scope() {
    let a = Refusal::ClaimsNotSatisfied.render();
    assert_eq!(a.status, 403);
    assert_eq!(body(&a)["error"], "claims_not_satisfied");
    // No challenge: `insufficient_scope` would send the client for scopes that cannot help.
    assert_eq!(header(&a, "www-authenticate"), None);
    assert_eq!(header(&a, "x-accepted-oauth-scopes"), None);
}

#[test]
fn every_answer_is_json_and_a_precomputed_body_is_what_serde_json_would_write() {
    let allow = MethodSet::parse(&["GET".into()]).unwrap();
    for r in [
        Refusal::NotFound,
        Refusal::MethodNotAllowed(allow),
        Refusal::NoCredential,
        Refusal::ClaimsNotSatisfied,
        Refusal::MissingOrganization,
        Refusal::AmbiguousOrganization,
        Refusal::Unavailable(Unreachable::Introspection),
        Refusal::BadGateway,
        Refusal::GatewayTimeout,
        Refusal::PayloadTooLarge,
        Refusal::BodyTimeout,
        Refusal::Overloaded,
    ] {
        let a = r.render();
        assert_eq!(header(&a, "content-type"), Some("application/json"));
        let v = body(&a);
        let (error, description) = (v["error"].as_str(), v["error_description"].as_str());
        assert_eq!(
            a.body,
            json_body(error.unwrap(), description.unwrap()),
            "{r:?}"
        );
    }
}

#[test]
fn the_logged_reason_is_the_answers_error_code_or_names_what_a_503_could_not_reach() {
    use crate::policy::OrgDenial;
    use crate::token::TokenError;
    for r in [
        Refusal::NotFound,
        Refusal::NoCredential,
        Refusal::InvalidToken(TokenError::Expired),
        Refusal::RetiredCredential,
        Refusal::ClaimsNotSatisfied,
        Refusal::Organization(OrgDenial::NotAMember("acme".into())),
        Refusal::Organization(OrgDenial::Restricted("acme".into())),
        Refusal::MissingOrganization,
        Refusal::BadGateway,
        Refusal::GatewayTimeout,
        Refusal::PayloadTooLarge,
        Refusal::BodyTimeout,
        Refusal::Overloaded,
    ] {
        assert_eq!(body(&r.render())["error"], r.reason(), "{r:?}");
    }
    // A 503 says which part could not be reached in the log and the metrics; the client
    // gets the standard code.
    let r = Refusal::Unavailable(Unreachable::IntrospectionCircuitOpen);
    assert_eq!(body(&r.render())["error"], "temporarily_unavailable");
    assert_eq!(r.reason(), "introspection_circuit_open");
}
