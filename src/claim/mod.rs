//! What a token's claims say beyond its scopes: conditions routes require of them
//! (`require: { claims: … }`) and headers written from them (`forward.claim_headers`).
//! Both are worked out once, when the principal is built, and kept with it in the cache:
//! conditions as bits, so a cached decision tests them with a few word operations; headers
//! as ready values.

mod condition;
mod path;
mod template;

pub use condition::{ClaimExpr, Condition, Conditions, Test};
pub use path::ClaimPath;
pub use template::{HeaderTemplate, MAX_VALUE_BYTES};
