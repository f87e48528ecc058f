//! A queue's messages by id, oldest first: the available ones, and those in flight.
//!
//! Ids are taken in order as messages arrive, and dispatch takes the oldest, so the usual case
//! is a run of consecutive ids: pushed at the back, taken from the front. That run lives in a
//! ring indexed by `id - base`. What does not fit it (a message released back to its place
//! behind the run, or one left far behind while later ones were taken) lives in an ordered
//! map. Before the ring, the B-tree's inserts and removals and the boxes they moved were the
//! largest cost of a queue in the broker's profile.

use std::collections::{BTreeMap, VecDeque};

/// The most ids the ring spans, taken or not. A message skipped that far behind the newest
/// (every consumer refused it) moves to the map, so the ring never grows with holes.
const RING_SPAN_MAX: usize = 16 * 1024;

#[derive(Debug)]
pub(super) struct Available<V> {
    /// The values of ids `base, base + 1, …`; `None` where one was taken. Never starts with
    /// `None`.
    ring: VecDeque<Option<V>>,
    base: u64,
    /// Values outside the ring's run.
    rest: BTreeMap<u64, V>,
    len: usize,
}

impl<V> Default for Available<V> {
    fn default() -> Self {
        Available {
            ring: VecDeque::new(),
            base: 0,
            rest: BTreeMap::new(),
            len: 0,
        }
    }
}

impl<V> Available<V> {
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Adds `value` under `id`, which must not be held already.
    pub(super) fn insert(&mut self, id: u64, value: V) {
        if let Some(slot) = self.slot(id) {
            if slot.replace(value).is_none() {
                self.len += 1;
            }
            return;
        }
        self.len += 1;
        // An empty ring starts again at a new message; a released one (older than where the
        // ring ended) goes to the map, so it does not start a run new messages cannot join.
        if self.ring.is_empty() && id >= self.base {
            self.base = id;
        }
        if id == self.base + self.ring.len() as u64 {
            self.ring.push_back(Some(value));
            if self.ring.len() > RING_SPAN_MAX {
                self.shed_front();
            }
        } else {
            self.rest.insert(id, value);
        }
    }

    pub(super) fn remove(&mut self, id: u64) -> Option<V> {
        let value = match self.slot(id) {
            Some(slot) => {
                let value = slot.take();
                self.trim_front();
                value
            }
            None => self.rest.remove(&id),
        };
        if value.is_some() {
            self.len -= 1;
        }
        value
    }

    /// The oldest value with an id of at least `from`.
    pub(super) fn first_from(&self, from: u64) -> Option<(u64, &V)> {
        let skip = usize::try_from(from.saturating_sub(self.base)).unwrap_or(usize::MAX);
        let in_ring = self
            .ring
            .iter()
            .enumerate()
            .skip(skip)
            .find_map(|(k, v)| v.as_ref().map(|v| (self.base + k as u64, v)));
        let in_rest = self.rest.range(from..).next().map(|(&id, v)| (id, v));
        match (in_ring, in_rest) {
            (Some(r), Some(m)) => Some(if m.0 < r.0 { m } else { r }),
            (r, m) => r.or(m),
        }
    }

    /// Every id and value held, in no particular order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (u64, &V)> + '_ {
        let ring = self.ring.iter().enumerate();
        ring.filter_map(|(k, v)| v.as_ref().map(|v| (self.base + k as u64, v)))
            .chain(self.rest.iter().map(|(&id, v)| (id, v)))
    }

    /// Every id held, oldest first.
    pub(super) fn ids(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = self.rest.keys().copied().collect();
        let ring = self.ring.iter().enumerate();
        ids.extend(
            ring.filter(|(_, v)| v.is_some())
                .map(|(k, _)| self.base + k as u64),
        );
        ids.sort_unstable();
        ids
    }

    fn slot(&mut self, id: u64) -> Option<&mut Option<V>> {
        let offset = usize::try_from(id.checked_sub(self.base)?).ok()?;
        self.ring.get_mut(offset)
    }

    fn trim_front(&mut self) {
        while let Some(None) = self.ring.front() {
            self.ring.pop_front();
            self.base += 1;
        }
    }

    /// Moves the oldest value out of the ring into the map.
    fn shed_front(&mut self) {
        if let Some(Some(value)) = self.ring.pop_front() {
            self.rest.insert(self.base, value);
        }
        self.base += 1;
        self.trim_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(a: &mut Available<u64>) -> Vec<u64> {
        let mut out = Vec::new();
        while let Some((id, _)) = a.first_from(0) {
            out.push(a.remove(id).unwrap_or(u64::MAX));
        }
        out
    }

    #[test]
    fn new_messages_leave_oldest_first() {
        let mut a = Available::default();
        for id in 0..10 {
            a.insert(id, id);
        }
        assert_eq!(a.len(), 10);
        assert_eq!(drain(&mut a), (0..10).collect::<Vec<_>>());
        assert_eq!(a.len(), 0);
    }

    #[test]
    fn released_messages_go_back_to_their_places() {
        let mut a = Available::default();
        for id in 0..10 {
            a.insert(id, id);
        }
        for id in 0..6 {
            a.remove(id);
        }
        // 2 and 4 were released; 11 arrives; 7 was taken from the middle.
        a.insert(4, 4);
        a.insert(2, 2);
        a.remove(7);
        a.insert(10, 10);
        a.insert(11, 11);
        assert_eq!(a.ids(), vec![2, 4, 6, 8, 9, 10, 11]);
        assert_eq!(a.first_from(5).map(|(id, _)| id), Some(6));
        assert_eq!(a.first_from(7).map(|(id, _)| id), Some(8));
        a.insert(7, 7);
        assert_eq!(drain(&mut a), vec![2, 4, 6, 7, 8, 9, 10, 11]);
    }

    #[test]
    fn a_message_skipped_far_behind_leaves_the_ring() {
        let mut a = Available::default();
        a.insert(0, 0);
        for id in 1..(3 * RING_SPAN_MAX as u64) {
            a.insert(id, id);
            assert_eq!(a.remove(id), Some(id));
        }
        assert!(a.ring.len() <= RING_SPAN_MAX);
        assert_eq!(a.len(), 1);
        a.insert(100_000, 7);
        assert_eq!(a.ids(), vec![0, 100_000]);
        assert_eq!(drain(&mut a), vec![0, 7]);
    }

    #[test]
    fn removing_what_is_not_held_changes_nothing() {
        let mut a = Available::default();
        a.insert(5, 5);
        assert_eq!(a.remove(4), None);
        assert_eq!(a.remove(6), None);
        assert_eq!(a.remove(5), Some(5));
        assert_eq!(a.remove(5), None);
        assert_eq!(a.len(), 0);
    }

    mod model {
        use std::collections::BTreeMap;

        use proptest::prelude::*;

        use super::super::Available;

        #[derive(Debug, Clone)]
        enum Op {
            /// A new message: the next id.
            Arrive,
            /// The `n`-th message taken so far comes back (released), if it is not held.
            Return(usize),
            /// The oldest message from `n` ids before the newest on is taken (dispatch).
            TakeFrom(u16),
            /// The `n`-th held message is taken (expiry, or dispatch past a refused one).
            Take(usize),
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                5 => Just(Op::Arrive),
                1 => any::<usize>().prop_map(Op::Return),
                4 => (0u16..64).prop_map(Op::TakeFrom),
                1 => any::<usize>().prop_map(Op::Take),
            ]
        }

        proptest! {
            /// Against an ordered map: the same oldest message from any id, the same ids in
            /// order, the same count.
            #[test]
            fn behaves_like_an_ordered_map(ops in proptest::collection::vec(op(), 1..400)) {
                let mut ring = Available::default();
                let mut model: BTreeMap<u64, u64> = BTreeMap::new();
                let mut taken: Vec<u64> = Vec::new();
                let mut next = 0u64;
                for op in ops {
                    match op {
                        Op::Arrive => {
                            ring.insert(next, next);
                            model.insert(next, next);
                            next += 1;
                        }
                        Op::Return(n) if !taken.is_empty() => {
                            let id = taken.swap_remove(n % taken.len());
                            ring.insert(id, id);
                            model.insert(id, id);
                        }
                        Op::Return(_) => {}
                        Op::TakeFrom(back) => {
                            let from = next.saturating_sub(u64::from(back));
                            let got = ring.first_from(from).map(|(id, v)| (id, *v));
                            let want = model.range(from..).next().map(|(&id, &v)| (id, v));
                            prop_assert_eq!(got, want);
                            if let Some((id, _)) = got {
                                prop_assert_eq!(ring.remove(id), model.remove(&id));
                                taken.push(id);
                            }
                        }
                        Op::Take(n) if !model.is_empty() => {
                            let id = *model.keys().nth(n % model.len()).unwrap_or(&0);
                            prop_assert_eq!(ring.remove(id), model.remove(&id));
                            taken.push(id);
                        }
                        Op::Take(_) => {}
                    }
                    prop_assert_eq!(ring.len(), model.len());
                    prop_assert_eq!(ring.ids(), model.keys().copied().collect::<Vec<_>>());
                }
            }
        }
    }
}
