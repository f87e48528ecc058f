//! Selector identifiers and the message fields they name, as Qpid JMS and Artemis map the JMS
//! header names onto an AMQP message.

use sluice_codec::messaging::{FieldRef, PropertyField, ScannedMessage};

/// A header field of the message a selector can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderField {
    /// `header.priority` (4 when absent).
    Priority,
    /// `header.durable`, as `'PERSISTENT'` or `'NON_PERSISTENT'`.
    DeliveryMode,
    /// `header.delivery-count` + 1 (JMSXDeliveryCount counts the first delivery as 1).
    DeliveryCount,
}

/// What a selector identifier reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ident {
    /// A header field.
    Header(HeaderField),
    /// A properties-section field.
    Property(PropertyField),
    /// An application property of this name.
    Application(String),
}

impl Ident {
    /// Maps an identifier (case-sensitive) to the field it reads.
    pub(crate) fn resolve(name: String) -> Self {
        use PropertyField as P;
        let property = match name.as_str() {
            "JMSPriority" => return Ident::Header(HeaderField::Priority),
            "JMSDeliveryMode" => return Ident::Header(HeaderField::DeliveryMode),
            "JMSXDeliveryCount" => return Ident::Header(HeaderField::DeliveryCount),
            "JMSMessageID" => P::MessageId,
            "JMSCorrelationID" => P::CorrelationId,
            "JMSTimestamp" => P::CreationTime,
            "JMSExpiration" => P::AbsoluteExpiryTime,
            "JMSType" => P::Subject,
            "JMSDestination" => P::To,
            "JMSReplyTo" => P::ReplyTo,
            "JMSXGroupID" => P::GroupId,
            "JMSXGroupSeq" => P::GroupSequence,
            "JMSXUserID" => P::UserId,
            _ => return Ident::Application(name),
        };
        Ident::Property(property)
    }
}

/// The fields of a message a selector reads: implemented by [`ScannedMessage`], and by plain
/// maps in tests.
pub trait Fields {
    /// `header.priority`, 4 when there is no header.
    fn priority(&self) -> u8;
    /// `header.durable`, false when there is no header.
    fn durable(&self) -> bool;
    /// `header.delivery-count`, 0 when there is no header.
    fn delivery_count(&self) -> u32;
    /// A properties-section field; `None` when absent.
    fn property(&self, which: PropertyField) -> Option<FieldRef<'_>>;
    /// An application property; `None` when absent.
    fn application_property(&self, name: &str) -> Option<FieldRef<'_>>;
}

impl Fields for ScannedMessage {
    fn priority(&self) -> u8 {
        self.header.as_ref().map_or(4, |h| h.priority)
    }

    fn durable(&self) -> bool {
        self.header.as_ref().is_some_and(|h| h.durable)
    }

    fn delivery_count(&self) -> u32 {
        self.header.as_ref().map_or(0, |h| h.delivery_count)
    }

    fn property(&self, which: PropertyField) -> Option<FieldRef<'_>> {
        self.property_field(which)
    }

    fn application_property(&self, name: &str) -> Option<FieldRef<'_>> {
        ScannedMessage::application_property(self, name)
    }
}
