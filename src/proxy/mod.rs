//! The proxy engine: the only module that knows the HTTP engine's types (hyper). It hands
//! the request head to [`Gateway`](crate::decision::Gateway) and applies what it decided:
//! `listener.rs` accepts and drains, `hyper.rs` forwards, `wire.rs` checks the HTTP/1 wire,
//! `decision.rs` serves the decision endpoint's HTTP front ends (`authz/` decides).
//!
//! pingora was the first engine; measured side by side (`benches/load/run.py`) it cost
//! more CPU per request than hyper, needed cmake to build and could not start twice in one
//! process, so hyper replaced it (numbers in the README, Performance).

mod decision;
mod hyper;
mod listener;
mod wire;

pub use decision::Bound;
pub use listener::{Listeners, run};
