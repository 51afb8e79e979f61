//! Header-name sets for the forwarding filters.

use http::HeaderName;

/// A small set of header names, bucketed by length: a membership test is a length index and
/// a few byte comparisons, cheaper than hashing every client header.
pub struct NameSet(Vec<Vec<HeaderName>>);

impl NameSet {
    pub fn new(names: Vec<HeaderName>) -> NameSet {
        let mut buckets: Vec<Vec<HeaderName>> = Vec::new();
        for n in names {
            let len = n.as_str().len();
            if buckets.len() <= len {
                buckets.resize(len + 1, Vec::new());
            }
            if !buckets[len].contains(&n) {
                buckets[len].push(n);
            }
        }
        NameSet(buckets)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.0
            .get(name.len())
            .is_some_and(|b| b.iter().any(|n| n.as_str() == name))
    }
}
