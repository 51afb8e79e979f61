//! Configuration: the YAML schema, and loading with positions in every error. Compiling it
//! into rules is `compile/`.

pub mod schema;
mod values;

pub use schema::File;
pub use values::{Dur, EnvString, Timestamp, interpolate, parse_duration};

use std::fmt;
use std::path::Path;

/// A configuration error: where (file, and line:column when known) and what was expected.
#[derive(Debug, Clone)]
pub struct ConfigError {
    pub origin: String,
    pub line: Option<u64>,
    pub column: Option<u64>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "{}:{l}:{c}: {}", self.origin, self.message),
            (Some(l), None) => write!(f, "{}:{l}: {}", self.origin, self.message),
            _ => write!(f, "{}: {}", self.origin, self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    pub fn new(origin: &str, message: impl Into<String>) -> ConfigError {
        ConfigError {
            origin: origin.to_string(),
            line: None,
            column: None,
            message: message.into(),
        }
    }

    pub fn at(
        origin: &str,
        loc: &serde_saphyr::Location,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError {
            origin: origin.to_string(),
            line: (loc.line() > 0).then(|| loc.line()),
            column: (loc.column() > 0).then(|| loc.column()),
            message: message.into(),
        }
    }
}

/// Parses a configuration document; `origin` names it in errors (a path, or `<embedded>`).
pub fn parse(text: &str, origin: &str) -> Result<File, ConfigError> {
    parse_as(text, origin)
}

/// Parses an organization policy document (JSON or YAML shaped like `organizations:`).
pub fn parse_organizations(
    text: &str,
    origin: &str,
) -> Result<std::collections::BTreeMap<String, schema::Organization>, ConfigError> {
    parse_as(text, origin)
}

fn parse_as<T: serde::de::DeserializeOwned>(text: &str, origin: &str) -> Result<T, ConfigError> {
    serde_saphyr::from_str::<T>(text).map_err(|e| {
        let loc = e.location();
        // The rendered message repeats the position; keep only the first line of the text.
        let message = e.to_string();
        let first = message
            .lines()
            .next()
            .unwrap_or("invalid configuration")
            .trim();
        let first = first.strip_prefix("error: ").unwrap_or(first);
        let message = match first.strip_prefix("line ").and_then(|r| r.split_once(": ")) {
            Some((_, rest)) => rest.to_string(),
            None => first.to_string(),
        };
        match loc {
            Some(l) => ConfigError::at(origin, &l, message),
            None => ConfigError::new(origin, message),
        }
    })
}

pub fn load(path: &Path) -> Result<File, ConfigError> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(&origin, format!("cannot read: {e}")))?;
    parse(&text, &origin)
}
