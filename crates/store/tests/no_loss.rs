//! Property: whatever enqueues, credit, deliveries, outcomes, consumer removals and expiry scans
//! happen, no message is lost or duplicated. Every enqueued message is in exactly one of:
//! accepted, forwarded (dead-lettered or expired), dropped, still queued, in flight; and a
//! message is never in flight to two consumers at once. With priorities, message groups,
//! filtered consumers, browsers, redelivery delays and scheduled messages in the mix, and a
//! group's messages leave in order: none is handed out while an older one of its group waits.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bytes::Bytes;
use proptest::prelude::*;
use sluice_codec::Encode;
use sluice_codec::messaging::{Body, Header, Message, Properties, ScannedMessage};
use sluice_codec::types::{Str, Symbol, Value};
use sluice_store::{
    ConsumerId, ConsumerOptions, ForwardReason, MessageFilter, MessageId, Outcome, Queue,
    QueuePolicy,
};

#[derive(Debug, Clone)]
enum Op {
    Enqueue {
        ttl_ms: Option<u32>,
        priority: u8,
        group: Option<u8>,
        delay_ms: Option<u8>,
    },
    Credit {
        consumer: u8,
        credit: u32,
    },
    Deliver {
        advance_ms: u16,
    },
    Settle {
        pick: usize,
        outcome: Outcome,
    },
    AddConsumer {
        filter: Option<bool>,
        browse: bool,
    },
    Browse,
    RemoveConsumer {
        consumer: u8,
    },
    ExpireScan {
        advance_ms: u16,
    },
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        Just(Outcome::Accepted),
        Just(Outcome::Released),
        Just(Outcome::Rejected),
        (any::<bool>(), any::<bool>()).prop_map(|(delivery_failed, undeliverable_here)| {
            Outcome::Modified {
                delivery_failed,
                undeliverable_here,
            }
        }),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (
            proptest::option::of(1u32..200),
            0u8..12,
            proptest::option::of(0u8..3),
            proptest::option::weighted(0.2, 1u8..100),
        )
            .prop_map(|(ttl_ms, priority, group, delay_ms)| Op::Enqueue {
                ttl_ms,
                priority,
                group,
                delay_ms,
            }),
        3 => (0u8..4, 0u32..4).prop_map(|(consumer, credit)| Op::Credit { consumer, credit }),
        3 => (0u16..60).prop_map(|advance_ms| Op::Deliver { advance_ms }),
        4 => (any::<usize>(), outcome()).prop_map(|(pick, outcome)| Op::Settle { pick, outcome }),
        1 => (proptest::option::weighted(0.4, any::<bool>()), proptest::bool::weighted(0.2))
            .prop_map(|(filter, browse)| Op::AddConsumer { filter, browse }),
        1 => Just(Op::Browse),
        1 => (0u8..4).prop_map(|consumer| Op::RemoveConsumer { consumer }),
        1 => (0u16..60).prop_map(|advance_ms| Op::ExpireScan { advance_ms }),
    ]
}

fn policy() -> impl Strategy<Value = QueuePolicy> {
    (
        1usize..20,
        proptest::option::of(1u32..4),
        any::<bool>(),
        any::<bool>(),
        prop_oneof![Just(0u64), 1u64..50],
    )
        .prop_map(
            |(messages_max, delivery_attempts_max, dead_letter_target, expiry_target, delay)| {
                QueuePolicy {
                    messages_max,
                    delivery_attempts_max,
                    dead_letter_target,
                    expiry_target,
                    redelivery_delay_ms: delay,
                    redelivery_multiplier: 2.0,
                    redelivery_delay_max_ms: Some(120),
                    ..Default::default()
                }
            },
        )
}

/// Takes the messages whose number is even (or odd); the subject carries the parity.
#[derive(Debug)]
struct Parity(bool);

impl MessageFilter for Parity {
    fn matches(&self, message: &ScannedMessage) -> bool {
        let subject = message.properties().ok().flatten().and_then(|p| p.subject);
        subject.is_some_and(|s| (s.as_str() == "even") == self.0)
    }
}

/// Message `n`: grouped messages keep the default priority (priority may reorder a group's
/// messages among themselves, by design).
fn message(
    n: u64,
    ttl_ms: Option<u32>,
    priority: u8,
    group: Option<u8>,
    delay_ms: Option<u8>,
) -> ScannedMessage {
    let group_id = group.map(|g| Str::from(format!("g{g}")));
    let priority = if group.is_some() { 4 } else { priority };
    let message_annotations = delay_ms.map(|ms| {
        vec![(
            Value::Symbol(Symbol::from_static("x-opt-delivery-delay")),
            Value::Long(i64::from(ms)),
        )]
    });
    let raw = Message {
        header: Some(Header {
            ttl: ttl_ms,
            priority,
            ..Default::default()
        }),
        message_annotations,
        properties: Some(Properties {
            subject: Some(Str::from(if n.is_multiple_of(2) { "even" } else { "odd" })),
            group_id,
            ..Default::default()
        }),
        body: Body::Data(vec![Bytes::from(n.to_be_bytes().to_vec())]),
        ..Default::default()
    }
    .to_bytes()
    .freeze();
    ScannedMessage::scan(raw).unwrap()
}

fn number_in(payload: &Bytes) -> u64 {
    match Message::decode(payload).unwrap().body {
        Body::Data(data) => u64::from_be_bytes(data[0].as_ref().try_into().unwrap()),
        other => panic!("unexpected body {other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn no_message_is_lost_or_duplicated(
        policy in policy(),
        ops in proptest::collection::vec(op(), 1..120),
    ) {
        let mut q = Queue::new(policy);
        let mut now_ms: i64 = 1_700_000_000_000;
        let mut consumers: Vec<ConsumerId> = Vec::new();
        let mut next_consumer = 0u64;
        // What the test saw: id -> the number in its body.
        let mut enqueued: BTreeMap<MessageId, u64> = BTreeMap::new();
        let mut in_flight: BTreeMap<MessageId, ConsumerId> = BTreeMap::new();
        let mut accepted: BTreeSet<MessageId> = BTreeSet::new();
        let mut forwarded: BTreeSet<MessageId> = BTreeSet::new();
        let mut number = 0u64;
        // The group of each grouped message, and the groups where order may not hold: a
        // consumer refused one of their messages (`undeliverable-here` lets later ones pass).
        let mut group_of: BTreeMap<MessageId, u8> = BTreeMap::new();
        let mut unordered: BTreeSet<u8> = BTreeSet::new();
        let mut browsers: Vec<ConsumerId> = Vec::new();

        for op in ops {
            match op {
                Op::Enqueue { ttl_ms, priority, group, delay_ms } => {
                    number += 1;
                    let m = message(number, ttl_ms, priority, group, delay_ms);
                    if let Ok(id) = q.enqueue(m, now_ms) {
                        prop_assert!(enqueued.insert(id, number).is_none(), "id reused");
                        if let Some(g) = group {
                            group_of.insert(id, g);
                        }
                    } else {
                        prop_assert!(q.depth() >= policy.messages_max);
                    }
                }
                Op::Credit { consumer, credit } => {
                    if let Some(&c) = consumers.get(usize::from(consumer)) {
                        q.set_credit(c, credit).unwrap();
                    }
                    if let Some(&b) = browsers.get(usize::from(consumer)) {
                        q.set_credit(b, credit).unwrap();
                    }
                }
                Op::Deliver { advance_ms } => {
                    now_ms += i64::from(advance_ms);
                    let deliveries = q.next_deliveries(now_ms);
                    // What still waits after the batch (expired ones left on the way).
                    let waiting: BTreeSet<MessageId> =
                        q.available_ids().chain(q.held_ids()).collect();
                    for d in deliveries {
                        prop_assert!(consumers.contains(&d.consumer));
                        if let Some(g) = group_of.get(&d.message).filter(|g| !unordered.contains(g)) {
                            // Order: no older message of its group still waits.
                            let older = waiting.iter().take_while(|&&w| w < d.message);
                            let before = older.filter(|w| group_of.get(w) == Some(g)).count();
                            prop_assert_eq!(before, 0, "{:?} of group {} out of order", d.message, g);
                            // One consumer at a time.
                            for (m, c) in &in_flight {
                                if group_of.get(m) == Some(g) {
                                    prop_assert_eq!(*c, d.consumer, "group {} on two consumers", g);
                                }
                            }
                        }
                        prop_assert!(
                            in_flight.insert(d.message, d.consumer).is_none(),
                            "{:?} handed out while in flight", d.message
                        );
                        prop_assert_eq!(Some(&number_in(&d.payload)), enqueued.get(&d.message));
                    }
                }
                Op::Settle { pick, outcome } => {
                    if !in_flight.is_empty() {
                        let (&id, &c) = in_flight.iter().nth(pick % in_flight.len()).unwrap();
                        q.settle(c, id, outcome).unwrap();
                        if let Outcome::Modified { undeliverable_here: true, .. } = outcome
                            && let Some(&g) = group_of.get(&id)
                        {
                            unordered.insert(g);
                        }
                        in_flight.remove(&id);
                        if outcome == Outcome::Accepted {
                            accepted.insert(id);
                        }
                    }
                }
                Op::AddConsumer { filter, browse } => {
                    let c = ConsumerId(next_consumer);
                    next_consumer += 1;
                    let filter = filter.map(|even| Arc::new(Parity(even)) as Arc<dyn MessageFilter>);
                    q.add_consumer_with(c, ConsumerOptions { filter, browse }).unwrap();
                    if browse {
                        browsers.push(c);
                    } else {
                        consumers.push(c);
                    }
                }
                Op::Browse => {
                    let available: BTreeSet<MessageId> = q.available_ids().collect();
                    for d in q.next_browse_deliveries(now_ms) {
                        prop_assert!(browsers.contains(&d.consumer));
                        prop_assert!(available.contains(&d.message), "a browser saw what is not there");
                        prop_assert_eq!(Some(&number_in(&d.payload)), enqueued.get(&d.message));
                    }
                }
                Op::RemoveConsumer { consumer } => {
                    if usize::from(consumer) < consumers.len() {
                        let c = consumers.remove(usize::from(consumer));
                        q.remove_consumer(c).unwrap();
                        in_flight.retain(|_, owner| *owner != c);
                    }
                }
                Op::ExpireScan { advance_ms } => {
                    now_ms += i64::from(advance_ms);
                    q.expire_messages(now_ms);
                }
            }
            while let Some(forward) = q.poll_forward() {
                match forward.reason {
                    ForwardReason::Expired => prop_assert!(policy.expiry_target),
                    _ => prop_assert!(policy.dead_letter_target),
                }
                prop_assert_eq!(Some(&number_in(&forward.payload)), enqueued.get(&forward.id));
                prop_assert!(forwarded.insert(forward.id), "forwarded twice");
                prop_assert!(!in_flight.contains_key(&forward.id));
            }

            // The partition, checked after every step.
            let queued: BTreeSet<MessageId> = q.available_ids().chain(q.held_ids()).collect();
            let flying: BTreeSet<MessageId> =
                consumers.iter().flat_map(|&c| q.unsettled(c)).collect();
            prop_assert_eq!(&flying, &in_flight.keys().copied().collect());
            let places = [&queued, &flying, &accepted, &forwarded];
            let mut seen = BTreeSet::new();
            for place in places {
                for id in place {
                    prop_assert!(enqueued.contains_key(id), "{:?} never enqueued", id);
                    prop_assert!(seen.insert(*id), "{:?} in two places", id);
                }
            }
            let dropped = (enqueued.len() - seen.len()) as u64;
            let counters = q.counters();
            prop_assert_eq!(counters.enqueued, enqueued.len() as u64);
            prop_assert_eq!(counters.acknowledged, accepted.len() as u64);
            prop_assert_eq!(counters.expired + counters.dead_lettered, forwarded.len() as u64);
            prop_assert_eq!(counters.dropped, dropped);
            prop_assert_eq!(q.depth(), queued.len() + flying.len());
            prop_assert_eq!(q.in_flight(), flying.len());
            prop_assert_eq!(q.bytes() == 0, q.depth() == 0);
        }
    }
}
