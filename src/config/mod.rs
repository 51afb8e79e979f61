//! Configuration: the YAML schema, and loading with positions in every error. Compiling it
//! into rules is `compile/`.

mod deferred;
mod examples;
mod locate;
pub mod reference;
pub mod schema;
mod values;

pub use schema::File;
pub use values::{Dur, EnvString, Timestamp, interpolate, parse_duration};

use std::fmt;
use std::path::Path;

/// A configuration error: where (file, and line:column when known) and what was expected;
/// with the others found in the same file, when there were several.
#[derive(Debug, Clone)]
pub struct ConfigError {
    pub origin: String,
    /// Line and column (from 1), when known.
    pub at: Option<(u64, u64)>,
    pub message: String,
    /// The key the error is about (`routes[3].upstream`), for its position.
    pub key: Option<String>,
    /// The other errors found beside this one.
    pub more: Vec<ConfigError>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.all().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            match e.at {
                Some((l, c)) => write!(f, "{}:{l}:{c}: {}", e.origin, e.message)?,
                None => write!(f, "{}: {}", e.origin, e.message)?,
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    pub fn new(origin: &str, message: impl Into<String>) -> ConfigError {
        ConfigError {
            origin: origin.to_string(),
            at: None,
            message: message.into(),
            key: None,
            more: Vec::new(),
        }
    }

    pub fn at(
        origin: &str,
        loc: &serde_saphyr::Location,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError {
            at: (loc.line() > 0).then(|| (loc.line(), loc.column())),
            ..ConfigError::new(origin, message)
        }
    }

    /// Says which key the error is about, unless a more precise one was said already.
    pub fn key(mut self, key: impl Into<String>) -> ConfigError {
        if self.key.is_none() {
            self.key = Some(key.into());
        }
        self
    }

    /// Several errors as one (`None` when there are none).
    pub fn many(errors: Vec<ConfigError>) -> Option<ConfigError> {
        let mut all = errors.into_iter().flat_map(ConfigError::into_all);
        let mut first = all.next()?;
        first.more = all.collect();
        Some(first)
    }

    /// This error and the others found beside it.
    pub fn all(&self) -> impl Iterator<Item = &ConfigError> {
        std::iter::once(self).chain(self.more.iter())
    }

    fn into_all(mut self) -> Vec<ConfigError> {
        let more = std::mem::take(&mut self.more);
        std::iter::once(self).chain(more).collect()
    }

    /// Gives each error whose key is known its position in `text`, in the order of the
    /// text.
    pub fn located(self, text: &str) -> ConfigError {
        let mut all = self.into_all();
        for e in &mut all {
            if e.at.is_none()
                && let Some(loc) = e.key.as_deref().and_then(|k| locate::locate(text, k))
            {
                e.at = Some((loc.line(), loc.column()));
            }
        }
        all.sort_by_key(|e| e.at.unwrap_or((u64::MAX, 0)));
        ConfigError::many(all).expect("at least this error")
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
    let (value, found) = parse_collecting(text, origin)?;
    match ConfigError::many(found) {
        Some(e) => Err(e),
        None => Ok(value),
    }
}

/// Parses a configuration document and reports every bad value, not only the first: the
/// document (each bad value read as a placeholder) and the value errors; an error when the
/// document cannot be read at all (YAML, an unknown key, a wrong type: the first of them,
/// after the value errors met before it).
pub fn parse_all(text: &str, origin: &str) -> Result<(File, Vec<ConfigError>), ConfigError> {
    parse_collecting(text, origin)
}

fn parse_collecting<T: serde::de::DeserializeOwned>(
    text: &str,
    origin: &str,
) -> Result<(T, Vec<ConfigError>), ConfigError> {
    let (read, found) = deferred::collecting(|| serde_saphyr::from_str::<T>(text));
    let found: Vec<ConfigError> = found
        .into_iter()
        .map(|(at, message)| ConfigError::at(origin, &at, message))
        .collect();
    match read {
        Ok(value) => Ok((value, found)),
        Err(e) => {
            let mut all = found;
            all.push(syntax_error(&e, origin));
            Err(ConfigError::many(all).expect("one error at least"))
        }
    }
}

/// A parse error: its position, and the first line of its text.
fn syntax_error(e: &serde_saphyr::Error, origin: &str) -> ConfigError {
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
}

pub fn load(path: &Path) -> Result<File, ConfigError> {
    parse(&read(path)?, &path.display().to_string())
}

/// The text of the configuration file at `path`.
pub fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(&path.display().to_string(), format!("cannot read: {e}")))
}
