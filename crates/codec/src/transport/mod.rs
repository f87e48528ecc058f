//! AMQP 1.0 part 2, transport: performatives, the error type and condition names, and
//! delivery states (which part 3 defines but every disposition carries).

pub mod conditions;
mod delivery_state;
mod delivery_tag;
mod performatives;

pub use crate::enums::{ReceiverSettleMode, Role, SenderSettleMode};
pub use delivery_state::{
    Accepted, DeliveryState, Modified, Outcome, Received, Rejected, Released,
};
pub use delivery_tag::DeliveryTag;
pub use performatives::{
    Attach, AttachTarget, Begin, Close, Detach, Disposition, End, Error, Flow, Open, Performative,
    Transfer,
};
