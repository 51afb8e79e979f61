//! How many introspection calls new opaque tokens may cause: a token bucket per client
//! network and one for everybody, so a flood of made-up tokens from one client costs the
//! authorization server a few calls per second, and from many clients at most the total.
//! An IPv6 client is its network (/64 by default: one host usually has a whole /64, so
//! counting addresses would give it unbounded budgets), an IPv4 one its address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Client networks remembered at most. Beyond, the buckets that have refilled (no call for
/// a second: the same as a new one) are forgotten; if every one is still in use, a new
/// network is refused until one is (the total bounds the calls all the same).
const MAX_CLIENTS: usize = 100_000;

/// A bucket that had no call for this long is full again: forgetting it changes nothing.
const REFILLED: Duration = Duration::from_secs(1);

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
    /// Too many client networks at once to remember another.
    Clients,
}

pub struct Budget {
    per_client: f64,
    per_second: f64,
    /// Leading bits of an IPv6 address that make one client.
    ipv6_prefix: u8,
    total: Mutex<Bucket>,
    clients: Mutex<Clients>,
}

/// The client networks' buckets, and when the refilled ones were last forgotten (a sweep at
/// most once a second: a stream of newcomers to a full table costs no more).
#[derive(Default)]
struct Clients {
    buckets: HashMap<IpAddr, Bucket>,
    swept: Option<Instant>,
}

impl Budget {
    pub fn new(per_client_per_second: u32, per_second: u32, ipv6_prefix: u8) -> Budget {
        let now = Instant::now();
        Budget {
            per_client: per_client_per_second as f64,
            per_second: per_second as f64,
            ipv6_prefix: ipv6_prefix.min(128),
            total: Mutex::new(Bucket::full(per_second as f64, now)),
            clients: Mutex::default(),
        }
    }

    /// The client `ip` counts as: its IPv6 network, or its IPv4 address.
    fn network(&self, ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => {
                    let bits = u128::from(v6);
                    let keep = u32::from(self.ipv6_prefix);
                    let mask = if keep == 0 {
                        0
                    } else {
                        u128::MAX << (128 - keep)
                    };
                    IpAddr::V6((bits & mask).into())
                }
            },
            v4 => v4,
        }
    }

    /// Takes one call from `client`'s budget, then from the total; `Err` says which was
    /// spent (a client over its own budget does not spend the total).
    pub fn take(&self, client: Option<IpAddr>, now: Instant) -> Result<(), Spent> {
        if let Some(ip) = client {
            let net = self.network(ip);
            let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
            let Clients { buckets, swept } = &mut *clients;
            if buckets.len() >= MAX_CLIENTS && !buckets.contains_key(&net) {
                if swept.is_none_or(|t| now.saturating_duration_since(t) >= REFILLED) {
                    buckets.retain(|_, b| now.saturating_duration_since(b.at) < REFILLED);
                    *swept = Some(now);
                }
                if buckets.len() >= MAX_CLIENTS {
                    return Err(Spent::Clients);
                }
            }
            let bucket = buckets
                .entry(net)
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
    fn an_ipv6_client_is_its_slash_64_and_ipv4_its_address() {
        let b = Budget::new(3, 1000, 64);
        let t0 = Instant::now();
        // A /64 is one host's: every address in it shares one budget.
        let spent = (0..10u16)
            .filter(|i| {
                let ip: IpAddr = format!("2001:db8:1:2::{i:x}").parse().unwrap();
                b.take(Some(ip), t0).is_ok()
            })
            .count();
        assert_eq!(spent, 3);
        let other_net: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert!(b.take(Some(other_net), t0).is_ok());
        // An IPv4-mapped address is its IPv4 client.
        let v4: IpAddr = "192.0.2.9".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.9".parse().unwrap();
        assert!(b.take(Some(v4), t0).is_ok());
        assert!(b.take(Some(mapped), t0).is_ok());
        assert!(b.take(Some(v4), t0).is_ok());
        assert_eq!(b.take(Some(mapped), t0), Err(Spent::Client));
    }

    #[test]
    fn a_full_table_forgets_refilled_buckets_and_never_starts_afresh() {
        let b = Budget::new(1, u32::MAX, 128);
        let t0 = Instant::now();
        let ip = |i: usize| IpAddr::from(std::net::Ipv6Addr::from(i as u128 + 1));
        for i in 0..MAX_CLIENTS {
            assert!(b.take(Some(ip(i)), t0).is_ok());
        }
        // Every bucket in use: a newcomer is refused, and a spent client stays spent.
        assert_eq!(b.take(Some(ip(MAX_CLIENTS)), t0), Err(Spent::Clients));
        assert_eq!(b.take(Some(ip(0)), t0), Err(Spent::Client));
        // A second later they have all refilled: forgotten to make room.
        let t1 = t0 + REFILLED;
        assert!(b.take(Some(ip(MAX_CLIENTS)), t1).is_ok());
    }

    #[test]
    fn a_client_gets_its_rate_and_the_total_bounds_everybody() {
        let b = Budget::new(5, 12, 64);
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
