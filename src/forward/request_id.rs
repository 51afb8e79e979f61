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

    /// The prefix and the counter in 32 lower-case hex digits (written by hand: one per
    /// request, `fmt` is the slow way).
    pub fn next(&self) -> HeaderValue {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut id = [0u8; 32];
        for (i, v) in [self.prefix, n].into_iter().enumerate() {
            for (j, b) in id[i * 16..(i + 1) * 16].iter_mut().enumerate() {
                *b = HEX[(v >> (60 - 4 * j) & 0xf) as usize];
            }
        }
        HeaderValue::from_bytes(&id).expect("hex is a valid header value")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_the_prefix_and_the_counter_in_hex() {
        let ids = RequestIds {
            prefix: 0x0123_4567_89ab_cdef,
            counter: AtomicU64::new(0xfe),
        };
        assert_eq!(ids.next(), "0123456789abcdef00000000000000fe");
        assert_eq!(ids.next(), "0123456789abcdef00000000000000ff");
        assert!(valid_request_id(&ids.next()));
    }
}
