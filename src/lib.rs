//! scopegate: a reverse-proxy authorization gateway.
//!
//! The request pipeline, in the order a request meets it (see `docs/architecture.md`):
//! [`request`] (path normalization, framing) → [`route`] → [`credential`] → [`token`]
//! (→ [`principal`]) → [`policy`] → [`forward`] or [`answer`]. [`gateway`] holds the
//! compiled configuration and runs that pipeline; [`proxy`] is the engine glue.

pub mod admin;
pub mod answer;
pub mod config;
pub mod credential;
pub mod dev;
pub mod explain;
pub mod forward;
pub mod gateway;
pub mod metrics;
pub mod policy;
pub mod principal;
pub mod proxy;
pub mod request;
pub mod route;
pub mod server;
pub mod sync;
pub mod token;
