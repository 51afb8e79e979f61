//! The request that asks an issuer about a token, in the issuer's dialect. How the answer
//! reads is `token::introspection`'s business.

use crate::token::{Dialect, IntrospectionRules};
use http::header::{ACCEPT, CONTENT_TYPE};

/// GitHub's REST API version the answers are read in.
pub const GITHUB_API_VERSION: &str = "2022-11-28";

/// `POST` to `endpoint` with `token`, as the dialect says.
pub fn request(
    client: &reqwest::Client,
    rules: &IntrospectionRules,
    endpoint: &str,
    token: &str,
) -> reqwest::RequestBuilder {
    let form = CONTENT_TYPE;
    match rules.dialect {
        // RFC 7662 §2.1, the gateway authenticated as a client (RFC 6749 §2.3.1).
        Dialect::Rfc7662 => {
            let mut body = format!("token={}&token_type_hint=access_token", form_encode(token));
            let mut req = client.post(endpoint).header(ACCEPT, "application/json");
            if rules.post_credentials {
                body.push_str(&format!(
                    "&client_id={}&client_secret={}",
                    form_encode(&rules.client_id),
                    form_encode(&rules.client_secret)
                ));
            } else {
                req = req.basic_auth(
                    form_encode(&rules.client_id),
                    Some(form_encode(&rules.client_secret)),
                );
            }
            req.header(form, "application/x-www-form-urlencoded")
                .body(body)
        }
        // The documented `access_token` parameter, in a form body rather than the URL, so
        // that the token is in no access log on the way.
        Dialect::GoogleTokeninfo => client
            .post(endpoint)
            .header(ACCEPT, "application/json")
            .header(form, "application/x-www-form-urlencoded")
            .body(format!("access_token={}", form_encode(token))),
        // `POST /applications/{client_id}/token`, the OAuth app's credentials as Basic.
        Dialect::Github => client
            .post(format!(
                "{}/applications/{}/token",
                endpoint.trim_end_matches('/'),
                form_encode(&rules.client_id)
            ))
            .basic_auth(&rules.client_id, Some(&rules.client_secret))
            .header(ACCEPT, "application/vnd.github+json")
            .header("x-github-api-version", GITHUB_API_VERSION)
            .json(&serde_json::json!({ "access_token": token })),
    }
}

/// `application/x-www-form-urlencoded` encoding of one value (RFC 6749 §2.3.1 asks the same
/// for the client id and secret in HTTP Basic).
pub fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
