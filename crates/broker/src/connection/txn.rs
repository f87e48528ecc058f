//! Local transactions (AMQP 1.0 part 4): the coordinator link, `declare` and `discharge`, and
//! the transactional work of the connection's other links.
//!
//! A transaction lives in its connection, which is where its work is known: a transactional
//! publish is held here, routed but not handed to the core, and a transactional outcome for a
//! delivery we sent is held here too, the message staying in flight at the core (unavailable
//! to other consumers) until the discharge. A rollback drops the publishes and gives the
//! acknowledged messages back as `modified{delivery-failed}`, as Artemis does (the delivery
//! count goes up). A connection that goes, or a coordinator that detaches, rolls back its open
//! transactions (part 4 §4.3): the held publishes go with the connection's state, and the core
//! releases the unsettled messages of a gone link as it does for any other.
//!
//! # What a commit makes atomic, and how
//!
//! A commit hands the core all of the transaction's publishes and settles as one
//! [`Command::Commit`], which the core applies in one step or not at all
//! (`crate::core::commit`): it first checks that every publish can be stored now (its queue
//! is there, nothing waits in it, it has room for all of the transaction's messages to it, the
//! memory budget allows it) and that every acknowledged delivery's link is still attached; only
//! then does it store the messages and settle the deliveries, with no other command between.
//! Otherwise nothing is stored, the held deliveries go back as `modified{delivery-failed}`, and
//! the discharge is rejected with `amqp:transaction:rollback` and a description naming the
//! cause (part 4 §4.4: a transaction that cannot commit rolls back).
//!
//! In the journal, the commit's records (messages stored in durable queues, acknowledged
//! durable messages removed, raised delivery counts) follow one atomic marker (record kind 6)
//! in one segment, so after a crash either all of a committed transaction is there or none of
//! it. The discharge is answered once those records are on disk. The one part that is not in
//! the unit is dead-lettering a message the transaction rejected: that is the ordinary move,
//! stored in the target before it is removed from the source.
//!
//! Transactional sends go to queues (and to multicast addresses, delivered at the commit).
//! Topics and anycast addresses take none: the commit is refused, naming the address.
//!
//! Bounded: [`TXNS_PER_CONNECTION_MAX`] open transactions (a declare beyond is rejected with
//! `amqp:resource-limit-exceeded`), and [`TXN_PENDING_BYTES_MAX`] bytes of publishes held by
//! the connection's open transactions (a transactional publish beyond is rejected with
//! `amqp:resource-limit-exceeded` and its transaction becomes rollback-only: its commit is
//! refused with `amqp:transaction:rollback`). The settles a transaction holds are bounded by
//! the deliveries the connection has in flight, which the engine's unsettled limit bounds.

use std::time::Instant;

use bytes::Bytes;
use rustc_hash::FxHashMap;
use sluice_codec::composite::decode_composite;
use sluice_codec::messaging::ScannedMessage;
use sluice_codec::transactions::{Coordinator, Declare, Declared, Discharge, LOCAL_TRANSACTIONS};
use sluice_codec::transport::{
    Accepted, Attach, AttachTarget, DeliveryState, Error, Modified, Outcome, Rejected, conditions,
};
use sluice_codec::types::Decoder;
use sluice_engine::{LinkId, SessionId};
use sluice_store::MessageId;

use super::State;
use super::attach::reply_to;
use super::links::{Authorized, Binding, LinkEntry};
use crate::core::{Command, Commit, Route};
use crate::error::Refusal;

/// Open transactions one connection may have.
pub(crate) const TXNS_PER_CONNECTION_MAX: usize = 16;
/// Bytes of publishes one connection's open transactions may hold.
pub(crate) const TXN_PENDING_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Credit for declares and discharges.
const COORDINATOR_CREDIT: u32 = 16;

/// A connection's transactions.
#[derive(Default)]
pub(crate) struct Txns {
    open: FxHashMap<Bytes, Txn>,
    next_id: u64,
    /// Bytes held by the publishes of `open`.
    pending_bytes: usize,
}

struct Txn {
    coordinator: LinkId,
    publishes: Vec<(Route, Box<ScannedMessage>)>,
    settles: Vec<(LinkId, MessageId, DeliveryState)>,
    bytes: usize,
    /// A limit was passed: the commit is refused.
    rollback_only: bool,
}

/// What the body of a message to the coordinator asks.
enum Request {
    Declare(Declare),
    Discharge(Discharge),
}

impl State {
    pub(super) fn attach_coordinator(
        &mut self,
        link: LinkId,
        attach: &Attach,
        now: Instant,
    ) -> Result<(), Refusal> {
        let mut reply = reply_to(attach, false);
        reply.target = Some(AttachTarget::Coordinator(Coordinator {
            capabilities: vec![LOCAL_TRANSACTIONS],
        }));
        self.engine.accept_link(link, reply, now);
        self.engine
            .grant_credit(link, COORDINATOR_CREDIT, false, now);
        let authorized = Authorized {
            address: None,
            send: true,
        };
        self.links
            .insert(link, LinkEntry::new(Binding::Coordinator, authorized));
        Ok(())
    }

    /// A declare or discharge on the coordinator `link`.
    pub(super) fn on_coordinator_request(
        &mut self,
        link: LinkId,
        delivery_id: u32,
        payload: Bytes,
        now: Instant,
    ) {
        self.engine
            .grant_credit(link, COORDINATOR_CREDIT, false, now);
        let answer = match parse(payload) {
            None => rejected(conditions::DECODE_ERROR, "not a declare or discharge"),
            Some(Request::Declare(declare)) => self.declare(link, &declare),
            Some(Request::Discharge(discharge)) => {
                match self.discharge((link.session, delivery_id), discharge) {
                    // Answered when the core has applied the commit.
                    None => return,
                    Some(answer) => answer,
                }
            }
        };
        self.settle_received(link.session, (delivery_id, delivery_id), answer, now);
    }

    fn declare(&mut self, coordinator: LinkId, declare: &Declare) -> DeliveryState {
        if declare
            .global_id
            .as_ref()
            .is_some_and(|g| !matches!(g, sluice_codec::Value::Null))
        {
            return rejected(
                conditions::NOT_IMPLEMENTED,
                "distributed transactions are not supported",
            );
        }
        if self.txns.open.len() >= TXNS_PER_CONNECTION_MAX {
            return rejected(
                conditions::RESOURCE_LIMIT_EXCEEDED,
                &format!("at most {TXNS_PER_CONNECTION_MAX} open transactions per connection"),
            );
        }
        self.txns.next_id += 1;
        let txn_id = Bytes::copy_from_slice(&self.txns.next_id.to_be_bytes());
        self.txns.open.insert(
            txn_id.clone(),
            Txn {
                coordinator,
                publishes: Vec::new(),
                settles: Vec::new(),
                bytes: 0,
                rollback_only: false,
            },
        );
        DeliveryState::Declared(Declared { txn_id })
    }

    /// Commits or rolls back; `None` when the answer waits for the core.
    fn discharge(
        &mut self,
        discharge_at: (SessionId, u32),
        discharge: Discharge,
    ) -> Option<DeliveryState> {
        let Some(txn) = self.txns.open.remove(&discharge.txn_id) else {
            return Some(rejected(
                conditions::TRANSACTION_UNKNOWN_ID,
                "no such transaction on this connection",
            ));
        };
        self.txns.pending_bytes = self.txns.pending_bytes.saturating_sub(txn.bytes);
        let fail = discharge.fail.unwrap_or(false);
        if fail || txn.rollback_only {
            self.roll_back(txn);
            return Some(if fail {
                DeliveryState::Accepted(Accepted {})
            } else {
                rejected(
                    conditions::TRANSACTION_ROLLBACK,
                    "the transaction passed a limit and was rolled back",
                )
            });
        }
        self.push(Command::Commit(Box::new(Commit {
            discharge: discharge_at,
            publishes: txn.publishes,
            settles: group_settles(txn.settles),
        })));
        // Answered when the core has applied the commit (and journaled it).
        None
    }

    fn roll_back(&mut self, txn: Txn) {
        let failed = DeliveryState::Modified(Modified {
            delivery_failed: true,
            ..Default::default()
        });
        for (link, messages, _) in group_settles(txn.settles) {
            self.push(Command::Settle {
                link,
                messages,
                state: failed.clone(),
            });
        }
    }

    /// The core's answer to a commit: the discharge is accepted, or rejected with
    /// `amqp:transaction:rollback` and the reason nothing of it was applied (part 4 §4.4).
    pub(super) fn on_committed(
        &mut self,
        discharge: (SessionId, u32),
        result: Result<(), String>,
        now: Instant,
    ) {
        let answer = match result {
            Ok(()) => DeliveryState::Accepted(Accepted {}),
            Err(reason) => rejected(
                conditions::TRANSACTION_ROLLBACK,
                &format!("the transaction was rolled back: {reason}"),
            ),
        };
        let (session, id) = discharge;
        self.settle_received(session, (id, id), answer, now);
    }

    /// A transactional publish: held in its transaction. The sender hears at once that it is
    /// accepted within the transaction (part 4 §4.4.1), and its credit flows on. `Err`: the
    /// transaction is unknown (the link is to be detached).
    pub(super) fn hold_publish(
        &mut self,
        txn_id: &Bytes,
        route: Route,
        message: Box<ScannedMessage>,
        settle: Option<(SessionId, u32)>,
        now: Instant,
    ) -> Result<(), Error> {
        let pending = self.txns.pending_bytes;
        let Some(txn) = self.txns.open.get_mut(txn_id) else {
            return Err(unknown_id());
        };
        let size = message.raw().len();
        let state = if pending.saturating_add(size) > TXN_PENDING_BYTES_MAX {
            txn.rollback_only = true;
            rejected(
                conditions::RESOURCE_LIMIT_EXCEEDED,
                &format!(
                    "transactions hold at most {TXN_PENDING_BYTES_MAX} bytes per connection; \
                     the transaction will roll back"
                ),
            )
        } else {
            txn.bytes += size;
            txn.publishes.push((route, message));
            self.txns.pending_bytes += size;
            transactional(txn_id, Outcome::Accepted(Accepted {}))
        };
        if let Some((session, id)) = settle {
            self.settle_received(session, (id, id), state, now);
        }
        Ok(())
    }

    /// A transactional outcome for a message we sent on `link`: held until the discharge.
    pub(super) fn hold_settle(
        &mut self,
        link: LinkId,
        txn_id: &Bytes,
        message: MessageId,
        state: DeliveryState,
    ) -> Result<(), Error> {
        let txn = self.txns.open.get_mut(txn_id).ok_or_else(unknown_id)?;
        txn.settles.push((link, message, state));
        Ok(())
    }

    /// The coordinator `link` went: its open transactions roll back.
    pub(super) fn forget_coordinator(&mut self, link: LinkId) {
        let ids: Vec<Bytes> = self
            .txns
            .open
            .iter()
            .filter(|(_, t)| t.coordinator == link)
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            if let Some(txn) = self.txns.open.remove(&id) {
                self.txns.pending_bytes = self.txns.pending_bytes.saturating_sub(txn.bytes);
                self.roll_back(txn);
            }
        }
    }
}

/// The transactional state `txn_id` with `outcome`.
pub(super) fn transactional(txn_id: &Bytes, outcome: Outcome) -> DeliveryState {
    DeliveryState::TransactionalState(sluice_codec::transactions::TransactionalState {
        txn_id: txn_id.clone(),
        outcome: Some(Box::new(outcome)),
    })
}

/// The error a link using an unknown transaction is detached with.
pub(super) fn unknown_id() -> Error {
    Error::new(
        conditions::TRANSACTION_UNKNOWN_ID,
        "no such transaction on this connection",
    )
}

fn rejected(condition: sluice_codec::types::Symbol, why: &str) -> DeliveryState {
    DeliveryState::Rejected(Rejected {
        error: Some(Box::new(Error::new(condition, why))),
    })
}

/// Consecutive settles of one link with one outcome, as one command each.
fn group_settles(
    settles: Vec<(LinkId, MessageId, DeliveryState)>,
) -> Vec<(LinkId, Vec<MessageId>, DeliveryState)> {
    let mut groups: Vec<(LinkId, Vec<MessageId>, DeliveryState)> = Vec::new();
    for (link, message, state) in settles {
        match groups.last_mut() {
            Some((l, messages, s)) if *l == link && *s == state => messages.push(message),
            _ => groups.push((link, vec![message], state)),
        }
    }
    groups
}

/// The declare or discharge a coordinator message carries in its `amqp-value` body.
fn parse(payload: Bytes) -> Option<Request> {
    let message = ScannedMessage::scan(payload).ok()?;
    let body = message.body_bytes();
    // The section's descriptor: 0x00 0x53 0x77 (amqp-value).
    if !body.starts_with(&[0x00, 0x53, 0x77]) {
        return None;
    }
    let value = body.slice(3..);
    let mut d = Decoder::new(&value);
    if let Ok(Some(declare)) = decode_composite::<Declare>(&mut d, "declare") {
        return Some(Request::Declare(declare));
    }
    let mut d = Decoder::new(&value);
    decode_composite::<Discharge>(&mut d, "discharge")
        .ok()
        .flatten()
        .map(Request::Discharge)
}

/// The transactional state a receiver's held outcome `state` is confirmed with.
pub(super) fn transactional_of(txn_id: Option<&Bytes>, state: &DeliveryState) -> DeliveryState {
    let outcome = match state {
        DeliveryState::Rejected(r) => Outcome::Rejected(r.clone()),
        DeliveryState::Released(r) => Outcome::Released(r.clone()),
        DeliveryState::Modified(m) => Outcome::Modified(m.clone()),
        _ => Outcome::Accepted(Accepted {}),
    };
    transactional(txn_id.unwrap_or(&Bytes::new()), outcome)
}

impl State {
    /// Detaches `link` with `error`, and forgets it.
    pub(super) fn detach_with(&mut self, link: LinkId, error: Error, now: Instant) {
        self.engine.detach(link, true, Some(error), now);
        self.unbind(link);
    }
}
