//! Multicast: a pre-settled copy (a reference count, not bytes) to every receiver with credit;
//! one without credit misses the message, as nothing is stored.

use bytes::Bytes;
use sluice_store::MessageId;

use super::command::ToConn;
use super::ids::LinkKey;
use super::outbox::Outbox;

#[derive(Debug, Default)]
pub(crate) struct MulticastNode {
    /// Its configured address (for operators).
    pub(crate) address: std::sync::Arc<str>,
    /// Receivers and their credit.
    receivers: Vec<(LinkKey, u32)>,
}

impl MulticastNode {
    pub(crate) fn new(address: std::sync::Arc<str>) -> Self {
        MulticastNode {
            address,
            receivers: Vec::new(),
        }
    }

    pub(crate) fn add_receiver(&mut self, key: LinkKey) {
        self.receivers.push((key, 0));
    }

    pub(crate) fn remove_receiver(&mut self, key: LinkKey) {
        self.receivers.retain(|(k, _)| *k != key);
    }

    /// Sets a receiver's credit. Nothing is stored for it, so a drain ends at once.
    pub(crate) fn credit(&mut self, key: LinkKey, credit: u32, drain: bool, out: &mut Outbox) {
        if let Some((_, c)) = self.receivers.iter_mut().find(|(k, _)| *k == key) {
            *c = if drain { 0 } else { credit };
            if drain {
                out.push(key.0, ToConn::Drained { link: key.1 });
            }
        }
    }

    pub(crate) fn publish(&mut self, message: &Bytes, out: &mut Outbox) {
        for ((conn, link), credit) in &mut self.receivers {
            if *credit > 0 {
                *credit -= 1;
                out.push(
                    *conn,
                    ToConn::Deliver {
                        link: *link,
                        message: MessageId(0),
                        payload: message.clone(),
                        settled: true,
                    },
                );
            }
        }
    }
}
