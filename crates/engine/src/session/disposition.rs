//! Settlement (part 2 §2.6.12, §2.7.6): the dispositions we send and the peer's, and the
//! session's record of unsettled deliveries each way that they clear.

use sluice_codec::transport::{DeliveryState, Disposition, Role};

use super::Session;
use super::link::Link;
use crate::event::Event;
use crate::out::Out;
use crate::slots::Slots;
use crate::unsettled::Unsettled;

impl Session {
    /// Sends a disposition for deliveries `first..=last` that we `role` (sent as sender, or
    /// received as receiver).
    pub(crate) fn disposition(
        &mut self,
        role: Role,
        (first, last): (u32, u32),
        settled: bool,
        state: Option<DeliveryState>,
        out: &mut Out<'_>,
    ) {
        if settled {
            let map = match role {
                Role::Receiver => &mut self.unsettled_in,
                Role::Sender => &mut self.unsettled_out,
            };
            settle_range(map, &mut self.links, first, last);
        }
        let d = Disposition {
            role,
            first,
            last: (last != first).then_some(last),
            settled,
            state,
            batchable: false,
        };
        out.write(self.channel, &d.into());
    }

    pub(super) fn on_disposition(&mut self, d: Disposition, out: &mut Out<'_>) {
        let last = d.last.unwrap_or(d.first);
        if d.settled {
            // The peer as receiver settles what we sent, and as sender what we received.
            let map = match d.role {
                Role::Receiver => &mut self.unsettled_out,
                Role::Sender => &mut self.unsettled_in,
            };
            settle_range(map, &mut self.links, d.first, last);
        }
        out.event(Event::Disposition {
            session: self.id(),
            role: d.role,
            first: d.first,
            last,
            settled: d.settled,
            state: d.state,
        });
    }

    /// Records an unsettled delivery of the link `handle`, in `unsettled_in` when we received it
    /// and `unsettled_out` when we sent it.
    pub(super) fn record_unsettled(&mut self, received: bool, delivery_id: u32, handle: u32) {
        let map = if received {
            &mut self.unsettled_in
        } else {
            &mut self.unsettled_out
        };
        // A peer reusing the id of a delivery still unsettled replaces it: the link that had it
        // has one fewer.
        if let Some(replaced) = map.insert(delivery_id, handle) {
            count_settled(&mut self.links, replaced);
        }
        if let Some(l) = self.links.get_mut(&handle) {
            l.unsettled += 1;
        }
    }
}

/// Settles the deliveries `first..=last` of `map`, counting them off their links.
fn settle_range(map: &mut Unsettled, links: &mut Slots<u32, Link>, first: u32, last: u32) {
    map.settle_range(first, last, |handle| count_settled(links, handle));
}

fn count_settled(links: &mut Slots<u32, Link>, handle: u32) {
    if let Some(l) = links.get_mut(&handle) {
        debug_assert!(
            l.unsettled > 0,
            "unsettled deliveries: link {handle} settled one it did not count"
        );
        l.unsettled = l.unsettled.saturating_sub(1);
    }
}
