//! Attaching, detaching and crediting consumers.

use super::browse::Browser;
use super::{Consumer, ConsumerId, ConsumerOptions, Queue};
use crate::error::StoreError;

impl Queue {
    /// Attaches a plain consumer, with no credit.
    pub fn add_consumer(&mut self, id: ConsumerId) -> Result<(), StoreError> {
        self.add_consumer_with(id, ConsumerOptions::default())
    }

    /// Attaches a consumer with `options` (a filter), with no credit.
    pub fn add_consumer_with(
        &mut self,
        id: ConsumerId,
        options: ConsumerOptions,
    ) -> Result<(), StoreError> {
        if self.consumer_index(id).is_some() || self.browser_index(id).is_some() {
            return Err(StoreError::DuplicateConsumer(id));
        }
        if options.browse {
            self.browsers.push(Browser::new(id, options.filter));
            return Ok(());
        }
        self.filtered += usize::from(options.filter.is_some());
        self.consumers.push(Consumer {
            id,
            credit: 0,
            filter: options.filter,
        });
        Ok(())
    }

    /// Detaches a consumer (its link detached or its connection went away). Its unsettled
    /// deliveries count as failed attempts: they return to their original places in the queue
    /// with the delivery count raised and `first-acquirer` false, or are dead-lettered if that
    /// reaches the redelivery limit.
    pub fn remove_consumer(&mut self, id: ConsumerId) -> Result<(), StoreError> {
        if let Some(index) = self.browser_index(id) {
            self.browsers.remove(index);
            self.browsers_at_end.retain(|&b| b != id);
            return Ok(());
        }
        let index = self
            .consumer_index(id)
            .ok_or(StoreError::UnknownConsumer(id))?;
        let consumer = self.consumers.remove(index);
        self.credit_total -= u64::from(consumer.credit);
        self.filtered -= usize::from(consumer.filter.is_some());
        // Its groups are free for any consumer (its messages return to their places below).
        for group in self.groups.values_mut() {
            if group.consumer == Some(id) {
                group.consumer = None;
            }
        }
        if index < self.next_consumer {
            self.next_consumer -= 1;
        }
        if self.next_consumer >= self.consumers.len() {
            self.next_consumer = 0;
        }
        // Its deliveries are found in `in_flight` rather than kept per consumer as well: a
        // detach is rare, a delivery is not.
        for message in self.unsettled_of(id) {
            if let Some(flight) = self.in_flight.remove(message.0) {
                self.fail_delivery(message, flight.stored);
            }
        }
        self.debug_check();
        Ok(())
    }

    /// Sets a consumer's credit: how many more deliveries it may be handed (its link credit).
    pub fn set_credit(&mut self, id: ConsumerId, credit: u32) -> Result<(), StoreError> {
        if let Some(index) = self.browser_index(id) {
            if let Some(browser) = self.browsers.get_mut(index) {
                browser.set_credit(credit);
            }
            return Ok(());
        }
        let index = self
            .consumer_index(id)
            .ok_or(StoreError::UnknownConsumer(id))?;
        let consumer = self
            .consumers
            .get_mut(index)
            .ok_or(StoreError::UnknownConsumer(id))?;
        self.credit_total = self.credit_total - u64::from(consumer.credit) + u64::from(credit);
        consumer.credit = credit;
        Ok(())
    }

    /// A consumer's remaining credit.
    pub fn credit(&self, id: ConsumerId) -> Option<u32> {
        if let Some(index) = self.browser_index(id) {
            return self.browsers.get(index).map(|b| b.credit);
        }
        self.consumer_index(id)
            .and_then(|i| self.consumers.get(i))
            .map(|c| c.credit)
    }
}
