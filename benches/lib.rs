//! Sample inputs shared by Sluice's criterion benchmarks (`cargo bench -p sluice-benches`).
//!
//! Owns: the messages and frames the benchmarks measure, built once so every bench and its
//! sanity test see the same bytes. Must not depend on anything but the crates it measures.

use bytes::Bytes;
use sluice_codec::Encode;
use sluice_codec::messaging::{Header, Message, MessageId, Properties};
use sluice_codec::transport::{Accepted, DeliveryTag, Disposition, Role, Transfer};

/// A typical 100-byte-body message: durable header, properties with a message id and a `to`
/// address, one data section.
pub fn message_100() -> Bytes {
    let message = Message {
        header: Some(Header {
            durable: true,
            ..Default::default()
        }),
        properties: Some(Properties {
            message_id: Some(MessageId::Ulong(123_456)),
            to: Some("orders/eu".into()),
            ..Default::default()
        }),
        ..Message::with_data(vec![0x5a; 100])
    };
    message.to_bytes().freeze()
}

/// The transfer performative of an unsettled delivery, as a client sends it.
pub fn transfer() -> Transfer {
    Transfer {
        handle: 1,
        delivery_id: Some(4_000_000),
        delivery_tag: Some(DeliveryTag::from_u64(4_000_000)),
        message_format: Some(0),
        settled: Some(false),
        ..Default::default()
    }
}

/// A receiver's disposition accepting and settling a range of deliveries.
pub fn disposition_range() -> Disposition {
    Disposition {
        role: Role::Receiver,
        first: 4_000_000,
        last: Some(4_000_999),
        settled: true,
        state: Some(Accepted {}.into()),
        batchable: false,
    }
}
