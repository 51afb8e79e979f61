//! Rate limits: a GCRA token bucket per key (the `governor` crate), checked once a request
//! is allowed and before it is forwarded, so a refusal never reaches the upstream.

use crate::principal::Principal;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use http::{HeaderMap, HeaderValue};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Beyond this many keys, buckets that refilled are forgotten (at most once a second).
const SWEEP_ABOVE: usize = 100_000;

/// Whose bucket a request takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Per {
    ClientId,
    Subject,
    /// The organization the route checked.
    Org,
    /// The client's address (IPv6 by /64: one network, one bucket).
    ClientAddress,
    /// A claim's value: an index into the principal's `claim_values`.
    Claim(usize),
}

type Limiter = RateLimiter<
    Box<str>,
    DefaultKeyedStateStore<Box<str>>,
    DefaultClock,
    StateInformationMiddleware,
>;

pub struct RateLimit {
    pub name: String,
    pub per: Per,
    limiter: Limiter,
    /// `RateLimit-Policy` (draft-ietf-httpapi-ratelimit-headers): `"name";q=100;w=60`.
    policy: HeaderValue,
    last_sweep: AtomicU64,
}

/// What a limit knows of the request.
pub struct Caller<'a> {
    pub principal: Option<&'a Principal>,
    pub org: Option<&'a HeaderValue>,
    pub address: Option<IpAddr>,
}

/// Over a limit: what the 429 says.
#[derive(Debug, Clone)]
pub struct Exceeded {
    /// Whole seconds until a request would be taken again (at least 1).
    pub retry_after: u64,
    pub policy: HeaderValue,
    /// `RateLimit`: `"name";r=0;t=<retry_after>`.
    pub state: HeaderValue,
}

impl RateLimit {
    /// `requests` per `every` with bursts up to `burst`; `Err` says what is wrong.
    pub fn new(
        name: String,
        per: Per,
        requests: u32,
        every: Duration,
        burst: Option<u32>,
    ) -> Result<RateLimit, String> {
        let requests = NonZeroU32::new(requests).ok_or("`requests` must be at least 1")?;
        let burst =
            NonZeroU32::new(burst.unwrap_or(requests.get())).ok_or("`burst` must be at least 1")?;
        let period = every / requests.get();
        let quota = Quota::with_period(period)
            .ok_or("`every` is too short for that many `requests`")?
            .allow_burst(burst);
        let policy = HeaderValue::from_str(&format!(
            "{};q={};w={}",
            quoted(&name)?,
            requests,
            every.as_secs().max(1)
        ))
        .map_err(|_| format!("`{name}` cannot be a policy name"))?;
        Ok(RateLimit {
            name,
            per,
            limiter: RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>(),
            policy,
            last_sweep: AtomicU64::new(0),
        })
    }

    /// Takes one request from the caller's bucket.
    pub fn check(&self, caller: &Caller) -> Result<(), Exceeded> {
        let key = self.key(caller);
        let outcome = self.limiter.check_key(&key);
        self.sweep();
        match outcome {
            Ok(_) => Ok(()),
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.limiter.clock().now());
                let retry_after = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                let retry_after = retry_after.max(1);
                let state = format!(
                    "{};r=0;t={retry_after}",
                    quoted(&self.name).unwrap_or_default()
                );
                Err(Exceeded {
                    retry_after,
                    policy: self.policy.clone(),
                    state: HeaderValue::from_str(&state)
                        .unwrap_or(HeaderValue::from_static("\"limit\";r=0")),
                })
            }
        }
    }

    /// The caller's key; callers without a value for it share the empty key.
    fn key(&self, caller: &Caller) -> Box<str> {
        let text = |v: Option<&HeaderValue>| -> Box<str> {
            v.and_then(|v| v.to_str().ok()).unwrap_or_default().into()
        };
        let p = caller.principal;
        match self.per {
            Per::ClientId => text(p.and_then(|p| p.client_id.as_deref())),
            Per::Subject => text(p.map(|p| &p.subject)),
            Per::Org => text(caller.org),
            Per::Claim(i) => text(p.and_then(|p| p.claim_values().get(i)?.as_ref())),
            Per::ClientAddress => match caller.address {
                Some(IpAddr::V6(a)) => {
                    let net = u128::from(a) & !((1u128 << 64) - 1);
                    format!("{}/64", std::net::Ipv6Addr::from(net)).into()
                }
                Some(a) => a.to_string().into(),
                None => "".into(),
            },
        }
    }

    /// Forgets buckets that refilled, when there are many keys (at most once a second, so a
    /// flood of keys does not make every request walk the table).
    fn sweep(&self) {
        if self.limiter.len() <= SWEEP_ABOVE {
            return;
        }
        let now = crate::clock::unix_now();
        let last = self.last_sweep.load(Ordering::Relaxed);
        if now > last
            && self
                .last_sweep
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
    }
}

/// A structured-field string: the name between quotes (it may not hold `"` or `\`).
fn quoted(name: &str) -> Result<String, String> {
    if name.contains(['"', '\\']) || !name.is_ascii() {
        return Err(format!(
            "`{name}`: a policy name is ASCII without `\"` or `\\`"
        ));
    }
    Ok(format!("\"{name}\""))
}

/// The client's address: the connection's peer, or, when the peer is a trusted proxy, the
/// last `X-Forwarded-For` entry that is not one (the address the first trusted hop saw).
pub fn client_address(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    trusted: &[IpAddr],
) -> Option<IpAddr> {
    let peer = peer?;
    if !trusted.contains(&peer) {
        return Some(peer);
    }
    let mut chain: Vec<IpAddr> = Vec::new();
    for v in headers.get_all("x-forwarded-for") {
        for part in v.to_str().ok()?.split(',') {
            chain.push(part.trim().parse().ok()?);
        }
    }
    chain
        .into_iter()
        .rev()
        .find(|a| !trusted.contains(a))
        .or(Some(peer))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(subject: &'static str) -> Principal {
        Principal {
            subject: HeaderValue::from_static(subject),
            ..Principal::for_tests()
        }
    }

    #[test]
    fn each_key_has_its_own_bucket_and_the_refusal_says_when_to_come_back() {
        let limit = RateLimit::new(
            "search".into(),
            Per::Subject,
            2,
            Duration::from_secs(60),
            None,
        )
        .unwrap();
        let (alice, bob) = (caller("alice"), caller("bob"));
        let as_ = |p| Caller {
            principal: Some(p),
            org: None,
            address: None,
        };
        assert!(limit.check(&as_(&alice)).is_ok());
        assert!(limit.check(&as_(&alice)).is_ok());
        let over = limit.check(&as_(&alice)).unwrap_err();
        // One request every 30 s: the next in at most 30 s.
        assert!((1..=30).contains(&over.retry_after), "{}", over.retry_after);
        assert_eq!(over.policy, "\"search\";q=2;w=60");
        assert_eq!(
            over.state.to_str().unwrap(),
            format!("\"search\";r=0;t={}", over.retry_after)
        );
        assert!(limit.check(&as_(&bob)).is_ok(), "bob's bucket is his own");
    }

    #[test]
    fn ipv6_clients_share_their_slash_64_and_callers_without_a_value_share_one_bucket() {
        let limit = RateLimit::new(
            "x".into(),
            Per::ClientAddress,
            1,
            Duration::from_secs(60),
            None,
        )
        .unwrap();
        let from = |a: &str| Caller {
            principal: None,
            org: None,
            address: Some(a.parse().unwrap()),
        };
        assert!(limit.check(&from("2001:db8:1:2::1")).is_ok());
        assert!(limit.check(&from("2001:db8:1:2::ffff")).is_err());
        assert!(limit.check(&from("2001:db8:1:3::1")).is_ok());
        let orgs = RateLimit::new("o".into(), Per::Org, 1, Duration::from_secs(60), None).unwrap();
        let nobody = Caller {
            principal: None,
            org: None,
            address: None,
        };
        assert!(orgs.check(&nobody).is_ok());
        assert!(orgs.check(&nobody).is_err());
    }

    #[test]
    fn impossible_limits_are_refused_with_why() {
        let new = |requests, burst| {
            RateLimit::new(
                "x".into(),
                Per::Subject,
                requests,
                Duration::from_secs(1),
                burst,
            )
        };
        assert!(new(0, None).err().unwrap().contains("at least 1"));
        assert!(new(1, Some(0)).err().unwrap().contains("at least 1"));
        assert!(
            RateLimit::new("a\"b".into(), Per::Subject, 1, Duration::from_secs(1), None).is_err()
        );
    }

    #[test]
    fn behind_a_trusted_proxy_the_client_is_the_last_untrusted_forwarded_address() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "6.6.6.6, 203.0.113.7".parse().unwrap());
        assert_eq!(
            client_address(Some(proxy), &h, &[proxy]),
            Some("203.0.113.7".parse().unwrap())
        );
        // From an untrusted peer the header is the client's own claim: ignored.
        let peer: IpAddr = "198.51.100.9".parse().unwrap();
        assert_eq!(client_address(Some(peer), &h, &[proxy]), Some(peer));
    }
}
