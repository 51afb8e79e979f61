//! `upstreams:` — where requests are forwarded: each upstream's addresses (resolved, or
//! listed), how one is picked, when one is left alone, retries, timeouts and TLS.

use super::inputs::{Inputs, host_port, split_host_port};
use crate::balance::{Ejection, Policy};
use crate::config::schema::{self, Balance, UpstreamProtocol};
use crate::config::{ConfigError, File};
use crate::decision::{HealthCheck, HostHeader, Upstream, UpstreamTls};
use std::sync::Arc;
use std::time::Duration;

/// The upstreams in name order (the order routes refer to them by index).
pub fn compile(file: &File, inputs: &Inputs, origin: &str) -> Result<Vec<Upstream>, ConfigError> {
    let mut errors = Vec::new();
    let mut out = Vec::new();
    for (name, u) in &file.upstreams {
        match upstream(file, origin, name, u, inputs) {
            Ok(up) => out.push(up),
            Err(e) => errors.push(e.key(format!("upstreams.{name}"))),
        }
    }
    match ConfigError::many(errors) {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

fn upstream(
    file: &File,
    origin: &str,
    name: &str,
    u: &schema::Upstream,
    inputs: &Inputs,
) -> Result<Upstream, ConfigError> {
    let url = u.url.0.as_str();
    let err = |why: &str| ConfigError::new(origin, format!("upstreams.{name}.url `{url}`: {why}"));
    let here = |why: String| ConfigError::new(origin, format!("upstreams.{name}: {why}"));
    let uri: http::Uri = url.parse().map_err(|_| err("not a URL"))?;
    let tls = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => return Err(err("the scheme must be http or https")),
    };
    if uri.query().is_some() {
        return Err(err("a query is not forwarded: leave it out"));
    }
    let base_path = uri.path().trim_end_matches('/').to_string();
    if !base_path.is_empty()
        && crate::request::normalize(&base_path)
            .map(|p| p.as_str() != base_path)
            .unwrap_or(true)
    {
        return Err(err(
            "the path must be a plain path such as /v2 (no `..`, `%`, `;`)",
        ));
    }
    let host = uri.host().ok_or_else(|| err("no host"))?.to_string();
    let authority = uri.authority().cloned().ok_or_else(|| err("no host"))?;
    // Where to connect: the listed addresses, else every address of the URL's host.
    let targets: Vec<(String, u16, u32)> = match &u.addresses {
        Some(list) if list.is_empty() => {
            return Err(here("`addresses: []` has nowhere to connect".into()));
        }
        Some(list) => list
            .iter()
            .map(|a| {
                let (h, p) = split_host_port(a.text())
                    .ok_or_else(|| here(format!("`{}` is not host:port", a.text())))?;
                if a.weight() == 0 {
                    return Err(here(format!("`{}`: a weight is 1 or more", a.text())));
                }
                Ok((h, p, a.weight()))
            })
            .collect::<Result<_, _>>()?,
        None => {
            let (h, p) = host_port(url).ok_or_else(|| err("no host"))?;
            vec![(h, p, 1)]
        }
    };
    let mut addresses = Vec::new();
    for (h, p, w) in &targets {
        let found = inputs
            .addresses
            .get(&(h.clone(), *p))
            .ok_or_else(|| err("the host does not resolve"))?;
        addresses.extend(found.iter().map(|a| (*a, *w)));
    }
    let fixed = targets
        .iter()
        .filter_map(|(h, p, w)| {
            let ip = h.parse::<std::net::IpAddr>().ok()?;
            Some((std::net::SocketAddr::new(ip, *p), *w))
        })
        .collect();
    let names = targets
        .into_iter()
        .filter(|(h, _, _)| h.parse::<std::net::IpAddr>().is_err())
        .collect();
    let host_header = match u.host_header.as_str() {
        "keep" => HostHeader::Keep,
        "upstream" => HostHeader::Set(
            http::HeaderValue::from_str(authority.as_str()).map_err(|_| err("not a Host value"))?,
        ),
        value => HostHeader::Set(http::HeaderValue::from_str(value).map_err(|_| {
            here(format!(
                "host_header `{value}` is not a Host value (or `keep`, `upstream`)"
            ))
        })?),
    };
    let tls_files = match (&u.tls, tls) {
        (Some(_), false) => return Err(here("`tls` needs an https:// url".into())),
        (Some(t), true) => {
            let files = inputs.upstream_tls.get(name).cloned().unwrap_or_default();
            if files.cert.is_some() != files.key.is_some() {
                return Err(here("`tls.cert` and `tls.key` go together".into()));
            }
            let tls13_only = match t.min_version.as_str() {
                "1.2" => false,
                "1.3" => true,
                other => return Err(here(format!("tls.min_version `{other}`: 1.2 or 1.3"))),
            };
            let files = UpstreamTls {
                ca: files.ca,
                cert: files.cert,
                key: files.key,
                tls13_only,
            };
            // Built once here so that a bad file is a load error, not a 502 later.
            super::upstream_tls::client_config(&files).map_err(&here)?;
            Some(Arc::new(files))
        }
        (None, _) => None,
    };
    let server_name = u
        .tls
        .as_ref()
        .and_then(|t| t.server_name.clone())
        .unwrap_or_else(|| host.clone());
    if u.health.failures == 0 {
        return Err(here("health.failures: 1 or more".into()));
    }
    let timeouts = &file.server.timeouts;
    let connect_timeout = u
        .timeouts
        .connect
        .map_or(timeouts.upstream_connect.0, |d| d.0);
    let response_timeout = u
        .timeouts
        .response
        .map_or(timeouts.upstream_response.0, |d| d.0);
    let http2 = match (u.protocol, tls) {
        (UpstreamProtocol::Http1, _) => false,
        (UpstreamProtocol::H2, true) | (UpstreamProtocol::H2c, false) => true,
        (UpstreamProtocol::H2, false) => {
            return Err(here(
                "protocol h2 is HTTP/2 over TLS: an https:// URL (or h2c)".into(),
            ));
        }
        (UpstreamProtocol::H2c, true) => {
            return Err(here(
                "protocol h2c is HTTP/2 without TLS: an http:// URL (or h2)".into(),
            ));
        }
    };
    let client_key = format!(
        "{tls}|{http2}|{server_name}|{connect_timeout:?}|{:?}|{}|{:?}",
        u.timeouts.idle.0, u.max_idle_connections, tls_files,
    );
    Ok(Upstream {
        name: name.to_string(),
        tls,
        http2,
        server_name,
        authority,
        base_path,
        host_header,
        addresses,
        names,
        fixed,
        resolve_every: (!u.resolve_every.0.is_zero()).then_some(u.resolve_every.0),
        policy: match u.balance {
            Balance::RoundRobin => Policy::RoundRobin,
            Balance::LeastRequests => Policy::LeastRequests,
        },
        ejection: Ejection {
            failures: u.health.failures,
            duration: u.health.eject_for.0.max(Duration::from_millis(100)),
        },
        check: u.health.check.as_ref().map(|c| HealthCheck {
            path: c.path.clone(),
            interval: c.interval.0.max(Duration::from_millis(100)),
            timeout: c.timeout.0,
        }),
        retry_ratio: f64::from(u.retry_budget_percent.min(100)) / 100.0,
        connect_timeout,
        response_timeout,
        body_pause: u.timeouts.body.0.max(Duration::from_millis(10)),
        idle_timeout: u.timeouts.idle.0,
        max_idle: u.max_idle_connections,
        tls_files,
        client_key,
    })
}
