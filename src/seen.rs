//! The compact seen-set: 64-bit keys at 8 bytes each, for the input's
//! duplicate check, the crawl's frontier and --resume's record of what is
//! written. Kept apart so that none of those depends on another for it.

use std::collections::HashSet;

/// A set of u64 that costs 8 bytes an element, whatever its size.
///
/// A hash set doubles its table as it grows, so at a million elements it
/// holds 16–32 MB and briefly both tables while it resizes. This set keeps
/// most elements in one sorted vector and only the latest few thousand in
/// a small hash set; when that fills, it is sorted and merged into the
/// vector in place, from the back, so no second copy of the vector ever
/// exists. Lookups are a binary search (about 20 probes at a million),
/// far below the cost of the request each line leads to.
#[derive(Debug, Default)]
pub struct HashSet64 {
    sorted: Vec<u64>,
    recent: HashSet<u64>,
}

impl HashSet64 {
    /// Elements gathered before a merge: enough to make merges rare, few
    /// enough that the small set stays a fraction of a megabyte.
    const RECENT: usize = 16 * 1024;

    /// Adds `value`; false when it was already there.
    pub fn insert(&mut self, value: u64) -> bool {
        if self.sorted.binary_search(&value).is_ok() || !self.recent.insert(value) {
            return false;
        }
        if self.recent.len() >= Self::RECENT {
            self.merge();
        }
        true
    }

    /// Whether `value` is in the set.
    pub fn contains(&self, value: u64) -> bool {
        self.sorted.binary_search(&value).is_ok() || self.recent.contains(&value)
    }

    /// Elements in the set.
    pub fn len(&self) -> usize {
        self.sorted.len() + self.recent.len()
    }

    /// Whether the set has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn merge(&mut self) {
        let mut new: Vec<u64> = self.recent.drain().collect();
        new.sort_unstable();
        let old_len = self.sorted.len();
        // Exact growth: amortised doubling would leave up to half the
        // vector's capacity unused at a million elements.
        self.sorted.reserve_exact(new.len());
        self.sorted.resize(old_len + new.len(), 0);
        // Merge from the back: the write position never overtakes the
        // unread old elements, so one buffer is enough.
        let (mut i, mut j, mut w) = (old_len, new.len(), old_len + new.len());
        while j > 0 {
            if i > 0 && self.sorted[i - 1] > new[j - 1] {
                self.sorted[w - 1] = self.sorted[i - 1];
                i -= 1;
            } else {
                self.sorted[w - 1] = new[j - 1];
                j -= 1;
            }
            w -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_set_agrees_with_a_hash_set_across_merges() {
        let mut compact = HashSet64::default();
        let mut reference = HashSet::new();
        // Every third value comes back after all the first ones, by then
        // merged into the sorted part; the extremes are in too.
        let mut x: u64 = 1;
        let mut values = vec![0, u64::MAX];
        for _ in 0..60_000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            values.push(x >> (x % 7));
        }
        let repeats: Vec<u64> = values.iter().copied().step_by(3).collect();
        values.extend(repeats);
        for v in values {
            assert_eq!(compact.insert(v), reference.insert(v), "value {v}");
        }
        assert!(compact.sorted.len() >= 3 * HashSet64::RECENT);
        assert!(compact.sorted.is_sorted());
        assert_eq!(compact.sorted.len() + compact.recent.len(), reference.len());
    }
}
