//! The request as it arrives: its head and connection, and the pure checks of its path and
//! framing.

mod framing;
mod head;
mod path;
pub mod wire;

pub use framing::{FramingError, Limits, check as check_framing};
pub use head::{Connection, Head};
pub use path::{NormalizedPath, PathError, is_segment_char, normalize};
