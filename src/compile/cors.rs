//! `cors:` — the global rules and each route's, checked (origins, methods, header names).

use crate::config::schema::{CorsRules, PreflightMode};
use crate::cors::{Cors, OriginRule, Preflights};
use http::{HeaderValue, Method};
use std::sync::Arc;

pub fn compile(rules: &CorsRules) -> Result<Arc<Cors>, String> {
    let origins = rules
        .allow_origins
        .iter()
        .map(|o| OriginRule::parse(o))
        .collect::<Result<_, _>>()?;
    let methods = rules
        .allow_methods
        .iter()
        .map(|m| {
            Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                .map_err(|_| format!("`{m}` is not a method"))
        })
        .collect::<Result<_, _>>()?;
    let name = |h: &String| {
        http::HeaderName::from_bytes(h.as_bytes())
            .map(|n| n.as_str().to_string())
            .map_err(|_| format!("`{h}` is not a header name"))
    };
    let headers = rules
        .allow_headers
        .iter()
        .map(name)
        .collect::<Result<_, _>>()?;
    let expose: Vec<String> = rules
        .expose_headers
        .iter()
        .map(name)
        .collect::<Result<_, _>>()?;
    Ok(Arc::new(Cors {
        origins,
        methods,
        headers,
        expose: (!expose.is_empty())
            .then(|| HeaderValue::from_str(&expose.join(", ")).ok())
            .flatten(),
        credentials: rules.allow_credentials,
        max_age: rules.max_age.map(|d| d.0.as_secs()),
        preflights: match rules.preflights {
            PreflightMode::Answer => Preflights::Answer,
            PreflightMode::Forward => Preflights::Forward,
        },
    }))
}
