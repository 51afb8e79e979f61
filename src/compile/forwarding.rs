//! `forward:` — what the upstream receives: identity headers, what is stripped.

use super::header_name;
use crate::config::schema::KeepOrStrip;
use crate::config::{ConfigError, File};
use crate::forward::{ForwardPolicy, IdentityNames};
use http::HeaderName;

pub fn compile(file: &File, origin: &str) -> Result<ForwardPolicy, ConfigError> {
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
    };
    let strip = f
        .strip_headers
        .iter()
        .map(|h| header_name(origin, "forward.strip_headers", h))
        .collect::<Result<Vec<_>, _>>()?;
    // `authorization: strip` covers legacy credential headers too (checked with them).
    let legacy_headers = file
        .credentials
        .iter()
        .filter_map(|c| c.header.as_ref())
        .filter_map(|h| HeaderName::from_bytes(h.as_bytes()).ok())
        .filter(|_| f.authorization == KeepOrStrip::Strip);
    let strip: Vec<HeaderName> = strip.into_iter().chain(legacy_headers).collect();
    Ok(ForwardPolicy::new(
        identity,
        strip,
        f.authorization == KeepOrStrip::Strip,
        header_name(origin, "forward.request_id_header", &f.request_id_header)?,
        file.server.trusted_proxies.clone(),
    ))
}
