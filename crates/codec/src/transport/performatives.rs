//! The nine performatives of part 2 §2.7 and the error type of §2.8.14.

use bytes::BytesMut;

use super::delivery_state::composite_union;
use crate::composite::{Composite, FieldValue, Fields, Map, read_composite_start};
use crate::enums::{ReceiverSettleMode, Role, SenderSettleMode};
use crate::error::{ErrorKind, Result};
use crate::messaging::{Source, Target};
use crate::transactions::Coordinator;
use crate::transport::{DeliveryState, DeliveryTag};
use crate::types::{Decoder, Encode, Str, Symbol};

crate::composite! {
    /// Details of an error (part 2 §2.8.14).
    pub struct Error = ("amqp:error:list", 0x1d) {
        /// A symbolic condition, e.g. `amqp:not-found`.
        condition: Symbol => required,
        /// Human-readable detail.
        description: Str => optional,
        /// Map of further information.
        info: Fields => optional,
    }
}

impl Error {
    /// An error with a condition and a description.
    pub fn new(condition: Symbol, description: impl Into<Str>) -> Self {
        Error {
            condition,
            description: Some(description.into()),
            info: None,
        }
    }
}

crate::composite! {
    /// Negotiate connection parameters (part 2 §2.7.1).
    pub struct Open = ("amqp:open:list", 0x10) {
        /// The id of the source container.
        container_id: Str => required,
        /// The name of the target host.
        hostname: Str => optional,
        /// Proposed maximum frame size.
        max_frame_size: u32 => default(u32::MAX),
        /// The maximum channel number that can be used on the connection.
        channel_max: u16 => default(u16::MAX),
        /// Idle time-out in milliseconds.
        idle_time_out: u32 => optional,
        /// Locales available for outgoing text.
        outgoing_locales: Vec<Symbol> => default(Vec::new()),
        /// Desired locales for incoming text in decreasing level of preference.
        incoming_locales: Vec<Symbol> => default(Vec::new()),
        /// The extension capabilities the sender supports.
        offered_capabilities: Vec<Symbol> => default(Vec::new()),
        /// The extension capabilities the sender can use if the receiver supports them.
        desired_capabilities: Vec<Symbol> => default(Vec::new()),
        /// Connection properties.
        properties: Fields => optional,
    }
}

crate::composite! {
    /// Begin a session on a channel (part 2 §2.7.2).
    pub struct Begin = ("amqp:begin:list", 0x11) {
        /// The remote channel for this session, when answering a begin.
        remote_channel: u16 => optional,
        /// The transfer-id of the first transfer the sender will send.
        next_outgoing_id: u32 => required,
        /// The initial incoming-window of the sender.
        incoming_window: u32 => required,
        /// The initial outgoing-window of the sender.
        outgoing_window: u32 => required,
        /// The maximum handle value that can be used on the session.
        handle_max: u32 => default(u32::MAX),
        /// The extension capabilities the sender supports.
        offered_capabilities: Vec<Symbol> => default(Vec::new()),
        /// The extension capabilities the sender can use if the receiver supports them.
        desired_capabilities: Vec<Symbol> => default(Vec::new()),
        /// Session properties.
        properties: Fields => optional,
    }
}

composite_union! {
    /// The `target` of an attach: a messaging target, or a transaction coordinator (part 4).
    pub enum AttachTarget {
        Target(Target),
        Coordinator(Coordinator),
    } expected "target or coordinator"
}

crate::composite! {
    /// Attach a link to a session (part 2 §2.7.3).
    pub struct Attach = ("amqp:attach:list", 0x12) {
        /// The name of the link.
        name: Str => required,
        /// The handle for the link while attached.
        handle: u32 => required,
        /// Role of the link endpoint.
        role: Role => required,
        /// Settlement policy for the sender.
        snd_settle_mode: SenderSettleMode => default(SenderSettleMode::Mixed),
        /// The settlement policy of the receiver.
        rcv_settle_mode: ReceiverSettleMode => default(ReceiverSettleMode::First),
        /// The source for messages.
        source: Source => optional,
        /// The target for messages.
        target: AttachTarget => optional,
        /// Unsettled delivery state, keyed by delivery tag.
        unsettled: Map => optional,
        /// Whether the unsettled map is incomplete.
        incomplete_unsettled: bool => default(false),
        /// The sender's initial value for delivery-count.
        initial_delivery_count: u32 => optional,
        /// The maximum message size supported by the link endpoint.
        max_message_size: u64 => optional,
        /// The extension capabilities the sender supports.
        offered_capabilities: Vec<Symbol> => default(Vec::new()),
        /// The extension capabilities the sender can use if the receiver supports them.
        desired_capabilities: Vec<Symbol> => default(Vec::new()),
        /// Link properties.
        properties: Fields => optional,
    }
}

crate::composite! {
    /// Update link state (part 2 §2.7.4).
    pub struct Flow = ("amqp:flow:list", 0x13) {
        /// The next transfer-id the sender of this flow expects.
        next_incoming_id: u32 => optional,
        /// The incoming window of the sender of this flow.
        incoming_window: u32 => required,
        /// The next transfer-id the sender of this flow will send.
        next_outgoing_id: u32 => required,
        /// The outgoing window of the sender of this flow.
        outgoing_window: u32 => required,
        /// The link this flow refers to, if any.
        handle: u32 => optional,
        /// The endpoint's delivery-count.
        delivery_count: u32 => optional,
        /// The current maximum number of messages that can be received.
        link_credit: u32 => optional,
        /// The number of available messages.
        available: u32 => optional,
        /// Whether the credit is to be used up or returned.
        drain: bool => default(false),
        /// Request state from the partner.
        echo: bool => default(false),
        /// Link state properties.
        properties: Fields => optional,
    }
}

crate::composite! {
    /// Transfer a message, or a part of one (part 2 §2.7.5).
    pub struct Transfer = ("amqp:transfer:list", 0x14) {
        /// The link.
        handle: u32 => required,
        /// Alias for the delivery-tag (first transfer of a delivery).
        delivery_id: u32 => optional,
        /// The delivery tag (first transfer of a delivery).
        delivery_tag: DeliveryTag => optional,
        /// The message format code.
        message_format: u32 => optional,
        /// Whether the delivery is settled by the sender.
        settled: bool => optional,
        /// More transfers follow for this delivery.
        more: bool => default(false),
        /// Receiver settle mode for this delivery.
        rcv_settle_mode: ReceiverSettleMode => optional,
        /// The state of the delivery at the sender.
        state: DeliveryState => optional,
        /// Whether this resumes a delivery.
        resume: bool => default(false),
        /// Whether the delivery is aborted.
        aborted: bool => default(false),
        /// A hint that the delivery need not be flushed at once.
        batchable: bool => default(false),
    }
}

crate::composite! {
    /// Inform the remote peer of delivery state changes (part 2 §2.7.6).
    pub struct Disposition = ("amqp:disposition:list", 0x15) {
        /// Which end of the link the deliveries belong to.
        role: Role => required,
        /// The lower bound of delivery-ids.
        first: u32 => required,
        /// The upper bound of delivery-ids (inclusive); `first` when absent.
        last: u32 => optional,
        /// Whether the deliveries are settled.
        settled: bool => default(false),
        /// The new delivery state.
        state: DeliveryState => optional,
        /// A hint that the disposition need not be flushed at once.
        batchable: bool => default(false),
    }
}

crate::composite! {
    /// Detach the link endpoint from the session (part 2 §2.7.7).
    pub struct Detach = ("amqp:detach:list", 0x16) {
        /// The link.
        handle: u32 => required,
        /// Whether the link is closed.
        closed: bool => default(false),
        /// Error causing the detach.
        error: Error => optional,
    }
}

crate::composite! {
    /// End the session (part 2 §2.7.8).
    pub struct End = ("amqp:end:list", 0x17) {
        /// Error causing the end.
        error: Error => optional,
    }
}

crate::composite! {
    /// Signal a connection close (part 2 §2.7.9).
    pub struct Close = ("amqp:close:list", 0x18) {
        /// Error causing the close.
        error: Error => optional,
    }
}

/// The body of an AMQP frame.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub enum Performative {
    // Boxed: they are several hundred bytes and rare, while transfers, flows and dispositions
    // are small and on the hot path.
    Open(Box<Open>),
    Begin(Box<Begin>),
    Attach(Box<Attach>),
    Flow(Flow),
    Transfer(Transfer),
    Disposition(Disposition),
    Detach(Detach),
    End(End),
    Close(Close),
}

macro_rules! performative_dispatch {
    (boxed: [$($boxed:ident),*], plain: [$($plain:ident),*]) => {
        performative_dispatch!(@impl $($boxed,)* $($plain),*);
        $( impl From<$boxed> for Performative {
            fn from(p: $boxed) -> Self { Performative::$boxed(Box::new(p)) }
        } )*
        $( impl From<$plain> for Performative {
            fn from(p: $plain) -> Self { Performative::$plain(p) }
        } )*
    };
    (@impl $($variant:ident),*) => {
        impl Performative {
            /// Decodes a performative from the start of `d`.
            pub fn decode(d: &mut Decoder<'_>) -> Result<Self> {
                let Some((code, size, count)) = read_composite_start(d, "performative")? else {
                    return Err(ErrorKind::InvalidValue { field: "performative", reason: "frame body is null" }.into());
                };
                $( if code == <$variant as Composite>::CODE {
                    return $variant::decode_list(d, size, count).map(Performative::from);
                } )*
                Err(ErrorKind::InvalidValue { field: "performative", reason: "not a performative descriptor" }.into())
            }

            /// The performative's name, for logs.
            pub fn name(&self) -> &'static str {
                match self { $( Performative::$variant(_) => <$variant as Composite>::NAME ),* }
            }
        }

        impl Encode for Performative {
            fn encoded_size(&self) -> usize {
                match self { $( Performative::$variant(p) => p.encoded_size() ),* }
            }
            fn encode(&self, out: &mut BytesMut) {
                match self { $( Performative::$variant(p) => p.encode(out) ),* }
            }
        }
    };
}

performative_dispatch!(
    boxed: [Open, Begin, Attach],
    plain: [Flow, Transfer, Disposition, Detach, End, Close]
);

impl FieldValue for Performative {
    fn decode_field(d: &mut Decoder<'_>, _field: &'static str) -> Result<Option<Self>> {
        Performative::decode(d).map(Some)
    }
    fn field_size(&self) -> usize {
        self.encoded_size()
    }
    fn encode_field(&self, out: &mut BytesMut) {
        self.encode(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn roundtrip(p: Performative) -> Vec<u8> {
        let bytes = p.to_bytes();
        assert_eq!(bytes.len(), p.encoded_size());
        let buf = bytes.clone().freeze();
        let mut d = Decoder::new(&buf);
        assert_eq!(Performative::decode(&mut d).as_ref(), Ok(&p));
        assert!(d.is_empty());
        bytes.to_vec()
    }

    #[test]
    fn trailing_defaults_are_trimmed_and_middle_defaults_are_null() {
        let open = Open {
            container_id: "c".into(),
            ..Default::default()
        };
        assert_eq!(
            roundtrip(open.into()),
            [0x00, 0x53, 0x10, 0xc0, 0x04, 0x01, 0xa1, 0x01, b'c']
        );
        let open = Open {
            container_id: "c".into(),
            channel_max: 9,
            ..Default::default()
        };
        assert_eq!(
            roundtrip(open.into()),
            [
                0x00, 0x53, 0x10, 0xc0, 0x09, 0x04, 0xa1, 0x01, b'c', 0x40, 0x40, 0x60, 0x00, 0x09
            ]
        );
        assert_eq!(roundtrip(Close::default().into()), [0x00, 0x53, 0x18, 0x45]);
    }

    #[test]
    fn missing_mandatory_fields_are_named() {
        let buf = Bytes::from_static(&[0x00, 0x53, 0x14, 0x45]);
        let err = Performative::decode(&mut Decoder::new(&buf));
        assert_eq!(err, Err(ErrorKind::MissingField("Transfer.handle").into()));
    }

    #[test]
    fn unknown_trailing_fields_are_skipped() {
        // end with its error field null and two extra fields from a future version.
        let buf = Bytes::from_static(&[0x00, 0x53, 0x17, 0xc0, 0x05, 0x03, 0x40, 0x52, 0x01, 0x40]);
        assert_eq!(
            Performative::decode(&mut Decoder::new(&buf)),
            Ok(End::default().into())
        );
    }

    #[test]
    fn every_performative_roundtrips_with_fields_set() {
        let error = Some(Error::new(
            crate::transport::conditions::NOT_FOUND,
            "no such address",
        ));
        roundtrip(
            Attach {
                name: "link".into(),
                handle: 3,
                role: Role::Receiver,
                snd_settle_mode: SenderSettleMode::Settled,
                source: Some(Source {
                    address: Some("q".into()),
                    ..Default::default()
                }),
                target: Some(AttachTarget::Target(Target::default())),
                max_message_size: Some(1 << 20),
                offered_capabilities: vec![Symbol::from_static("a"), Symbol::from_static("b")],
                ..Default::default()
            }
            .into(),
        );
        roundtrip(
            Flow {
                incoming_window: 10,
                next_outgoing_id: 1,
                outgoing_window: 5,
                handle: Some(0),
                link_credit: Some(100),
                drain: true,
                ..Default::default()
            }
            .into(),
        );
        roundtrip(
            Transfer {
                handle: 0,
                delivery_id: Some(7),
                delivery_tag: DeliveryTag::new(b"t"),
                message_format: Some(0),
                settled: Some(false),
                more: true,
                ..Default::default()
            }
            .into(),
        );
        roundtrip(
            Disposition {
                role: Role::Receiver,
                first: 1,
                last: Some(9),
                settled: true,
                state: Some(crate::transport::Accepted {}.into()),
                ..Default::default()
            }
            .into(),
        );
        roundtrip(
            Detach {
                handle: 1,
                closed: true,
                error: error.clone(),
            }
            .into(),
        );
        roundtrip(
            End {
                error: error.clone(),
            }
            .into(),
        );
        roundtrip(
            Begin {
                remote_channel: Some(0),
                next_outgoing_id: 1,
                incoming_window: 2048,
                outgoing_window: 2048,
                ..Default::default()
            }
            .into(),
        );
        roundtrip(Close { error }.into());
    }
}
