//! Messages in and out of a connection, and their settlement: publishes the client sends and
//! the core's answers to them, deliveries the core hands the client and the client's outcomes
//! for them, and the credit of both directions.

use std::time::Instant;

use bytes::Bytes;
use sluice_codec::messaging::ScannedMessage;
use sluice_codec::transport::{
    Accepted, DeliveryState, DeliveryTag, Modified, Rejected, Released, Role,
};
use sluice_engine::{LinkId, SendError, SessionId};
use sluice_store::MessageId;

use super::links::Binding;
use super::{State, WRITE_CHUNK};
use crate::core::{Attached, Command, Route, ToConn};
use crate::error::Refusal;

impl State {
    /// A whole message from the client on `link`: scanned (here, so scanning runs on every
    /// worker) and routed, or refused.
    pub(super) fn on_delivery(
        &mut self,
        link: LinkId,
        delivery_id: u32,
        settled: bool,
        state: Option<DeliveryState>,
        payload: Bytes,
        now: Instant,
    ) {
        let settle = (!settled).then_some((link.session, delivery_id));
        let Some(entry) = self.links.get(link) else {
            return;
        };
        match entry.binding {
            Binding::CbsRequests => {
                return self.on_cbs_request(link, delivery_id, settled, payload, now);
            }
            Binding::Coordinator => {
                return self.on_coordinator_request(link, delivery_id, payload, now);
            }
            Binding::ManageRequests => {
                return self.on_manage_request(link, delivery_id, settled, payload, now);
            }
            _ => {}
        }
        let txn_id = match state {
            Some(DeliveryState::TransactionalState(t)) => Some(t.txn_id),
            _ => None,
        };
        let routed = ScannedMessage::scan(payload)
            .map(Box::new)
            .map_err(Refusal::from)
            .and_then(|message| {
                let route = match &entry.binding {
                    Binding::Publisher(route) | Binding::AnycastSender(route) => route.clone(),
                    Binding::Relay => self.relay_route(&message)?,
                    Binding::Receiver
                    | Binding::CbsReplies
                    | Binding::CbsRequests
                    | Binding::ManageRequests
                    | Binding::ManageReplies
                    | Binding::Coordinator => {
                        return Err(Refusal::WrongDirection);
                    }
                };
                Ok((route, message))
            });
        match (routed, txn_id) {
            (Ok((route, message)), Some(txn_id)) => {
                if let Err(error) = self.hold_publish(&txn_id, route, message, settle, now) {
                    self.detach_with(link, error, now);
                    return;
                }
            }
            (Ok((route, message)), None) => self.publish(link, route, message, settle),
            // A sender that settled its message hears nothing: it chose not to.
            (Err(refusal), _) => {
                if let Some((session, id)) = settle {
                    let state = DeliveryState::Rejected(Rejected {
                        error: Some(Box::new(refusal.to_amqp())),
                    });
                    self.settle_received(session, (id, id), state, now);
                }
            }
        }
        self.top_up(link, now);
    }

    fn publish(
        &mut self,
        link: LinkId,
        route: Route,
        message: Box<ScannedMessage>,
        settle: Option<(SessionId, u32)>,
    ) {
        if let Some(entry) = self.links.get_mut(link) {
            entry.unanswered += 1;
        }
        self.push(Command::Publish {
            link,
            route,
            message,
            settle,
        });
    }

    /// The client's credit for a receiver: passed to the core, unless the link is stalled
    /// (then only its drain flag is kept for when it resumes).
    pub(super) fn on_credit(&mut self, link: LinkId, credit: u32, drain: bool) {
        match self.links.get(link) {
            Some(entry) if entry.is_stalled() => {
                self.links.set_stalled(link, Some(drain));
            }
            Some(entry) if entry.is_receiver() => self.push(Command::Credit {
                link,
                credit,
                drain,
            }),
            _ => {}
        }
    }

    /// Gives the core back the credit of stalled links that have room again.
    pub(super) fn resume_stalled(&mut self) {
        for (link, drain) in self.links.stalled() {
            if self.engine.sendable(link) > 0 {
                self.links.set_stalled(link, None);
                self.push(Command::Credit {
                    link,
                    credit: self.engine.credit(link),
                    drain,
                });
            }
        }
    }

    /// Keeps a publishing link's credit plus what the core has not answered at
    /// the link capacity, refilling once half is used so flows are not sent per message.
    /// Anycast senders get their credit from the core instead.
    fn top_up(&mut self, link: LinkId, now: Instant) {
        let Some(entry) = self.links.get(link).filter(|e| e.is_publisher()) else {
            return;
        };
        let unanswered = entry.unanswered;
        let capacity = self.serving.link_capacity;
        if self.engine.credit(link) + unanswered <= capacity / 2 {
            let credit = capacity.saturating_sub(unanswered);
            self.engine.grant_credit(link, credit, false, now);
        }
    }

    /// The client's outcome for deliveries `first..=last` we sent on `session`.
    pub(super) fn on_disposition(
        &mut self,
        session: SessionId,
        (first, last): (u32, u32),
        settled: bool,
        state: Option<DeliveryState>,
        now: Instant,
    ) {
        let (txn_id, state) = match state {
            Some(DeliveryState::TransactionalState(t)) => {
                let outcome = t.outcome.map_or(DeliveryState::Accepted(Accepted {}), |o| {
                    DeliveryState::from(*o)
                });
                (Some(t.txn_id), Some(outcome))
            }
            other => (None, other),
        };
        let state = match state {
            Some(
                s @ (DeliveryState::Accepted(_)
                | DeliveryState::Released(_)
                | DeliveryState::Rejected(_)
                | DeliveryState::Modified(_)),
            ) => s,
            // Settled with no outcome: nothing says the message was processed, so it is offered
            // again rather than lost.
            _ if settled => DeliveryState::Released(Released {}),
            _ => return,
        };
        // A range wider than what is unsettled is walked through the map instead, so a peer's
        // `0..=u32::MAX` costs what we sent, not four billion steps.
        let width = u64::from(last.wrapping_sub(first)) + 1;
        let ids: Vec<(u16, u32)> = if width <= self.sent.len() as u64 {
            (0..width)
                .map(|i| (session.0, first.wrapping_add(i as u32)))
                .collect()
        } else {
            self.sent
                .keys()
                .filter(|(s, id)| *s == session.0 && u64::from(id.wrapping_sub(first)) < width)
                .copied()
                .collect()
        };
        // One command per run of the range on one link (usually the whole range).
        let mut run: Option<(LinkId, Vec<MessageId>)> = None;
        // A receiver in `rcv-settle-mode: second` states its outcome unsettled and waits for
        // us to settle (part 2 §2.6.12): each contiguous range it named that we knew is
        // settled back, with the outcome.
        let mut settle_back: Option<(u32, u32)> = None;
        for key in ids {
            let Some(&(link, message)) = self.sent.get(&key) else {
                continue;
            };
            if let Some(txn_id) = &txn_id
                && let Err(error) = self.hold_settle(link, txn_id, message, state.clone())
            {
                // Left in `sent`: the detach gives it back to the core.
                self.detach_with(link, error, now);
                continue;
            }
            self.sent.remove(&key);
            if txn_id.is_some() {
                if !settled {
                    let reply = super::txn::transactional_of(txn_id.as_ref(), &state);
                    self.settle_sent(session, (key.1, key.1), &reply, now);
                }
                continue;
            }
            if !settled {
                settle_back = match settle_back {
                    Some((a, b)) if b.wrapping_add(1) == key.1 => Some((a, key.1)),
                    Some((a, b)) => {
                        self.settle_sent(session, (a, b), &state, now);
                        Some((key.1, key.1))
                    }
                    None => Some((key.1, key.1)),
                };
            }
            match &mut run {
                Some((l, messages)) if *l == link => messages.push(message),
                _ => {
                    if let Some((l, messages)) = run.replace((link, vec![message])) {
                        self.push_settle(l, messages, state.clone());
                    }
                }
            }
        }
        if let Some(range) = settle_back {
            self.settle_sent(session, range, &state, now);
        }
        if let Some((link, messages)) = run {
            self.push_settle(link, messages, state);
        }
    }

    /// Settles deliveries we sent on `session`, confirming the receiver's outcome.
    fn settle_sent(
        &mut self,
        session: SessionId,
        (first, last): (u32, u32),
        state: &DeliveryState,
        now: Instant,
    ) {
        let state = Some(state.clone());
        self.engine
            .disposition(session, Role::Sender, first, last, true, state, now);
    }

    fn push_settle(&mut self, link: LinkId, messages: Vec<MessageId>, state: DeliveryState) {
        self.push(Command::Settle {
            link,
            messages,
            state,
        });
    }

    /// Applies the core's answers until the output holds [`WRITE_CHUNK`], then settles what
    /// they accepted; the rest wait for the next turn of the loop, after a write.
    pub(super) fn apply_answers(&mut self, now: Instant) {
        while let Some(answer) = self.answers.pop_front() {
            self.on_core_answer(answer, now);
            if self.engine.output_len() >= WRITE_CHUNK {
                break;
            }
        }
        self.flush_accepts(now);
    }

    /// Settles the deliveries `first..=last` the client sent us on `session`, with `state`.
    pub(super) fn settle_received(
        &mut self,
        session: SessionId,
        (first, last): (u32, u32),
        state: DeliveryState,
        now: Instant,
    ) {
        self.engine
            .disposition(session, Role::Receiver, first, last, true, Some(state), now);
    }

    /// Settles the range of accepted publishes gathered so far with one disposition.
    fn flush_accepts(&mut self, now: Instant) {
        if let Some((session, first, last)) = self.accepting.take() {
            let accepted = DeliveryState::Accepted(Accepted {});
            self.settle_received(session, (first, last), accepted, now);
        }
    }

    fn on_core_answer(&mut self, answer: ToConn, now: Instant) {
        match answer {
            ToConn::Deliver {
                link,
                message,
                payload,
                settled,
            } => self.deliver(link, message, payload, settled, now),
            ToConn::Published {
                link,
                settle,
                count,
                state,
            } => self.on_published(link, settle, count, state, now),
            ToConn::Attached { link, result } => self.on_attached(link, result, now),
            ToConn::Committed { discharge, result } => self.on_committed(discharge, result, now),
            ToConn::Drained { link } => self.engine.drained(link, now),
            ToConn::Exhausted { link } => self.engine.spend_credit(link, now),
            ToConn::Managed { answer } => self.on_managed(answer, now),
            ToConn::Credit { link, more } => {
                if matches!(
                    self.links.get(link).map(|e| &e.binding),
                    Some(Binding::AnycastSender(_))
                ) {
                    let credit = self.engine.credit(link).saturating_add(more);
                    self.engine.grant_credit(link, credit, false, now);
                }
            }
        }
    }

    /// Sends a delivery the core handed out, or gives it back when the client cannot take it.
    fn deliver(
        &mut self,
        link: LinkId,
        message: MessageId,
        payload: Bytes,
        settled: bool,
        now: Instant,
    ) {
        if settled {
            return self.deliver_settled(link, payload, now);
        }
        // A receiver that asked for `snd-settle-mode: settled` (at most once) gets the message
        // settled, and it counts as accepted at once.
        let presettled = self.links.get(link).is_some_and(|e| e.presettled);
        let sent = if presettled {
            self.send_settled(link, &payload, now)
        } else {
            let tag = DeliveryTag::from_u64(message.0);
            self.engine.send(link, tag, &payload, false, now)
        };
        match sent {
            Ok(_) if presettled => {
                self.push_settle(link, vec![message], DeliveryState::Accepted(Accepted {}));
            }
            Ok(delivery_id) => {
                self.sent
                    .insert((link.session.0, delivery_id), (link, message));
            }
            // The client cannot take this message on this link: offered elsewhere.
            Err(SendError::TooLarge { .. }) => {
                let refused = DeliveryState::Modified(Modified {
                    undeliverable_here: true,
                    ..Default::default()
                });
                self.push_settle(link, vec![message], refused);
            }
            // No room until the client settles or widens its window: the message goes back,
            // and the core gets no credit for the link until there is room.
            Err(SendError::TooManyUnsettled | SendError::WindowFull) => {
                self.push(Command::Unsent { link, message });
                if !self.links.set_stalled(link, Some(false)) {
                    self.push(Command::Credit {
                        link,
                        credit: 0,
                        drain: false,
                    });
                }
            }
            // The link went away or lost its credit meanwhile: the message goes back.
            Err(_) => self.push(Command::Unsent { link, message }),
        }
    }

    /// A pre-settled delivery: sent, or kept in order while the session window is closed. A
    /// receiver that left or ran out of credit misses it: multicast stores nothing.
    fn deliver_settled(&mut self, link: LinkId, payload: Bytes, now: Instant) {
        if !self.backlog.has(link) {
            match self.send_settled(link, &payload, now) {
                Err(SendError::WindowFull) => {}
                _ => return,
            }
        }
        // Past the connection's bound it is dropped, as for a receiver without credit.
        let _dropped = self.backlog.push(link, payload);
    }

    pub(super) fn send_settled(
        &mut self,
        link: LinkId,
        payload: &[u8],
        now: Instant,
    ) -> Result<u32, SendError> {
        self.next_tag += 1;
        let tag = DeliveryTag::from_u64(self.next_tag);
        self.engine.send(link, tag, payload, true, now)
    }

    /// Sends what waited for the session windows that opened since.
    pub(super) fn send_backlog(&mut self, now: Instant) {
        if self.backlog.is_empty() {
            return;
        }
        for link in self.backlog.links() {
            while let Some(payload) = self.backlog.front(link).cloned() {
                match self.send_settled(link, &payload, now) {
                    Err(SendError::WindowFull) => break,
                    // Sent, or the link can no longer take it (gone, out of credit): either
                    // way it leaves the backlog.
                    _ => self.backlog.pop(link),
                }
            }
        }
    }

    fn on_published(
        &mut self,
        link: LinkId,
        settle: Option<(SessionId, u32)>,
        count: u32,
        state: DeliveryState,
        now: Instant,
    ) {
        if let Some(entry) = self.links.get_mut(link) {
            entry.unanswered = entry.unanswered.saturating_sub(count);
        }
        if let Some((session, id)) = settle {
            let end = id.wrapping_add(count.saturating_sub(1));
            match (state, &mut self.accepting) {
                // The common case: consecutive accepts, settled with one range.
                (DeliveryState::Accepted(_), Some((s, _, last)))
                    if *s == session && last.wrapping_add(1) == id =>
                {
                    *last = end;
                }
                (DeliveryState::Accepted(_), _) => {
                    self.flush_accepts(now);
                    self.accepting = Some((session, id, end));
                }
                (state, _) => {
                    self.flush_accepts(now);
                    self.settle_received(session, (id, id), state, now);
                }
            }
        }
        self.top_up(link, now);
    }

    fn on_attached(
        &mut self,
        link: LinkId,
        result: Result<Attached, sluice_codec::transport::Error>,
        now: Instant,
    ) {
        let Some(reply) = self.links.get_mut(link).and_then(|e| e.reply.take()) else {
            return;
        };
        match result {
            Ok(attached) => {
                let mut reply = reply;
                if let Some(address) = attached.address {
                    let mut source = reply.source.take().unwrap_or_default();
                    source.address = Some(address.as_ref().into());
                    reply.source = Some(source);
                }
                self.engine.accept_link(link, reply, now);
            }
            Err(error) => {
                self.links.remove(link);
                self.log_refusal(reply.name.as_str(), &error);
                self.engine.refuse_link(link, error, now);
            }
        }
    }
}
