//! `log:` and `traces:` — how the gateway is watched.

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
