//! `log:`, `traces:` and `cluster:` — how the gateway is watched, and what its replicas
//! share.

use super::ClusterSettings;
use crate::config::{ConfigError, File};
use crate::otel::TraceSettings;
use crate::requestlog::LogSettings;

pub fn log(file: &File, origin: &str) -> Result<LogSettings, ConfigError> {
    use crate::requestlog::{Format, Subject};
    let l = &file.log;
    let here = |msg: String| ConfigError::new(origin, format!("log: {msg}"));
    let format = match l.requests.as_str() {
        "json" => Format::Json,
        "text" => Format::Text,
        "off" => Format::Off,
        other => return Err(here(format!("`requests: {other}`: use json, text or off"))),
    };
    let subject = match l.subject.as_str() {
        "plain" => Subject::Plain,
        "sha256" => Subject::Sha256,
        "redact" => Subject::Redact,
        other => {
            return Err(here(format!(
                "`subject: {other}`: use plain, sha256 or redact"
            )));
        }
    };
    if !(0.0..=1.0).contains(&l.sample_allowed) {
        return Err(here("`sample_allowed` is a fraction from 0 to 1".into()));
    }
    Ok(LogSettings {
        format,
        sample_allowed: l.sample_allowed,
        subject,
    })
}

pub fn traces(file: &File, origin: &str) -> Result<Option<TraceSettings>, ConfigError> {
    let Some(t) = &file.traces else {
        return Ok(None);
    };
    let here = |msg: &str| ConfigError::new(origin, format!("traces: {msg}"));
    if !(0.0..=1.0).contains(&t.sample_ratio) {
        return Err(here("`sample_ratio` is a fraction from 0 to 1"));
    }
    let endpoint = &t.otlp_endpoint.0;
    if !matches!(
        endpoint
            .parse::<http::Uri>()
            .ok()
            .and_then(|u| u.scheme_str().map(str::to_string))
            .as_deref(),
        Some("http" | "https")
    ) {
        return Err(here(&format!(
            "`otlp_endpoint: {endpoint}` is not an http(s) URL"
        )));
    }
    Ok(Some(TraceSettings {
        endpoint: endpoint.clone(),
        service_name: t.service_name.clone(),
        sample_ratio: t.sample_ratio,
        export_interval: t.export_interval.0,
    }))
}

/// `cluster:`: the Redis the replicas share.
pub fn cluster(file: &File, origin: &str) -> Result<Option<ClusterSettings>, ConfigError> {
    let Some(c) = &file.cluster else {
        return Ok(None);
    };
    let url = &c.redis.0;
    if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
        return Err(ConfigError::new(
            origin,
            format!("cluster.redis: `{url}` is not a redis:// or rediss:// URL"),
        ));
    }
    Ok(Some(ClusterSettings {
        redis: url.clone(),
        key_prefix: c.key_prefix.clone(),
        start_without_redis: c.start_without_redis,
        share_introspection: c.share_introspection,
    }))
}
