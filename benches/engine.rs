//! Engine benchmark: a client and a server connection wired back to back in memory, moving
//! 100-byte messages over one link, unsettled, with the receiver accepting each batch in one
//! disposition range. Measures the protocol engine and codec with no sockets or runtime.
//!
//! Run: `cargo bench -p sluice-benches --bench engine`.

// A benchmark, like a test, may stop on a broken setup.
#![allow(clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sluice_benches::message_100;
use sluice_codec::messaging::Target;
use sluice_codec::transport::{Accepted, Attach, AttachTarget, DeliveryTag, Role};
use sluice_engine::testing::{Pair, accept_mirrored};
use sluice_engine::{Config, Event, LinkId, SaslConfig, SessionId};

/// Messages per measured batch: the credit window and the disposition range.
const BATCH: u32 = 1000;

struct Bench {
    pair: Pair,
    sender: LinkId,
    server_session: SessionId,
    server_link: LinkId,
    next_tag: u64,
}

fn setup() -> Bench {
    let mut pair = Pair::new(
        Config::client("bench-client", SaslConfig::None),
        Config::server("bench-server"),
    );
    pair.drive();
    let session = pair.client.begin(pair.now).expect("a channel");
    let attach = Attach {
        name: "sender".into(),
        role: Role::Sender,
        target: Some(AttachTarget::Target(Target {
            address: Some("q".into()),
            ..Default::default()
        })),
        initial_delivery_count: Some(0),
        ..Default::default()
    };
    let sender = pair
        .client
        .attach(session, attach, pair.now)
        .expect("a handle");
    pair.drive();
    let mut server_session = None;
    let mut server_link = None;
    for event in pair.server_events() {
        match event {
            Event::SessionBegun { session, .. } => server_session = Some(session),
            Event::LinkAttached { link, attach, .. } => {
                accept_mirrored(&mut pair.server, link, &attach, pair.now);
                server_link = Some(link);
            }
            _ => {}
        }
    }
    pair.drive();
    pair.client_events();
    Bench {
        pair,
        sender,
        server_session: server_session.expect("session"),
        server_link: server_link.expect("link"),
        next_tag: 0,
    }
}

impl Bench {
    /// Sends a batch, delivers it, accepts it in one disposition and settles it at the sender.
    fn round(&mut self, payload: &[u8]) -> u32 {
        let now = self.pair.now;
        self.pair
            .server
            .grant_credit(self.server_link, BATCH, false, now);
        self.pair.drive();
        self.pair.client_events();
        for _ in 0..BATCH {
            let tag = DeliveryTag::from_u64(self.next_tag);
            self.next_tag += 1;
            self.pair
                .client
                .send(self.sender, tag, payload, false, now)
                .expect("credit");
        }
        self.pair.drive();
        let (mut first, mut last, mut received) = (u32::MAX, 0, 0);
        while let Some(event) = self.pair.server.poll_event() {
            if let Event::Delivery {
                delivery_id,
                payload,
                ..
            } = event
            {
                black_box(payload);
                first = first.min(delivery_id);
                last = last.max(delivery_id);
                received += 1;
            }
        }
        self.pair.server.disposition(
            self.server_session,
            Role::Receiver,
            first,
            last,
            true,
            Some(Accepted {}.into()),
            now,
        );
        self.pair.drive();
        while self.pair.client.poll_event().is_some() {}
        received
    }
}

fn pair_100b(c: &mut Criterion) {
    let payload = message_100();
    let mut bench = setup();
    assert_eq!(bench.round(&payload), BATCH, "every message arrives");
    let mut group = c.benchmark_group("engine_pair");
    group.throughput(Throughput::Elements(u64::from(BATCH)));
    group.bench_function("unsettled_100b_batched_dispositions", |b| {
        b.iter(|| bench.round(&payload))
    });
    group.finish();
}

criterion_group!(benches, pair_100b);
criterion_main!(benches);
