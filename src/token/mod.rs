//! Who is calling: JWT verification against issuers' keys, and the cache of answers.

mod cache;
mod claims;
mod error;
mod introspection;
mod issuer;
mod jwt;
mod keys;
mod revocation;
mod set_rules;

pub use cache::{Answer, TokenCache, TokenHash, hash, unix_now};
pub use claims::Principals;
pub use error::TokenError;
pub use introspection::{IntrospectionRules, judge as judge_introspection};
pub use issuer::{ClaimNames, Issuer};
pub use jwt::{VerifiedClaims, looks_like_jwt, verify};
pub use keys::{Key, KeySet};
pub use revocation::{Revocations, Revoked};
pub use set_rules::{PollRules, SetKeys, SetRules};
