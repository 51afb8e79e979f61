//! Token checks that need no network: JWT verification against an issuer's keys, what an
//! introspection answer means, Security Event Token verification, the cache of answers and
//! the revocation index.

mod cache;
mod claims;
mod dialect;
mod error;
mod introspection;
mod issuer;
mod json;
mod jwt;
mod keys;
mod membership;
mod revocation;
pub mod set;
#[cfg(test)]
pub(crate) mod testing;

pub use cache::{Cached, TokenCache, TokenHash, hash};
pub use claims::Principals;
pub use dialect::{Dialect, GITHUB_API, GOOGLE_TOKENINFO, Status as IntrospectionStatus};
pub use error::{Claim, TokenError};
pub use introspection::{judge as judge_introspection, membership_path, read_membership};
pub use issuer::{AppRule, ClaimNames, IntrospectionRules, Issuer, IssuerState, OpaqueTokens};
pub use jwt::{VerifiedClaims, VerifyError, looks_like_jwt, verify};
pub use keys::{Key, KeySet};
pub use membership::{Membership, Memberships};
pub use revocation::{Applied, Revocations, Revoked, Unshared};
pub use set::{PollRules, SetError, SetKeys, SetRules, VerifiedSet};
