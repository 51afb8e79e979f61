//! scopegate: a reverse-proxy authorization gateway.
//!
//! The request pipeline, in the order a request meets it (see `docs/architecture.md`):
//! [`request`] (head, path normalization, framing) → [`route`] → [`credential`] (where the
//! credential is) → [`authn`] (who it is: one authenticator per credential kind, on top of
//! [`token`]) → [`policy`] (requirements, organizations) → [`forward`] or [`answer`].
//! [`decision`] runs that pipeline with the compiled [`decision::Rules`] and the shared
//! [`decision::State`]; [`compile`] builds them from [`config`]. Around the core:
//! [`generation`] (a configuration and its [`sync`] tasks), [`front`] (every way in: the
//! proxy, the decision endpoint over HTTP and gRPC, and the layer they share), [`admin`],
//! [`server`] (process lifecycle), [`dev`] and [`explain`].

pub mod admin;
pub mod answer;
pub mod authn;
pub mod balance;
pub mod bits;
pub mod claim;
pub mod clock;
pub mod compile;
pub mod config;
pub mod cors;
pub mod credential;
pub mod decision;
pub mod dev;
pub mod dns;
pub mod explain;
pub mod forward;
pub mod front;
pub mod generation;
pub mod metrics;
pub mod openapi;
pub mod otel;
pub mod policy;
pub mod principal;
pub mod request;
pub mod requestlog;
pub mod resource;
pub mod route;
pub mod scan;
pub mod scope;
pub mod server;
pub mod sync;
pub mod token;
pub mod websocket;
