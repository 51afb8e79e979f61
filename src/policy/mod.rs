//! What a caller may do: requirement expressions per route, organization restrictions, and
//! how often (rate limits).

mod organizations;
mod rate_limit;
mod requirement;

pub use organizations::{OrgDenial, OrgPolicy, Organizations};
pub use rate_limit::{Caller, Exceeded, Per, RateLimit, client_address};
pub use requirement::{Alternative, Requirement, Shortfall};
