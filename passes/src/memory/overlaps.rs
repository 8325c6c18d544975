//! Which items of a packing problem are live at the same time as a given
//! one, found in time proportional to their number (plus a logarithm)
//! instead of by checking every item: placing `n` buffers one by one was
//! `n²` overlap checks, minutes on a 100,000-node model.
//!
//! An item overlapping `q` either starts inside `q` (a range of the items
//! sorted by start) or starts before `q` and is still live when `q` starts
//! (a stabbing query on a segment tree over node indices, where each item
//! is stored in the `O(log T)` canonical nodes covering its live range).

use super::Item;

/// The overlap index of a list of items.
pub(super) struct Overlaps {
    /// Item indices sorted by first use (ties by index).
    by_start: Vec<usize>,
    /// `items[by_start[i]].start`, for binary search.
    starts: Vec<usize>,
    /// Leaves of the segment tree (a power of two above the last node).
    leaves: usize,
    /// The items whose live range covers each tree node's node range.
    tree: Vec<Vec<usize>>,
}

impl Overlaps {
    /// The index of `items`; `None` if an item ends before it starts
    /// (never from the planner; [`Item::overlaps`] gives such an item an
    /// odd meaning, which the caller then checks pair by pair).
    pub(super) fn new(items: &[Item]) -> Option<Overlaps> {
        if items.iter().any(|i| i.start > i.end) {
            return None;
        }
        let mut by_start: Vec<usize> = (0..items.len()).collect();
        by_start.sort_by_key(|&k| (items[k].start, k));
        let starts = by_start.iter().map(|&k| items[k].start).collect();
        let last = items.iter().map(|i| i.end).max().unwrap_or(0);
        let leaves = (last + 1).next_power_of_two();
        let mut tree = vec![Vec::new(); 2 * leaves];
        for (k, it) in items.iter().enumerate() {
            // The canonical nodes of [start, end] in a bottom-up tree.
            let (mut lo, mut hi) = (it.start + leaves, it.end + leaves + 1);
            while lo < hi {
                if lo & 1 == 1 {
                    tree[lo].push(k);
                    lo += 1;
                }
                if hi & 1 == 1 {
                    hi -= 1;
                    tree[hi].push(k);
                }
                lo /= 2;
                hi /= 2;
            }
        }
        Some(Overlaps {
            by_start,
            starts,
            leaves,
            tree,
        })
    }

    /// Calls `f` once with the index of every item that overlaps `q` (`q`
    /// itself included when it is one of the items).
    pub(super) fn for_each(&self, items: &[Item], q: &Item, mut f: impl FnMut(usize)) {
        // Starting inside q.
        let from = self.starts.partition_point(|&s| s < q.start);
        let to = self.starts.partition_point(|&s| s <= q.end);
        self.by_start[from..to].iter().for_each(|&k| f(k));
        // Starting before q and live when it starts.
        if q.start >= self.leaves {
            return;
        }
        let mut node = q.start + self.leaves;
        while node >= 1 {
            for &k in &self.tree[node] {
                if items[k].start < q.start {
                    f(k);
                }
            }
            node /= 2;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The index finds exactly the items a check of every pair finds.
    #[test]
    fn finds_every_overlap_and_nothing_else() {
        let mut seed = 7u64;
        let mut next = |n: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 33) % n) as usize
        };
        let mut items: Vec<Item> = (0..300)
            .map(|_| {
                let start = next(100);
                let len = if next(10) == 0 { next(100) } else { next(5) };
                Item {
                    start,
                    end: start + len,
                    bytes: 64,
                }
            })
            .collect();
        assert!(Overlaps::new(&items).is_some());
        items.push(Item {
            start: 5,
            end: 4,
            bytes: 64,
        });
        assert!(Overlaps::new(&items).is_none());
        items.pop();
        let index = Overlaps::new(&items).unwrap();
        for q in &items {
            let mut got = Vec::new();
            index.for_each(&items, q, |k| got.push(k));
            got.sort_unstable();
            let want: Vec<usize> = (0..items.len()).filter(|&k| items[k].overlaps(q)).collect();
            assert_eq!(got, want, "{q:?}");
        }
    }
}
