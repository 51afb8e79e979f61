//! `organizations:` and `organization_policy:` — the inline policies, where more are re-read
//! from, and the policies in force at start.

use super::inputs::Inputs;
use crate::config::schema;
use crate::config::{ConfigError, File};
use crate::policy::{OrgPolicy, Organizations};
use std::time::Duration;

/// Where organization policies are re-read from, besides the inline `organizations:`.
#[derive(Debug, Clone)]
pub struct OrgSourceRules {
    pub location: OrgLocation,
    pub refresh: Duration,
    pub access_token: Option<String>,
}

#[derive(Debug, Clone)]
pub enum OrgLocation {
    File(std::path::PathBuf),
    Url(String),
}

/// The organization part of a configuration.
pub struct CompiledOrganizations {
    /// The inline `organizations:`, which a source's entries extend.
    pub inline: Organizations,
    pub source: Option<OrgSourceRules>,
    /// In force at start: `None` while a URL source was never read (fail closed).
    pub in_force: Option<Organizations>,
    /// When a file source was read (Unix seconds).
    pub read_at: Option<u64>,
}

type OrgMap = std::collections::BTreeMap<String, schema::Organization>;

fn policies(map: &OrgMap) -> Vec<(String, OrgPolicy)> {
    map.iter()
        .map(|(n, o)| {
            let policy = OrgPolicy {
                restrict_third_party_apps: o.restrict_third_party_apps,
                approved_clients: o.approved_clients.clone(),
                require_sso: o.require_sso,
            };
            (n.clone(), policy)
        })
        .collect()
}

/// The policies of an organization source document (JSON or YAML shaped like
/// `organizations:`); `origin` names it in errors.
pub fn org_policies(text: &str, origin: &str) -> Result<Vec<(String, OrgPolicy)>, ConfigError> {
    crate::config::parse_organizations(text, origin).map(|m| policies(&m))
}

pub fn compile(
    file: &File,
    inputs: &Inputs,
    origin: &str,
) -> Result<CompiledOrganizations, ConfigError> {
    let op = &file.organization_policy;
    let case_insensitive = op.compare == schema::NameComparison::CaseInsensitive;
    let inline = Organizations::new(policies(&file.organizations), case_insensitive);
    let source = op.source.as_ref().map(|s| source(origin, s)).transpose()?;
    let (in_force, read_at) = match (&source, &inputs.org_document) {
        (None, _) => (Some(inline.clone()), None),
        // A file source is read before compiling, so that `check` and a start report its
        // errors; its time is the time of the policies in force.
        (Some(s), Some(doc)) if matches!(s.location, OrgLocation::File(_)) => {
            let mut o = inline.clone();
            o.extend(org_policies(&doc.text, &doc.origin)?);
            (Some(o), Some(doc.read_at))
        }
        (
            Some(OrgSourceRules {
                location: OrgLocation::File(path),
                ..
            }),
            None,
        ) => {
            return Err(ConfigError::new(
                &path.display().to_string(),
                "the organization policy file was not read",
            ));
        }
        // A URL is read by the sync task; private organization resources wait for it.
        (Some(_), _) => (None, None),
    };
    Ok(CompiledOrganizations {
        inline,
        source,
        in_force,
        read_at,
    })
}

fn source(origin: &str, s: &schema::OrganizationSource) -> Result<OrgSourceRules, ConfigError> {
    let location = match (&s.file, &s.url) {
        (Some(f), None) => OrgLocation::File(f.0.clone().into()),
        (None, Some(u)) if u.starts_with("http://") || u.starts_with("https://") => {
            super::secure_url(origin, "organization_policy.source.url", u, s.allow_http)?;
            OrgLocation::Url(u.0.clone())
        }
        (None, Some(u)) => {
            return Err(ConfigError::new(
                origin,
                format!(
                    "organization_policy.source.url: `{}` is not an http(s) URL",
                    u.0
                ),
            ));
        }
        _ => {
            return Err(ConfigError::new(
                origin,
                "organization_policy.source: set exactly one of `file` and `url`",
            ));
        }
    };
    if s.refresh.0 < Duration::from_secs(1) {
        return Err(ConfigError::new(
            origin,
            "organization_policy.source.refresh: at least 1s",
        ));
    }
    Ok(OrgSourceRules {
        location,
        refresh: s.refresh.0,
        access_token: s.access_token.as_ref().map(|t| t.0.clone()),
    })
}
