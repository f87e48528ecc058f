//! How a receiver on a queue consumes: the source filters the broker applies, and whether it
//! browses.
//!
//! - Filters (part 3 §3.5.8, and the Qpid filter registry): a JMS selector
//!   (`apache.org:selector-filter:string`) and the legacy AMQP bindings
//!   (`apache.org:legacy-amqp-*`), compiled once here, at attach, by `sluice-selector`; the
//!   queue then tests each message it offers the consumer without allocating. The attach's
//!   answer names exactly the filters in force (§3.5.3: the sending end sets the filter
//!   actually in place), so a client asking for one the broker does not apply can tell. A
//!   filter that does not parse refuses the link with `amqp:invalid-field`.
//! - `distribution-mode: copy` (§3.5.3): the receiver browses, seeing the messages without
//!   taking them. Its deliveries go pre-settled.
//!
//! Only queue-like nodes (queues, deadletters, subscriptions, temporary queues) apply them:
//! elsewhere nothing is in force and the answer says so.

use std::sync::Arc;

use sluice_codec::composite::Fields;
use sluice_codec::messaging::{ScannedMessage, Source};
use sluice_codec::types::Symbol;
use sluice_store::{ConsumerOptions, MessageFilter};

use crate::error::Refusal;

/// `distribution-mode: copy`: browse.
const COPY: &str = "copy";

/// A compiled source filter, as the store's consumer tests it.
#[derive(Debug)]
struct Compiled(sluice_selector::MessageFilter);

impl MessageFilter for Compiled {
    fn matches(&self, message: &ScannedMessage) -> bool {
        self.0.matches(message)
    }
}

/// What a queue receiver asked for, as applied.
#[derive(Debug, Default)]
pub(super) struct Consuming {
    /// The consumer the queue gets.
    pub(super) options: ConsumerOptions,
    /// The filters in force, for the attach's answer.
    pub(super) in_force: Option<Fields>,
}

impl Consuming {
    /// The consumer `source` asks for; `Err` when a filter does not compile.
    pub(super) fn of(source: Option<&Source>) -> Result<Self, Refusal> {
        let Some(source) = source else {
            return Ok(Consuming::default());
        };
        let browse = source
            .distribution_mode
            .as_ref()
            .is_some_and(|m| m.as_str() == COPY);
        let (filter, in_force) = match &source.filter {
            None => (None, None),
            Some(filters) => match sluice_selector::MessageFilter::from_source(filters) {
                Ok(Some((filter, keys))) => {
                    let in_force: Fields = filters
                        .iter()
                        .filter(|(key, _)| keys.contains(key))
                        .cloned()
                        .collect();
                    (
                        Some(Arc::new(Compiled(filter)) as Arc<dyn MessageFilter>),
                        Some(in_force),
                    )
                }
                Ok(None) => (None, None),
                Err(e) => return Err(Refusal::Filter(e.to_string())),
            },
        };
        Ok(Consuming {
            options: ConsumerOptions { filter, browse },
            in_force,
        })
    }

    /// The distribution mode to answer with: `copy` for a browser, else none (move).
    pub(super) fn distribution_mode(&self) -> Option<Symbol> {
        self.options.browse.then(|| Symbol::from_static(COPY))
    }
}
