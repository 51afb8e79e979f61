//! `X-Request-Id`: kept when a client's is sane, generated otherwise.

use http::HeaderValue;
use std::sync::atomic::{AtomicU64, Ordering};

pub fn valid_request_id(v: &HeaderValue) -> bool {
    let b = v.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b':'))
}

/// Request ids: a random 64-bit prefix per process and a counter; unique without a syscall.
pub struct RequestIds {
    prefix: u64,
    counter: AtomicU64,
}

impl RequestIds {
    pub fn new() -> RequestIds {
        let mut seed = [0u8; 8];
        // If the system RNG fails, ids stay unique within the process through the counter.
        let _ = aws_lc_rs::rand::fill(&mut seed);
        RequestIds {
            prefix: u64::from_le_bytes(seed),
            counter: AtomicU64::new(0),
        }
    }

    pub fn next(&self) -> HeaderValue {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        HeaderValue::from_str(&format!("{:016x}{:016x}", self.prefix, n))
            .expect("hex is a valid header value")
    }
}
