//! Anycast: routed, never stored. A sender gets credit only when some receiver has credit,
//! each message goes to one receiver (round robin among those with credit), and the
//! receiver's outcome and settlement travel back to the sender.
//!
//! Credit is granted to senders from what receivers have granted and nobody has claimed yet,
//! so what the core holds between a sender and a receiver is bounded by receivers' credit.
//! Messages that arrive anyway (a receiver took its credit back, or a relay sent without a
//! grant) wait for credit; when the last receiver goes they are released to their senders.

use std::collections::VecDeque;

use bytes::Bytes;
use sluice_codec::transport::{Accepted, DeliveryState, Released};
use sluice_store::MessageId;

use super::{Core, LinkKey, Origin, Receiver, ToConn};

/// An anycast address's links and the messages between them.
#[derive(Debug, Default)]
pub(super) struct Anycast {
    receivers: Vec<LinkKey>,
    /// Round-robin cursor into `receivers`.
    cursor: usize,
    /// Senders and the credit granted to each that it has not used yet.
    senders: Vec<(LinkKey, u32)>,
    /// Which sender is first to be granted next time, so none is starved.
    sender_cursor: usize,
    /// Messages waiting for a receiver with credit.
    held: VecDeque<(Origin, Bytes)>,
}

impl Anycast {
    pub(super) fn add_sender(&mut self, key: LinkKey) {
        self.senders.push((key, 0));
    }

    /// Whether `key` was one of the senders.
    pub(super) fn remove_sender(&mut self, key: LinkKey) -> bool {
        let before = self.senders.len();
        self.senders.retain(|(k, _)| *k != key);
        self.sender_cursor = 0;
        self.senders.len() != before
    }

    pub(super) fn add_receiver(&mut self, key: LinkKey) {
        self.receivers.push(key);
    }

    pub(super) fn remove_receiver(&mut self, key: LinkKey) {
        self.receivers.retain(|k| *k != key);
        self.cursor = 0;
    }

    /// A message from a sender (spending one of its granted credits) or a relay.
    pub(super) fn publish(&mut self, origin: Origin, message: Bytes) {
        if let Some((_, granted)) = self
            .senders
            .iter_mut()
            .find(|(k, _)| *k == (origin.conn, origin.link))
        {
            *granted = granted.saturating_sub(1);
        }
        self.held.push_back((origin, message));
    }

    /// A delivery the receiver's connection could not send goes first in line again.
    pub(super) fn put_back(&mut self, origin: Origin, message: Bytes) {
        self.held.push_front((origin, message));
    }
}

impl Core {
    /// Routes what `address` holds to receivers with credit, answers finished drains, and
    /// grants senders the receivers' credit nobody has claimed.
    pub(super) fn route_anycast(&mut self, address: &str) {
        let Some(a) = self.anycast.get_mut(address) else {
            return;
        };
        if a.receivers.is_empty() {
            // Nobody to route to: the senders get them back to retry.
            for (origin, _) in a.held.drain(..) {
                self.out
                    .answer(origin, DeliveryState::Released(Released {}));
            }
            return;
        }
        while !a.held.is_empty() {
            let count = a.receivers.len();
            let picked = (0..count).find_map(|step| {
                let index = (a.cursor + step) % count;
                let key = *a.receivers.get(index)?;
                match self.receivers.get(&key) {
                    Some(Receiver::Anycast { credit, .. }) if *credit > 0 => Some((index, key)),
                    _ => None,
                }
            });
            let Some((index, key)) = picked else { break };
            let Some((origin, payload)) = a.held.pop_front() else {
                break;
            };
            a.cursor = (index + 1) % count;
            self.next_anycast += 1;
            let message = MessageId(self.next_anycast);
            if let Some(Receiver::Anycast {
                credit, in_flight, ..
            }) = self.receivers.get_mut(&key)
            {
                *credit -= 1;
                if origin.settle.is_some() {
                    in_flight.insert(message, (origin, payload.clone()));
                }
            }
            self.out.push(
                key.0,
                ToConn::Deliver {
                    link: key.1,
                    message,
                    payload,
                    settled: false,
                },
            );
            // A settled send is done once routed (the answer only returns a relay's credit).
            if origin.settle.is_none() {
                self.out
                    .answer(origin, DeliveryState::Accepted(Accepted {}));
            }
        }
        let mut available: u64 = 0;
        for key in &a.receivers {
            if let Some(Receiver::Anycast { credit, drain, .. }) = self.receivers.get_mut(key) {
                if *drain && a.held.is_empty() {
                    *credit = 0;
                    *drain = false;
                    self.out.push(key.0, ToConn::Drained { link: key.1 });
                }
                available += u64::from(*credit);
            }
        }
        let claimed = a.held.len() as u64
            + a.senders
                .iter()
                .map(|(_, granted)| u64::from(*granted))
                .sum::<u64>();
        let count = a.senders.len();
        if count == 0 || available <= claimed {
            return;
        }
        let mut spare = available - claimed;
        let share = spare.div_ceil(count as u64);
        for step in 0..count {
            let index = (a.sender_cursor + step) % count;
            let Some((key, granted)) = a.senders.get_mut(index) else {
                continue;
            };
            let more = u32::try_from(share.min(spare)).unwrap_or(u32::MAX);
            if more == 0 {
                break;
            }
            *granted += more;
            spare -= u64::from(more);
            self.out.push(key.0, ToConn::Credit { link: key.1, more });
        }
        a.sender_cursor = (a.sender_cursor + 1) % count;
    }
}
