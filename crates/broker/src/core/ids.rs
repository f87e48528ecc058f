//! The core's names for things: connections, links, nodes, and the table of nodes.

use sluice_engine::LinkId;
pub(crate) use sluice_router::NodeId;

/// A connection, numbered by the listener.
pub(crate) type ConnId = u64;

/// A link of a connection: the core's key for every link it knows.
pub(crate) type LinkKey = (ConnId, LinkId);

/// The nodes of the address space by [`NodeId`]: a slot per node, and a generation per slot
/// so that an id outliving its node (a reply-to address of a temporary queue that went) finds
/// nothing instead of the slot's next node.
#[derive(Debug)]
pub(crate) struct Slab<T> {
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
}

#[derive(Debug)]
struct Slot<T> {
    generation: u32,
    value: Option<T>,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab {
            slots: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl<T> Slab<T> {
    /// Places `value` at `id`, as the address space's plan numbered it. The slots below it
    /// that nothing holds are free for later nodes.
    pub(crate) fn insert_at(&mut self, id: NodeId, value: T) {
        let index = id.index as usize;
        while self.slots.len() <= index {
            self.free.push(self.slots.len() as u32);
            self.slots.push(Slot {
                generation: 0,
                value: None,
            });
        }
        self.free.retain(|&i| i != id.index);
        if let Some(slot) = self.slots.get_mut(index) {
            slot.generation = id.generation;
            slot.value = Some(value);
        }
    }

    /// Places a value built from its new id in a free slot.
    pub(crate) fn insert_with(&mut self, make: impl FnOnce(NodeId) -> T) -> NodeId {
        if let Some(index) = self.free.pop()
            && let Some(slot) = self.slots.get_mut(index as usize)
        {
            let id = NodeId {
                index,
                generation: slot.generation,
            };
            slot.value = Some(make(id));
            return id;
        }
        let id = NodeId::first(self.slots.len() as u32);
        self.slots.push(Slot {
            generation: 0,
            value: Some(make(id)),
        });
        id
    }

    /// An id for a value given later with [`Slab::insert_at`] (a reload numbers its new
    /// nodes before it builds them, as they name each other); [`Slab::release`] gives an
    /// unused one back.
    pub(crate) fn reserve(&mut self) -> NodeId {
        if let Some(index) = self.free.pop()
            && let Some(slot) = self.slots.get(index as usize)
        {
            return NodeId {
                index,
                generation: slot.generation,
            };
        }
        let id = NodeId::first(self.slots.len() as u32);
        self.slots.push(Slot {
            generation: 0,
            value: None,
        });
        id
    }

    /// Gives back a reserved id that was never filled.
    pub(crate) fn release(&mut self, id: NodeId) {
        if let Some(slot) = self.slots.get(id.index as usize)
            && slot.value.is_none()
            && slot.generation == id.generation
            && !self.free.contains(&id.index)
        {
            self.free.push(id.index);
        }
    }

    pub(crate) fn get(&self, id: NodeId) -> Option<&T> {
        self.slots
            .get(id.index as usize)
            .filter(|s| s.generation == id.generation)
            .and_then(|s| s.value.as_ref())
    }

    pub(crate) fn get_mut(&mut self, id: NodeId) -> Option<&mut T> {
        self.slots
            .get_mut(id.index as usize)
            .filter(|s| s.generation == id.generation)
            .and_then(|s| s.value.as_mut())
    }

    /// Takes the value out; the slot's next value gets the next generation.
    pub(crate) fn remove(&mut self, id: NodeId) -> Option<T> {
        let slot = self
            .slots
            .get_mut(id.index as usize)
            .filter(|s| s.generation == id.generation)?;
        let value = slot.value.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(id.index);
        Some(value)
    }

    /// Every id and value.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (NodeId, &T)> {
        self.slots.iter().enumerate().filter_map(|(i, s)| {
            let id = NodeId {
                index: i as u32,
                generation: s.generation,
            };
            s.value.as_ref().map(|v| (id, v))
        })
    }

    /// Every id and value, to change.
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (NodeId, &mut T)> {
        self.slots.iter_mut().enumerate().filter_map(|(i, s)| {
            let id = NodeId {
                index: i as u32,
                generation: s.generation,
            };
            s.value.as_mut().map(|v| (id, v))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_outliving_its_value_finds_nothing_in_the_reused_slot() {
        let mut slab = Slab::default();
        slab.insert_at(NodeId::first(1), "planned");
        let a = slab.insert_with(|_| "a");
        assert_eq!(
            a,
            NodeId::first(0),
            "the slot below the planned one is free"
        );
        assert_eq!(slab.remove(a), Some("a"));
        let b = slab.insert_with(|_| "b");
        assert_eq!(b.index, a.index);
        assert_ne!(b, a);
        assert_eq!(slab.get(a), None);
        assert_eq!(slab.get(b), Some(&"b"));
        assert_eq!(slab.get(NodeId::first(1)), Some(&"planned"));
    }
}
