//! Route matching: method + normalized path → the first route in file order.

mod methods;
mod pattern;
mod table;

pub use methods::MethodSet;
pub use pattern::{Pattern, Segment};
pub use table::{Lookup, RouteMatch, RouteTable};
