//! Wall-clock time in Unix seconds: what token lifetimes, revocations and credential
//! sunsets are compared with. One place, so every stage reads the same clock.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch (0 if the system clock is before it).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
