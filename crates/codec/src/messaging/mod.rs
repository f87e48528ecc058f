//! AMQP 1.0 part 3, messaging: message sections, whole messages, the section scan the broker
//! routes by, and the source and target terminii.

mod lookup;
mod message;
mod scan;
mod sections;
mod terminus;

pub use crate::enums::{TerminusDurability, TerminusExpiryPolicy};
pub use lookup::{FieldRef, PropertyField};
pub use message::{Body, Message};
pub use scan::{BodyKind, ScannedMessage};
pub use sections::{
    AnnotatedPrefix, Header, MessageId, Properties, data_section_size, map_section_size,
    put_data_section, put_map_section, section,
};
pub use terminus::{
    DIST_MODE_COPY, DIST_MODE_MOVE, DeleteOnClose, DeleteOnNoLinks, DeleteOnNoLinksOrMessages,
    DeleteOnNoMessages, LIFETIME_POLICY, LifetimePolicy, SUPPORTED_DIST_MODES, Source, Target,
};
