//! What a caller may do: scope implications, requirement expressions, the decision.

mod organizations;
mod requirement;
mod scopes;

pub use organizations::{OrgDenial, OrgPolicy, Organizations};
pub use requirement::{Alternative, Requirement};
pub use scopes::{Granted, ScopeExpr, ScopeSet, ScopeUniverse};
