//! The circuit breaker of an issuer's introspection endpoint: fail closed while the endpoint
//! is down, and notice quickly when it is back. After [`THRESHOLD`] failures in a row it
//! opens for a pause; after the pause it is half-open: one call at a time probes the
//! endpoint, and the first success closes it for everybody. A failed probe opens it again for
//! a longer pause (doubling from [`FIRST_PAUSE`] up to [`MAX_PAUSE`], with jitter so that
//! replicas do not probe in step); a success resets the pause. A 429 is not a failure (the
//! caller honours its `Retry-After` instead).

use std::time::{Duration, Instant};

/// Consecutive failures after which the endpoint is left alone.
pub const THRESHOLD: u32 = 5;
pub const FIRST_PAUSE: Duration = Duration::from_millis(50);
/// Short enough that a server back from an outage serves new tokens again within about
/// this long (one probe): the soak (`benches/soak.py`) needs it to keep >= 99 % of valid
/// requests served while the server is healthy; 1.5 s gave 96.7 %, 500 ms 98.9 %. A server
/// that is down still gets one call per pause (and never two at once) instead of one per
/// new token.
pub const MAX_PAUSE: Duration = Duration::from_millis(250);

/// Where the breaker is, for the metric (`scopegate_introspection_circuit{issuer}`) and the
/// request log's refusal reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Closed = 0,
    /// Paused after failures: calls fail at once.
    Open = 1,
    /// One call probes the endpoint; the others fail at once until it reports.
    HalfOpen = 2,
}

#[derive(Debug)]
enum Phase {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// A probe is out since `since`; one that never reports frees the slot after a pause.
    HalfOpen {
        since: Instant,
    },
}

#[derive(Debug)]
pub struct Breaker {
    phase: Phase,
    /// The pause of the next opening.
    pause: Duration,
    /// Jitter source (xorshift), seeded per breaker.
    seed: u64,
}

impl Default for Breaker {
    fn default() -> Breaker {
        let mut seed = [0u8; 8];
        let _ = aws_lc_rs::rand::fill(&mut seed);
        Breaker {
            phase: Phase::Closed { failures: 0 },
            pause: FIRST_PAUSE,
            seed: u64::from_le_bytes(seed) | 1,
        }
    }
}

impl Breaker {
    pub fn state(&self) -> State {
        match self.phase {
            Phase::Closed { .. } => State::Closed,
            Phase::Open { .. } => State::Open,
            Phase::HalfOpen { .. } => State::HalfOpen,
        }
    }

    /// Whether a call may go out now (and, after a pause, takes the probe).
    pub fn allows(&mut self, now: Instant) -> bool {
        match self.phase {
            Phase::Closed { .. } => true,
            Phase::Open { until } if now < until => false,
            Phase::Open { .. } => {
                self.phase = Phase::HalfOpen { since: now };
                true
            }
            // A probe that never reported (its task was dropped) frees the slot.
            Phase::HalfOpen { since } if now >= since + MAX_PAUSE * 4 => {
                self.phase = Phase::HalfOpen { since: now };
                true
            }
            Phase::HalfOpen { .. } => false,
        }
    }

    /// A call succeeded: closed for everybody, and the next opening starts short again.
    pub fn success(&mut self) {
        self.phase = Phase::Closed { failures: 0 };
        self.pause = FIRST_PAUSE;
    }

    /// A call failed; returns the state it leaves the breaker in.
    pub fn failure(&mut self, now: Instant) -> State {
        match self.phase {
            Phase::Closed { failures } if failures + 1 < THRESHOLD => {
                self.phase = Phase::Closed {
                    failures: failures + 1,
                };
                return State::Closed;
            }
            // A call that was already out when it opened says nothing new.
            Phase::Open { .. } => return State::Open,
            _ => {}
        }
        let pause = self.jittered(self.pause);
        self.pause = (self.pause * 2).min(MAX_PAUSE);
        self.phase = Phase::Open { until: now + pause };
        State::Open
    }

    /// `pause` shortened by up to a quarter, at random.
    fn jittered(&mut self, pause: Duration) -> Duration {
        let mut x = self.seed;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.seed = x;
        let fraction = 0.75 + (x % 1000) as f64 / 4000.0;
        pause.mul_f64(fraction)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opened(b: &mut Breaker, at: Instant) {
        for _ in 0..THRESHOLD - 1 {
            assert!(b.allows(at));
            assert_eq!(b.failure(at), State::Closed);
        }
        assert!(b.allows(at));
        assert_eq!(
            b.failure(at),
            State::Open,
            "the fifth failure in a row opens it"
        );
    }

    #[test]
    fn it_opens_after_repeated_failures_then_one_probe_at_a_time_closes_it_for_everybody() {
        let mut b = Breaker::default();
        let t0 = Instant::now();
        opened(&mut b, t0);
        assert!(!b.allows(t0 + FIRST_PAUSE / 2));
        let later = t0 + FIRST_PAUSE;
        assert!(b.allows(later), "one probe after the pause");
        assert_eq!(b.state(), State::HalfOpen);
        assert!(!b.allows(later), "and only one");
        b.success();
        assert_eq!(b.state(), State::Closed);
        assert!(b.allows(later), "the first success closes it for everybody");
        assert!(b.allows(later));
    }

    #[test]
    fn the_pause_grows_with_failed_probes_is_capped_and_resets_on_success() {
        let mut b = Breaker::default();
        let mut t = Instant::now();
        opened(&mut b, t);
        let mut pauses = Vec::new();
        for _ in 0..8 {
            // Wait out the pause, probe, fail.
            let mut waited = Duration::ZERO;
            while !b.allows(t + waited) {
                waited += Duration::from_millis(10);
            }
            pauses.push(waited);
            t += waited;
            assert_eq!(b.failure(t), State::Open);
        }
        assert!(pauses[1] > pauses[0], "{pauses:?}");
        assert!(
            pauses
                .iter()
                .all(|p| *p <= MAX_PAUSE + Duration::from_millis(10))
        );
        assert!(
            pauses.last().unwrap() >= &(MAX_PAUSE * 3 / 4),
            "capped, with jitter: {pauses:?}"
        );
        b.success();
        opened(&mut b, t);
        assert!(
            b.allows(t + FIRST_PAUSE),
            "after a success, the next opening is short again"
        );
    }

    #[test]
    fn a_probe_that_never_reports_does_not_keep_it_half_open_forever() {
        let mut b = Breaker::default();
        let t0 = Instant::now();
        opened(&mut b, t0);
        assert!(b.allows(t0 + FIRST_PAUSE));
        assert!(!b.allows(t0 + FIRST_PAUSE + MAX_PAUSE));
        assert!(b.allows(t0 + FIRST_PAUSE + MAX_PAUSE * 4));
    }
}
