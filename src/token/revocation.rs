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

/// One revocation, as read from a security event (and as shared between replicas: digests
/// and identifiers, never a token).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", content = "of", rename_all = "snake_case")]
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

impl Revoked {
    /// The issuer (`iss`) whose tokens it names; `None` for a token named by its hash.
    pub fn issuer(&self) -> Option<&str> {
        match self {
            Revoked::Token(_) => None,
            Revoked::Jti { iss, .. }
            | Revoked::Subject { iss, .. }
            | Revoked::Client { iss, .. } => Some(iss),
        }
    }
}

/// A revocation with its times (Unix seconds), as applied here and as shared with the other
/// replicas: applied `at`; a named token or `jti` stays refused `until`; a subject or client
/// for `retention` seconds after `at`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Applied {
    pub revoked: Revoked,
    pub at: u64,
    pub until: u64,
    pub retention: u64,
}

impl Applied {
    /// When it stops mattering (its score in the shared sorted set).
    pub fn expires(&self) -> u64 {
        self.until.max(self.at.saturating_add(self.retention))
    }
}

/// Revocations applied here that the other replicas have not been told of yet (Redis did
/// not take them): one list for the process, like the index, so a reload keeps it.
#[derive(Default)]
pub struct Unshared(std::sync::Mutex<Vec<Applied>>);

impl Unshared {
    pub fn push(&self, applied: impl IntoIterator<Item = Applied>) {
        self.lock().extend(applied);
    }

    /// Takes them all (to write them); what could not be written is pushed back.
    pub fn take(&self) -> Vec<Applied> {
        std::mem::take(&mut *self.lock())
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Applied>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
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
        let before = |(at, _): &(u64, u64)| p.issued_at <= *at;
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

    /// Records revocations; entries live until `until` (tokens, jtis) or `retention` seconds
    /// after `now` (subjects, clients). Expired entries are dropped on the way.
    pub fn add(&self, revoked: &[Revoked], now: u64, token_until: u64, retention: u64) {
        let applied: Vec<Applied> = revoked
            .iter()
            .map(|r| Applied {
                revoked: r.clone(),
                at: now,
                until: token_until,
                retention,
            })
            .collect();
        self.add_all(&applied, now);
    }

    /// Records revocations applied each at its own time (shared ones, loaded at start): one
    /// new snapshot for all of them, so loading N costs O(N). What expired by `now` is
    /// dropped, and the newest time of a subject or client wins.
    pub fn add_all(&self, applied: &[Applied], now: u64) {
        let mut next = Set::clone(&self.set.load());
        next.tokens.retain(|_, u| *u > now);
        next.jtis.retain(|_, u| *u > now);
        next.subjects.retain(|_, (_, u)| *u > now);
        next.clients.retain(|_, (_, u)| *u > now);
        for a in applied.iter().filter(|a| a.expires() > now) {
            let later = |old: u64, new: u64| old.max(new);
            let kept = a.at.saturating_add(a.retention);
            match &a.revoked {
                Revoked::Token(h) => {
                    let u = next.tokens.entry(*h).or_default();
                    *u = later(*u, a.until);
                }
                Revoked::Jti { iss, jti } => {
                    let u = next.jtis.entry((iss.clone(), jti.clone())).or_default();
                    *u = later(*u, a.until);
                }
                Revoked::Subject { iss, sub, at } => {
                    let e = next.subjects.entry((iss.clone(), sub.clone())).or_default();
                    *e = (e.0.max(*at), later(e.1, kept));
                }
                Revoked::Client { iss, client_id, at } => {
                    let e = next
                        .clients
                        .entry((iss.clone(), client_id.clone()))
                        .or_default();
                    *e = (e.0.max(*at), later(e.1, kept));
                }
            }
        }
        self.set.store(std::sync::Arc::new(next));
        self.any.store(true, Ordering::Release);
    }

    /// Entries in the index (tokens, token ids, subjects and clients).
    pub fn len(&self) -> usize {
        let s = self.set.load();
        s.tokens.len() + s.jtis.len() + s.subjects.len() + s.clients.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use std::sync::Arc;

    const ISS: &str = "https://issuer.test";

    fn principal(
        sub: &'static str,
        client: &'static str,
        jti: Option<&str>,
        iat: Option<u64>,
    ) -> Principal {
        Principal {
            issued_at: iat.unwrap_or(0),
            jti: jti.map(Into::into),
            subject: HeaderValue::from_static(sub),
            client_id: Some(Arc::new(HeaderValue::from_static(client))),
            ..Principal::for_tests()
        }
    }

    #[test]
    fn nothing_is_revoked_before_the_first_event() {
        let r = Revocations::default();
        assert!(!r.is_token_revoked(&[7; 32]));
        assert!(!r.is_principal_revoked(&principal("alice", "app", Some("j"), Some(1)), ISS));
    }

    #[test]
    fn a_token_and_a_jti_are_revoked_until_their_time() {
        let r = Revocations::default();
        let jti = Revoked::Jti {
            iss: ISS.into(),
            jti: "j1".into(),
        };
        r.add(&[Revoked::Token([7; 32]), jti], 100, 200, 1000);
        assert!(r.is_token_revoked(&[7; 32]));
        assert!(!r.is_token_revoked(&[8; 32]));
        assert!(r.is_principal_revoked(&principal("alice", "app", Some("j1"), Some(1)), ISS));
        assert!(!r.is_principal_revoked(
            &principal("alice", "app", Some("j1"), Some(1)),
            "https://other.test"
        ));
        // A later event drops what expired on the way.
        r.add(&[], 201, 300, 1000);
        assert!(!r.is_token_revoked(&[7; 32]));
    }

    #[test]
    fn a_subject_or_client_revocation_refuses_tokens_issued_before_it_and_without_iat() {
        let r = Revocations::default();
        r.add(
            &[Revoked::Subject {
                iss: ISS.into(),
                sub: "alice".into(),
                at: 500,
            }],
            500,
            0,
            1000,
        );
        assert!(r.is_principal_revoked(&principal("alice", "app", None, Some(499)), ISS));
        assert!(r.is_principal_revoked(&principal("alice", "app", None, Some(500)), ISS));
        assert!(r.is_principal_revoked(&principal("alice", "app", None, None), ISS));
        assert!(!r.is_principal_revoked(&principal("alice", "app", None, Some(501)), ISS));
        assert!(!r.is_principal_revoked(&principal("bob", "app", None, Some(1)), ISS));
        r.add(
            &[Revoked::Client {
                iss: ISS.into(),
                client_id: "app".into(),
                at: 600,
            }],
            600,
            0,
            1000,
        );
        assert!(r.is_principal_revoked(&principal("bob", "app", None, Some(599)), ISS));
        assert!(!r.is_principal_revoked(&principal("bob", "other-app", None, Some(599)), ISS));
    }

    #[test]
    fn a_subject_revocation_lasts_its_retention() {
        let r = Revocations::default();
        r.add(
            &[Revoked::Subject {
                iss: ISS.into(),
                sub: "alice".into(),
                at: 500,
            }],
            500,
            0,
            100,
        );
        r.add(&[], 601, 0, 100);
        assert!(!r.is_principal_revoked(&principal("alice", "app", None, Some(1)), ISS));
    }
}
