//! Transactional sends for `sluice bench --txn-batch N`: the sender's connection also attaches
//! a coordinator link (part 4 §4.2) and repeats declare, N transactional sends, commit. A
//! message counts as accepted when its transactional outcome is, as with plain sends, and the
//! run also reports how many commits were answered.

use bytes::Bytes;
use sluice_codec::Encode;
use sluice_codec::messaging::{Body, Message, Source};
use sluice_codec::transactions::{
    Coordinator, Declare, Discharge, LOCAL_TRANSACTIONS, TransactionalState,
};
use sluice_codec::transport::{
    Attach, AttachTarget, DeliveryState, DeliveryTag, ReceiverSettleMode, Role as LinkRole,
    SenderSettleMode,
};
use sluice_codec::types::decode_value;
use sluice_engine::{Connection, LinkId, SessionId};

/// Where the current transaction is.
#[derive(Debug, Clone)]
enum Phase {
    /// None open: the next step is a declare.
    Idle,
    /// A declare was sent as this delivery id.
    Declaring(u32),
    /// Declared: `left` more messages go in it before the commit.
    Open { txn_id: Bytes, left: u64 },
    /// A commit of `messages` was sent as this delivery id.
    Discharging { id: u32, messages: u64 },
}

/// The coordinator side of a transactional sender.
#[derive(Debug)]
pub(crate) struct TxnSender {
    batch: u64,
    link: Option<LinkId>,
    phase: Phase,
    /// Tags of coordinator deliveries.
    next_tag: u64,
    /// Commits the coordinator accepted, and the messages in them.
    pub(crate) commits: u64,
    pub(crate) committed: u64,
}

/// What a coordinator disposition meant to the sender.
pub(crate) enum Answer {
    /// Not a coordinator delivery.
    NotOurs,
    /// Handled: the transaction moved on.
    Handled,
    /// The coordinator refused: the run cannot go on.
    Failed(String),
}

impl TxnSender {
    pub(crate) fn new(batch: u32) -> Self {
        TxnSender {
            batch: u64::from(batch.max(1)),
            link: None,
            phase: Phase::Idle,
            next_tag: 0,
            commits: 0,
            committed: 0,
        }
    }

    /// Attaches the coordinator link on `session`.
    pub(crate) fn attach(
        &mut self,
        engine: &mut Connection,
        session: SessionId,
        index: u64,
        now: std::time::Instant,
    ) -> Result<(), String> {
        let attach = Attach {
            name: format!("sluice-bench-coordinator-{index}").as_str().into(),
            role: LinkRole::Sender,
            snd_settle_mode: SenderSettleMode::Unsettled,
            rcv_settle_mode: ReceiverSettleMode::First,
            source: Some(Source::default()),
            target: Some(AttachTarget::Coordinator(Coordinator {
                capabilities: vec![LOCAL_TRANSACTIONS],
            })),
            ..Default::default()
        };
        let link = engine
            .attach(session, attach, now)
            .map_err(|e| format!("cannot attach a coordinator: {e}"))?;
        self.link = Some(link);
        Ok(())
    }

    /// The transactional state a message sent now carries, and how many may go in the open
    /// transaction; `None` while no transaction is open.
    pub(crate) fn open(&self) -> Option<(DeliveryState, u64)> {
        match &self.phase {
            Phase::Open { txn_id, left } if *left > 0 => Some((
                DeliveryState::TransactionalState(TransactionalState {
                    txn_id: txn_id.clone(),
                    outcome: None,
                }),
                *left,
            )),
            _ => None,
        }
    }

    /// `n` messages went in the open transaction.
    pub(crate) fn sent(&mut self, n: u64) {
        if let Phase::Open { left, .. } = &mut self.phase {
            *left = left.saturating_sub(n);
        }
    }

    /// No transaction open or waiting for its answer.
    pub(crate) fn idle(&self) -> bool {
        matches!(self.phase, Phase::Idle)
    }

    /// Moves the transaction on: declares when idle and `more` messages are to go, commits
    /// when the open one is full or `more` is false. Errs when the coordinator cannot take it.
    pub(crate) fn step(
        &mut self,
        engine: &mut Connection,
        more: bool,
        now: std::time::Instant,
    ) -> Result<(), String> {
        let Some(link) = self.link else {
            return Ok(());
        };
        if engine.sendable(link) == 0 {
            return Ok(());
        }
        let (body, next): (Bytes, fn(u32, u64) -> Phase) = match &self.phase {
            Phase::Idle if more => (control(&Declare::default()), |id, _| Phase::Declaring(id)),
            Phase::Open { txn_id, left } if *left == 0 || !more => (
                control(&Discharge {
                    txn_id: txn_id.clone(),
                    fail: Some(false),
                }),
                |id, messages| Phase::Discharging { id, messages },
            ),
            _ => return Ok(()),
        };
        let messages = match &self.phase {
            Phase::Open { left, .. } => self.batch - left,
            _ => 0,
        };
        let tag = DeliveryTag::from_u64(self.next_tag);
        self.next_tag += 1;
        let id = engine
            .send(link, tag, &body, false, now)
            .map_err(|e| format!("the coordinator took no control message: {e}"))?;
        self.phase = next(id, messages);
        Ok(())
    }

    /// A disposition of deliveries `first..=last` from the broker.
    pub(crate) fn on_disposition(
        &mut self,
        first: u32,
        last: u32,
        state: Option<&DeliveryState>,
    ) -> Answer {
        let ours = |id: u32| id.wrapping_sub(first) <= last.wrapping_sub(first);
        match (&self.phase, state) {
            (Phase::Declaring(id), Some(DeliveryState::Declared(d))) if ours(*id) => {
                self.phase = Phase::Open {
                    txn_id: d.txn_id.clone(),
                    left: self.batch,
                };
                Answer::Handled
            }
            (Phase::Discharging { id, messages }, Some(DeliveryState::Accepted(_)))
                if ours(*id) =>
            {
                self.commits += 1;
                self.committed += messages;
                self.phase = Phase::Idle;
                Answer::Handled
            }
            (Phase::Declaring(id) | Phase::Discharging { id, .. }, other) if ours(*id) => {
                Answer::Failed(format!("the coordinator answered {other:?}"))
            }
            _ => Answer::NotOurs,
        }
    }
}

/// Whether a delivery state is an accepted outcome, plain or transactional.
pub(crate) fn is_accepted(state: Option<&DeliveryState>) -> bool {
    match state {
        Some(DeliveryState::Accepted(_)) => true,
        Some(DeliveryState::TransactionalState(t)) => t
            .outcome
            .as_deref()
            .is_some_and(|o| matches!(o, sluice_codec::transport::Outcome::Accepted(_))),
        _ => false,
    }
}

/// A coordinator control message: `value` as the message's amqp-value body.
fn control<T: Encode>(value: &T) -> Bytes {
    let encoded = value.to_bytes().freeze();
    let body = decode_value(&encoded).map_or(Body::Empty, Body::Value);
    Message {
        body,
        ..Default::default()
    }
    .to_bytes()
    .freeze()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use sluice_codec::composite::decode_composite;
    use sluice_codec::types::Decoder;

    #[test]
    fn a_declare_is_a_message_whose_value_is_the_declare() {
        let bytes = control(&Declare::default());
        let message = Message::decode(&bytes).unwrap();
        let Body::Value(value) = message.body else {
            panic!("{:?}", message.body)
        };
        let encoded = value.to_bytes().freeze();
        let mut d = Decoder::new(&encoded);
        let declare = decode_composite::<Declare>(&mut d, "declare")
            .unwrap()
            .unwrap();
        assert_eq!(declare, Declare::default());
    }
}
