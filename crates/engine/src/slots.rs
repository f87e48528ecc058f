//! A table indexed by a small integer (a channel or a handle): a vector of optional slots.
//!
//! Channels and handles are bounded by `channel-max` and `handle-max`, so the table is at most
//! that long, and a lookup is an index instead of a hash (SipHash cost a third of the engine's
//! time per message when these were `HashMap`s).

/// A key that is a small unsigned integer.
pub(crate) trait SlotKey: Copy {
    fn index(self) -> usize;
    fn from_index(index: usize) -> Self;
}

impl SlotKey for u16 {
    fn index(self) -> usize {
        usize::from(self)
    }
    fn from_index(index: usize) -> Self {
        u16::try_from(index).unwrap_or(u16::MAX)
    }
}

impl SlotKey for u32 {
    fn index(self) -> usize {
        self as usize
    }
    fn from_index(index: usize) -> Self {
        u32::try_from(index).unwrap_or(u32::MAX)
    }
}

/// Values by small-integer key.
#[derive(Debug)]
pub(crate) struct Slots<K, T> {
    items: Vec<Option<T>>,
    len: usize,
    _key: std::marker::PhantomData<K>,
}

impl<K: SlotKey, T> Slots<K, T> {
    pub(crate) fn new() -> Self {
        Slots {
            items: Vec::new(),
            len: 0,
            _key: std::marker::PhantomData,
        }
    }

    pub(crate) fn get(&self, key: &K) -> Option<&T> {
        self.items.get(key.index())?.as_ref()
    }

    pub(crate) fn get_mut(&mut self, key: &K) -> Option<&mut T> {
        self.items.get_mut(key.index())?.as_mut()
    }

    pub(crate) fn contains_key(&self, key: &K) -> bool {
        self.get(key).is_some()
    }

    /// Inserts, growing the table to the key; callers bound keys by channel-max or handle-max.
    pub(crate) fn insert(&mut self, key: K, value: T) -> Option<T> {
        let i = key.index();
        if i >= self.items.len() {
            self.items.resize_with(i + 1, || None);
        }
        let old = self.items.get_mut(i).and_then(|slot| slot.replace(value));
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    pub(crate) fn remove(&mut self, key: &K) -> Option<T> {
        let old = self.items.get_mut(key.index()).and_then(Option::take);
        if old.is_some() {
            self.len -= 1;
        }
        old
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (K, &T)> {
        self.items
            .iter()
            .enumerate()
            .filter_map(|(i, v)| Some((K::from_index(i), v.as_ref()?)))
    }

    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (K, &mut T)> {
        self.items
            .iter_mut()
            .enumerate()
            .filter_map(|(i, v)| Some((K::from_index(i), v.as_mut()?)))
    }

    /// The lowest key in `0..=max` with no value.
    pub(crate) fn first_free(&self, max: K) -> Option<K> {
        let limit = max.index();
        match self.items.iter().take(limit + 1).position(Option::is_none) {
            Some(i) => Some(K::from_index(i)),
            None if self.items.len() <= limit => Some(K::from_index(self.items.len())),
            None => None,
        }
    }

    /// How many keys have values.
    #[allow(dead_code)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_insert_remove_and_find_free_keys() {
        let mut s: Slots<u16, &str> = Slots::new();
        assert_eq!(s.first_free(3), Some(0));
        s.insert(0, "a");
        s.insert(2, "c");
        assert_eq!(s.first_free(3), Some(1));
        s.insert(1, "b");
        assert_eq!(s.first_free(3), Some(3));
        s.insert(3, "d");
        assert_eq!(s.first_free(3), None);
        assert_eq!(s.remove(&1), Some("b"));
        assert_eq!(s.first_free(3), Some(1));
        assert_eq!(
            s.iter().map(|(k, v)| (k, *v)).collect::<Vec<_>>(),
            vec![(0, "a"), (2, "c"), (3, "d")]
        );
        assert_eq!(s.len(), 3);
        assert!(s.get(&9).is_none());
    }
}
