//! What was revoked, checked on every request (cache hits included), so a revoked token cannot
//! come back through the cache or a cache-miss race. Reads are lock-free snapshots; events are
//! rare and rebuild the snapshot (dropping what expired).

use super::cache::TokenHash;
use crate::principal::Principal;
use arc_swap::ArcSwap;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Default, Clone)]
struct Set {
    /// Token hash → unix time until which it stays listed.
    tokens: HashMap<TokenHash, u64>,
    /// (`iss`, `jti`) → until.
    jtis: HashMap<(String, String), u64>,
    /// (`iss`, `sub`) → (revoked at, until): tokens issued before are refused.
    subjects: HashMap<(String, String), (u64, u64)>,
    /// (`iss`, client id) → (revoked at, until).
    clients: HashMap<(String, String), (u64, u64)>,
}

/// One revocation, as read from a security event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revoked {
    Token(TokenHash),
    Jti {
        iss: String,
        jti: String,
    },
    Subject {
        iss: String,
        sub: String,
        at: u64,
    },
    Client {
        iss: String,
        client_id: String,
        at: u64,
    },
}

#[derive(Default)]
pub struct Revocations {
    set: ArcSwap<Set>,
    /// False until the first event: the common case costs one atomic load.
    any: AtomicBool,
}

impl Revocations {
    /// Whether this very token was revoked (checked before anything else is done with it).
    pub fn is_token_revoked(&self, key: &TokenHash) -> bool {
        self.any.load(Ordering::Acquire) && self.set.load().tokens.contains_key(key)
    }

    /// Whether the principal's token id, subject or client was revoked. `iss` is its
    /// issuer's `iss`.
    pub fn is_principal_revoked(&self, p: &Principal, iss: &str) -> bool {
        if !self.any.load(Ordering::Acquire) {
            return false;
        }
        let set = self.set.load();
        let lookup = |s: &str| (iss.to_string(), s.to_string());
        if let Some(jti) = &p.jti
            && set.jtis.contains_key(&lookup(jti))
        {
            return true;
        }
        // A token with no `iat` cannot show it came after the revocation: refused.
        let before = |(at, _): &(u64, u64)| p.issued_at.is_none_or(|iat| iat <= *at);
        if let Ok(sub) = p.subject.to_str()
            && set.subjects.get(&lookup(sub)).is_some_and(before)
        {
            return true;
        }
        if let Some(c) = p.client_id.as_ref().and_then(|c| c.to_str().ok())
            && set.clients.get(&lookup(c)).is_some_and(before)
        {
            return true;
        }
        false
    }

    /// Takes every revocation of `old` (a configuration reload must not forget one).
    pub fn inherit(&self, old: &Revocations) {
        self.set.store(old.set.load_full());
        self.any
            .store(old.any.load(Ordering::Acquire), Ordering::Release);
    }

    /// Records revocations; entries live until `until` (tokens, jtis) or `retention` seconds
    /// after `now` (subjects, clients). Expired entries are dropped on the way.
    pub fn add(&self, revoked: &[Revoked], now: u64, token_until: u64, retention: u64) {
        let mut next = Set::clone(&self.set.load());
        next.tokens.retain(|_, u| *u > now);
        next.jtis.retain(|_, u| *u > now);
        next.subjects.retain(|_, (_, u)| *u > now);
        next.clients.retain(|_, (_, u)| *u > now);
        for r in revoked {
            match r {
                Revoked::Token(h) => {
                    next.tokens.insert(*h, token_until);
                }
                Revoked::Jti { iss, jti } => {
                    next.jtis.insert((iss.clone(), jti.clone()), token_until);
                }
                Revoked::Subject { iss, sub, at } => {
                    let e = next.subjects.entry((iss.clone(), sub.clone())).or_default();
                    *e = (e.0.max(*at), now + retention);
                }
                Revoked::Client { iss, client_id, at } => {
                    let e = next
                        .clients
                        .entry((iss.clone(), client_id.clone()))
                        .or_default();
                    *e = (e.0.max(*at), now + retention);
                }
            }
        }
        self.set.store(std::sync::Arc::new(next));
        self.any.store(true, Ordering::Release);
    }
}
