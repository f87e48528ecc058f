//! The available messages by priority: one [`Available`] ring per level, highest first.
//!
//! AMQP's header `priority` (part 3 §3.2.1, 4 when absent) orders delivery: a higher priority
//! goes first, and within one priority arrival order holds. Artemis keeps ten levels (0 to 9,
//! anything above 9 counting as 9), and so does Sluice. A queue whose messages all have one
//! priority (the usual case) uses one ring, and dispatch finds it at once from the bit mask of
//! levels in use, so the hot path costs what it did before priorities. A message that comes back
//! goes into its own level's ring at its id, so it returns to its place within its level.
//!
//! Paged messages (bodies on disk) are read back in arrival order, whatever their priority:
//! priority orders only the messages in memory.

use super::available::Available;

/// Priority levels, as Artemis has: 0 to 9.
pub(super) const PRIORITY_LEVELS: usize = 10;

/// The level of a header priority: above 9 counts as 9.
pub(super) fn level_of(priority: u8) -> u8 {
    priority.min((PRIORITY_LEVELS - 1) as u8)
}

#[derive(Debug)]
pub(super) struct Levels<V> {
    levels: [Available<V>; PRIORITY_LEVELS],
    /// Bit `n` is set while level `n` holds a message.
    used: u16,
    len: usize,
}

impl<V> Default for Levels<V> {
    fn default() -> Self {
        Levels {
            levels: std::array::from_fn(|_| Available::default()),
            used: 0,
            len: 0,
        }
    }
}

impl<V> Levels<V> {
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Adds `value` under `id` at `level` (at most 9); `id` must not be held already.
    pub(super) fn insert(&mut self, level: u8, id: u64, value: V) {
        let level = level_of(level);
        if let Some(ring) = self.levels.get_mut(usize::from(level)) {
            let before = ring.len();
            ring.insert(id, value);
            self.len += ring.len() - before;
            self.used |= 1 << level;
        }
    }

    /// Removes `id` from `level`.
    pub(super) fn remove_at(&mut self, level: u8, id: u64) -> Option<V> {
        let ring = self.levels.get_mut(usize::from(level))?;
        let value = ring.remove(id)?;
        self.len -= 1;
        if ring.len() == 0 {
            self.used &= !(1 << level);
        }
        Some(value)
    }

    /// Removes `id` from whichever level holds it (off the hot path: expiry, purge).
    pub(super) fn remove(&mut self, id: u64) -> Option<V> {
        let mut level = self.highest();
        while let Some(l) = level {
            if let Some(value) = self.remove_at(l, id) {
                return Some(value);
            }
            level = self.next_below(l);
        }
        None
    }

    /// The highest level in use.
    pub(super) fn highest(&self) -> Option<u8> {
        (self.used != 0).then(|| (15 - self.used.leading_zeros()) as u8)
    }

    /// The highest level in use below `level`.
    pub(super) fn next_below(&self, level: u8) -> Option<u8> {
        let below = self.used & ((1u16 << level) - 1);
        (below != 0).then(|| (15 - below.leading_zeros()) as u8)
    }

    /// The oldest value of `level` with an id of at least `from`.
    pub(super) fn first_from(&self, level: u8, from: u64) -> Option<(u64, &V)> {
        self.levels.get(usize::from(level))?.first_from(from)
    }

    /// The value with the least id of at least `from`, of any level.
    pub(super) fn first_by_id_from(&self, from: u64) -> Option<(u64, &V)> {
        let mut best: Option<(u64, &V)> = None;
        let mut level = self.highest();
        while let Some(l) = level {
            if let Some((id, v)) = self.first_from(l, from)
                && best.is_none_or(|(b, _)| id < b)
            {
                best = Some((id, v));
            }
            level = self.next_below(l);
        }
        best
    }

    /// The oldest value of any level, and its level.
    pub(super) fn oldest(&self) -> Option<(u8, u64)> {
        let mut best: Option<(u8, u64)> = None;
        let mut level = self.highest();
        while let Some(l) = level {
            if let Some((id, _)) = self.first_from(l, 0)
                && best.is_none_or(|(_, b)| id < b)
            {
                best = Some((l, id));
            }
            level = self.next_below(l);
        }
        best
    }

    /// Every id and value held, in no particular order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (u64, &V)> + '_ {
        self.levels.iter().flat_map(|ring| ring.iter())
    }

    /// Every id held, in delivery order: highest level first, oldest first within a level.
    pub(super) fn ids(&self) -> Vec<u64> {
        self.levels
            .iter()
            .rev()
            .flat_map(|ring| ring.ids())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_found_highest_first() {
        let mut l = Levels::default();
        assert_eq!(l.highest(), None);
        l.insert(4, 0, 'a');
        l.insert(9, 1, 'b');
        l.insert(0, 2, 'c');
        l.insert(200, 3, 'd');
        assert_eq!(l.highest(), Some(9));
        assert_eq!(l.next_below(9), Some(4));
        assert_eq!(l.next_below(4), Some(0));
        assert_eq!(l.next_below(0), None);
        assert_eq!(l.ids(), vec![1, 3, 0, 2]);
        assert_eq!(l.oldest(), Some((4, 0)));
        assert_eq!(l.remove(1), Some('b'));
        assert_eq!(l.remove(3), Some('d'));
        assert_eq!(l.highest(), Some(4));
        assert_eq!(l.len(), 2);
    }
}
