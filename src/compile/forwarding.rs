//! `forward:` — what the upstream receives: identity headers, what is stripped.

use super::header_name;
use super::inputs::Inputs;
use crate::config::schema::{DropOrForward, KeepOrStrip};
use crate::config::{ConfigError, File};
use crate::forward::{AssertionRules, AssertionSigner, ForwardPolicy, ForwardRules, IdentityNames};
use http::HeaderName;

pub fn compile(file: &File, inputs: &Inputs, origin: &str) -> Result<ForwardPolicy, ConfigError> {
    let f = &file.forward;
    let ih = &f.identity_headers;
    let id =
        |what: &str, s: &str| header_name(origin, &format!("forward.identity_headers.{what}"), s);
    let identity = IdentityNames {
        subject: id("subject", &ih.subject)?,
        client_id: id("client_id", &ih.client_id)?,
        scopes: id("scopes", &ih.scopes)?,
        org: id("org", &ih.org)?,
        principal: id("principal", &ih.principal)?,
        issuer: id("issuer", &ih.issuer)?,
        claims: f
            .claim_headers
            .keys()
            .map(|h| header_name(origin, "forward.claim_headers", h))
            .collect::<Result<_, _>>()?,
    };
    let gateway_set = [
        &identity.subject,
        &identity.client_id,
        &identity.scopes,
        &identity.org,
        &identity.principal,
        &identity.issuer,
    ];
    if let Some(h) = identity.claims.iter().find(|h| gateway_set.contains(h)) {
        return Err(ConfigError::new(
            origin,
            format!("forward.claim_headers: `{h}` is an identity header the gateway sets itself"),
        )
        .key("forward.claim_headers"));
    }
    let strip = f
        .strip_headers
        .iter()
        .map(|h| header_name(origin, "forward.strip_headers", h))
        .collect::<Result<Vec<_>, _>>()?;
    let legacy_headers: Vec<HeaderName> = file
        .credentials
        .iter()
        .filter_map(|c| c.header.as_ref())
        .filter_map(|h| HeaderName::from_bytes(h.as_bytes()).ok())
        .collect();
    let strip_authorization = f.authorization == KeepOrStrip::Strip;
    // `authorization: strip` covers legacy credential headers too (checked with them).
    let strip = strip
        .into_iter()
        .chain(
            legacy_headers
                .iter()
                .filter(|_| strip_authorization)
                .cloned(),
        )
        .collect();
    let credential_schemes = file
        .tokens
        .schemes
        .iter()
        .chain(file.credentials.iter().filter_map(|c| c.scheme.as_ref()))
        .cloned()
        .collect();
    Ok(ForwardPolicy::new(ForwardRules {
        identity,
        strip,
        strip_prefixes: f.strip_header_prefixes.clone(),
        strip_authorization,
        forward_underscores: f.underscore_headers == DropOrForward::Forward,
        credential_schemes,
        credential_headers: legacy_headers,
        request_id: header_name(origin, "forward.request_id_header", &f.request_id_header)?,
        trusted_proxies: file.server.trusted_proxies.clone(),
        assertion: assertion(file, inputs, origin)?,
    }))
}

/// `forward.identity_assertion`: its keys (read by [`Inputs`]) loaded and tried.
fn assertion(
    file: &File,
    inputs: &Inputs,
    origin: &str,
) -> Result<Option<AssertionSigner>, ConfigError> {
    let Some(a) = &file.forward.identity_assertion else {
        return Ok(None);
    };
    let here = |e: String| {
        ConfigError::new(origin, format!("forward.identity_assertion: {e}"))
            .key("forward.identity_assertion")
    };
    let Some((key, previous)) = &inputs.assertion_keys else {
        return Err(here("the key file was not read".into()));
    };
    AssertionSigner::new(AssertionRules {
        key_pem: key,
        previous_key_pem: previous.as_deref(),
        issuer: a.issuer.clone(),
        audience: a.audience.clone(),
        lifetime_secs: a.lifetime.0.as_secs(),
        header: header_name(origin, "forward.identity_assertion.header", &a.header)?,
        jwks_path: a.jwks_path.clone(),
    })
    .map(Some)
    .map_err(here)
}
