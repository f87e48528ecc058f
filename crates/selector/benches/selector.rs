//! `Selector::matches` for a typical selector against a scanned message: the per-message cost
//! a filtered receiver adds.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{Criterion, criterion_group, criterion_main};
use sluice_codec::messaging::{Body, Message, Properties, ScannedMessage};
use sluice_codec::types::{Encode, Str, Value};
use sluice_selector::Selector;

fn message() -> ScannedMessage {
    let message = Message {
        properties: Some(Properties {
            subject: Some(Str::from("orders")),
            ..Properties::default()
        }),
        application_properties: Some(vec![
            (
                Value::String(Str::from("region")),
                Value::String(Str::from("emea")),
            ),
            (
                Value::String(Str::from("colour")),
                Value::String(Str::from("green")),
            ),
            (Value::String(Str::from("weight")), Value::Int(9)),
        ]),
        body: Body::Value(Value::String(Str::from("payload"))),
        ..Message::default()
    };
    let mut out = BytesMut::new();
    message.encode(&mut out);
    ScannedMessage::scan(out.freeze()).unwrap()
}

fn matches(c: &mut Criterion) {
    let message = message();
    let selector = Selector::parse("colour = 'green' AND weight > 5").unwrap();
    assert!(selector.matches(&message));
    c.bench_function("selector/matches", |b| {
        b.iter(|| black_box(&selector).matches(black_box(&message)))
    });
}

criterion_group!(benches, matches);
criterion_main!(benches);
