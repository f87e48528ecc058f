//! An operator's move: available messages taken out of the queue for another address (a
//! dead-letter queue's messages sent back to where they came from).
//!
//! Like a dead-lettered message ([`Forward`]), a taken message leaves at once, counted as
//! `moved`, and its removal is not logged here: the broker logs it once the target has stored
//! it, so a crash in between finds the message in one of the two queues, never in neither.
//! Only messages in memory are taken: paged ones come back as consumers read them, and the
//! operator moves them on the next request.

use sluice_codec::messaging::ScannedMessage;

use super::{Forward, ForwardReason, MessageId, Queue, select};

impl Queue {
    /// Takes up to `max` available messages in memory, in delivery order, that `pick` chooses
    /// (it says where each goes; `None` leaves the message), looking at no more than
    /// `scan_max` of them. Each is returned with `pick`'s answer as a [`Forward`] of reason
    /// [`ForwardReason::Moved`], its header carrying the delivery count it reached.
    pub fn take_where<T>(
        &mut self,
        max: usize,
        scan_max: usize,
        mut pick: impl FnMut(&ScannedMessage) -> Option<T>,
    ) -> Vec<(T, Forward)> {
        let chosen: Vec<(u64, T)> = self
            .available
            .iter()
            .take(scan_max)
            .filter_map(|(id, stored)| pick(&stored.message).map(|t| (id, t)))
            .take(max)
            .collect();
        let mut taken = Vec::with_capacity(chosen.len());
        for (id, target) in chosen {
            let id = MessageId(id);
            let Some(mut stored) = self.take_available(id) else {
                continue;
            };
            self.bytes -= stored.size_bytes;
            select::leave(&mut self.groups, &stored);
            self.counters.moved += 1;
            let payload = stored.payload();
            let forward = Forward {
                id,
                reason: ForwardReason::Moved,
                payload,
                journaled: stored.journaled,
            };
            taken.push((target, forward));
        }
        self.debug_check();
        taken
    }
}
