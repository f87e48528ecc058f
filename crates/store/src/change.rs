//! What a durable queue tells its journal: every change to a durable message, in the order it
//! happened, so that replaying them rebuilds the queue with its delivery counts; and the
//! messages it pages out of memory, durable or not, so that it can read them back.
//!
//! A queue logs only the changes it makes on its own. A message it hands back for another
//! address ([`crate::Forward`], dead-lettered or expired) is not logged as removed here: the
//! broker logs its removal after the target has stored it, so a crash between the two finds
//! the message in one of the queues, never in neither.

use bytes::Bytes;

use crate::duplicates::{DuplicateLimits, RememberedId};
use crate::queue::MessageId;

/// A change to a durable message of a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The message was stored: `payload` is the encoded message as the queue holds it.
    Stored {
        /// Its id in the queue.
        id: MessageId,
        /// The message.
        payload: Bytes,
    },
    /// A message that is not durable was taken out of memory: `payload` is written to the
    /// journal so the queue can read it back, and a restart forgets it.
    Paged {
        /// Its id in the queue.
        id: MessageId,
        /// The message.
        payload: Bytes,
    },
    /// A failed delivery raised its delivery count to `count`.
    DeliveryCount {
        /// Its id in the queue.
        id: MessageId,
        /// The new count.
        count: u32,
    },
    /// It left the queue (a durable or a paged one): acknowledged, or dropped (rejected, expired or past its delivery
    /// attempts with no target to go to).
    Removed {
        /// Its id in the queue.
        id: MessageId,
    },
    /// The next `records` changes (of any queues) are one unit, a committed transaction's
    /// work: the journal writes them together into one segment, and recovery replays all of
    /// them or, when the crash cut the unit short, none. A queue never makes this; the broker
    /// does, around the changes of a commit.
    Atomic {
        /// How many changes follow in the unit.
        records: u32,
    },
    /// A message's `message-id` was remembered by the queue's duplicate window. `message` is
    /// the message stored with it, whose stored record comes next: recovery keeps the id only
    /// if that record is there too, so a crash keeps both or neither. `None` when compaction
    /// writes an id again on its own. `limits` are the window's, so that the journal forgets
    /// the ids the window forgets without being told.
    Remembered {
        /// The message stored with it.
        message: Option<MessageId>,
        /// The id.
        id: RememberedId,
        /// The window's limits when it was remembered.
        limits: DuplicateLimits,
    },
}
