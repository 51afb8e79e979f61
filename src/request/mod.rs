//! Pure checks of the raw request: its path and its framing.

mod framing;
mod path;

pub use framing::{FramingError, Limits, check as check_framing, raw_head_has_content_length};
pub use path::{NormalizedPath, PathError, normalize};
