//! Browsers see the messages without consuming them.

use std::sync::Arc;

use bytes::Bytes;
use sluice_codec::Encode;
use sluice_codec::messaging::{Body, Header, Message, Properties, ScannedMessage};
use sluice_codec::types::Str;

use super::*;

const NOW: i64 = 1_700_000_000_000;
const VIEW: ConsumerId = ConsumerId(7);
const TAKER: ConsumerId = ConsumerId(1);

fn message(subject: &str, priority: u8) -> ScannedMessage {
    let raw = Message {
        header: Some(Header {
            priority,
            ..Default::default()
        }),
        properties: Some(Properties {
            subject: Some(Str::from(subject)),
            ..Default::default()
        }),
        body: Body::Data(vec![Bytes::from_static(b"m")]),
        ..Default::default()
    }
    .to_bytes()
    .freeze();
    ScannedMessage::scan(raw).unwrap()
}

#[derive(Debug)]
struct Subject(&'static str);

impl MessageFilter for Subject {
    fn matches(&self, message: &ScannedMessage) -> bool {
        let properties = message.properties().ok().flatten();
        properties
            .and_then(|p| p.subject)
            .is_some_and(|s| s.as_str() == self.0)
    }
}

fn browser(q: &mut Queue, filter: Option<Arc<dyn MessageFilter>>, credit: u32) {
    let options = ConsumerOptions {
        filter,
        browse: true,
    };
    q.add_consumer_with(VIEW, options).unwrap();
    q.set_credit(VIEW, credit).unwrap();
}

fn shown(q: &mut Queue) -> Vec<MessageId> {
    q.next_browse_deliveries(NOW)
        .iter()
        .map(|d| d.message)
        .collect()
}

#[test]
fn a_browser_sees_every_message_once_in_arrival_order_and_takes_none() {
    let mut q = Queue::new(QueuePolicy::default());
    let a = q.enqueue(message("a", 1), NOW).unwrap();
    let b = q.enqueue(message("b", 9), NOW).unwrap();
    browser(&mut q, None, 10);
    assert_eq!(shown(&mut q), vec![a, b]);
    assert_eq!(q.credit(VIEW), Some(8));
    assert_eq!(q.available(), 2, "nothing consumed");
    assert!(
        q.next_deliveries(NOW).is_empty(),
        "a browser is no competing consumer"
    );
    assert!(
        q.settle(VIEW, a, Outcome::Accepted).is_err(),
        "nothing to settle"
    );
    assert_eq!(q.take_browsers_at_end(), vec![VIEW]);
    assert!(q.take_browsers_at_end().is_empty(), "named once");
    assert!(shown(&mut q).is_empty(), "each message once");
    // A later arrival is shown, and the browser is at the end again.
    let c = q.enqueue(message("c", 4), NOW).unwrap();
    assert_eq!(shown(&mut q), vec![c]);
    assert_eq!(q.take_browsers_at_end(), vec![VIEW]);
    // A competing consumer still gets them all.
    q.add_consumer(TAKER).unwrap();
    q.set_credit(TAKER, 10).unwrap();
    assert_eq!(q.next_deliveries(NOW).len(), 3);
}

#[test]
fn a_browser_without_credit_is_not_at_the_end_and_a_filter_applies() {
    let mut q = Queue::new(QueuePolicy::default());
    q.enqueue(message("red", 4), NOW).unwrap();
    let blue = q.enqueue(message("blue", 4), NOW).unwrap();
    let blue2 = q.enqueue(message("blue", 4), NOW).unwrap();
    browser(&mut q, Some(Arc::new(Subject("blue"))), 1);
    assert_eq!(shown(&mut q), vec![blue]);
    assert!(
        q.take_browsers_at_end().is_empty(),
        "no credit left: not drained"
    );
    q.set_credit(VIEW, 5).unwrap();
    assert_eq!(shown(&mut q), vec![blue2]);
    assert_eq!(q.take_browsers_at_end(), vec![VIEW]);
    q.remove_consumer(VIEW).unwrap();
    assert_eq!(q.browser_count(), 0);
}
