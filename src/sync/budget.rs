//! How many introspection calls new opaque tokens may cause: a token bucket per client
//! address and one for everybody, so a flood of made-up tokens from one client costs the
//! authorization server a few calls per second, and from many clients at most the total.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

/// Client addresses remembered at most; beyond, the table starts afresh (every client then
/// has a full bucket again: the total still bounds the calls).
const MAX_CLIENTS: usize = 100_000;

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(rate: f64, now: Instant) -> Bucket {
        Bucket {
            tokens: rate.max(1.0),
            at: now,
        }
    }

    /// Refills at `rate` per second up to one second's worth, then takes one if it can.
    fn take(&mut self, rate: f64, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(rate.max(1.0));
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Why a call was not made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spent {
    Client,
    Total,
}

pub struct Budget {
    per_client: f64,
    per_second: f64,
    total: Mutex<Bucket>,
    clients: Mutex<HashMap<IpAddr, Bucket>>,
}

impl Budget {
    pub fn new(per_client_per_second: u32, per_second: u32) -> Budget {
        let now = Instant::now();
        Budget {
            per_client: per_client_per_second as f64,
            per_second: per_second as f64,
            total: Mutex::new(Bucket::full(per_second as f64, now)),
            clients: Mutex::default(),
        }
    }

    /// Takes one call from `client`'s budget, then from the total; `Err` says which was
    /// spent (a client over its own budget does not spend the total).
    pub fn take(&self, client: Option<IpAddr>, now: Instant) -> Result<(), Spent> {
        if let Some(ip) = client {
            let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
            if clients.len() >= MAX_CLIENTS && !clients.contains_key(&ip) {
                clients.clear();
            }
            let bucket = clients
                .entry(ip)
                .or_insert_with(|| Bucket::full(self.per_client, now));
            if !bucket.take(self.per_client, now) {
                return Err(Spent::Client);
            }
        }
        let mut total = self.total.lock().unwrap_or_else(|p| p.into_inner());
        if total.take(self.per_second, now) {
            Ok(())
        } else {
            Err(Spent::Total)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_client_gets_its_rate_and_the_total_bounds_everybody() {
        let b = Budget::new(5, 12);
        let t0 = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let granted = (0..100).filter(|_| b.take(Some(a), t0).is_ok()).count();
        assert_eq!(granted, 5, "one second's worth at once");
        assert_eq!(b.take(Some(a), t0), Err(Spent::Client));
        // A second later, five more.
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!((0..100).filter(|_| b.take(Some(a), t1).is_ok()).count(), 5);
        // Other clients share the total: refilled to 12 at t1, 5 of them spent by `a`.
        let others = (0..100)
            .filter(|i| {
                b.take(Some(IpAddr::from([198, 51, 100, *i as u8])), t1)
                    .is_ok()
            })
            .count();
        assert_eq!(others, 7);
        assert_eq!(b.take(None, t1), Err(Spent::Total));
    }
}
