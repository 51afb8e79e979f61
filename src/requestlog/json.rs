//! The request log's JSON, written by hand: one line per request, so no JSON value is built
//! and no `fmt` runs for numbers, durations or the timestamp.

use std::cell::RefCell;
use std::time::{Duration, SystemTime};

/// A JSON object written member by member.
pub(super) struct JsonLine<'a> {
    pub(super) out: &'a mut String,
    first: bool,
}

impl<'a> JsonLine<'a> {
    pub(super) fn new(out: &'a mut String) -> JsonLine<'a> {
        out.push('{');
        JsonLine { out, first: true }
    }

    pub(super) fn key(&mut self, k: &str) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        self.out.push('"');
        self.out.push_str(k);
        self.out.push_str("\":");
    }

    pub(super) fn raw(&mut self, k: &str, v: &str) {
        self.key(k);
        self.out.push_str(v);
    }

    /// An unsigned integer, without going through `fmt`.
    pub(super) fn int(&mut self, k: &str, v: u64) {
        self.key(k);
        digits(self.out, v);
    }

    /// A duration in milliseconds with microsecond precision (`0.412`, `12.5`, `3`), the
    /// shortest form, as a JSON number.
    pub(super) fn millis(&mut self, k: &str, d: Duration) {
        self.key(k);
        let micros = d.as_micros().min(u128::from(u64::MAX)) as u64;
        digits(self.out, micros / 1000);
        let mut frac = micros % 1000;
        if frac != 0 {
            self.out.push('.');
            let mut width = 3;
            while frac.is_multiple_of(10) {
                frac /= 10;
                width -= 1;
            }
            let start = self.out.len();
            digits(self.out, frac);
            let written = self.out.len() - start;
            for _ in written..width {
                self.out.insert(start, '0');
            }
        }
    }

    pub(super) fn str(&mut self, k: &str, v: &str) {
        self.key(k);
        self.out.push('"');
        // Runs that need no escape are copied whole.
        let mut run = 0;
        loop {
            let plain = crate::scan::prefix_len(&v.as_bytes()[run..], |b| {
                (b != b'"') & (b != b'\\') & (b >= 0x20)
            });
            self.out.push_str(&v[run..run + plain]);
            let Some(&b) = v.as_bytes().get(run + plain) else {
                break;
            };
            match b {
                b'"' => self.out.push_str("\\\""),
                b'\\' => self.out.push_str("\\\\"),
                _ => {
                    use std::fmt::Write;
                    let _ = write!(self.out, "\\u{:04x}", b);
                }
            }
            run += plain + 1;
        }
        self.out.push('"');
    }

    pub(super) fn end(self) {
        self.out.push_str("}\n");
    }
}

/// The decimal digits of `v`.
fn digits(out: &mut String, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(&buf[at..]).expect("ASCII digits"));
}

/// `v` in at least `width` (≤ 20) digits, zeros in front.
fn padded(out: &mut String, mut v: u64, width: usize) {
    let mut buf = [b'0'; 20];
    let mut at = buf.len();
    while v > 0 {
        at -= 1;
        buf[at] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    let at = at.min(buf.len() - width);
    out.push_str(std::str::from_utf8(&buf[at..]).expect("ASCII digits"));
}

/// An IP address as text; an IPv4 one without `fmt` (one per log line).
pub(super) fn address_into(ip: std::net::IpAddr, out: &mut String) {
    match ip {
        std::net::IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                digits(out, u64::from(octet));
            }
        }
        std::net::IpAddr::V6(v6) => {
            use std::fmt::Write;
            let _ = write!(out, "{v6}");
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmmmmZ` written into `out`, without `fmt`. The part up to the
/// second is kept per thread and written again only when the second changes: most lines
/// share it with the line before.
pub(super) fn rfc3339_into(t: SystemTime, out: &mut String) {
    thread_local! {
        static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    SECOND.with_borrow_mut(|(at, prefix)| {
        if *at != secs {
            prefix.clear();
            second_into(secs, prefix);
            *at = secs;
        }
        out.push_str(prefix);
    });
    padded(out, u64::from(d.subsec_micros()), 6);
    out.push('Z');
}

/// `YYYY-MM-DDTHH:MM:SS.` of `secs` since the epoch.
fn second_into(secs: u64, out: &mut String) {
    let (year, month, day, rem) = civil(secs);
    padded(out, year as u64, 4);
    out.push('-');
    padded(out, month as u64, 2);
    out.push('-');
    padded(out, day as u64, 2);
    out.push('T');
    padded(out, (rem / 3600) as u64, 2);
    out.push(':');
    padded(out, (rem % 3600 / 60) as u64, 2);
    out.push(':');
    padded(out, (rem % 60) as u64, 2);
    out.push('.');
}

/// The civil date (year, month, day) and the second of the day of `secs` since the epoch
/// (H. Hinnant's algorithm).
fn civil(secs: u64) -> (i64, i64, i64, i64) {
    let secs = secs as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, rem)
}

/// `YYYY-MM-DDTHH:MM:SS.mmmmmmZ`.
pub(super) fn rfc3339(t: SystemTime) -> String {
    let mut out = String::with_capacity(27);
    rfc3339_into(t, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_times_and_escapes_are_written_without_fmt_as_json_would_have_them() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456);
        assert_eq!(rfc3339(at), "2023-11-14T22:13:20.123456Z");
        assert_eq!(
            rfc3339(SystemTime::UNIX_EPOCH),
            "1970-01-01T00:00:00.000000Z"
        );
        // The kept second: the same second again, the next one, and back.
        for (micros, text) in [
            (1_700_000_000_999_999, "2023-11-14T22:13:20.999999Z"),
            (1_700_000_001_000_001, "2023-11-14T22:13:21.000001Z"),
            (1_700_000_000_000_000, "2023-11-14T22:13:20.000000Z"),
            (951_825_599_500_000, "2000-02-29T11:59:59.500000Z"),
        ] {
            assert_eq!(
                rfc3339(SystemTime::UNIX_EPOCH + Duration::from_micros(micros)),
                text
            );
        }
        let mut out = String::new();
        let mut w = JsonLine::new(&mut out);
        for micros in [412, 12_500, 3_000, 1_005, 50, 0, 7_654_321] {
            w.millis("d", Duration::from_micros(micros));
        }
        w.int("n", 0);
        w.int("n", u64::MAX);
        w.str("s", "a\"b\\c\u{1}d é");
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "255.255.255.255",
            "10.20.3.40",
            "::1",
            "2001:db8::8:1",
        ] {
            let mut text = String::new();
            address_into(ip.parse().unwrap(), &mut text);
            assert_eq!(text, ip);
        }
        w.end();
        assert_eq!(
            out,
            "{\"d\":0.412,\"d\":12.5,\"d\":3,\"d\":1.005,\"d\":0.05,\"d\":0,\"d\":7654.321,\"n\":0,\"n\":18446744073709551615,\"s\":\"a\\\"b\\\\c\\u0001d é\"}\n"
        );
    }
}
