//! Codec micro-benchmarks: the per-message work of the broker's hot path.
//!
//! Run: `cargo bench -p sluice-benches --bench codec`. Targets on the 2-core reference
//! machine: a transfer decode and a section scan each well under 100 ns.

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sluice_benches::{disposition_range, message_100, transfer};
use sluice_codec::Encode;
use sluice_codec::frame::{decode_frame, encode_performative, encode_transfer};
use sluice_codec::messaging::ScannedMessage;
use sluice_codec::transport::Performative;
use sluice_codec::types::Decoder;

fn scan(c: &mut Criterion) {
    let message = message_100();
    let mut group = c.benchmark_group("message");
    group.throughput(Throughput::Elements(1));
    group.bench_function("scan_100b_body", |b| {
        b.iter(|| ScannedMessage::scan(black_box(&message).clone()))
    });
    group.finish();
}

fn transfer_performative(c: &mut Criterion) {
    let encoded = Performative::from(transfer()).to_bytes().freeze();
    let payload = message_100();
    let mut frame = BytesMut::new();
    encode_transfer(&mut frame, 0, &transfer(), &payload, u32::MAX).ok();
    let frame = frame.freeze();

    let mut group = c.benchmark_group("transfer");
    group.throughput(Throughput::Elements(1));
    group.bench_function("decode_performative", |b| {
        b.iter(|| Performative::decode(&mut Decoder::new(black_box(&encoded))))
    });
    group.bench_function("decode_frame_with_payload", |b| {
        let mut buf = BytesMut::with_capacity(frame.len());
        b.iter(|| {
            buf.extend_from_slice(&frame);
            decode_frame(black_box(&mut buf), u32::MAX)
        })
    });
    let performative = Performative::from(transfer());
    group.bench_function("encode_performative", |b| {
        let mut out = BytesMut::with_capacity(4096);
        b.iter(|| {
            out.clear();
            black_box(&performative).encode(&mut out);
        })
    });
    let t = transfer();
    group.bench_function("encode_frame_with_payload", |b| {
        let mut out = BytesMut::with_capacity(4096);
        b.iter(|| {
            out.clear();
            encode_transfer(&mut out, 0, black_box(&t), black_box(&payload), u32::MAX)
        })
    });
    group.finish();
}

fn disposition(c: &mut Criterion) {
    let d = Performative::from(disposition_range());
    let mut group = c.benchmark_group("disposition");
    group.throughput(Throughput::Elements(1));
    group.bench_function("encode_range", |b| {
        let mut out = BytesMut::with_capacity(4096);
        b.iter(|| {
            out.clear();
            encode_performative(&mut out, 0, black_box(&d), u32::MAX)
        })
    });
    group.finish();
}

criterion_group!(benches, scan, transfer_performative, disposition);
criterion_main!(benches);
