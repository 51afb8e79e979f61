//! Byte scans over long strings, written so the compiler runs them 16 bytes at a time: every
//! request's token is checked byte by byte (a JWT is hundreds of bytes), and every log line's
//! strings are searched for what JSON must escape. A per-byte early exit (`Iterator::all`,
//! `position`) keeps a loop scalar; a whole block folded with `&` does not.

const BLOCK: usize = 16;

/// Whether `ok` holds for every byte. `ok` should be comparisons joined by `&` and `|`,
/// without branches or table lookups, so that a block is one vector operation.
#[inline]
pub fn all_bytes(bytes: &[u8], ok: impl Fn(u8) -> bool + Copy) -> bool {
    let mut blocks = bytes.chunks_exact(BLOCK);
    blocks
        .by_ref()
        .all(|block| block.iter().fold(true, |all, &b| all & ok(b)))
        && blocks.remainder().iter().all(|&b| ok(b))
}

/// How many bytes from the start `ok` holds for.
#[inline]
pub fn prefix_len(bytes: &[u8], ok: impl Fn(u8) -> bool + Copy) -> usize {
    let mut blocks = bytes.chunks_exact(BLOCK);
    let whole = blocks
        .by_ref()
        .take_while(|block| block.iter().fold(true, |all, &b| all & ok(b)))
        .count()
        * BLOCK;
    whole
        + bytes[whole..]
            .iter()
            .position(|&b| !ok(b))
            .unwrap_or(bytes.len() - whole)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lowercase(b: u8) -> bool {
        b.is_ascii_lowercase()
    }

    #[test]
    fn a_block_scan_finds_the_first_byte_that_fails_wherever_it_is() {
        // Every length around the block size, and the failing byte at every position.
        for len in 0..(3 * BLOCK + 3) {
            let clean = vec![b'x'; len];
            assert!(all_bytes(&clean, lowercase));
            assert_eq!(prefix_len(&clean, lowercase), len);
            for at in 0..len {
                let mut dirty = clean.clone();
                dirty[at] = b'"';
                assert!(!all_bytes(&dirty, lowercase), "{len} {at}");
                assert_eq!(prefix_len(&dirty, lowercase), at, "{len} {at}");
            }
        }
    }
}
