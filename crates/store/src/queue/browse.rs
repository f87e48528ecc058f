//! Browsers: consumers that see messages without taking them (AMQP `distribution-mode: copy`).
//!
//! A browser has a cursor, the next [`MessageId`] it has not seen, and walks the available
//! messages in memory in arrival order (by id, whatever their priority) from it: each once,
//! those its filter matches, as copies. A browser's credit is spent on what it is shown; the
//! messages stay where they are, for the competing consumers. Browse deliveries need no
//! settlement: the broker sends them pre-settled, and [`Queue::settle`] or [`Queue::unsend`]
//! of one fails with [`StoreError::NotInFlight`](crate::StoreError::NotInFlight), which the
//! broker ignores. A copy is the message as it arrived (its header's `delivery-count` as
//! received). Messages in flight, held until a due time, or paged are not shown; a browser
//! sees a message that becomes available later only if the message's id is past its cursor
//! (new arrivals always are). Browsers have credit of their own, outside the competing
//! consumers' credit total, so they never slow dispatch.
//!
//! When a browser has credit left and has seen every available message,
//! [`Queue::take_browsers_at_end`] names it once, so the broker can drain its credit (Qpid
//! Proton's `queue_browser.py` stops when its receiver is drained).

use std::sync::Arc;

use super::select::MessageFilter;
use super::{ConsumerId, DISPATCH_SKIPS_MAX, Delivery, MessageId, Queue};

#[derive(Debug)]
pub(super) struct Browser {
    pub(super) id: ConsumerId,
    pub(super) credit: u32,
    pub(super) filter: Option<Arc<dyn MessageFilter>>,
    /// The next id it has not seen.
    cursor: u64,
    /// Named by `take_browsers_at_end` since it last saw a message or got credit.
    reported_end: bool,
}

impl Browser {
    pub(super) fn new(id: ConsumerId, filter: Option<Arc<dyn MessageFilter>>) -> Self {
        Browser {
            id,
            credit: 0,
            filter,
            cursor: 0,
            reported_end: false,
        }
    }

    /// New credit: it may be at the end again later.
    pub(super) fn set_credit(&mut self, credit: u32) {
        self.credit = credit;
        self.reported_end = false;
    }
}

impl Queue {
    /// Shows browsers with credit the available messages past their cursors, as copies to be
    /// sent pre-settled. Each browser passes at most [`DISPATCH_SKIPS_MAX`] messages its filter
    /// refuses per call.
    pub fn next_browse_deliveries(&mut self, now_ms: i64) -> Vec<Delivery> {
        let mut deliveries = Vec::new();
        for browser in &mut self.browsers {
            let mut skipped = 0;
            while browser.credit > 0 && skipped < DISPATCH_SKIPS_MAX {
                let Some((id, stored)) = self.available.first_by_id_from(browser.cursor) else {
                    if !browser.reported_end {
                        browser.reported_end = true;
                        self.browsers_at_end.push(browser.id);
                    }
                    break;
                };
                browser.cursor = id.saturating_add(1);
                let shown = !stored.is_expired(now_ms)
                    && browser
                        .filter
                        .as_ref()
                        .is_none_or(|f| f.matches(&stored.message));
                if !shown {
                    skipped += 1;
                    continue;
                }
                browser.credit -= 1;
                browser.reported_end = false;
                deliveries.push(Delivery {
                    consumer: browser.id,
                    message: MessageId(id),
                    payload: stored.message.raw().clone(),
                });
            }
        }
        deliveries
    }

    /// The browsers that have credit left and have seen every available message, each named
    /// once until it sees another message or gets new credit: the broker drains their credit.
    pub fn take_browsers_at_end(&mut self) -> Vec<ConsumerId> {
        std::mem::take(&mut self.browsers_at_end)
    }

    /// How many browsers are attached.
    pub fn browser_count(&self) -> usize {
        self.browsers.len()
    }

    pub(super) fn browser_index(&self, id: ConsumerId) -> Option<usize> {
        self.browsers.iter().position(|b| b.id == id)
    }
}
