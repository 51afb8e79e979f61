//! What a caller may do: scope implications, requirement expressions, the decision.

mod requirement;
mod scopes;

pub use requirement::{Alternative, Requirement};
pub use scopes::{Granted, ScopeExpr, ScopeSet, ScopeUniverse};
