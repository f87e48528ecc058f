//! A compiled selector never allocates per message: a counting global allocator sees zero
//! allocations while `matches` runs over a set of selectors and messages.

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]
// The one unsafe item of the crate: `GlobalAlloc` is an unsafe trait.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::BytesMut;
use sluice_codec::messaging::{Body, Header, Message, Properties, ScannedMessage};
use sluice_codec::types::{Encode, Str, Value};
use sluice_selector::Selector;

struct Counting;

thread_local! {
    // Counted per thread, so the test harness's other threads do not disturb the count.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to `System`, which upholds the `GlobalAlloc`
// contract; the counter is a thread-local `Cell` with a const initialiser, which does not
// allocate when touched.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|a| a.set(a.get() + 1));
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|a| a.set(a.get() + 1));
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

fn scanned(message: &Message) -> ScannedMessage {
    let mut out = BytesMut::new();
    message.encode(&mut out);
    ScannedMessage::scan(out.freeze()).unwrap()
}

#[test]
fn matches_does_not_allocate() {
    let s = |t: &str| Value::String(Str::from(t));
    let messages = [
        scanned(&Message {
            header: Some(Header {
                durable: true,
                priority: 8,
                ..Header::default()
            }),
            properties: Some(Properties {
                subject: Some(Str::from("stock.nyse")),
                group_id: Some(Str::from("g")),
                ..Properties::default()
            }),
            application_properties: Some(vec![
                (s("colour"), s("green")),
                (s("weight"), Value::Int(9)),
                (s("ratio"), Value::Double(0.25)),
                (s("flag"), Value::Boolean(true)),
                (s("name"), s("sluice_broker%")),
            ]),
            body: Body::Value(Value::Null),
            ..Message::default()
        }),
        scanned(&Message::with_data(&b"no properties"[..])),
    ];
    let selectors: Vec<Selector> = [
        "colour = 'green' AND weight > 5",
        "colour <> 'red' OR missing IS NULL",
        "weight * 2 + 1 BETWEEN 10 AND 20.5",
        "ratio < 0.5 AND NOT flag = FALSE",
        "name LIKE 'sluice!_%' ESCAPE '!' AND name NOT LIKE '%x_'",
        "colour IN ('blue', 'green') AND colour NOT IN ('red')",
        "JMSPriority > 4 AND JMSDeliveryMode = 'PERSISTENT' AND JMSXDeliveryCount = 1",
        "JMSType LIKE 'stock.%' AND JMSXGroupID = 'g' AND JMSMessageID IS NULL",
        "-weight < 0 AND weight / 0 IS NULL",
    ]
    .iter()
    .map(|t| Selector::parse(t).unwrap())
    .collect();
    let mut results = Vec::with_capacity(selectors.len() * messages.len());
    let before = allocations();
    for message in &messages {
        for selector in &selectors {
            results.push(selector.matches(message));
        }
    }
    let during = allocations() - before;
    assert_eq!(during, 0, "matches allocated {during} times");
    // The first message matches every selector; the one without properties only the selector
    // that asks for a missing field: the evaluation really ran.
    let (first, second) = results.split_at(selectors.len());
    assert!(first.iter().all(|&m| m), "{first:?}");
    let mut expected = vec![false; selectors.len()];
    expected[1] = true;
    assert_eq!(second, expected.as_slice());
}
