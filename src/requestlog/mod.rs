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
//! Writing never blocks a request: lines go through a bounded queue to one writer thread;
//! when the queue is full, the line is dropped and counted
//! (`scopegate_request_log_dropped_total`).

mod line;

pub use line::Entry;

use crate::metrics::REQUEST_LOG_DROPPED;
use std::io::Write;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};

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

/// Lines waiting for the writer, at most.
const QUEUE: usize = 16_384;

fn queue() -> &'static SyncSender<String> {
    static QUEUE_TX: OnceLock<SyncSender<String>> = OnceLock::new();
    QUEUE_TX.get_or_init(|| {
        let (tx, rx) = mpsc::sync_channel::<String>(QUEUE);
        let spawned = std::thread::Builder::new()
            .name("scopegate-request-log".into())
            .spawn(move || {
                let stdout = std::io::stdout();
                let mut out = std::io::BufWriter::new(stdout.lock());
                while let Ok(line) = rx.recv() {
                    let _ = out.write_all(line.as_bytes());
                    // Write what is queued in one go, then flush: a line is visible at once
                    // when traffic is light, in batches when it is heavy.
                    while let Ok(line) = rx.try_recv() {
                        let _ = out.write_all(line.as_bytes());
                    }
                    let _ = out.flush();
                }
            });
        if let Err(e) = spawned {
            tracing::error!("request log writer: {e}");
        }
        tx
    })
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
    let line = match settings.format {
        Format::Json => entry.json(settings.subject),
        Format::Text => entry.text(settings.subject),
        Format::Off => return,
    };
    match queue().try_send(line) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
            REQUEST_LOG_DROPPED.inc()
        }
    }
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
