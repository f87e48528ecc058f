//! Proptest strategies for every type the codec encodes: values, composites, performatives,
//! SASL frames, transaction composites, message sections and whole messages.
//!
//! Everything generated is something the spec allows and the codec can represent exactly once,
//! so that encode-then-decode must give it back. The one exclusion is `Some(Value::Null)` in an
//! optional `*` field (`declare.global-id`): null on the wire *is* absence, so that value has no
//! encoding of its own.

use bytes::Bytes;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;
use sluice_codec::SaslCode;
use sluice_codec::composite::{Fields, Map};
use sluice_codec::messaging::{
    Body, Header, LIFETIME_POLICY, LifetimePolicy, Message, MessageId, Properties, Source, Target,
    TerminusDurability, TerminusExpiryPolicy,
};
use sluice_codec::security::{
    SaslChallenge, SaslFrame, SaslInit, SaslMechanisms, SaslOutcome, SaslResponse,
};
use sluice_codec::transactions::{Coordinator, Declare, Declared, Discharge, TransactionalState};
use sluice_codec::transport::{
    Accepted, Attach, AttachTarget, Begin, Close, DeliveryState, DeliveryTag, Detach, Disposition,
    End, Error, Flow, Modified, Open, Outcome, Performative, Received, ReceiverSettleMode,
    Rejected, Released, Role, SenderSettleMode, Transfer,
};
use sluice_codec::types::{Array, Described, ElementType, Str, Symbol, Timestamp, Uuid, Value};

/// Every strategy here is boxed: the types nest deeply and the names would be unreadable.
pub(crate) type S<T> = BoxedStrategy<T>;

// ---------------------------------------------------------------------------------------------
// Numbers: uniformly random values, plus the edges where encodings change width.
// ---------------------------------------------------------------------------------------------

macro_rules! edgy {
    ($name:ident, $t:ty, [$($edge:expr),* $(,)?]) => {
        /// Any value of the type, often one of its encoding edges.
        pub(crate) fn $name() -> S<$t> {
            const EDGES: &[$t] = &[$($edge),*];
            prop_oneof![3 => any::<$t>(), 2 => select(EDGES)].boxed()
        }
    };
}

edgy!(u8s, u8, [0, 1, 127, 128, 254, u8::MAX]);
edgy!(u16s, u16, [0, 1, 255, 256, u16::MAX - 1, u16::MAX]);
edgy!(u32s, u32, [0, 1, 255, 256, u32::MAX - 1, u32::MAX]);
edgy!(
    u64s,
    u64,
    [
        0,
        1,
        255,
        256,
        u32::MAX as u64,
        u32::MAX as u64 + 1,
        u64::MAX
    ]
);
edgy!(i8s, i8, [0, 1, -1, i8::MIN, i8::MAX]);
edgy!(i16s, i16, [0, -1, -128, -129, 127, 128, i16::MIN, i16::MAX]);
edgy!(i32s, i32, [0, -1, -128, -129, 127, 128, i32::MIN, i32::MAX]);
edgy!(
    i64s,
    i64,
    [
        0,
        -1,
        -128,
        -129,
        127,
        128,
        i32::MIN as i64,
        i32::MAX as i64 + 1,
        i64::MIN,
        i64::MAX
    ]
);

/// Any `f32` bit pattern, often an edge: zeroes, infinities, subnormals and NaNs with various
/// payloads (quiet, signalling, negative). Values compare floats by bits, so NaN must roundtrip.
pub(crate) fn f32s() -> S<f32> {
    const EDGES: &[u32] = &[
        0x0000_0000, // 0.0
        0x8000_0000, // -0.0
        0x0000_0001, // smallest subnormal
        0x0080_0000, // MIN_POSITIVE
        0x7f7f_ffff, // MAX
        0x7f80_0000, // inf
        0xff80_0000, // -inf
        0x7fc0_0000, // canonical quiet NaN
        0xffc0_0000, // negative quiet NaN
        0x7f80_0001, // signalling NaN
        0x7fc0_1234, // quiet NaN with payload
    ];
    prop_oneof![3 => any::<u32>(), 2 => select(EDGES)]
        .prop_map(f32::from_bits)
        .boxed()
}

/// Any `f64` bit pattern, often an edge (see [`f32s`]).
pub(crate) fn f64s() -> S<f64> {
    const EDGES: &[u64] = &[
        0x0000_0000_0000_0000,
        0x8000_0000_0000_0000,
        0x0000_0000_0000_0001,
        0x0010_0000_0000_0000,
        0x7fef_ffff_ffff_ffff,
        0x7ff0_0000_0000_0000,
        0xfff0_0000_0000_0000,
        0x7ff8_0000_0000_0000,
        0xfff8_0000_0000_0000,
        0x7ff0_0000_0000_0001,
        0x7ff8_dead_beef_0001,
    ];
    prop_oneof![3 => any::<u64>(), 2 => select(EDGES)]
        .prop_map(f64::from_bits)
        .boxed()
}

// ---------------------------------------------------------------------------------------------
// Variable-width primitives: usually short, sometimes past the 255-byte switch to the 32-bit
// forms.
// ---------------------------------------------------------------------------------------------

/// An ASCII symbol, any of the 128 code points, sometimes longer than 255 bytes.
pub(crate) fn symbol() -> S<Symbol> {
    prop_oneof![
        12 => vec(0u8..=127, 0..12),
        1 => vec(0u8..=127, 250..270),
    ]
    .prop_map(|b| Symbol::from_ascii(Bytes::from(b)).expect("ASCII"))
    .boxed()
}

/// A UTF-8 string of any scalar values, sometimes past 255 bytes.
pub(crate) fn string() -> S<Str> {
    prop_oneof![
        10 => vec(any::<char>(), 0..12).prop_map(String::from_iter),
        1 => vec(any::<char>(), 64..160).prop_map(String::from_iter),
        // Right at the 8/32-bit boundary: 255 bytes is str8, 256 is str32.
        1 => (250usize..262).prop_map(|n| "s".repeat(n)),
    ]
    .prop_map(Str::from)
    .boxed()
}

/// Binary data, sometimes past 255 bytes.
pub(crate) fn binary() -> S<Bytes> {
    prop_oneof![
        12 => vec(any::<u8>(), 0..24),
        1 => vec(any::<u8>(), 250..300),
    ]
    .prop_map(Bytes::from)
    .boxed()
}

/// A short binary, e.g. for delivery tags and transaction ids.
pub(crate) fn short_binary() -> S<Bytes> {
    vec(any::<u8>(), 0..33).prop_map(Bytes::from).boxed()
}

// ---------------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------------

/// Every element type that is not a compound.
pub(crate) const PRIMITIVE_TYPES: &[ElementType] = &[
    ElementType::Null,
    ElementType::Boolean,
    ElementType::Ubyte,
    ElementType::Ushort,
    ElementType::Uint,
    ElementType::Ulong,
    ElementType::Byte,
    ElementType::Short,
    ElementType::Int,
    ElementType::Long,
    ElementType::Float,
    ElementType::Double,
    ElementType::Decimal32,
    ElementType::Decimal64,
    ElementType::Decimal128,
    ElementType::Char,
    ElementType::Timestamp,
    ElementType::Uuid,
    ElementType::Binary,
    ElementType::String,
    ElementType::Symbol,
];

/// A primitive value of element type `t` (one of [`PRIMITIVE_TYPES`]).
pub(crate) fn primitive_of(t: ElementType) -> S<Value> {
    use ElementType as T;
    match t {
        T::Null => Just(Value::Null).boxed(),
        T::Boolean => any::<bool>().prop_map(Value::Boolean).boxed(),
        T::Ubyte => u8s().prop_map(Value::Ubyte).boxed(),
        T::Ushort => u16s().prop_map(Value::Ushort).boxed(),
        T::Uint => u32s().prop_map(Value::Uint).boxed(),
        T::Ulong => u64s().prop_map(Value::Ulong).boxed(),
        T::Byte => i8s().prop_map(Value::Byte).boxed(),
        T::Short => i16s().prop_map(Value::Short).boxed(),
        T::Int => i32s().prop_map(Value::Int).boxed(),
        T::Long => i64s().prop_map(Value::Long).boxed(),
        T::Float => f32s().prop_map(Value::Float).boxed(),
        T::Double => f64s().prop_map(Value::Double).boxed(),
        T::Decimal32 => any::<[u8; 4]>().prop_map(Value::Decimal32).boxed(),
        T::Decimal64 => any::<[u8; 8]>().prop_map(Value::Decimal64).boxed(),
        T::Decimal128 => any::<[u8; 16]>().prop_map(Value::Decimal128).boxed(),
        T::Char => any::<char>().prop_map(Value::Char).boxed(),
        T::Timestamp => i64s().prop_map(|t| Value::Timestamp(Timestamp(t))).boxed(),
        T::Uuid => any::<[u8; 16]>().prop_map(|u| Value::Uuid(Uuid(u))).boxed(),
        T::Binary => binary().prop_map(Value::Binary).boxed(),
        T::String => string().prop_map(Value::String).boxed(),
        T::Symbol => symbol().prop_map(Value::Symbol).boxed(),
        T::List | T::Map | T::Array => unreachable!("{t:?} is a compound type"),
    }
}

/// Any primitive value.
pub(crate) fn primitive() -> S<Value> {
    select(PRIMITIVE_TYPES).prop_flat_map(primitive_of).boxed()
}

/// A descriptor as the spec allows them: a ulong code or a symbolic name.
pub(crate) fn descriptor() -> S<Value> {
    prop_oneof![
        u64s().prop_map(Value::Ulong),
        symbol().prop_map(Value::Symbol)
    ]
    .boxed()
}

fn make_array(descriptor: Option<Value>, t: ElementType, items: Vec<Value>) -> Value {
    let array = match descriptor {
        None => Array::new(t, items),
        Some(d) => Array::described(d, t, items),
    };
    Value::Array(array.expect("homogeneous by construction"))
}

/// An array of one primitive element type, sometimes described, sometimes empty, sometimes of
/// more than 255 elements.
pub(crate) fn primitive_array() -> S<Value> {
    (select(PRIMITIVE_TYPES), option::weighted(0.2, descriptor()))
        .prop_flat_map(|(t, d)| {
            prop_oneof![
                16 => vec(primitive_of(t), 0..8),
                1 => vec(primitive_of(t), 256..260),
            ]
            .prop_map(move |items| make_array(d.clone(), t, items))
        })
        .boxed()
}

/// An array of lists of `inner`.
fn array_of_lists(inner: S<Value>) -> S<Value> {
    (
        vec(vec(inner, 0..4).prop_map(Value::List), 0..4),
        option::weighted(0.2, descriptor()),
    )
        .prop_map(|(items, d)| make_array(d, ElementType::List, items))
        .boxed()
}

/// An array of maps of `inner`.
fn array_of_maps(inner: S<Value>) -> S<Value> {
    (
        vec(vec((inner.clone(), inner), 0..3).prop_map(Value::Map), 0..4),
        option::weighted(0.2, descriptor()),
    )
        .prop_map(|(items, d)| make_array(d, ElementType::Map, items))
        .boxed()
}

/// An array of arrays, whose element arrays may each have a different element type.
fn array_of_arrays(inner: S<Value>) -> S<Value> {
    let element = prop_oneof![
        3 => primitive_array(),
        1 => array_of_lists(inner.clone()),
        1 => array_of_maps(inner),
    ];
    (vec(element, 0..4), option::weighted(0.2, descriptor()))
        .prop_map(|(items, d)| make_array(d, ElementType::Array, items))
        .boxed()
}

/// A list or map with more than 255 elements (the count alone forces the 32-bit form).
fn long_compound() -> S<Value> {
    let small = prop_oneof![Just(Value::Null), u8s().prop_map(Value::Ubyte)];
    prop_oneof![
        vec(small.clone(), 256..260).prop_map(Value::List),
        vec((small.clone(), small), 128..132).prop_map(Value::Map),
    ]
    .boxed()
}

/// A list, map or array whose contents take 248 to 258 bytes: either side of the switch from
/// the 8-bit compound forms (size byte covering count and contents, so at most 254 bytes of
/// contents) to the 32-bit ones.
fn boundary_compound() -> S<Value> {
    (248usize..=258, 0u8..4)
        .prop_map(|(n, kind)| match kind {
            0 => Value::List(vec![Value::Binary(Bytes::from(vec![7; n - 2]))]),
            1 => Value::Map(vec![(
                Value::Null,
                Value::Binary(Bytes::from(vec![7; n - 3])),
            )]),
            2 => make_array(None, ElementType::Ubyte, vec![Value::Ubyte(7); n - 1]),
            _ => Value::List(vec![Value::Null; n]),
        })
        .boxed()
}

fn value_tree(depth: u32, size: u32, branch: u32) -> S<Value> {
    let leaf = prop_oneof![
        24 => primitive(),
        4 => primitive_array(),
        1 => long_compound(),
        1 => boundary_compound(),
    ];
    leaf.prop_recursive(depth, size, branch, |inner| {
        prop_oneof![
            3 => vec(inner.clone(), 0..6).prop_map(Value::List),
            3 => vec((inner.clone(), inner.clone()), 0..4).prop_map(Value::Map),
            2 => (descriptor(), inner.clone()).prop_map(|(descriptor, value)| {
                Value::Described(Box::new(Described { descriptor, value }))
            }),
            1 => array_of_lists(inner.clone()),
            1 => array_of_maps(inner.clone()),
            1 => array_of_arrays(inner),
        ]
    })
    .boxed()
}

/// Any value: a tree up to 4 levels deep of every primitive and compound.
pub(crate) fn value() -> S<Value> {
    value_tree(4, 48, 6)
}

/// A smaller value, for the `*` fields and maps inside composites.
pub(crate) fn small_value() -> S<Value> {
    value_tree(2, 12, 4)
}

/// A value that is not null (an optional `*` field that is present).
pub(crate) fn non_null_value() -> S<Value> {
    small_value()
        .prop_filter("null is an absent field", |v| *v != Value::Null)
        .boxed()
}

// ---------------------------------------------------------------------------------------------
// Field types shared by composites
// ---------------------------------------------------------------------------------------------

fn opt<T: std::fmt::Debug + Clone + 'static>(s: S<T>) -> S<Option<T>> {
    option::of(s).boxed()
}

/// A `multiple` symbol field: none, one (encoded bare) or several (an array).
pub(crate) fn symbols() -> S<Vec<Symbol>> {
    prop_oneof![Just(Vec::new()), vec(symbol(), 1..2), vec(symbol(), 2..5),].boxed()
}

/// A symbol-keyed `fields` map.
pub(crate) fn fields() -> S<Fields> {
    vec((symbol(), small_value()), 0..4).boxed()
}

/// A map with keys of any type.
pub(crate) fn map() -> S<Map> {
    vec((small_value(), small_value()), 0..4).boxed()
}

// ---------------------------------------------------------------------------------------------
// Transport: errors, delivery states, performatives
// ---------------------------------------------------------------------------------------------

/// An error with optional description and info.
pub(crate) fn error() -> S<Error> {
    (symbol(), opt(string()), opt(fields()))
        .prop_map(|(condition, description, info)| Error {
            condition,
            description,
            info,
        })
        .boxed()
}

pub(crate) fn role() -> S<Role> {
    select(&[Role::Sender, Role::Receiver][..]).boxed()
}

pub(crate) fn snd_settle_mode() -> S<SenderSettleMode> {
    select(
        &[
            SenderSettleMode::Unsettled,
            SenderSettleMode::Settled,
            SenderSettleMode::Mixed,
        ][..],
    )
    .boxed()
}

pub(crate) fn rcv_settle_mode() -> S<ReceiverSettleMode> {
    select(&[ReceiverSettleMode::First, ReceiverSettleMode::Second][..]).boxed()
}

pub(crate) fn received() -> S<Received> {
    (u32s(), u64s())
        .prop_map(|(section_number, section_offset)| Received {
            section_number,
            section_offset,
        })
        .boxed()
}

pub(crate) fn rejected() -> S<Rejected> {
    opt(error())
        .prop_map(|error| Rejected {
            error: error.map(Into::into),
        })
        .boxed()
}

pub(crate) fn modified() -> S<Modified> {
    (any::<bool>(), any::<bool>(), opt(fields()))
        .prop_map(
            |(delivery_failed, undeliverable_here, message_annotations)| Modified {
                delivery_failed,
                undeliverable_here,
                message_annotations,
            },
        )
        .boxed()
}

pub(crate) fn declared() -> S<Declared> {
    short_binary()
        .prop_map(|txn_id| Declared { txn_id })
        .boxed()
}

/// Every outcome.
pub(crate) fn outcome() -> S<Outcome> {
    prop_oneof![
        Just(Outcome::Accepted(Accepted {})),
        rejected().prop_map(Outcome::Rejected),
        Just(Outcome::Released(Released {})),
        modified().prop_map(Outcome::Modified),
        declared().prop_map(Outcome::Declared),
    ]
    .boxed()
}

pub(crate) fn transactional_state() -> S<TransactionalState> {
    (short_binary(), opt(outcome()))
        .prop_map(|(txn_id, outcome)| TransactionalState {
            txn_id,
            outcome: outcome.map(Into::into),
        })
        .boxed()
}

/// Every delivery state.
pub(crate) fn delivery_state() -> S<DeliveryState> {
    prop_oneof![
        received().prop_map(DeliveryState::Received),
        Just(DeliveryState::Accepted(Accepted {})),
        rejected().prop_map(DeliveryState::Rejected),
        Just(DeliveryState::Released(Released {})),
        modified().prop_map(DeliveryState::Modified),
        declared().prop_map(DeliveryState::Declared),
        transactional_state().prop_map(DeliveryState::TransactionalState),
    ]
    .boxed()
}

pub(crate) fn durability() -> S<TerminusDurability> {
    select(
        &[
            TerminusDurability::None,
            TerminusDurability::Configuration,
            TerminusDurability::UnsettledState,
        ][..],
    )
    .boxed()
}

pub(crate) fn expiry_policy() -> S<TerminusExpiryPolicy> {
    select(
        &[
            TerminusExpiryPolicy::LinkDetach,
            TerminusExpiryPolicy::SessionEnd,
            TerminusExpiryPolicy::ConnectionClose,
            TerminusExpiryPolicy::Never,
        ][..],
    )
    .boxed()
}

/// Dynamic node properties: arbitrary fields, or a lifetime policy as brokers send them.
fn node_properties() -> S<Fields> {
    let policy = select(
        &[
            LifetimePolicy::DeleteOnClose,
            LifetimePolicy::DeleteOnNoLinks,
            LifetimePolicy::DeleteOnNoMessages,
            LifetimePolicy::DeleteOnNoLinksOrMessages,
        ][..],
    );
    prop_oneof![
        fields(),
        policy.prop_map(|p| vec![(LIFETIME_POLICY, p.to_value())]),
    ]
    .boxed()
}

/// A filter set: each filter a described value, or null.
fn filter_set() -> S<Fields> {
    let filter = prop_oneof![
        1 => Just(Value::Null),
        3 => (descriptor(), small_value()).prop_map(|(descriptor, value)| {
            Value::Described(Box::new(Described { descriptor, value }))
        }),
    ];
    vec((symbol(), filter), 0..3).boxed()
}

/// A source with every field.
pub(crate) fn source() -> S<Source> {
    (
        opt(string()),
        durability(),
        expiry_policy(),
        u32s(),
        any::<bool>(),
        opt(node_properties()),
        opt(symbol()),
        opt(filter_set()),
        opt(outcome()),
        symbols(),
        symbols(),
    )
        .prop_map(
            |(
                address,
                durable,
                expiry_policy,
                timeout,
                dynamic,
                dynamic_node_properties,
                distribution_mode,
                filter,
                default_outcome,
                outcomes,
                capabilities,
            )| Source {
                address,
                durable,
                expiry_policy,
                timeout,
                dynamic,
                dynamic_node_properties,
                distribution_mode,
                filter,
                default_outcome,
                outcomes,
                capabilities,
            },
        )
        .boxed()
}

/// A target with every field.
pub(crate) fn target() -> S<Target> {
    (
        opt(string()),
        durability(),
        expiry_policy(),
        u32s(),
        any::<bool>(),
        opt(node_properties()),
        symbols(),
    )
        .prop_map(
            |(
                address,
                durable,
                expiry_policy,
                timeout,
                dynamic,
                dynamic_node_properties,
                capabilities,
            )| {
                Target {
                    address,
                    durable,
                    expiry_policy,
                    timeout,
                    dynamic,
                    dynamic_node_properties,
                    capabilities,
                }
            },
        )
        .boxed()
}

pub(crate) fn coordinator() -> S<Coordinator> {
    symbols()
        .prop_map(|capabilities| Coordinator { capabilities })
        .boxed()
}

/// A messaging target or a transaction coordinator.
pub(crate) fn attach_target() -> S<AttachTarget> {
    prop_oneof![
        3 => target().prop_map(AttachTarget::Target),
        1 => coordinator().prop_map(AttachTarget::Coordinator),
    ]
    .boxed()
}

pub(crate) fn open() -> S<Open> {
    (
        string(),
        opt(string()),
        u32s(),
        u16s(),
        opt(u32s()),
        symbols(),
        symbols(),
        symbols(),
        symbols(),
        opt(fields()),
    )
        .prop_map(
            |(
                container_id,
                hostname,
                max_frame_size,
                channel_max,
                idle_time_out,
                outgoing_locales,
                incoming_locales,
                offered_capabilities,
                desired_capabilities,
                properties,
            )| Open {
                container_id,
                hostname,
                max_frame_size,
                channel_max,
                idle_time_out,
                outgoing_locales,
                incoming_locales,
                offered_capabilities,
                desired_capabilities,
                properties,
            },
        )
        .boxed()
}

pub(crate) fn begin() -> S<Begin> {
    (
        opt(u16s()),
        u32s(),
        u32s(),
        u32s(),
        u32s(),
        symbols(),
        symbols(),
        opt(fields()),
    )
        .prop_map(
            |(
                remote_channel,
                next_outgoing_id,
                incoming_window,
                outgoing_window,
                handle_max,
                offered_capabilities,
                desired_capabilities,
                properties,
            )| Begin {
                remote_channel,
                next_outgoing_id,
                incoming_window,
                outgoing_window,
                handle_max,
                offered_capabilities,
                desired_capabilities,
                properties,
            },
        )
        .boxed()
}

pub(crate) fn attach() -> S<Attach> {
    (
        (
            string(),
            u32s(),
            role(),
            snd_settle_mode(),
            rcv_settle_mode(),
            opt(source()),
            opt(attach_target()),
        ),
        (
            opt(map()),
            any::<bool>(),
            opt(u32s()),
            opt(u64s()),
            symbols(),
            symbols(),
            opt(fields()),
        ),
    )
        .prop_map(
            |(
                (name, handle, role, snd_settle_mode, rcv_settle_mode, source, target),
                (
                    unsettled,
                    incomplete_unsettled,
                    initial_delivery_count,
                    max_message_size,
                    offered_capabilities,
                    desired_capabilities,
                    properties,
                ),
            )| Attach {
                name,
                handle,
                role,
                snd_settle_mode,
                rcv_settle_mode,
                source,
                target,
                unsettled,
                incomplete_unsettled,
                initial_delivery_count,
                max_message_size,
                offered_capabilities,
                desired_capabilities,
                properties,
            },
        )
        .boxed()
}

pub(crate) fn flow() -> S<Flow> {
    (
        opt(u32s()),
        u32s(),
        u32s(),
        u32s(),
        opt(u32s()),
        opt(u32s()),
        opt(u32s()),
        opt(u32s()),
        any::<bool>(),
        any::<bool>(),
        opt(fields()),
    )
        .prop_map(
            |(
                next_incoming_id,
                incoming_window,
                next_outgoing_id,
                outgoing_window,
                handle,
                delivery_count,
                link_credit,
                available,
                drain,
                echo,
                properties,
            )| Flow {
                next_incoming_id,
                incoming_window,
                next_outgoing_id,
                outgoing_window,
                handle,
                delivery_count,
                link_credit,
                available,
                drain,
                echo,
                properties,
            },
        )
        .boxed()
}

/// A delivery tag of 0 to 32 bytes (the spec's limit).
pub(crate) fn delivery_tag() -> S<DeliveryTag> {
    proptest::collection::vec(any::<u8>(), 0..=DeliveryTag::LEN_MAX)
        .prop_map(|b| DeliveryTag::new(&b).expect("at most 32 bytes"))
        .boxed()
}

pub(crate) fn transfer() -> S<Transfer> {
    (
        u32s(),
        opt(u32s()),
        opt(delivery_tag()),
        opt(u32s()),
        opt(any::<bool>().boxed()),
        any::<bool>(),
        opt(rcv_settle_mode()),
        opt(delivery_state()),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(
                handle,
                delivery_id,
                delivery_tag,
                message_format,
                settled,
                more,
                rcv_settle_mode,
                state,
                resume,
                aborted,
                batchable,
            )| Transfer {
                handle,
                delivery_id,
                delivery_tag,
                message_format,
                settled,
                more,
                rcv_settle_mode,
                state,
                resume,
                aborted,
                batchable,
            },
        )
        .boxed()
}

pub(crate) fn disposition() -> S<Disposition> {
    (
        role(),
        u32s(),
        opt(u32s()),
        any::<bool>(),
        opt(delivery_state()),
        any::<bool>(),
    )
        .prop_map(
            |(role, first, last, settled, state, batchable)| Disposition {
                role,
                first,
                last,
                settled,
                state,
                batchable,
            },
        )
        .boxed()
}

pub(crate) fn detach() -> S<Detach> {
    (u32s(), any::<bool>(), opt(error()))
        .prop_map(|(handle, closed, error)| Detach {
            handle,
            closed,
            error,
        })
        .boxed()
}

pub(crate) fn end() -> S<End> {
    opt(error()).prop_map(|error| End { error }).boxed()
}

pub(crate) fn close() -> S<Close> {
    opt(error()).prop_map(|error| Close { error }).boxed()
}

/// Any of the nine performatives.
pub(crate) fn performative() -> S<Performative> {
    prop_oneof![
        open().prop_map(Performative::from),
        begin().prop_map(Performative::from),
        attach().prop_map(Performative::from),
        flow().prop_map(Performative::from),
        transfer().prop_map(Performative::from),
        disposition().prop_map(Performative::from),
        detach().prop_map(Performative::from),
        end().prop_map(Performative::from),
        close().prop_map(Performative::from),
    ]
    .boxed()
}

// ---------------------------------------------------------------------------------------------
// SASL and transactions
// ---------------------------------------------------------------------------------------------

pub(crate) fn sasl_code() -> S<SaslCode> {
    select(
        &[
            SaslCode::Ok,
            SaslCode::Auth,
            SaslCode::Sys,
            SaslCode::SysPerm,
            SaslCode::SysTemp,
        ][..],
    )
    .boxed()
}

/// Any of the five SASL frames.
pub(crate) fn sasl_frame() -> S<SaslFrame> {
    prop_oneof![
        // Mandatory and multiple: at least one mechanism (part 1 §1.3).
        vec(symbol(), 1..5).prop_map(|sasl_server_mechanisms| SaslFrame::Mechanisms(
            SaslMechanisms {
                sasl_server_mechanisms
            }
        )),
        (symbol(), opt(binary()), opt(string())).prop_map(
            |(mechanism, initial_response, hostname)| SaslFrame::Init(SaslInit {
                mechanism,
                initial_response,
                hostname,
            })
        ),
        binary().prop_map(|challenge| SaslFrame::Challenge(SaslChallenge { challenge })),
        binary().prop_map(|response| SaslFrame::Response(SaslResponse { response })),
        (sasl_code(), opt(binary())).prop_map(|(code, additional_data)| SaslFrame::Outcome(
            SaslOutcome {
                code,
                additional_data
            }
        )),
    ]
    .boxed()
}

pub(crate) fn declare() -> S<Declare> {
    opt(non_null_value())
        .prop_map(|global_id| Declare { global_id })
        .boxed()
}

pub(crate) fn discharge() -> S<Discharge> {
    (short_binary(), opt(any::<bool>().boxed()))
        .prop_map(|(txn_id, fail)| Discharge { txn_id, fail })
        .boxed()
}

// ---------------------------------------------------------------------------------------------
// Messaging
// ---------------------------------------------------------------------------------------------

pub(crate) fn header() -> S<Header> {
    (any::<bool>(), u8s(), opt(u32s()), any::<bool>(), u32s())
        .prop_map(
            |(durable, priority, ttl, first_acquirer, delivery_count)| Header {
                durable,
                priority,
                ttl,
                first_acquirer,
                delivery_count,
            },
        )
        .boxed()
}

/// Every kind of message id.
pub(crate) fn message_id() -> S<MessageId> {
    prop_oneof![
        u64s().prop_map(MessageId::Ulong),
        any::<[u8; 16]>().prop_map(|u| MessageId::Uuid(Uuid(u))),
        binary().prop_map(MessageId::Binary),
        string().prop_map(MessageId::String),
    ]
    .boxed()
}

fn timestamp() -> S<Timestamp> {
    i64s().prop_map(Timestamp).boxed()
}

pub(crate) fn properties() -> S<Properties> {
    (
        (
            opt(message_id()),
            opt(short_binary()),
            opt(string()),
            opt(string()),
            opt(string()),
            opt(message_id()),
            opt(symbol()),
        ),
        (
            opt(symbol()),
            opt(timestamp()),
            opt(timestamp()),
            opt(string()),
            opt(u32s()),
            opt(string()),
        ),
    )
        .prop_map(
            |(
                (message_id, user_id, to, subject, reply_to, correlation_id, content_type),
                (
                    content_encoding,
                    absolute_expiry_time,
                    creation_time,
                    group_id,
                    group_sequence,
                    reply_to_group_id,
                ),
            )| Properties {
                message_id,
                user_id,
                to,
                subject,
                reply_to,
                correlation_id,
                content_type,
                content_encoding,
                absolute_expiry_time,
                creation_time,
                group_id,
                group_sequence,
                reply_to_group_id,
            },
        )
        .boxed()
}

/// Every kind of body.
pub(crate) fn body() -> S<Body> {
    prop_oneof![
        1 => Just(Body::Empty),
        2 => vec(binary(), 1..4).prop_map(Body::Data),
        2 => vec(vec(small_value(), 0..4), 1..4).prop_map(Body::Sequence),
        2 => value().prop_map(Body::Value),
    ]
    .boxed()
}

/// A message with any combination of sections.
pub(crate) fn message() -> S<Message> {
    (
        opt(header()),
        opt(map()),
        opt(map()),
        opt(properties()),
        opt(map()),
        body(),
        opt(map()),
    )
        .prop_map(
            |(
                header,
                delivery_annotations,
                message_annotations,
                properties,
                application_properties,
                body,
                footer,
            )| Message {
                header,
                delivery_annotations,
                message_annotations,
                properties,
                application_properties,
                body,
                footer,
            },
        )
        .boxed()
}
