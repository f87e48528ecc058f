//! A queue node driven by random sequences of publish, attach, credit, settle and detach,
//! checked after every step against a simple model: which messages the queue holds, which
//! consumer holds which, and how much credit each has left.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use sluice_codec::transport::{Modified, Released};

use super::topic::rejected_with;
use super::*;

const CONSUMERS: usize = 3;

#[derive(Debug, Clone)]
enum Op {
    Publish,
    Attach(usize),
    Credit(usize, u32),
    /// Settle the consumer's n-th unsettled delivery (modulo how many it has) with an outcome.
    Settle(usize, usize, u8),
    Unsent(usize, usize),
    Detach(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Publish),
        1 => (0..CONSUMERS).prop_map(Op::Attach),
        2 => (0..CONSUMERS, 0u32..5).prop_map(|(c, n)| Op::Credit(c, n)),
        4 => (0..CONSUMERS, 0usize..8, 0u8..4).prop_map(|(c, i, o)| Op::Settle(c, i, o)),
        1 => (0..CONSUMERS, 0usize..8).prop_map(|(c, i)| Op::Unsent(c, i)),
        1 => (0..CONSUMERS).prop_map(Op::Detach),
    ]
}

/// What the model says a consumer holds.
#[derive(Debug, Default)]
struct Consumer {
    credit: u32,
    /// Its unsettled deliveries: message text to the core's id.
    held: BTreeMap<String, MessageId>,
}

#[derive(Debug, Default)]
struct Model {
    /// Messages in the queue waiting for a consumer.
    available: BTreeSet<String>,
    consumers: [Option<Consumer>; CONSUMERS],
    published: u32,
}

impl Model {
    fn credit_left(&self) -> u32 {
        self.consumers.iter().flatten().map(|c| c.credit).sum()
    }
}

fn settle_state(outcome: u8) -> DeliveryState {
    match outcome {
        0 => DeliveryState::Accepted(Accepted {}),
        1 => DeliveryState::Released(Released {}),
        2 => DeliveryState::Modified(Modified {
            delivery_failed: true,
            ..Default::default()
        }),
        _ => rejected_with("app:no"),
    }
}

/// Applies the deliveries of a step to the model, checking each.
fn take_deliveries(h: &mut Harness, model: &mut Model) -> Result<(), TestCaseError> {
    for (handle, message, text) in h.delivered(2) {
        let c = handle as usize;
        let consumer = model.consumers[c].as_mut();
        prop_assert!(
            consumer.is_some(),
            "a delivery to consumer {c}, not attached"
        );
        let consumer = consumer.unwrap();
        prop_assert!(
            consumer.credit > 0,
            "consumer {c} got {text} without credit"
        );
        prop_assert!(
            model.available.remove(&text),
            "{text} delivered but not available"
        );
        consumer.credit -= 1;
        consumer.held.insert(text, message);
    }
    // Dispatch is greedy: something is left only where no credit is.
    prop_assert!(model.available.is_empty() || model.credit_left() == 0);
    Ok(())
}

/// Takes consumer `c`'s `i`-th unsettled delivery (modulo how many it has) off the model.
fn take_held(model: &mut Model, c: usize, i: usize) -> Option<(String, MessageId)> {
    let consumer = model.consumers[c].as_mut()?;
    let (text, message) = consumer.held.iter().nth(i % consumer.held.len().max(1))?;
    let (text, message) = (text.clone(), *message);
    consumer.held.remove(&text);
    Some((text, message))
}

fn step(h: &mut Harness, model: &mut Model, op: Op) -> Result<(), TestCaseError> {
    let q = at(0);
    match op {
        Op::Publish => {
            let text = format!("m{}", model.published);
            h.publish(1, 1, Route::to(q), &text, model.published);
            prop_assert_eq!(
                published(&h.answers(1)),
                vec![(model.published, "accepted".to_string())]
            );
            model.published += 1;
            model.available.insert(text);
        }
        Op::Attach(c) if model.consumers[c].is_none() => {
            h.receive(2, c as u32, from(q, Filter::All), 0);
            model.consumers[c] = Some(Consumer::default());
        }
        Op::Credit(c, n) => {
            if let Some(consumer) = model.consumers[c].as_mut() {
                h.credit(2, c as u32, n);
                consumer.credit = n;
            }
        }
        Op::Settle(c, i, outcome) => {
            let Some((text, message)) = take_held(model, c, i) else {
                return Ok(());
            };
            h.settle(2, c as u32, message, settle_state(outcome));
            // Accepted and rejected leave (no dead-letter target); the others come back.
            if outcome == 1 || outcome == 2 {
                model.available.insert(text);
            }
        }
        Op::Unsent(c, i) => {
            let Some((text, message)) = take_held(model, c, i) else {
                return Ok(());
            };
            // The connection also told the core the link has no credit (it stalled).
            if let Some(consumer) = model.consumers[c].as_mut() {
                consumer.credit = 0;
            }
            h.apply(
                2,
                Command::Credit {
                    link: link(c as u32),
                    credit: 0,
                    drain: false,
                },
            );
            h.run(
                2,
                Command::Unsent {
                    link: link(c as u32),
                    message,
                },
            );
            model.available.insert(text);
        }
        Op::Detach(c) => {
            if let Some(consumer) = model.consumers[c].take() {
                h.run(
                    2,
                    Command::Detach {
                        link: link(c as u32),
                    },
                );
                model.available.extend(consumer.held.into_keys());
            }
        }
        Op::Attach(_) => {}
    }
    take_deliveries(h, model)?;
    let counters = h.queue(q).queue();
    let held: usize = model.consumers.iter().flatten().map(|c| c.held.len()).sum();
    prop_assert_eq!(counters.available(), model.available.len());
    prop_assert_eq!(counters.in_flight(), held);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_queue_node_behaves_like_the_model(ops in prop::collection::vec(op(), 1..80)) {
        let mut h = Harness::new(vec![queue("q", QueuePolicy::default())]);
        h.conn(1);
        h.conn(2);
        let mut model = Model::default();
        for op in ops {
            step(&mut h, &mut model, op)?;
        }
        // Whatever happened, every message not accepted or rejected is still there: a last
        // consumer with plenty of credit gets exactly those.
        for c in 0..CONSUMERS {
            step(&mut h, &mut model, Op::Detach(c))?;
        }
        step(&mut h, &mut model, Op::Attach(0))?;
        let left = model.available.len() as u32;
        step(&mut h, &mut model, Op::Credit(0, left + 1))?;
        prop_assert!(model.available.is_empty());
        prop_assert_eq!(
            model.consumers[0].as_ref().map(|c| c.held.len() as u32),
            Some(left)
        );
    }
}
