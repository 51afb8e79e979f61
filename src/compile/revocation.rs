//! `tokens.revocation` — who may push or be polled for Security Event Tokens.

use super::{algorithm, secure_url};
use crate::config::{ConfigError, EnvString, File};
use crate::token::{PollRules, SetKeys, SetRules};

/// The push receiver's and the poller's rules.
pub fn compile(
    file: &File,
    origin: &str,
) -> Result<(Option<SetRules>, Option<PollRules>), ConfigError> {
    let r = &file.tokens.revocation;
    let push = r
        .push
        .as_ref()
        .map(|p| {
            set_rules(
                file,
                origin,
                "push",
                (&p.transmitter, &p.jwks_uri, &p.issuer, &p.audience),
                &p.algorithms,
                p.allow_http,
            )
        })
        .transpose()?;
    let poll = r
        .poll
        .as_ref()
        .map(|p| {
            secure_url(
                origin,
                "tokens.revocation.poll.endpoint",
                &p.endpoint,
                p.allow_http,
            )?;
            Ok::<_, ConfigError>(PollRules {
                set: set_rules(
                    file,
                    origin,
                    "poll",
                    (&p.transmitter, &p.jwks_uri, &p.issuer, &p.audience),
                    &p.algorithms,
                    p.allow_http,
                )?,
                endpoint: p.endpoint.0.clone(),
                interval: p.interval.0,
                access_token: p.access_token.as_ref().map(|a| a.0.clone()),
                max_events: p.max_events,
            })
        })
        .transpose()?;
    Ok((push, poll))
}

/// (transmitter, jwks_uri, issuer, audience) as written.
type Source<'a> = (
    &'a EnvString,
    &'a Option<EnvString>,
    &'a Option<String>,
    &'a EnvString,
);

fn set_rules(
    file: &File,
    origin: &str,
    what: &str,
    (transmitter, jwks_uri, issuer, audience): Source,
    algorithms: &[String],
    allow_http: bool,
) -> Result<SetRules, ConfigError> {
    let here = |msg: String| ConfigError::new(origin, format!("tokens.revocation.{what}{msg}"));
    let keys = match (jwks_uri, issuer) {
        (Some(uri), None) => {
            let field = format!("tokens.revocation.{what}.jwks_uri");
            secure_url(origin, &field, uri, allow_http)?;
            SetKeys::Own(uri.0.clone())
        }
        (None, Some(id)) => SetKeys::Issuer(
            file.issuers
                .iter()
                .position(|i| &i.id == id)
                .ok_or_else(|| here(format!(".issuer: no issuer `{id}`")))?,
        ),
        _ => return Err(here(": set exactly one of `jwks_uri` and `issuer`".into())),
    };
    Ok(SetRules {
        transmitter: transmitter.0.clone(),
        audience: audience.0.clone(),
        algorithms: algorithms
            .iter()
            .map(|a| algorithm(origin, &format!("tokens.revocation.{what}"), a))
            .collect::<Result<_, _>>()?,
        keys,
    })
}
