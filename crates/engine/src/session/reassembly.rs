//! Deliveries that arrive in several transfers (part 2 §2.6.14, `more`), joined into one
//! message, and the connection's budget for the memory they hold until their last transfer.
//!
//! Every byte a partial delivery holds is counted as it really is held:
//! - a payload whose frame came in an allocation of its own (a large frame, see
//!   [`crate::input`]) is kept zero-copy, and counts that whole allocation;
//! - any other payload is copied into chunks of at most [`COPY_CHUNK_MAX`] bytes, counted by
//!   capacity, so that a million one-byte frames hold about a megabyte, not a million slices
//!   of the read buffer with a `Bytes` each (55 bytes of memory per payload byte);
//! - the list of kept parts counts its capacity.
//!
//! When the last transfer arrives the parts are joined once into a buffer of exactly the
//! message's size: growing one buffer frame by frame copied a large message twice and held up
//! to twice its size.
//!
//! The budget ([`PartialBudget`], `Config::partial_bytes_max`) is the connection's, not a
//! link's: opening more links or sending smaller frames does not multiply it.

use bytes::{Bytes, BytesMut};
use sluice_codec::transport::{Error, conditions};

/// The smallest chunk small payloads are copied into.
const COPY_CHUNK_MIN: usize = 1024;
/// The largest chunk small payloads are copied into: each chunk doubles the last up to this, so
/// a short message takes little and a long one few chunks, with at most one partly used.
pub(crate) const COPY_CHUNK_MAX: usize = 64 * 1024;
/// The first capacity of the list of kept parts.
const PARTS_MIN: usize = 4;

/// A transfer's payload as it came off the wire.
#[derive(Debug)]
pub(crate) struct Payload {
    pub(crate) bytes: Bytes,
    /// The size of the allocation the payload's frame has to itself, or 0 when it shares one
    /// with other frames (and must be copied to be kept without holding them).
    pub(crate) own_frame: usize,
}

/// Bytes held by every unfinished delivery of a connection, and their limit.
#[derive(Debug)]
pub(crate) struct PartialBudget {
    held: usize,
    max: usize,
}

/// Holding a part would take the connection past `Config::partial_bytes_max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BudgetExceeded {
    max: usize,
}

impl PartialBudget {
    pub(crate) fn new(max: usize) -> Self {
        PartialBudget { held: 0, max }
    }

    /// Bytes held now.
    pub(crate) fn held(&self) -> usize {
        self.held
    }

    fn charge(&mut self, bytes: usize) -> Result<(), BudgetExceeded> {
        let held = self.held.saturating_add(bytes);
        if held > self.max {
            return Err(BudgetExceeded { max: self.max });
        }
        self.held = held;
        Ok(())
    }

    fn release(&mut self, bytes: usize) {
        debug_assert!(
            bytes <= self.held,
            "partial bytes: released {bytes} of {} held",
            self.held
        );
        self.held = self.held.saturating_sub(bytes);
    }
}

impl BudgetExceeded {
    /// The error the offending link is detached with.
    pub(crate) fn to_error(self) -> Error {
        Error::new(
            conditions::RESOURCE_LIMIT_EXCEEDED,
            format!(
                "unfinished deliveries on this connection would hold more than \
                 partial_bytes_max ({} bytes)",
                self.max
            ),
        )
    }
}

/// The bytes of one delivery so far.
#[derive(Debug, Default)]
pub(crate) struct Reassembly {
    /// Kept frames and full copy chunks, in order.
    parts: Vec<Bytes>,
    /// The rest of the chunk small payloads are copied into: what it holds goes to `parts` when
    /// a kept frame follows, and the next copies go on in the same allocation.
    fill: BytesMut,
    /// The capacity of the newest chunk, which the next one doubles.
    chunk: usize,
    /// Payload bytes so far.
    size: usize,
    /// Memory held, charged to the budget: kept frames' allocations, copy chunks' capacities
    /// and the part list's capacity.
    held: usize,
}

impl Reassembly {
    /// Payload bytes so far.
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// Memory held, as charged to the budget.
    pub(crate) fn held(&self) -> usize {
        self.held
    }

    /// Adds a payload that is not the delivery's last, charging what it will hold to `budget`
    /// first; over the budget, nothing is added.
    pub(crate) fn push(
        &mut self,
        payload: Payload,
        budget: &mut PartialBudget,
    ) -> Result<(), BudgetExceeded> {
        let Payload { bytes, own_frame } = payload;
        let len = bytes.len();
        if len == 0 {
            return Ok(());
        }
        if own_frame > 0 {
            self.keep(bytes, own_frame, budget)?;
        } else {
            self.copy(&bytes, budget)?;
        }
        self.size += len;
        Ok(())
    }

    /// Keeps a payload whose frame has an allocation of its own, after the chunk being filled.
    fn keep(
        &mut self,
        bytes: Bytes,
        own_frame: usize,
        budget: &mut PartialBudget,
    ) -> Result<(), BudgetExceeded> {
        let slots = 1 + usize::from(!self.fill.is_empty());
        let parts_capacity = self.parts_capacity(slots);
        let cost = own_frame + self.parts_cost(parts_capacity);
        budget.charge(cost)?;
        self.held += cost;
        self.grow_parts(parts_capacity);
        self.close_fill();
        self.parts.push(bytes);
        Ok(())
    }

    /// Copies a payload into the chunk being filled, and what does not fit into a new one.
    fn copy(&mut self, bytes: &[u8], budget: &mut PartialBudget) -> Result<(), BudgetExceeded> {
        let room = self.fill.capacity() - self.fill.len();
        let (now, rest) = bytes.split_at(room.min(bytes.len()));
        if !rest.is_empty() {
            let chunk = (self.chunk * 2)
                .clamp(COPY_CHUNK_MIN, COPY_CHUNK_MAX)
                .max(rest.len());
            let slots = usize::from(!self.fill.is_empty());
            let parts_capacity = self.parts_capacity(slots);
            let cost = chunk + self.parts_cost(parts_capacity);
            budget.charge(cost)?;
            self.held += cost;
            self.fill.extend_from_slice(now);
            self.grow_parts(parts_capacity);
            self.close_fill();
            self.fill = BytesMut::with_capacity(chunk);
            self.chunk = chunk;
            self.fill.extend_from_slice(rest);
        } else {
            self.fill.extend_from_slice(now);
        }
        Ok(())
    }

    /// Joins the parts and the delivery's `last` payload into the message, giving what they
    /// held back to `budget`.
    pub(crate) fn finish(mut self, last: Bytes, budget: &mut PartialBudget) -> Bytes {
        budget.release(self.held);
        let room = self.fill.capacity() - self.fill.len();
        match (self.parts.len(), self.fill.is_empty()) {
            (0, true) => return last,
            (1, true) if last.is_empty() => return self.parts.pop().unwrap_or_default(),
            (0, false) if room >= last.len() => {
                self.fill.extend_from_slice(&last);
                return self.fill.freeze();
            }
            _ => {}
        }
        let mut whole = BytesMut::with_capacity(self.size + last.len());
        for part in &self.parts {
            whole.extend_from_slice(part);
        }
        whole.extend_from_slice(&self.fill);
        whole.extend_from_slice(&last);
        whole.freeze()
    }

    /// Drops the delivery's bytes, giving what they held back to `budget`.
    pub(crate) fn free(self, budget: &mut PartialBudget) {
        budget.release(self.held);
    }

    /// The capacity the part list needs for `slots` more parts.
    fn parts_capacity(&self, slots: usize) -> usize {
        let need = self.parts.len() + slots;
        let capacity = self.parts.capacity();
        if need <= capacity {
            capacity
        } else {
            need.max(capacity * 2).max(PARTS_MIN)
        }
    }

    /// The memory growing the part list to `capacity` adds.
    fn parts_cost(&self, capacity: usize) -> usize {
        (capacity - self.parts.capacity()) * size_of::<Bytes>()
    }

    fn grow_parts(&mut self, capacity: usize) {
        self.parts.reserve_exact(capacity - self.parts.len());
        debug_assert_eq!(
            self.parts.capacity(),
            capacity,
            "partial bytes: the part list's capacity was counted as {capacity}"
        );
    }

    /// Moves what the chunk being filled holds, if anything, to the parts.
    fn close_fill(&mut self) {
        if !self.fill.is_empty() {
            self.parts.push(self.fill.split().freeze());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(bytes: &[u8]) -> Payload {
        Payload {
            bytes: Bytes::copy_from_slice(bytes),
            own_frame: 0,
        }
    }

    /// A payload of `len` bytes whose frame of `len + 40` bytes has its own allocation.
    fn own(len: usize) -> Payload {
        Payload {
            bytes: Bytes::from(vec![b'x'; len]),
            own_frame: len + 40,
        }
    }

    #[test]
    fn tiny_payloads_hold_about_their_size() {
        let mut budget = PartialBudget::new(usize::MAX);
        let mut r = Reassembly::default();
        for i in 0..1_000_000u32 {
            r.push(shared(&[i as u8]), &mut budget).unwrap();
        }
        assert_eq!(r.size(), 1_000_000);
        assert_eq!(budget.held(), r.held());
        // Chunks of at most 64 KiB, one partly used, and a part list of 32-byte slots.
        assert!(
            r.held() < 1_000_000 + COPY_CHUNK_MAX + 20 * 64,
            "{}",
            r.held()
        );
        let message = r.finish(Bytes::from_static(b"!"), &mut budget);
        assert_eq!(message.len(), 1_000_001);
        assert_eq!(message[255], 255);
        assert_eq!(message[1_000_000], b'!');
        assert_eq!(budget.held(), 0);
    }

    #[test]
    fn kept_frames_count_their_allocation_and_join_in_order() {
        let mut budget = PartialBudget::new(usize::MAX);
        let mut r = Reassembly::default();
        r.push(shared(b"ab"), &mut budget).unwrap();
        r.push(own(10_000), &mut budget).unwrap();
        r.push(shared(b"cd"), &mut budget).unwrap();
        // One chunk (its rest took "cd" after the kept frame), the kept frame, four part slots.
        assert_eq!(r.held(), COPY_CHUNK_MIN + 10_040 + 4 * 32);
        let message = r.finish(Bytes::from_static(b"e"), &mut budget);
        assert_eq!(message.len(), 10_005);
        assert!(message.starts_with(b"abx") && message.ends_with(b"xcde"));
        assert_eq!(budget.held(), 0);
    }

    #[test]
    fn a_part_over_the_budget_is_refused_and_nothing_is_charged() {
        let mut budget = PartialBudget::new(3000);
        let mut r = Reassembly::default();
        r.push(shared(&[1; 1000]), &mut budget).unwrap();
        let held = budget.held();
        let err = r.push(shared(&[1; 2000]), &mut budget).unwrap_err();
        assert_eq!(budget.held(), held);
        assert_eq!(r.size(), 1000);
        assert!(
            err.to_error()
                .description
                .unwrap()
                .as_str()
                .contains("partial_bytes_max (3000 bytes)")
        );
        r.free(&mut budget);
        assert_eq!(budget.held(), 0);
    }

    #[test]
    fn one_kept_frame_and_an_empty_last_is_handed_over_as_it_came() {
        let mut budget = PartialBudget::new(usize::MAX);
        let mut r = Reassembly::default();
        let kept = own(10_000);
        let ptr = kept.bytes.as_ptr();
        r.push(kept, &mut budget).unwrap();
        let message = r.finish(Bytes::new(), &mut budget);
        assert_eq!(message.as_ptr(), ptr);
    }
}
