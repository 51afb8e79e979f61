//! Where a request to an upstream goes: one of its addresses, picked round robin or by least
//! requests (weights optional), skipping those that failed several times in a row (ejected
//! for a while, then tried again) or that an active health check found down; and whether a
//! failed idempotent request may be tried again (a budget, so that retries cannot double the
//! load on upstreams that are struggling). Plain state shared by the proxy, which reports
//! each outcome, and the sync tasks that re-resolve names and check health.

mod budget;

pub use budget::RetryBudget;

use arc_swap::ArcSwap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

/// How an address is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// In turn, each as often as its weight.
    RoundRobin,
    /// The one with the fewest requests in flight for its weight, of two picked at random
    /// ("power of two choices": nearly as good as looking at all, without a scan).
    LeastRequests,
}

/// When an address that fails is left alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ejection {
    /// Consecutive failures (connection refused or reset, timeouts) that eject it.
    pub failures: u32,
    /// For how long; then it is tried again, and one more failure ejects it again.
    pub duration: Duration,
}

/// One address of an upstream, with what the proxy and the health checks learnt of it.
#[derive(Debug)]
pub struct Endpoint {
    pub addr: SocketAddr,
    /// `addr` as a URI authority, made once (a request to it names it).
    pub authority: http::uri::Authority,
    pub weight: u32,
    in_flight: AtomicU32,
    failures: AtomicU32,
    /// Milliseconds since [`EPOCH`] until which it is ejected (0: not ejected).
    ejected_until: AtomicU64,
    /// Found down by the last active health check.
    down: AtomicBool,
}

static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

fn millis(at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(*EPOCH).as_millis()).unwrap_or(u64::MAX)
}

impl Endpoint {
    fn new(addr: SocketAddr, weight: u32) -> Endpoint {
        Endpoint {
            addr,
            authority: http::uri::Authority::try_from(addr.to_string())
                .expect("a socket address is an authority"),
            weight: weight.max(1),
            in_flight: AtomicU32::new(0),
            failures: AtomicU32::new(0),
            ejected_until: AtomicU64::new(0),
            down: AtomicBool::new(false),
        }
    }

    /// Neither ejected nor found down.
    pub fn usable(&self, now: Instant) -> bool {
        !self.down.load(Ordering::Relaxed)
            && self.ejected_until.load(Ordering::Relaxed) <= millis(now)
    }

    pub fn ejected(&self, now: Instant) -> bool {
        self.ejected_until.load(Ordering::Relaxed) > millis(now)
    }

    /// Found down by the last active health check.
    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::Relaxed)
    }

    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }
}

/// The addresses of one upstream.
#[derive(Debug)]
pub struct Pool {
    endpoints: ArcSwap<Vec<Arc<Endpoint>>>,
    policy: Policy,
    ejection: Ejection,
    cursor: AtomicUsize,
    /// xorshift state for the random picks of least-requests.
    seed: AtomicU64,
    pub retries: RetryBudget,
}

/// What became of a request sent to an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// An answer came (whatever its status: the address works).
    Answered,
    /// No answer: the connection failed, was reset or timed out.
    Failed,
}

/// An address picked for one request: in flight until dropped.
#[derive(Debug)]
pub struct Lease {
    pub endpoint: Arc<Endpoint>,
    ejection: Ejection,
}

impl Lease {
    /// Reports the outcome; `true` when it ejected the address just now.
    pub fn report(&self, outcome: Outcome, now: Instant) -> bool {
        let e = &self.endpoint;
        match outcome {
            Outcome::Answered => {
                e.failures.store(0, Ordering::Relaxed);
                false
            }
            Outcome::Failed => {
                let failures = e.failures.fetch_add(1, Ordering::Relaxed) + 1;
                if failures >= self.ejection.failures && !e.ejected(now) {
                    let until = millis(now + self.ejection.duration);
                    e.ejected_until.store(until, Ordering::Relaxed);
                    true
                } else {
                    false
                }
            }
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.endpoint.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Pool {
    pub fn new(
        addresses: Vec<(SocketAddr, u32)>,
        policy: Policy,
        ejection: Ejection,
        retries: RetryBudget,
    ) -> Pool {
        let mut seed = [0u8; 8];
        let _ = aws_lc_rs::rand::fill(&mut seed);
        Pool {
            endpoints: ArcSwap::from_pointee(
                addresses
                    .into_iter()
                    .map(|(a, w)| Arc::new(Endpoint::new(a, w)))
                    .collect(),
            ),
            policy,
            ejection,
            cursor: AtomicUsize::new(0),
            seed: AtomicU64::new(u64::from_le_bytes(seed) | 1),
            retries,
        }
    }

    pub fn endpoints(&self) -> Arc<Vec<Arc<Endpoint>>> {
        self.endpoints.load_full()
    }

    /// Puts `addresses` in force (a name resolved again): what was learnt of an address that
    /// stays is kept.
    pub fn set_addresses(&self, addresses: &[(SocketAddr, u32)]) {
        let old = self.endpoints.load();
        let next: Vec<Arc<Endpoint>> = addresses
            .iter()
            .map(|&(addr, weight)| {
                old.iter()
                    .find(|e| e.addr == addr && e.weight == weight.max(1))
                    .cloned()
                    .unwrap_or_else(|| Arc::new(Endpoint::new(addr, weight)))
            })
            .collect();
        self.endpoints.store(Arc::new(next));
    }

    /// Takes over the addresses and what was learnt of them from the pool a reload replaces.
    pub fn inherit(&self, old: &Pool) {
        self.endpoints.store(old.endpoints.load_full());
    }

    /// Records what an active health check found.
    pub fn set_down(&self, addr: SocketAddr, down: bool) {
        for e in self.endpoints.load().iter().filter(|e| e.addr == addr) {
            e.down.store(down, Ordering::Relaxed);
        }
    }

    /// An address for the next request (not `avoid`, the one a retry follows): a usable one
    /// by the policy; when none is usable, any (better a likely failure than a sure one).
    pub fn pick(&self, avoid: Option<SocketAddr>, now: Instant) -> Option<Lease> {
        let all = self.endpoints.load();
        let candidates: Vec<&Arc<Endpoint>> = all
            .iter()
            .filter(|e| Some(e.addr) != avoid && e.usable(now))
            .collect();
        let candidates = if candidates.is_empty() {
            all.iter().filter(|e| Some(e.addr) != avoid).collect()
        } else {
            candidates
        };
        let chosen = match (candidates.len(), self.policy) {
            (0, _) => return None,
            (1, _) => candidates[0],
            (_, Policy::RoundRobin) => self.round_robin(&candidates),
            (n, Policy::LeastRequests) => {
                let a = candidates[self.random(n)];
                let b = candidates[self.random(n)];
                // Fewer in flight for the weight: a/wa < b/wb.
                let load = |e: &Endpoint| u64::from(e.in_flight()) * 1000 / u64::from(e.weight);
                if load(a) <= load(b) { a } else { b }
            }
        };
        chosen.in_flight.fetch_add(1, Ordering::Relaxed);
        Some(Lease {
            endpoint: chosen.clone(),
            ejection: self.ejection,
        })
    }

    /// Each candidate as often as its weight, in turn.
    fn round_robin<'a>(&self, candidates: &[&'a Arc<Endpoint>]) -> &'a Arc<Endpoint> {
        let total: usize = candidates.iter().map(|e| e.weight as usize).sum();
        let mut at = self.cursor.fetch_add(1, Ordering::Relaxed) % total.max(1);
        for e in candidates {
            if at < e.weight as usize {
                return e;
            }
            at -= e.weight as usize;
        }
        candidates[0]
    }

    fn random(&self, n: usize) -> usize {
        let mut x = self.seed.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.seed.store(x, Ordering::Relaxed);
        (x % n as u64) as usize
    }
}

#[cfg(test)]
mod tests;
