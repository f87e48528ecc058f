//! The unsettled deliveries of one direction of a session, by delivery id: each one's link
//! handle.
//!
//! Delivery ids are serial numbers a sender takes one after another (part 2 §2.6.12), and a
//! receiver mostly settles them in the same order, so the usual case is a run of consecutive
//! ids settled from the front. That run lives in a ring indexed by `id - base`: an insert is a
//! push, a settle clears a slot, and settled slots are dropped from the front. Everything that
//! does not fit the run (an id out of order, or an old delivery left unsettled while later ones
//! flow past it) lives in an ordered map, so no order of ids a peer sends costs more than
//! before. Before the ring, the B-tree inserts and removals were 5 % of the broker's time.

use std::collections::{BTreeMap, VecDeque};

/// The most ids the ring spans, settled or not. A delivery left unsettled that far behind the
/// newest moves to the map, so one stuck delivery costs one map entry, not a growing ring.
const RING_SPAN_MAX: usize = 16 * 1024;

#[derive(Debug, Default)]
pub(crate) struct Unsettled {
    /// Handles of the deliveries `base, base + 1, …`; `None` for one already settled. Never
    /// starts with `None`.
    ring: VecDeque<Option<u32>>,
    base: u32,
    /// Unsettled deliveries outside the ring's run.
    rest: BTreeMap<u32, u32>,
    /// Unsettled deliveries in the ring and the map.
    len: usize,
}

impl Unsettled {
    /// Records delivery `id` on the link `handle`, replacing a record of the same id: returns
    /// the handle that record had.
    pub(crate) fn insert(&mut self, id: u32, handle: u32) -> Option<u32> {
        if let Some(slot) = self.slot(id) {
            let replaced = slot.replace(handle);
            if replaced.is_none() {
                self.len += 1;
            }
            return replaced;
        }
        if self.ring.is_empty() {
            self.base = id;
        }
        let replaced = if id == self.next_in_run() {
            let replaced = if self.rest.is_empty() {
                None
            } else {
                self.rest.remove(&id)
            };
            self.ring.push_back(Some(handle));
            if self.ring.len() > RING_SPAN_MAX {
                self.shed_front();
            }
            replaced
        } else {
            self.rest.insert(id, handle)
        };
        if replaced.is_none() {
            self.len += 1;
        }
        replaced
    }

    /// Removes every delivery of `first..=last` (serial numbers: the range may wrap past
    /// `u32::MAX`), calling `settled` with each one's handle. Visits only the deliveries held
    /// or the ids of the range, whichever are fewer, so a peer's range of four billion ids
    /// costs nothing.
    pub(crate) fn settle_range(&mut self, first: u32, last: u32, mut on_settled: impl FnMut(u32)) {
        let mut count = 0;
        let mut settled = |handle| {
            count += 1;
            on_settled(handle);
        };
        let width = last.wrapping_sub(first);
        if !self.ring.is_empty() {
            if (width as usize) < self.ring.len() {
                for k in 0..=width {
                    if let Some(h) = self.slot(first.wrapping_add(k)).and_then(Option::take) {
                        settled(h);
                    }
                }
            } else {
                let base = self.base;
                for (k, slot) in self.ring.iter_mut().enumerate() {
                    let id = base.wrapping_add(k as u32);
                    if id.wrapping_sub(first) <= width
                        && let Some(h) = slot.take()
                    {
                        settled(h);
                    }
                }
            }
            self.trim_front();
        }
        if !self.rest.is_empty() {
            let ids: Vec<u32> = if first <= last {
                self.rest.range(first..=last).map(|(id, _)| *id).collect()
            } else {
                let wrapped = self.rest.range(..=last);
                self.rest
                    .range(first..)
                    .chain(wrapped)
                    .map(|(id, _)| *id)
                    .collect()
            };
            for id in ids {
                if let Some(h) = self.rest.remove(&id) {
                    settled(h);
                }
            }
        }
        self.len -= count;
    }

    /// Forgets every delivery of the link `handle` (it detached).
    pub(crate) fn remove_link(&mut self, handle: u32) {
        let before = self.rest.len();
        let mut removed = 0;
        for slot in &mut self.ring {
            if *slot == Some(handle) {
                *slot = None;
                removed += 1;
            }
        }
        self.trim_front();
        self.rest.retain(|_, h| *h != handle);
        self.len -= removed + (before - self.rest.len());
    }

    /// How many deliveries are unsettled.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The deliveries held, counted one by one.
    #[cfg(test)]
    fn count(&self) -> usize {
        self.ring.iter().flatten().count() + self.rest.len()
    }

    fn next_in_run(&self) -> u32 {
        self.base.wrapping_add(self.ring.len() as u32)
    }

    fn slot(&mut self, id: u32) -> Option<&mut Option<u32>> {
        let offset = id.wrapping_sub(self.base) as usize;
        self.ring.get_mut(offset)
    }

    fn trim_front(&mut self) {
        while let Some(None) = self.ring.front() {
            self.ring.pop_front();
            self.base = self.base.wrapping_add(1);
        }
    }

    /// Moves the oldest delivery out of the ring into the map.
    fn shed_front(&mut self) {
        if let Some(Some(handle)) = self.ring.pop_front() {
            self.rest.insert(self.base, handle);
        }
        self.base = self.base.wrapping_add(1);
        self.trim_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settle(u: &mut Unsettled, first: u32, last: u32) -> Vec<u32> {
        let mut handles = Vec::new();
        u.settle_range(first, last, |h| handles.push(h));
        handles
    }

    #[test]
    fn in_order_deliveries_settle_from_the_front() {
        let mut u = Unsettled::default();
        for id in 10..20 {
            u.insert(id, id % 2);
        }
        assert_eq!(settle(&mut u, 10, 12), vec![0, 1, 0]);
        assert_eq!(settle(&mut u, 10, 12), Vec::<u32>::new(), "already settled");
        assert_eq!(settle(&mut u, 15, 15), vec![1]);
        assert_eq!(u.len(), 6);
        assert_eq!(settle(&mut u, 0, 100).len(), 6);
        assert_eq!(u.len(), 0);
        assert!(u.ring.is_empty());
    }

    #[test]
    fn ids_out_of_order_and_duplicates_are_kept_once() {
        let mut u = Unsettled::default();
        u.insert(5, 1);
        u.insert(3, 2);
        u.insert(7, 3);
        u.insert(6, 4);
        u.insert(5, 9);
        assert_eq!(u.len(), 4);
        assert_eq!(settle(&mut u, 3, 7), vec![9, 4, 2, 3]);
        assert_eq!(u.len(), 0);
    }

    #[test]
    fn ranges_wrap_past_the_largest_id() {
        let mut u = Unsettled::default();
        for k in 0..6u32 {
            u.insert((u32::MAX - 2).wrapping_add(k), k);
        }
        u.insert(100, 7);
        assert_eq!(settle(&mut u, u32::MAX - 1, 1), vec![1, 2, 3, 4]);
        assert_eq!(u.len(), 3);
        // A huge range through the wrap point, visiting only what is held.
        assert_eq!(settle(&mut u, 50, 49), vec![0, 5, 7]);
        assert_eq!(u.len(), 0);
    }

    #[test]
    fn a_stuck_delivery_leaves_the_ring_instead_of_growing_it() {
        let mut u = Unsettled::default();
        u.insert(0, 42);
        for id in 1..(3 * RING_SPAN_MAX as u32) {
            u.insert(id, 1);
            settle(&mut u, id, id);
        }
        assert!(u.ring.len() <= RING_SPAN_MAX);
        assert_eq!(u.len(), 1);
        assert_eq!(settle(&mut u, 0, 0), vec![42]);
    }

    #[test]
    fn a_detached_link_loses_its_deliveries_only() {
        let mut u = Unsettled::default();
        for id in 0..10 {
            u.insert(id, id % 3);
        }
        u.insert(1000, 0);
        u.remove_link(0);
        assert_eq!(u.len(), 6);
        assert_eq!(settle(&mut u, 0, 2000), vec![1, 2, 1, 2, 1, 2]);
    }

    mod model {
        use std::collections::BTreeMap;

        use proptest::prelude::*;

        use super::super::Unsettled;

        #[derive(Debug, Clone)]
        enum Op {
            /// The next id in order, or one `skew` away from it (out of order, or a repeat).
            Insert {
                skew: i8,
                handle: u32,
            },
            Settle {
                back: u16,
                width: u16,
            },
            RemoveLink(u32),
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                6 => (prop_oneof![4 => Just(0i8), 1 => any::<i8>()], 0u32..4)
                    .prop_map(|(skew, handle)| Op::Insert { skew, handle }),
                3 => (any::<u16>(), prop_oneof![3 => 0u16..64, 1 => any::<u16>()])
                    .prop_map(|(back, width)| Op::Settle { back: back % 2048, width }),
                1 => (0u32..4).prop_map(Op::RemoveLink),
            ]
        }

        proptest! {
            /// Against an ordered map with serial-number ranges, starting just before the ids
            /// wrap: every settle reports the same handles, and nothing is lost or kept.
            #[test]
            fn behaves_like_an_ordered_map(ops in proptest::collection::vec(op(), 1..400)) {
                let mut ring = Unsettled::default();
                let mut model: BTreeMap<u32, u32> = BTreeMap::new();
                let mut next = u32::MAX - 200;
                for op in ops {
                    match op {
                        Op::Insert { skew, handle } => {
                            let id = next.wrapping_add_signed(i32::from(skew));
                            if skew == 0 {
                                next = next.wrapping_add(1);
                            }
                            prop_assert_eq!(ring.insert(id, handle), model.insert(id, handle));
                        }
                        Op::Settle { back, width } => {
                            let first = next.wrapping_sub(u32::from(back));
                            let last = first.wrapping_add(u32::from(width));
                            let mut got = Vec::new();
                            ring.settle_range(first, last, |h| got.push(h));
                            let gone: Vec<u32> = model
                                .keys()
                                .filter(|id| id.wrapping_sub(first) <= u32::from(width))
                                .copied()
                                .collect();
                            let mut want: Vec<u32> =
                                gone.iter().filter_map(|id| model.remove(id)).collect();
                            got.sort_unstable();
                            want.sort_unstable();
                            prop_assert_eq!(got, want);
                        }
                        Op::RemoveLink(handle) => {
                            ring.remove_link(handle);
                            model.retain(|_, h| *h != handle);
                        }
                    }
                    prop_assert_eq!(ring.len(), model.len());
                    prop_assert_eq!(ring.count(), model.len());
                }
            }
        }
    }
}
