//! A small set of indices as bits: the scopes a token grants, the claim conditions it meets.
//! Tested against requirements with a few word operations per request.

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BitSet(Box<[u64]>);

impl BitSet {
    /// An empty set with room for indices below `bits`.
    pub fn with_len(bits: usize) -> BitSet {
        BitSet(vec![0; bits.div_ceil(64)].into_boxed_slice())
    }

    pub fn insert(&mut self, i: u32) {
        self.0[i as usize / 64] |= 1 << (i % 64);
    }

    pub fn contains(&self, i: u32) -> bool {
        self.0
            .get(i as usize / 64)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    pub fn union_with(&mut self, other: &BitSet) {
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a |= b;
        }
    }
}
