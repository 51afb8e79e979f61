//! Organization memberships asked of an issuer's API (GitHub), per token and organization.
//! Each answer is trusted for the issuer's `membership_ttl`; the token itself is never
//! stored, only its digest.

use super::cache::{Clock, TokenHash};
use quick_cache::sync::Cache;
use std::time::Duration;

/// What the issuer's API answered about the token's user and an organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Membership {
    Member,
    /// Not a member, an invitation not accepted, or not visible to the token.
    NotMember,
    /// The organization restricts third-party applications and has not approved this one.
    AppNotApproved,
    /// The organization requires single sign-on, and the token is not authorized for it.
    SsoRequired,
}

#[derive(Clone)]
struct Entry {
    member: Membership,
    /// When the answer ends, on the table's [`Clock`].
    ends_ms: u64,
}

pub struct Memberships {
    inner: Cache<(TokenHash, String), Entry>,
    clock: Clock,
}

impl Memberships {
    pub fn new(max_entries: u64) -> Memberships {
        Memberships {
            inner: Cache::new(usize::try_from(max_entries).unwrap_or(usize::MAX)),
            clock: Clock::new(),
        }
    }

    /// Whether the token's user is a member of `org` (compared in ASCII lowercase, as GitHub
    /// compares logins), if known.
    pub fn get(&self, token: &TokenHash, org: &str) -> Option<Membership> {
        let key = (*token, org.to_ascii_lowercase());
        let e = self.inner.get(&key)?;
        if self.clock.now_ms() < e.ends_ms {
            return Some(e.member);
        }
        self.inner.remove(&key);
        None
    }

    pub fn insert(&self, token: TokenHash, org: &str, member: Membership, ttl: Duration) {
        let ends_ms = self.clock.after(ttl);
        self.inner
            .insert((token, org.to_ascii_lowercase()), Entry { member, ends_ms });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Membership::{Member, NotMember};

    #[test]
    fn an_answer_is_kept_per_token_and_organization_whatever_the_case() {
        let m = Memberships::new(100);
        let (a, b) = ([1u8; 32], [2u8; 32]);
        m.insert(a, "Acme", Member, Duration::from_secs(60));
        m.insert(a, "widgets", NotMember, Duration::from_secs(60));
        assert_eq!(m.get(&a, "acme"), Some(Member));
        assert_eq!(m.get(&a, "ACME"), Some(Member));
        assert_eq!(m.get(&a, "widgets"), Some(NotMember));
        assert_eq!(m.get(&b, "acme"), None, "another token knows nothing");
        assert_eq!(m.get(&a, "other"), None);
    }

    #[test]
    fn an_answer_is_forgotten_after_its_ttl() {
        let m = Memberships::new(100);
        m.insert([1; 32], "acme", Member, Duration::from_millis(50));
        std::thread::sleep(Duration::from_millis(120));
        assert_eq!(m.get(&[1; 32], "acme"), None);
    }
}
