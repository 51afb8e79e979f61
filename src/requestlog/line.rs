//! One request's facts, and its line in JSON or text.

use super::Subject;
use super::json::{JsonLine, address_into, rfc3339, rfc3339_into};
use crate::answer::Refusal;
use crate::principal::Principal;
use http::{HeaderValue, Method};
use serde_json::{Map, Value, json};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// What the front end knew of one request when it answered.
#[derive(Default)]
pub struct Entry {
    pub time: Option<SystemTime>,
    /// `proxy`, or the decision endpoint's caller (`nginx`, `forward_auth`, …).
    pub front_end: &'static str,
    pub request_id: Option<HeaderValue>,
    /// From a valid W3C `traceparent`, when the request carried one.
    pub trace_id: Option<String>,
    pub route: Option<String>,
    pub method: Option<Method>,
    /// The normalized path (never the query: it may carry a credential).
    pub path: Option<String>,
    pub status: u16,
    /// `None`: allowed.
    pub refusal: Option<&'static str>,
    pub principal: Option<Arc<Principal>>,
    pub org: Option<HeaderValue>,
    pub client: Option<IpAddr>,
    pub upstream_status: Option<u16>,
    pub upstream_duration: Option<Duration>,
    pub duration: Option<Duration>,
    pub bytes_in: Option<u64>,
    pub bytes_out: Option<u64>,
    /// Decided on an introspection answer served stale (the authorization server failed).
    pub stale: bool,
    /// A route in report mode forwarded what it would have refused, for this reason.
    pub would_refuse: Option<&'static str>,
}

fn text(v: &HeaderValue) -> &str {
    v.to_str().unwrap_or("?")
}

fn subject(p: &Principal, how: Subject) -> Option<String> {
    let s = text(&p.subject);
    match how {
        Subject::Plain => Some(s.to_string()),
        Subject::Sha256 => Some(
            crate::token::hash(s)[..8]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        ),
        Subject::Redact => None,
    }
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

impl Entry {
    pub fn allowed(&self) -> bool {
        self.refusal.is_none()
    }

    /// Records a refusal (its status and reason).
    pub fn refused(&mut self, r: &Refusal) {
        self.status = r.status().as_u16();
        self.refusal = Some(r.reason());
    }

    fn fields(&self, how: Subject) -> Map<String, Value> {
        let mut f = Map::new();
        let mut put = |k: &str, v: Value| {
            if !v.is_null() {
                f.insert(k.to_string(), v);
            }
        };
        put(
            "timestamp",
            json!(rfc3339(self.time.unwrap_or_else(SystemTime::now))),
        );
        put("trace_id", json!(self.trace_id));
        put(
            "scopegate.request_id",
            json!(self.request_id.as_ref().map(text)),
        );
        put("scopegate.front_end", json!(self.front_end));
        put("scopegate.route", json!(self.route));
        put(
            "http.request.method",
            json!(self.method.as_ref().map(Method::as_str)),
        );
        put("url.path", json!(self.path));
        put("http.response.status_code", json!(self.status));
        put(
            "scopegate.decision",
            json!(if self.allowed() { "allowed" } else { "refused" }),
        );
        put("scopegate.reason", json!(self.refusal));
        if let Some(p) = &self.principal {
            put("scopegate.principal", json!(text(&p.kind.header())));
            put("user.id", json!(subject(p, how)));
            put(
                "scopegate.client_id",
                json!(p.client_id.as_deref().map(text)),
            );
            put("scopegate.issuer", json!(text(&p.issuer_id)));
        }
        put("scopegate.org", json!(self.org.as_ref().map(text)));
        if self.stale {
            put("scopegate.stale", json!(true));
        }
        if let Some(r) = self.would_refuse {
            put("scopegate.would_refuse", json!(r));
        }
        put("client.address", json!(self.client.map(|c| c.to_string())));
        put(
            "scopegate.upstream.status_code",
            json!(self.upstream_status),
        );
        put(
            "scopegate.upstream.duration_ms",
            json!(self.upstream_duration.map(millis)),
        );
        put("scopegate.duration_ms", json!(self.duration.map(millis)));
        put("http.request.body.size", json!(self.bytes_in));
        put("http.response.body.size", json!(self.bytes_out));
        f
    }

    /// One JSON object and a line break.
    #[cfg(test)]
    pub fn json(&self, how: Subject) -> String {
        let mut line = String::new();
        self.json_into(&mut line, how);
        line
    }

    /// Appends the JSON line to `out`, written field by field: the request path pays for
    /// no map and no intermediate values.
    pub fn json_into(&self, out: &mut String, how: Subject) {
        let mut w = JsonLine::new(out);
        let time = self.time.unwrap_or_else(SystemTime::now);
        w.key("timestamp");
        w.out.push('"');
        rfc3339_into(time, w.out);
        w.out.push('"');
        if let Some(t) = &self.trace_id {
            w.str("trace_id", t);
        }
        if let Some(id) = &self.request_id {
            w.str("scopegate.request_id", text(id));
        }
        w.str("scopegate.front_end", self.front_end);
        if let Some(r) = &self.route {
            w.str("scopegate.route", r);
        }
        if let Some(m) = &self.method {
            w.str("http.request.method", m.as_str());
        }
        if let Some(p) = &self.path {
            w.str("url.path", p);
        }
        w.int("http.response.status_code", u64::from(self.status));
        w.str(
            "scopegate.decision",
            if self.allowed() { "allowed" } else { "refused" },
        );
        if let Some(r) = self.refusal {
            w.str("scopegate.reason", r);
        }
        if let Some(p) = &self.principal {
            w.str("scopegate.principal", text(&p.kind.header()));
            match how {
                Subject::Plain => w.str("user.id", text(&p.subject)),
                _ => {
                    if let Some(s) = subject(p, how) {
                        w.str("user.id", &s);
                    }
                }
            }
            if let Some(c) = &p.client_id {
                w.str("scopegate.client_id", text(c));
            }
            w.str("scopegate.issuer", text(&p.issuer_id));
        }
        if let Some(o) = &self.org {
            w.str("scopegate.org", text(o));
        }
        if self.stale {
            w.raw("scopegate.stale", "true");
        }
        if let Some(r) = self.would_refuse {
            w.str("scopegate.would_refuse", r);
        }
        if let Some(c) = self.client {
            w.key("client.address");
            w.out.push('"');
            address_into(c, w.out);
            w.out.push('"');
        }
        if let Some(s) = self.upstream_status {
            w.int("scopegate.upstream.status_code", u64::from(s));
        }
        if let Some(d) = self.upstream_duration {
            w.millis("scopegate.upstream.duration_ms", d);
        }
        if let Some(d) = self.duration {
            w.millis("scopegate.duration_ms", d);
        }
        if let Some(n) = self.bytes_in {
            w.int("http.request.body.size", n);
        }
        if let Some(n) = self.bytes_out {
            w.int("http.response.body.size", n);
        }
        w.end();
    }

    /// `key=value` pairs, for a terminal: the decision first.
    pub fn text(&self, how: Subject) -> String {
        const FIRST: [&str; 8] = [
            "timestamp",
            "scopegate.decision",
            "http.response.status_code",
            "scopegate.reason",
            "http.request.method",
            "url.path",
            "scopegate.route",
            "user.id",
        ];
        let mut f = self.fields(how);
        let mut ordered: Vec<(String, Value)> = FIRST
            .iter()
            .filter_map(|k| f.remove(*k).map(|v| (k.to_string(), v)))
            .collect();
        ordered.extend(f);
        let mut line = String::new();
        for (k, v) in &ordered {
            let k = k.trim_start_matches("scopegate.");
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(k);
            line.push('=');
            match v {
                Value::String(s) => logfmt_value(&mut line, s),
                v => line.push_str(&v.to_string()),
            }
        }
        line.push('\n');
        line
    }
}

/// A text value as logfmt writes it: bare when it is one plain word, else quoted with `"`
/// and `\` escaped and control characters written as escapes, so no value (a subject with
/// spaces, an `=`, a line break) can forge another field or line.
fn logfmt_value(out: &mut String, v: &str) {
    let plain = !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_graphic() && c != '"' && c != '=' && c != '\\');
    if plain {
        out.push_str(v);
        return;
    }
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:04x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_has_the_facts_and_the_subject_as_asked() {
        let mut p = Principal::for_tests();
        p.subject = HeaderValue::from_static("alice");
        let e = Entry {
            front_end: "proxy",
            route: Some("repos".into()),
            method: Some(Method::GET),
            path: Some("/orgs/acme/repos".into()),
            status: 403,
            refusal: Some("insufficient_scope"),
            principal: Some(Arc::new(p)),
            ..Entry::default()
        };
        let line: Value = serde_json::from_str(&e.json(Subject::Plain)).unwrap();
        assert_eq!(line["user.id"], "alice");
        assert_eq!(line["scopegate.reason"], "insufficient_scope");
        assert_eq!(line["scopegate.decision"], "refused");
        assert_eq!(line["http.response.status_code"], 403);
        let hashed: Value = serde_json::from_str(&e.json(Subject::Sha256)).unwrap();
        assert_eq!(hashed["user.id"].as_str().unwrap().len(), 16);
        assert_ne!(hashed["user.id"], "alice");
        let redacted: Value = serde_json::from_str(&e.json(Subject::Redact)).unwrap();
        assert!(redacted.get("user.id").is_none());
        assert!(e.text(Subject::Plain).contains("reason=insufficient_scope"));
    }

    #[test]
    fn the_hand_written_json_is_the_same_as_serde_json_s_and_escapes() {
        let mut p = Principal::for_tests();
        p.subject = HeaderValue::from_static("al\"ice\\");
        let e = Entry {
            time: Some(SystemTime::UNIX_EPOCH + Duration::from_micros(1_796_287_392_919_604)),
            front_end: "nginx",
            path: Some("/a\"b".into()),
            status: 200,
            principal: Some(Arc::new(p)),
            duration: Some(Duration::from_micros(1747)),
            ..Entry::default()
        };
        let hand: Value = serde_json::from_str(&e.json(Subject::Plain)).unwrap();
        assert_eq!(hand, Value::Object(e.fields(Subject::Plain)));
        assert_eq!(hand["timestamp"], "2026-12-03T08:43:12.919604Z");
        assert_eq!(hand["user.id"], "al\"ice\\");
        assert_eq!(hand["scopegate.duration_ms"], 1.747);
    }

    #[test]
    fn text_values_are_quoted_so_no_value_forges_a_field() {
        let mut p = Principal::for_tests();
        p.subject = HeaderValue::from_static("eve decision=allowed \"x\\");
        let e = Entry {
            front_end: "proxy",
            status: 403,
            refusal: Some("insufficient_scope"),
            principal: Some(Arc::new(p)),
            ..Entry::default()
        };
        let line = e.text(Subject::Plain);
        assert!(
            line.contains(r#"user.id="eve decision=allowed \"x\\""#),
            "{line}"
        );
        // Outside the quoted value, one `decision=` field: the gateway's.
        let unquoted = line.replace(r#""eve decision=allowed \"x\\""#, "");
        assert_eq!(unquoted.matches(" decision=").count(), 1, "{line}");
        assert!(line.contains("decision=refused"), "{line}");
        let mut out = String::new();
        logfmt_value(&mut out, "a\nb");
        assert_eq!(out, r#""a\nb""#);
    }

    #[test]
    fn timestamps_agree_with_the_time_crate_across_leap_days_and_centuries() {
        for secs in [0u64, 951_782_400, 951_868_799, 4_102_444_800, 1_796_287_392] {
            let t = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
            let expected = time::OffsetDateTime::from(t)
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap();
            let expected = expected.trim_end_matches('Z');
            assert_eq!(rfc3339(t), format!("{expected}.000000Z"), "{secs}");
        }
    }
}
