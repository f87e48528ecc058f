//! Anycast: routed, never stored. A sender gets credit only when some receiver has credit,
//! each message goes to one receiver (round robin among those with credit), and the
//! receiver's outcome and settlement travel back to the sender.
//!
//! Credit is granted to senders from what receivers have granted and nobody has claimed yet,
//! so what the node holds between a sender and a receiver is bounded by receivers' credit.
//! Messages that arrive anyway (a receiver took its credit back, or a relay sent without a
//! grant) wait for credit, up to [`WAITING_BYTES_MAX`]; past it, and when the last receiver
//! goes, they are released to their senders.

use std::collections::VecDeque;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use bytes::Bytes;
use sluice_codec::transport::{Accepted, DeliveryState, Modified, Released};
use sluice_engine::LinkId;
use sluice_store::MessageId;

use super::command::{Origin, ToConn};
use super::ids::{ConnId, LinkKey};
use super::outbox::Outbox;
use super::queue::WAITING_BYTES_MAX;

#[derive(Debug)]
struct Receiver {
    key: LinkKey,
    credit: u32,
    drain: bool,
    /// Deliveries it has not settled, and whom they came from.
    in_flight: FxHashMap<MessageId, (Origin, Bytes)>,
}

/// An anycast address's links and the messages between them.
#[derive(Debug, Default)]
pub(crate) struct AnycastNode {
    /// Its configured address (for operators).
    pub(crate) address: Arc<str>,
    receivers: Vec<Receiver>,
    /// Round-robin cursor into `receivers`.
    cursor: usize,
    /// Senders and the credit granted to each that it has not used yet.
    senders: Vec<(LinkKey, u32)>,
    /// Which sender is first to be granted next time, so none is starved.
    sender_cursor: usize,
    /// Messages waiting for a receiver with credit, in the order they arrived (numbered
    /// then): one a receiver's connection could not send goes back to its place.
    held: VecDeque<(MessageId, Origin, Bytes)>,
    held_bytes: usize,
    /// Numbers messages as they arrive.
    next_message: u64,
}

impl AnycastNode {
    pub(crate) fn new(address: Arc<str>) -> Self {
        AnycastNode {
            address,
            ..AnycastNode::default()
        }
    }

    pub(crate) fn add_sender(&mut self, key: LinkKey) {
        self.senders.push((key, 0));
    }

    /// Whether `key` was one of the senders.
    pub(crate) fn remove_sender(&mut self, key: LinkKey) -> bool {
        let before = self.senders.len();
        self.senders.retain(|(k, _)| *k != key);
        self.sender_cursor = 0;
        self.senders.len() != before
    }

    pub(crate) fn add_receiver(&mut self, key: LinkKey) {
        self.receivers.push(Receiver {
            key,
            credit: 0,
            drain: false,
            in_flight: FxHashMap::default(),
        });
    }

    /// A receiver leaves: the senders of what it had not settled learn the attempt failed (it
    /// may have processed them).
    pub(crate) fn remove_receiver(&mut self, key: LinkKey, out: &mut Outbox) {
        let Some(index) = self.receivers.iter().position(|r| r.key == key) else {
            return;
        };
        let gone = self.receivers.remove(index);
        self.cursor = 0;
        let failed = DeliveryState::Modified(Modified {
            delivery_failed: true,
            ..Default::default()
        });
        for (origin, _) in gone.in_flight.into_values() {
            out.answer(origin, failed.clone(), false);
        }
    }

    fn receiver_mut(&mut self, key: LinkKey) -> Option<&mut Receiver> {
        self.receivers.iter_mut().find(|r| r.key == key)
    }

    pub(crate) fn credit(&mut self, key: LinkKey, credit: u32, drain: bool) {
        if let Some(r) = self.receiver_mut(key) {
            r.credit = credit;
            r.drain = drain;
        }
    }

    /// A message from a sender (spending one of its granted credits) or a relay.
    pub(crate) fn publish(&mut self, origin: Origin, message: Bytes, out: &mut Outbox) {
        if let Some((_, granted)) = self
            .senders
            .iter_mut()
            .find(|(k, _)| *k == (origin.conn, origin.link))
        {
            *granted = granted.saturating_sub(1);
        }
        if self.held_bytes.saturating_add(message.len()) > WAITING_BYTES_MAX {
            // Sent without credit past what may wait: back to the sender to retry.
            out.answer(origin, DeliveryState::Released(Released {}), false);
            return;
        }
        self.held_bytes += message.len();
        self.next_message += 1;
        self.held
            .push_back((MessageId(self.next_message), origin, message));
    }

    /// The receiver's outcome, as it gave it, is the sender's.
    pub(crate) fn settle(
        &mut self,
        key: LinkKey,
        message: MessageId,
        state: DeliveryState,
        out: &mut Outbox,
    ) {
        if let Some((origin, _)) = self
            .receiver_mut(key)
            .and_then(|r| r.in_flight.remove(&message))
        {
            out.answer(origin, state, false);
        }
    }

    /// A delivery the receiver's connection could not send goes back to its place in line
    /// (ahead of what arrived after it, so order holds when several come back); the receiver
    /// gets no more until it grants credit anew.
    pub(crate) fn unsend(&mut self, key: LinkKey, message: MessageId) {
        let Some(r) = self.receiver_mut(key) else {
            return;
        };
        r.credit = 0;
        if let Some((origin, payload)) = r.in_flight.remove(&message) {
            self.held_bytes += payload.len();
            let at = self.held.partition_point(|(id, ..)| *id < message);
            self.held.insert(at, (message, origin, payload));
        }
    }

    pub(crate) fn is_holding(&self) -> bool {
        !self.held.is_empty()
    }

    /// Drops what `conn` (and `link`) sent and is still held: nobody is left to answer.
    pub(crate) fn forget(&mut self, conn: ConnId, link: Option<LinkId>) {
        self.held
            .retain(|(_, o, _)| !(o.conn == conn && link.is_none_or(|l| o.link == l)));
        self.held_bytes = self.held.iter().map(|(.., m)| m.len()).sum();
    }

    /// Routes what is held to receivers with credit, answers finished drains, and grants
    /// senders the receivers' credit nobody has claimed.
    pub(crate) fn route(&mut self, out: &mut Outbox) {
        if self.receivers.is_empty() {
            // Nobody to route to: the senders get them back to retry.
            self.held_bytes = 0;
            for (_, origin, _) in self.held.drain(..) {
                out.answer(origin, DeliveryState::Released(Released {}), false);
            }
            return;
        }
        self.hand_out(out);
        self.finish_drains(out);
        self.grant(out);
    }

    fn hand_out(&mut self, out: &mut Outbox) {
        while !self.held.is_empty() {
            let count = self.receivers.len();
            let Some(index) = (0..count)
                .map(|step| (self.cursor + step) % count)
                .find(|&i| self.receivers.get(i).is_some_and(|r| r.credit > 0))
            else {
                break;
            };
            let (Some((message, origin, payload)), Some(r)) =
                (self.held.pop_front(), self.receivers.get_mut(index))
            else {
                break;
            };
            self.held_bytes -= payload.len();
            self.cursor = (index + 1) % count;
            r.credit -= 1;
            if origin.settle.is_some() {
                r.in_flight.insert(message, (origin, payload.clone()));
            }
            out.push(
                r.key.0,
                ToConn::Deliver {
                    link: r.key.1,
                    message,
                    payload,
                    settled: false,
                },
            );
            // A settled send is done once routed (the answer only returns a relay's credit).
            if origin.settle.is_none() {
                out.answer(origin, DeliveryState::Accepted(Accepted {}), false);
            }
        }
    }

    fn finish_drains(&mut self, out: &mut Outbox) {
        let empty = self.held.is_empty();
        for r in &mut self.receivers {
            if r.drain && empty {
                r.credit = 0;
                r.drain = false;
                out.push(r.key.0, ToConn::Drained { link: r.key.1 });
            }
        }
    }

    /// Grants senders, round robin, the receivers' credit that neither a held message nor an
    /// earlier grant claims.
    fn grant(&mut self, out: &mut Outbox) {
        let available: u64 = self.receivers.iter().map(|r| u64::from(r.credit)).sum();
        let claimed = self.held.len() as u64
            + self
                .senders
                .iter()
                .map(|(_, granted)| u64::from(*granted))
                .sum::<u64>();
        let count = self.senders.len();
        if count == 0 || available <= claimed {
            return;
        }
        let mut spare = available - claimed;
        let share = spare.div_ceil(count as u64);
        for step in 0..count {
            let index = (self.sender_cursor + step) % count;
            let Some((key, granted)) = self.senders.get_mut(index) else {
                continue;
            };
            let more = u32::try_from(share.min(spare)).unwrap_or(u32::MAX);
            if more == 0 {
                break;
            }
            *granted += more;
            spare -= u64::from(more);
            out.push(key.0, ToConn::Credit { link: key.1, more });
        }
        self.sender_cursor = (self.sender_cursor + 1) % count;
        debug_assert!(
            self.senders.iter().map(|(_, g)| u64::from(*g)).sum::<u64>() + self.held.len() as u64
                <= available.max(claimed),
            "senders were granted credit no receiver gave"
        );
    }
}
