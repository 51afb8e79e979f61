//! What a caller may do: requirement expressions per route and organization restrictions.

mod organizations;
mod requirement;

pub use organizations::{OrgDenial, OrgPolicy, Organizations};
pub use requirement::{Alternative, Requirement, Shortfall};
