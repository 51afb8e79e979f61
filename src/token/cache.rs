//! The verified-token cache: SHA-256 of the token → the answer, so a repeated token costs a
//! hash and a lookup instead of a signature check. The token itself is never stored.
//!
//! The table is quick_cache's, its hash keyed per process: its S3-FIFO admission keeps a flood
//! of one-off tokens from evicting the hot ones, at about 21 bytes of its own per entry (moka,
//! before it, took about 400: `cargo bench --bench memory`). It knows no lifetimes, so each entry carries when it
//! ends, and a lookup past that is a miss that removes it.

use super::error::TokenError;
use crate::principal::Principal;
use quick_cache::sync::Cache;
use quick_cache::{Lifecycle, UnitWeighter};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub type TokenHash = [u8; 32];

pub fn hash(token: &str) -> TokenHash {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// What the cache remembers of a token: who it stands for, or why it was refused.
#[derive(Clone)]
pub enum Cached {
    Valid(Arc<Principal>),
    Invalid(TokenError),
}

/// A cached answer as held: a refusal is fresh for its whole life. (Kept apart from
/// [`Cached`] so the freshness of a valid answer shares the refusal's space: 24 bytes an entry.)
#[derive(Clone)]
enum Answer {
    Valid {
        principal: Arc<Principal>,
        /// Until when (Unix seconds) the answer is fresh: served as a cache hit.
        fresh_until: u64,
    },
    Invalid(TokenError),
}

#[derive(Clone)]
struct Entry {
    answer: Answer,
    /// When the entry ends (past `fresh_until` only for a stale window), in milliseconds of
    /// the cache's own [`Clock`].
    ends_ms: u64,
}

/// The table's hash is keyed per process (SipHash, `RandomState`): the key is the SHA-256 of
/// a token anyone may send, and refusals are cached too, so an unkeyed hash (the digest's own
/// bytes) would let a client grind garbage tokens into one bucket and slow every lookup.
type Keyed = std::hash::RandomState;

/// Counts the entries the table drops for room (not those that end or are invalidated).
#[derive(Clone)]
struct CountEvictions(prometheus::IntCounter);

impl Lifecycle<TokenHash, Entry> for CountEvictions {
    type RequestState = ();
    fn on_evict(&self, _: &mut (), _: TokenHash, _: Entry) {
        self.0.inc();
    }
}

/// A table's own monotonic clock, in milliseconds: when its entries end (quick_cache knows
/// no lifetimes), immune to changes of the wall clock.
pub(super) struct Clock(Instant);

impl Clock {
    pub(super) fn new() -> Clock {
        Clock(Instant::now())
    }

    pub(super) fn now_ms(&self) -> u64 {
        u64::try_from(self.0.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The time `ttl` from now.
    pub(super) fn after(&self, ttl: Duration) -> u64 {
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        self.now_ms().saturating_add(ttl_ms)
    }
}

pub struct TokenCache {
    inner: Cache<TokenHash, Entry, UnitWeighter, Keyed, CountEvictions>,
    clock: Clock,
    max_ttl: Duration,
    negative_ttl: Duration,
}

impl TokenCache {
    /// `evictions` counts entries dropped for room (not expiry or invalidation).
    pub fn new(
        max_entries: u64,
        max_ttl: Duration,
        negative_ttl: Duration,
        evictions: prometheus::IntCounter,
    ) -> TokenCache {
        let capacity = usize::try_from(max_entries).unwrap_or(usize::MAX);
        let inner = Cache::with(
            capacity,
            max_entries,
            UnitWeighter,
            Keyed::new(),
            CountEvictions(evictions),
        );
        TokenCache {
            inner,
            clock: Clock::new(),
            max_ttl,
            negative_ttl,
        }
    }

    /// The entry for `key` while it has not ended; one that has is removed.
    fn live(&self, key: &TokenHash) -> Option<Entry> {
        let e = self.inner.get(key)?;
        let now = self.clock.now_ms();
        if now < e.ends_ms {
            return Some(e);
        }
        self.inner.remove_if(key, |e| e.ends_ms <= now);
        None
    }

    fn put(&self, key: TokenHash, answer: Answer, ttl: Duration) {
        let ends_ms = self.clock.after(ttl);
        self.inner.insert(key, Entry { answer, ends_ms });
    }

    /// Drops an entry; returns whether there was one.
    pub fn invalidate(&self, key: &TokenHash) -> bool {
        self.inner.remove(key).is_some()
    }

    pub fn max_ttl(&self) -> Duration {
        self.max_ttl
    }

    /// The answer for `key` while it is fresh.
    pub fn get(&self, key: &TokenHash, now: u64) -> Option<Cached> {
        match self.live(key)?.answer {
            Answer::Valid {
                principal,
                fresh_until,
            } => (now < fresh_until).then_some(Cached::Valid(principal)),
            Answer::Invalid(e) => Some(Cached::Invalid(e)),
        }
    }

    /// A valid answer past its freshness, still within its stale window and before the
    /// token's `exp` (the authorization server cannot be asked again).
    pub fn get_stale(&self, key: &TokenHash, now: u64) -> Option<Arc<Principal>> {
        match self.live(key)?.answer {
            Answer::Valid { principal, .. } if now < principal.expires_at => Some(principal),
            _ => None,
        }
    }

    /// Remembers a verified principal: fresh until `min(exp, max_ttl)`; with a `stale`
    /// window, kept that much longer (never past `exp`) for [`TokenCache::get_stale`].
    pub fn insert_valid(
        &self,
        key: TokenHash,
        p: Arc<Principal>,
        now: u64,
        stale: Option<Duration>,
    ) {
        let left = Duration::from_secs(p.expires_at.saturating_sub(now));
        let fresh = left.min(self.max_ttl);
        let ttl = (fresh + stale.unwrap_or_default()).min(left);
        if !ttl.is_zero() {
            let answer = Answer::Valid {
                principal: p,
                fresh_until: now.saturating_add(fresh.as_secs()),
            };
            self.put(key, answer, ttl);
        }
    }

    /// Remembers a refusal for `negative_ttl`, when the same token would fail the same way.
    pub fn insert_invalid(&self, key: TokenHash, e: TokenError) {
        if e.is_cacheable() && !self.negative_ttl.is_zero() {
            self.put(key, Answer::Invalid(e), self.negative_ttl);
        }
    }

    /// Takes the valid answers of `old` (a cache a reload replaces), each principal made
    /// again by `rebase` for this configuration (its scopes as bits of the new scope set),
    /// for what is left of its life. Refusals are not carried: they are cheap to make again.
    pub fn carry_over(&self, old: &TokenCache, rebase: impl Fn(&Principal) -> Option<Principal>) {
        let old_clock = old.clock.now_ms();
        for (key, e) in old.inner.iter() {
            let Answer::Valid {
                principal,
                fresh_until,
            } = &e.answer
            else {
                continue;
            };
            let left = Duration::from_millis(e.ends_ms.saturating_sub(old_clock));
            if left.is_zero() {
                continue;
            }
            let Some(p) = rebase(principal) else { continue };
            let answer = Answer::Valid {
                principal: Arc::new(p),
                fresh_until: *fresh_until,
            };
            self.put(key, answer, left);
        }
    }

    /// Entries held. An ended entry is held until looked up (then removed) or evicted for
    /// room: never used again, it is among the first evicted. Not swept here, as a sweep
    /// would lock each shard for a scan of it on the scrape.
    pub fn entry_count(&self) -> u64 {
        self.inner.len() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evictions() -> prometheus::IntCounter {
        prometheus::IntCounter::new("evictions", "test").unwrap()
    }

    #[test]
    fn a_cache_entry_stays_24_bytes() {
        assert_eq!(std::mem::size_of::<Entry>(), 24);
    }

    #[test]
    fn the_table_hash_is_keyed_so_a_client_cannot_choose_colliding_buckets() {
        use std::hash::BuildHasher;
        let a = hash("token-a");
        let (one, other) = (Keyed::new(), Keyed::new());
        assert_ne!(
            one.hash_one(a),
            u64::from_le_bytes(a[..8].try_into().unwrap()),
            "not the digest's own bytes"
        );
        assert_ne!(one.hash_one(a), other.hash_one(a), "a key of its own");
        assert_eq!(one.hash_one(a), one.hash_one(a));
    }

    #[test]
    fn an_answer_is_not_used_after_its_own_lifetime() {
        let c = TokenCache::new(
            10,
            Duration::from_secs(60),
            Duration::from_millis(30),
            evictions(),
        );
        c.insert_invalid(hash("a"), TokenError::BadSignature);
        assert!(c.get(&hash("a"), 0).is_some());
        assert_eq!(c.entry_count(), 1);
        std::thread::sleep(Duration::from_millis(40));
        assert!(c.get(&hash("a"), 0).is_none());
        assert_eq!(
            c.entry_count(),
            0,
            "the ended entry was removed when looked up"
        );
    }

    #[test]
    fn a_flood_of_one_off_tokens_stays_bounded_and_keeps_the_hot_token() {
        let c = TokenCache::new(
            10_000,
            Duration::from_secs(60),
            Duration::from_secs(60),
            evictions(),
        );
        let hot = hash("hot");
        c.insert_invalid(hot, TokenError::BadSignature);
        for _ in 0..20 {
            assert!(c.get(&hot, 0).is_some());
        }
        for i in 0..100_000 {
            c.insert_invalid(hash(&format!("flood-{i}")), TokenError::BadSignature);
            if i % 1000 == 0 {
                c.get(&hot, 0);
            }
        }
        assert!(c.entry_count() <= 10_000, "{}", c.entry_count());
        assert!(
            c.get(&hot, 0).is_some(),
            "S3-FIFO kept the frequently used entry"
        );
    }

    #[test]
    fn a_stale_window_keeps_an_active_answer_past_its_freshness_but_never_past_exp() {
        let c = TokenCache::new(
            10,
            Duration::from_secs(60),
            Duration::from_secs(5),
            evictions(),
        );
        let mut p = Principal::for_tests();
        p.expires_at = 1_000 + 3_600;
        let p = Arc::new(p);
        c.insert_valid(hash("t"), p.clone(), 1_000, Some(Duration::from_secs(60)));
        assert!(c.get(&hash("t"), 1_059).is_some(), "fresh for max_ttl");
        assert!(
            c.get(&hash("t"), 1_060).is_none(),
            "then a miss: asked again"
        );
        assert!(
            c.get_stale(&hash("t"), 1_060).is_some(),
            "usable stale meanwhile"
        );
        // Never past `exp`, whatever the window.
        let mut short = Principal::for_tests();
        short.expires_at = 1_000 + 30;
        c.insert_valid(
            hash("s"),
            Arc::new(short),
            1_000,
            Some(Duration::from_secs(600)),
        );
        assert!(c.get_stale(&hash("s"), 1_030).is_none());
        // Without a window nothing is stale.
        c.insert_valid(hash("n"), p, 1_000, None);
        assert!(c.get(&hash("n"), 1_060).is_none());
    }

    #[test]
    fn a_reload_carries_valid_answers_with_their_freshness_and_nothing_else() {
        let cache = || {
            TokenCache::new(
                10,
                Duration::from_secs(60),
                Duration::from_secs(60),
                evictions(),
            )
        };
        let old = cache();
        let mut p = Principal::for_tests();
        p.expires_at = 1_000 + 3_600;
        old.insert_valid(hash("valid"), Arc::new(p), 1_000, None);
        old.insert_invalid(hash("refused"), TokenError::BadSignature);
        let new = cache();
        new.carry_over(&old, |p| Some(p.with_grant(p.grant.clone())));
        assert!(matches!(
            new.get(&hash("valid"), 1_059),
            Some(Cached::Valid(_))
        ));
        assert!(new.get(&hash("valid"), 1_060).is_none(), "fresh as before");
        assert!(
            new.get(&hash("refused"), 1_000).is_none(),
            "refusals not carried"
        );
        let none = cache();
        none.carry_over(&old, |_| None);
        assert_eq!(none.entry_count(), 0, "what cannot be rebased is dropped");
    }

    #[test]
    fn refusals_that_a_refresh_may_fix_are_not_cached() {
        let c = TokenCache::new(
            10,
            Duration::from_secs(60),
            Duration::from_secs(5),
            evictions(),
        );
        c.insert_invalid(hash("a"), TokenError::UnknownKey);
        c.insert_invalid(hash("b"), TokenError::BadSignature);
        assert!(c.get(&hash("a"), 0).is_none());
        assert!(matches!(
            c.get(&hash("b"), 0),
            Some(Cached::Invalid(TokenError::BadSignature))
        ));
    }
}
