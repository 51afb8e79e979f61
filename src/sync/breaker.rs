//! The circuit breaker of an issuer's introspection endpoint.

use std::time::{Duration, Instant};

/// Consecutive failures after which an issuer's introspection endpoint is left alone.
const BREAKER_THRESHOLD: u32 = 5;
const BREAKER_FIRST_PAUSE: Duration = Duration::from_secs(1);
const BREAKER_MAX_PAUSE: Duration = Duration::from_secs(30);

/// A circuit breaker: after [`BREAKER_THRESHOLD`] failures in a row, calls fail at once for a
/// pause (doubling up to [`BREAKER_MAX_PAUSE`]); after the pause one call probes the endpoint,
/// and a success closes the breaker.
#[derive(Default)]
pub struct Breaker {
    failures: u32,
    pause: Duration,
    open_until: Option<Instant>,
}

impl Breaker {
    /// Whether a call may go out now.
    pub fn allows(&mut self, now: Instant) -> bool {
        match self.open_until {
            Some(t) if now < t => false,
            Some(_) => {
                // Half-open: this call probes; until it reports, others wait a full pause.
                self.open_until = Some(now + self.pause);
                true
            }
            None => true,
        }
    }

    pub fn success(&mut self) {
        *self = Breaker::default();
    }

    /// Returns true when this failure opened (or kept open) the breaker.
    pub fn failure(&mut self, now: Instant) -> bool {
        self.failures += 1;
        if self.failures < BREAKER_THRESHOLD {
            return false;
        }
        self.pause = if self.pause.is_zero() {
            BREAKER_FIRST_PAUSE
        } else {
            (self.pause * 2).min(BREAKER_MAX_PAUSE)
        };
        self.open_until = Some(now + self.pause);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_breaker_opens_after_repeated_failures_and_probes_after_a_pause() {
        let mut b = Breaker::default();
        let t0 = Instant::now();
        for _ in 0..BREAKER_THRESHOLD - 1 {
            assert!(b.allows(t0));
            assert!(!b.failure(t0));
        }
        assert!(b.failure(t0), "the fifth failure in a row opens it");
        assert!(!b.allows(t0 + Duration::from_millis(500)));
        let later = t0 + BREAKER_FIRST_PAUSE;
        assert!(b.allows(later), "one probe after the pause");
        assert!(!b.allows(later), "and only one");
        assert!(b.failure(later), "a failed probe opens it again, longer");
        assert!(!b.allows(later + BREAKER_FIRST_PAUSE));
        assert!(b.allows(later + 2 * BREAKER_FIRST_PAUSE));
        b.success();
        assert!(b.allows(later + 2 * BREAKER_FIRST_PAUSE));
        assert_eq!(b.failures, 0);
    }
}
