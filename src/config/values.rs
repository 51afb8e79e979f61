//! Value types of the YAML that need their own parsing: `${ENV}` strings and durations.

use super::deferred::value_error;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use serde_saphyr::Spanned;
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
        let raw = Spanned::<String>::deserialize(d)?;
        match interpolate(&raw.value, |name| std::env::var(name).ok()) {
            Ok(v) => Ok(EnvString(v)),
            // The text as written stands in (not empty, so no follow-up error is about it).
            Err(e) => value_error(raw.referenced, e, EnvString(raw.value)),
        }
    }
}

/// An instant written in RFC 3339 (`2026-12-31T00:00:00Z`), as Unix seconds; `${ENV}` is
/// substituted first, so a deployment can set a sunset without editing the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub u64);

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<String>::deserialize(d)?;
        let at = spanned.referenced;
        let raw = match interpolate(&spanned.value, |name| std::env::var(name).ok()) {
            Ok(raw) => raw,
            Err(e) => return value_error(at, e, Timestamp(0)),
        };
        let parsed =
            time::OffsetDateTime::parse(&raw, &time::format_description::well_known::Rfc3339)
                .map_err(|e| {
                    format!("`{raw}` is not an RFC 3339 time such as 2026-12-31T00:00:00Z ({e})")
                })
                .and_then(|t| {
                    u64::try_from(t.unix_timestamp()).map_err(|_| format!("`{raw}` is before 1970"))
                });
        match parsed {
            Ok(t) => Ok(Timestamp(t)),
            Err(e) => value_error(at, e, Timestamp(0)),
        }
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

/// What a bad duration reads as while the rest of the file is checked.
const PLACEHOLDER: Dur = Dur(Duration::from_secs(1));

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        /// The scalar as written: a bare number is a duration without a unit.
        struct Text(String);
        impl<'de> Deserialize<'de> for Text {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl Visitor<'_> for V {
                    type Value = Text;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str("a duration such as 300ms, 30s, 5m or 1h")
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<Text, E> {
                        Ok(Text(v.to_string()))
                    }
                    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Text, E> {
                        Ok(Text(v.to_string()))
                    }
                    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Text, E> {
                        Ok(Text(v.to_string()))
                    }
                }
                d.deserialize_any(V)
            }
        }
        let raw = Spanned::<Text>::deserialize(d)?;
        match parse_duration(&raw.value.0) {
            Ok(v) => Ok(Dur(v)),
            Err(e) => value_error(raw.referenced, e, PLACEHOLDER),
        }
    }
}

// The schema (`scopegate schema`) and the defaults it shows: each value as it is written.

impl serde::Serialize for EnvString {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl serde::Serialize for Dur {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let ms = self.0.as_millis();
        let text = match ms {
            _ if ms.is_multiple_of(3_600_000) && ms > 0 => format!("{}h", ms / 3_600_000),
            _ if ms.is_multiple_of(60_000) && ms > 0 => format!("{}m", ms / 60_000),
            _ if ms.is_multiple_of(1000) => format!("{}s", ms / 1000),
            _ => format!("{ms}ms"),
        };
        s.serialize_str(&text)
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let t = i64::try_from(self.0)
            .ok()
            .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            });
        s.serialize_str(&t.unwrap_or_default())
    }
}

impl schemars::JsonSchema for EnvString {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "EnvString".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "Text; `${NAME}` is replaced by the environment variable NAME (`${NAME:-default}` when unset), `$${` writes `${`."
        })
    }
}

impl schemars::JsonSchema for Dur {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^[0-9]+(ms|s|m|h)$",
            "description": "A duration: a whole number and a unit, `ms`, `s`, `m` or `h` (`300ms`, `30s`, `5m`, `1h`)."
        })
    }
}

impl schemars::JsonSchema for Timestamp {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Timestamp".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "format": "date-time",
            "description": "An RFC 3339 time (`2026-12-31T00:00:00Z`); `${NAME}` is replaced first."
        })
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
