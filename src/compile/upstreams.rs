//! `upstreams:` — where requests are forwarded.

use super::inputs::{Inputs, host_port};
use crate::config::{ConfigError, File};
use crate::decision::Upstream;

/// The upstreams in name order (the order routes refer to them by index).
pub fn compile(file: &File, inputs: &Inputs, origin: &str) -> Result<Vec<Upstream>, ConfigError> {
    let mut errors = Vec::new();
    let mut out = Vec::new();
    for (name, u) in &file.upstreams {
        match upstream(origin, name, &u.url, inputs) {
            Ok(up) => out.push(up),
            Err(e) => errors.push(e.key(format!("upstreams.{name}.url"))),
        }
    }
    match ConfigError::many(errors) {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

fn upstream(origin: &str, name: &str, url: &str, inputs: &Inputs) -> Result<Upstream, ConfigError> {
    let err = |why: &str| ConfigError::new(origin, format!("upstreams.{name}.url `{url}`: {why}"));
    let uri: http::Uri = url.parse().map_err(|_| err("not a URL"))?;
    let tls = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => return Err(err("the scheme must be http or https")),
    };
    if uri.path() != "/" && !uri.path().is_empty() {
        return Err(err(
            "a path prefix is not supported: the matched path is forwarded as is",
        ));
    }
    let host = uri.host().ok_or_else(|| err("no host"))?.to_string();
    let addr = host_port(url)
        .and_then(|hp| inputs.addresses.get(&hp).copied())
        .ok_or_else(|| err("the host does not resolve"))?;
    Ok(Upstream {
        name: name.to_string(),
        addr,
        tls,
        authority: uri.authority().cloned().ok_or_else(|| err("no host"))?,
        host,
    })
}
