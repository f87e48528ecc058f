//! Confirm latency: from sending a transfer unsettled to the peer's disposition settling it
//! accepted. It is what a producer waits for before it may forget a message, and what a
//! durable queue's journal adds to: the broker must not accept a durable message before it is
//! on disk.
//!
//! Send times wait in a ring keyed by delivery id. A session numbers its transfers one after
//! another (AMQP 1.0 §2.7.5, `delivery-id`), and a sender here has one link on its session, so
//! the ring holds the send time of delivery `base + i` at `i`: no map, and no allocation per
//! message (the ring grows to the most deliveries unsettled at once, which the peer's credit
//! bounds, and is reused from then on). Dispositions may settle out of order; a settled slot is
//! marked and the front moves past it once everything before it is settled too.

use std::collections::VecDeque;

use hdrhistogram::Histogram;

use crate::report::record_latency;

/// A slot whose delivery is settled.
const SETTLED: u64 = u64::MAX;

/// The send times of one session's unsettled deliveries.
#[derive(Debug, Default)]
pub(crate) struct Confirms {
    /// Delivery id of the ring's front.
    base: u32,
    /// Send time of delivery `base + i`, nanoseconds since the run's epoch, or [`SETTLED`].
    sent_ns: VecDeque<u64>,
}

impl Confirms {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Delivery `id` went out unsettled at `sent_ns`.
    pub(crate) fn sent(&mut self, id: u32, sent_ns: u64) {
        let next = self.base.wrapping_add(self.sent_ns.len() as u32);
        if self.sent_ns.is_empty() || id != next {
            // One link per session numbers deliveries without gaps; should another id come,
            // the times waiting can no longer be matched, so they are dropped, not misread.
            self.sent_ns.clear();
            self.base = id;
        }
        self.sent_ns.push_back(sent_ns.min(SETTLED - 1));
    }

    /// The peer settled deliveries `first..=last` at `now_ns`: the accepted ones sent at or
    /// after `measured_from_ns` go into `latency` (microseconds). Ids not waiting (settled
    /// already, or never sent unsettled) are ignored.
    pub(crate) fn settled(
        &mut self,
        first: u32,
        last: u32,
        accepted: bool,
        now_ns: u64,
        measured_from_ns: u64,
        latency: &mut Histogram<u64>,
    ) {
        let len = self.sent_ns.len();
        if len == 0 {
            return;
        }
        // Offsets from the front, in the ids' own wrapping arithmetic: a range that starts
        // before the front wraps past zero, and then covers the ring from its start.
        let lo = first.wrapping_sub(self.base) as usize;
        let hi = last.wrapping_sub(self.base) as usize;
        let lo = if lo <= hi { lo } else { 0 };
        let hi = hi.min(len - 1);
        for slot in self
            .sent_ns
            .range_mut(lo.min(len)..=hi)
            .filter(|s| **s != SETTLED)
        {
            if accepted && *slot >= measured_from_ns {
                record_latency(latency, now_ns.saturating_sub(*slot) / 1000);
            }
            *slot = SETTLED;
        }
        while self.sent_ns.front() == Some(&SETTLED) {
            self.sent_ns.pop_front();
            self.base = self.base.wrapping_add(1);
        }
    }

    /// Deliveries still waiting for their outcome.
    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.sent_ns.iter().filter(|s| **s != SETTLED).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::latency_histogram;

    const MS: u64 = 1_000_000;

    #[test]
    fn each_accepted_delivery_is_timed_from_its_own_send() {
        let mut c = Confirms::new();
        let mut h = latency_histogram();
        for id in 10..20u32 {
            c.sent(id, u64::from(id) * MS);
        }
        // Out of order: 12..=14 first, at 30 ms; then the rest, at 40 ms.
        c.settled(12, 14, true, 30 * MS, 0, &mut h);
        assert_eq!(h.len(), 3);
        assert_eq!(c.waiting(), 7);
        assert_eq!(
            h.max(),
            h.highest_equivalent(18_000),
            "12 sent at 12 ms, settled at 30"
        );
        c.settled(10, 19, true, 40 * MS, 0, &mut h);
        assert_eq!(h.len(), 10, "12..=14 are not counted twice");
        assert_eq!(c.waiting(), 0);
        assert!(
            c.sent_ns.is_empty(),
            "the ring empties once all are settled"
        );
        assert_eq!(
            h.min(),
            h.lowest_equivalent(16_000),
            "14: sent at 14 ms, settled at 30"
        );
        assert_eq!(
            h.max(),
            h.highest_equivalent(30_000),
            "10: sent at 10 ms, settled at 40"
        );
    }

    #[test]
    fn warm_up_refusals_and_unknown_ids_are_not_measured() {
        let mut c = Confirms::new();
        let mut h = latency_histogram();
        for id in 0..6u32 {
            c.sent(id, u64::from(id) * MS);
        }
        c.settled(0, 1, true, 10 * MS, 2 * MS, &mut h);
        assert_eq!(h.len(), 0, "sent during the warm-up");
        c.settled(2, 3, false, 10 * MS, 2 * MS, &mut h);
        assert_eq!(h.len(), 0, "settled, but not accepted");
        c.settled(100, 200, true, 10 * MS, 0, &mut h);
        c.settled(0, 1, true, 10 * MS, 0, &mut h);
        assert_eq!(h.len(), 0, "never sent, or settled already");
        assert_eq!(c.waiting(), 2);
        // A range reaching back before the front still settles what it covers.
        c.settled(u32::MAX - 5, 4, true, 10 * MS, 0, &mut h);
        assert_eq!((h.len(), c.waiting()), (1, 1));
    }

    #[test]
    fn delivery_ids_wrap() {
        let mut c = Confirms::new();
        let mut h = latency_histogram();
        for i in 0..4u32 {
            c.sent((u32::MAX - 1).wrapping_add(i), MS);
        }
        c.settled(u32::MAX - 1, 1, true, 2 * MS, 0, &mut h);
        assert_eq!((h.len(), c.waiting()), (4, 0));
        c.sent(2, MS);
        c.settled(2, 2, true, 3 * MS, 0, &mut h);
        assert_eq!((h.len(), c.waiting()), (5, 0));
    }
}
