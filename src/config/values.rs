//! Value types of the YAML that need their own parsing: `${ENV}` strings and durations.

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use std::fmt;
use std::time::Duration;

/// A string in which `${NAME}` is replaced by the environment variable `NAME` at load time.
///
/// Interpolation happens after YAML parsing, on the scalar alone, so a secret containing
/// `: ` or quotes cannot change the structure of the document. `${NAME:-default}` uses the
/// default when `NAME` is unset or empty (shipped examples run as they are); `$${` writes a
/// literal `${`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EnvString(pub String);

impl std::ops::Deref for EnvString {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EnvString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Replaces `${NAME}` references using `lookup`; the error names the missing variable.
pub fn interpolate(raw: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos..];
        if let Some(stripped) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = stripped;
        } else if let Some(body) = after.strip_prefix("${") {
            let end = body
                .find('}')
                .ok_or_else(|| "unterminated `${` (write `$${` for a literal)".to_string())?;
            let (name, default) = match body[..end].split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (&body[..end], None),
            };
            let valid =
                !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !valid {
                return Err(format!(
                    "`${{{name}}}` is not a valid environment variable name"
                ));
            }
            let value = match (lookup(name).filter(|v| !v.is_empty()), default) {
                (Some(v), _) => v,
                (None, Some(d)) => d.to_string(),
                (None, None) => lookup(name)
                    .ok_or_else(|| format!("environment variable `{name}` is not set"))?,
            };
            out.push_str(&value);
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

impl<'de> Deserialize<'de> for EnvString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        interpolate(&raw, |name| std::env::var(name).ok())
            .map(EnvString)
            .map_err(de::Error::custom)
    }
}

/// An instant written in RFC 3339 (`2026-12-31T00:00:00Z`), as Unix seconds; `${ENV}` is
/// substituted first, so a deployment can set a sunset without editing the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub u64);

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = EnvString::deserialize(d)?.0;
        let t = time::OffsetDateTime::parse(&raw, &time::format_description::well_known::Rfc3339)
            .map_err(|e| {
            de::Error::custom(format!(
                "`{raw}` is not an RFC 3339 time such as 2026-12-31T00:00:00Z ({e})"
            ))
        })?;
        u64::try_from(t.unix_timestamp())
            .map(Timestamp)
            .map_err(|_| de::Error::custom(format!("`{raw}` is before 1970")))
    }
}

/// A duration written `300ms`, `30s`, `5m` or `1h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dur(pub Duration);

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("`{s}` has no unit: write e.g. 300ms, 30s, 5m or 1h"))?;
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration: write e.g. 300ms, 30s, 5m or 1h"))?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => return Err(format!("`{s}`: unknown unit `{unit}` (use ms, s, m or h)")),
    };
    Ok(d)
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration such as 300ms, 30s, 5m or 1h")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Dur, E> {
                parse_duration(v).map(Dur).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "SECRET").then(|| "s3: \"x".to_string())
    }

    #[test]
    fn interpolation_replaces_variables_and_keeps_yaml_specials_verbatim() {
        assert_eq!(interpolate("a-${SECRET}-b", env).unwrap(), "a-s3: \"x-b");
    }

    #[test]
    fn interpolation_escape_writes_a_literal() {
        assert_eq!(interpolate("$${SECRET} $5", env).unwrap(), "${SECRET} $5");
    }

    #[test]
    fn interpolation_of_a_missing_variable_names_it() {
        let err = interpolate("${NOPE}", env).unwrap_err();
        assert!(err.contains("`NOPE` is not set"), "{err}");
    }

    #[test]
    fn interpolation_uses_the_default_only_when_the_variable_is_unset() {
        assert_eq!(
            interpolate("${NOPE:-http://127.0.0.1:3000}", env).unwrap(),
            "http://127.0.0.1:3000"
        );
        assert_eq!(interpolate("${SECRET:-d}", env).unwrap(), "s3: \"x");
        assert_eq!(interpolate("${NOPE:-}", env).unwrap(), "");
    }

    #[test]
    fn rfc3339_times_parse_to_unix_seconds() {
        let t: Timestamp = serde_json::from_str("\"2026-12-31T00:00:00Z\"").unwrap();
        assert_eq!(t.0, 1_798_675_200);
        let offset: Timestamp = serde_json::from_str("\"2026-12-31T01:00:00+01:00\"").unwrap();
        assert_eq!(offset, t);
        assert!(serde_json::from_str::<Timestamp>("\"2026-12-31\"").is_err());
    }

    #[test]
    fn interpolation_rejects_unterminated_and_bad_names() {
        assert!(interpolate("${SECRET", env).is_err());
        assert!(interpolate("${A-B}", env).is_err());
    }

    #[test]
    fn durations_parse_each_unit_and_reject_bare_numbers() {
        assert_eq!(parse_duration("300ms").unwrap(), Duration::from_millis(300));
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert!(parse_duration("30").is_err());
        assert!(parse_duration("3d").is_err());
        assert!(parse_duration("s").is_err());
    }
}
