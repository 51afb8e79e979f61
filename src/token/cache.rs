//! The verified-token cache: SHA-256 of the token → the answer, so a repeated token costs a
//! hash and a lookup instead of a signature check. The token itself is never stored.
//!
//! moka's TinyLFU admission keeps a flood of one-off tokens from evicting the hot ones.

use super::error::TokenError;
use crate::principal::Principal;
use moka::sync::Cache;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub type TokenHash = [u8; 32];

pub fn hash(token: &str) -> TokenHash {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

#[derive(Clone)]
pub enum Answer {
    Valid(Arc<Principal>),
    Invalid(TokenError),
}

#[derive(Clone)]
struct Entry {
    answer: Answer,
    ttl: Duration,
}

struct Lifetime;

impl moka::Expiry<TokenHash, Entry> for Lifetime {
    fn expire_after_create(&self, _: &TokenHash, e: &Entry, _: Instant) -> Option<Duration> {
        Some(e.ttl)
    }
}

pub struct TokenCache {
    inner: Cache<TokenHash, Entry>,
    max_ttl: Duration,
    negative_ttl: Duration,
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl TokenCache {
    pub fn new(max_entries: u64, max_ttl: Duration, negative_ttl: Duration) -> TokenCache {
        TokenCache {
            inner: Cache::builder()
                .max_capacity(max_entries)
                .expire_after(Lifetime)
                .build(),
            max_ttl,
            negative_ttl,
        }
    }

    pub fn get(&self, key: &TokenHash) -> Option<Answer> {
        self.inner.get(key).map(|e| e.answer)
    }

    /// Remembers a verified principal until `min(exp, max_ttl)`.
    pub fn insert_valid(&self, key: TokenHash, p: Arc<Principal>, now: u64) {
        let left = Duration::from_secs(p.expires_at.saturating_sub(now));
        let ttl = left.min(self.max_ttl);
        if !ttl.is_zero() {
            self.inner.insert(
                key,
                Entry {
                    answer: Answer::Valid(p),
                    ttl,
                },
            );
        }
    }

    /// Remembers a refusal for `negative_ttl`, when the same token would fail the same way.
    pub fn insert_invalid(&self, key: TokenHash, e: TokenError) {
        if e.is_cacheable() && !self.negative_ttl.is_zero() {
            self.inner.insert(
                key,
                Entry {
                    answer: Answer::Invalid(e),
                    ttl: self.negative_ttl,
                },
            );
        }
    }

    pub fn entry_count(&self) -> u64 {
        self.inner.entry_count()
    }

    /// Applies pending inserts and evictions now (moka does it lazily).
    pub fn run_pending_tasks(&self) {
        self.inner.run_pending_tasks();
    }
}
