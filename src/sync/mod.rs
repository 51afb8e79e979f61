//! Background tasks that keep the gateway's view of the authorization servers current.

mod jwks;

pub use jwks::{KeySync, MIN_REFRESH_INTERVAL, RefreshHandle, http_client};
