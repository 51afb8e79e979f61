//! One line per request or decision: who called what, and why it was refused. Field names
//! follow the OpenTelemetry semantic conventions (`http.request.method`, `url.path`,
//! `http.response.status_code`, `client.address`, `user.id`, `http.request.body.size`, …);
//! what is the gateway's own is under `scopegate.` (`scopegate.decision`,
//! `scopegate.reason`, `scopegate.route`, …).
//!
//! Never a token, a key or a secret: the line is built from the decision's facts (the
//! principal's subject, client, issuer), never from headers or the query. The subject can be
//! hashed or left out. Allowed requests can be sampled; refusals are always written.
//!
//! Writing never blocks a request: a request appends its line to a buffer (a short lock, no
//! system call, no allocation once warm); one writer thread takes the buffer every 20 ms
//! and writes it to stdout. Beyond 8 MiB pending, lines are dropped and counted
//! (`scopegate_request_log_dropped_total`).

mod json;
mod line;

pub use line::Entry;

use crate::metrics::REQUEST_LOG_DROPPED;
use std::cell::RefCell;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// How lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    /// For a person reading a terminal (`scopegate dev`).
    Text,
    Off,
}

/// How the subject is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    Plain,
    /// The first 16 hex digits of its SHA-256: the same subject, the same value.
    Sha256,
    /// Left out.
    Redact,
}

/// `log:` of the configuration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogSettings {
    pub format: Format,
    /// The fraction of allowed requests written (refusals are always written).
    pub sample_allowed: f64,
    pub subject: Subject,
}

// `sample_allowed` is checked to be within 0..=1 at load: never NaN.
impl Eq for LogSettings {}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            format: Format::Json,
            sample_allowed: 1.0,
            subject: Subject::Plain,
        }
    }
}

/// Bytes waiting for the writer, at most (beyond, lines are dropped and counted).
const MAX_PENDING: usize = 8 << 20;

/// How often the writer takes what is pending: no wake-up per line, so a request pays a
/// short lock and a copy, not a system call.
const WRITE_EVERY: Duration = Duration::from_millis(20);

/// Lines formatted by requests, taken by the writer thread.
static PENDING: Mutex<Vec<u8>> = Mutex::new(Vec::new());

fn writer() {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        let spawned = std::thread::Builder::new()
            .name("scopegate-request-log".into())
            .spawn(|| {
                let mut batch = Vec::with_capacity(64 << 10);
                loop {
                    std::thread::sleep(WRITE_EVERY);
                    write_pending(&mut batch);
                }
            });
        if let Err(e) = spawned {
            tracing::error!("request log writer: {e}");
        }
    });
}

/// Writes what is pending to stdout (`batch` is the writer's buffer, swapped in).
fn write_pending(batch: &mut Vec<u8>) {
    std::mem::swap(
        batch,
        &mut *PENDING.lock().unwrap_or_else(|p| p.into_inner()),
    );
    if !batch.is_empty() {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(batch);
        let _ = out.flush();
        batch.clear();
    }
}

/// Writes what requests have logged so far (at shutdown, so that no line is lost).
pub fn flush() {
    write_pending(&mut Vec::new());
}

/// Whether the `n`th allowed request is written at `rate` (spread evenly, no randomness).
fn sampled(rate: f64) -> bool {
    static ALLOWED: AtomicU64 = AtomicU64::new(0);
    if rate >= 1.0 {
        return true;
    }
    if rate <= 0.0 {
        return false;
    }
    let n = ALLOWED.fetch_add(1, Ordering::Relaxed) as f64;
    ((n + 1.0) * rate).floor() > (n * rate).floor()
}

/// Writes `entry` as `settings` say, without waiting.
pub fn write(settings: &LogSettings, entry: &Entry) {
    if settings.format == Format::Off || (entry.allowed() && !sampled(settings.sample_allowed)) {
        return;
    }
    thread_local! {
        static LINE: RefCell<String> = RefCell::new(String::with_capacity(512));
    }
    writer();
    LINE.with_borrow_mut(|line| {
        line.clear();
        match settings.format {
            Format::Json => entry.json_into(line, settings.subject),
            Format::Text => line.push_str(&entry.text(settings.subject)),
            Format::Off => return,
        }
        let mut pending = PENDING.lock().unwrap_or_else(|p| p.into_inner());
        if pending.len() + line.len() > MAX_PENDING {
            drop(pending);
            REQUEST_LOG_DROPPED.inc();
        } else {
            pending.extend_from_slice(line.as_bytes());
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_writes_the_asked_fraction_of_allowed_requests() {
        let written = (0..1000).filter(|_| sampled(0.1)).count();
        assert_eq!(written, 100);
        assert!((0..10).all(|_| sampled(1.0)));
        assert!(!(0..10).any(|_| sampled(0.0)));
    }
}
