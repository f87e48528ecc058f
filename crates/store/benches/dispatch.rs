//! Dispatch benchmark: 10 000 messages handed to 10 consumers with enough credit for all,
//! the consumers either plain or each filtered to a tenth of the messages (by subject).
//! Measures [`Queue::next_deliveries`] alone; the queue is built outside the timing.
//!
//! Run: `cargo bench -p sluice-store --bench dispatch`.

// A benchmark, like a test, may stop on a broken setup.
#![allow(clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use sluice_codec::Encode;
use sluice_codec::messaging::{Body, Message, Properties, ScannedMessage};
use sluice_codec::types::Str;
use sluice_store::{ConsumerId, ConsumerOptions, MessageFilter, Queue, QueuePolicy};

const MESSAGES: u64 = 10_000;
const CONSUMERS: u64 = 10;
const NOW: i64 = 1_700_000_000_000;

/// Takes the messages whose subject is its number.
#[derive(Debug)]
struct Subject(String);

impl MessageFilter for Subject {
    fn matches(&self, message: &ScannedMessage) -> bool {
        let subject = message.properties().ok().flatten().and_then(|p| p.subject);
        subject.is_some_and(|s| s.as_str() == self.0)
    }
}

fn messages() -> Vec<Bytes> {
    (0..MESSAGES)
        .map(|n| {
            Message {
                properties: Some(Properties {
                    subject: Some(Str::from((n % CONSUMERS).to_string())),
                    ..Default::default()
                }),
                body: Body::Data(vec![Bytes::from_static(&[0u8; 100])]),
                ..Default::default()
            }
            .to_bytes()
            .freeze()
        })
        .collect()
}

fn queue(raw: &[Bytes], filtered: bool) -> Queue {
    let mut q = Queue::new(QueuePolicy::default());
    for c in 0..CONSUMERS {
        let filter = filtered.then(|| Arc::new(Subject(c.to_string())) as Arc<dyn MessageFilter>);
        let options = ConsumerOptions {
            filter,
            ..Default::default()
        };
        q.add_consumer_with(ConsumerId(c), options)
            .expect("a new consumer");
        q.set_credit(ConsumerId(c), MESSAGES as u32)
            .expect("a consumer");
    }
    for m in raw {
        let scanned = ScannedMessage::scan(m.clone()).expect("a message");
        q.enqueue(scanned, NOW).expect("room");
    }
    q
}

fn dispatch(c: &mut Criterion) {
    let raw = messages();
    let mut group = c.benchmark_group("dispatch");
    group.throughput(Throughput::Elements(MESSAGES));
    group.sample_size(20);
    for (name, filtered) in [
        ("10 plain consumers", false),
        ("10 filtered consumers", true),
    ] {
        group.bench_function(name, |b| {
            b.iter_batched(
                || queue(&raw, filtered),
                |mut q| {
                    let mut handed = 0;
                    // The bounded walk may stop early: call again while it asks.
                    loop {
                        handed += q.next_deliveries(NOW).len();
                        if !q.dispatch_pending() {
                            break;
                        }
                    }
                    assert_eq!(handed as u64, MESSAGES);
                    black_box(q)
                },
                BatchSize::LargeInput,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, dispatch);
criterion_main!(benches);
