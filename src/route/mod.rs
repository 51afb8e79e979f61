//! Route matching: method + normalized path → the first route in file order.

mod hosts;
mod methods;
mod pattern;
mod rewrite;
mod table;

pub use hosts::{HostMatch, HostTable, normalize_host};
pub use methods::MethodSet;
pub use pattern::{Pattern, Segment};
pub use rewrite::Rewrite;
pub use table::{Lookup, RouteMatch, RouteTable};
