//! Pure checks of the raw request: its path and its framing.

mod framing;
mod path;

pub use framing::{FramingError, Limits, check as check_framing};
pub use path::{NormalizedPath, PathError, normalize};
