//! A sending connection: one session, one link, messages as fast as credit allows or at a
//! paced rate; with unsettled sends it waits for every outcome before closing, timing each
//! from its send to the peer's accepting it (the confirm latency). With `--txn-batch` the
//! messages go in transactions of that many (`crate::txn`).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use hdrhistogram::Histogram;
use sluice_codec::messaging::{Source, Target};
use sluice_codec::transport::{
    Attach, AttachTarget, DeliveryState, DeliveryTag, ReceiverSettleMode, Role as LinkRole,
    SenderSettleMode,
};
use sluice_engine::{Connection, Event, LinkId};

use crate::confirm::Confirms;
use crate::driver::{Role, describe};
use crate::message::Template;
use crate::pace::Pacer;
use crate::report::latency_histogram;
use crate::run::Shared;
use crate::txn::{Answer, TxnSender, is_accepted};

/// Most messages sent per wake-up, so reads (dispositions, flow) are not starved.
const BATCH: u32 = 256;

/// Output bytes after which a wake-up stops sending and writes: large bodies go out in
/// pieces through the engine's reused buffer instead of one buffer of megabytes a batch.
const WRITE_CHUNK: usize = 256 * 1024;

/// When sending stops.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Until {
    /// After this many messages.
    Count(u64),
    /// At this instant.
    Time(Instant),
}

/// What a sender did.
#[derive(Debug, Clone)]
pub(crate) struct SenderStats {
    pub(crate) sent: u64,
    /// Sent after the warm-up.
    pub(crate) measured: u64,
    pub(crate) last_send: Option<Instant>,
    pub(crate) accepted: u64,
    /// Outcomes other than accepted, by name.
    pub(crate) refused: Vec<(String, u64)>,
    /// Confirm latency of measured messages (sent unsettled, then accepted), microseconds.
    pub(crate) confirm: Histogram<u64>,
    pub(crate) errors: Vec<String>,
    /// Transactions committed (with `--txn-batch`).
    pub(crate) commits: u64,
}

impl SenderStats {
    fn new() -> Self {
        SenderStats {
            sent: 0,
            measured: 0,
            last_send: None,
            accepted: 0,
            refused: Vec::new(),
            confirm: latency_histogram(),
            errors: Vec::new(),
            commits: 0,
        }
    }
}

pub(crate) struct Sender {
    address: String,
    /// Put in the top 16 bits of every sequence number.
    index: u64,
    presettled: bool,
    template: Template,
    pacer: Option<Pacer>,
    epoch: Instant,
    warm_end: Instant,
    until: Until,
    link: Option<LinkId>,
    settled: u64,
    /// Send times of the deliveries waiting for their outcome.
    confirms: Confirms,
    /// Paced: the broker's credit left due messages unsent at the last wake-up.
    held_back: bool,
    done_sending: bool,
    stopped: bool,
    /// Counters every connection of the run shares.
    shared: Arc<Shared>,
    /// Transactional sends: the coordinator and the open transaction.
    txn: Option<TxnSender>,
    pub(crate) stats: SenderStats,
}

impl Sender {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        address: String,
        index: u64,
        presettled: bool,
        template: Template,
        pacer: Option<Pacer>,
        epoch: Instant,
        warm_end: Instant,
        until: Until,
        shared: Arc<Shared>,
    ) -> Self {
        Sender {
            address,
            index,
            presettled,
            template,
            pacer,
            epoch,
            warm_end,
            until,
            link: None,
            settled: 0,
            confirms: Confirms::new(),
            held_back: false,
            done_sending: false,
            stopped: false,
            shared,
            txn: None,
            stats: SenderStats::new(),
        }
    }

    /// Sends in transactions of `batch` messages.
    pub(crate) fn transactional(mut self, batch: Option<u32>) -> Self {
        self.txn = batch.map(TxnSender::new);
        self
    }

    fn attach(&mut self, engine: &mut Connection, now: Instant) {
        let session = match engine.begin(now) {
            Ok(s) => s,
            Err(e) => return self.error(format!("cannot begin a session: {e}")),
        };
        let attach = Attach {
            name: format!("sluice-bench-sender-{}", self.index)
                .as_str()
                .into(),
            role: LinkRole::Sender,
            snd_settle_mode: if self.presettled {
                SenderSettleMode::Settled
            } else {
                SenderSettleMode::Unsettled
            },
            rcv_settle_mode: ReceiverSettleMode::First,
            source: Some(Source::default()),
            target: Some(AttachTarget::Target(Target {
                address: Some(self.address.as_str().into()),
                ..Default::default()
            })),
            ..Default::default()
        };
        match engine.attach(session, attach, now) {
            Ok(link) => self.link = Some(link),
            Err(e) => return self.error(format!("cannot attach to '{}': {e}", self.address)),
        }
        if let Some(txn) = self.txn.as_mut()
            && let Err(e) = txn.attach(engine, session, self.index, now)
        {
            self.error(e);
        }
    }

    fn record_outcome(&mut self, count: u64, state: Option<&DeliveryState>) {
        self.settled += count;
        match state {
            s if is_accepted(s) => self.stats.accepted += count,
            other => {
                let name = match other {
                    Some(DeliveryState::Rejected(_)) => "rejected",
                    Some(DeliveryState::Released(_)) => "released",
                    Some(DeliveryState::Modified(_)) => "modified",
                    _ => "settled without an outcome",
                };
                match self.stats.refused.iter_mut().find(|(n, _)| n == name) {
                    Some((_, c)) => *c += count,
                    None => self.stats.refused.push((name.to_string(), count)),
                }
            }
        }
    }

    /// `at` in nanoseconds since the run's epoch, the clock message trailers use.
    fn nanos(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.epoch).as_nanos() as u64
    }

    fn sending_over(&self, now: Instant) -> bool {
        match self.until {
            Until::Count(n) => self.stats.sent >= n,
            Until::Time(at) => now >= at,
        }
    }
}

impl Role for Sender {
    fn on_event(&mut self, engine: &mut Connection, event: Event, now: Instant) {
        match event {
            Event::Opened { .. } => self.attach(engine, now),
            Event::LinkAttached {
                attach,
                remote_first: false,
                ..
            } if attach.target.is_none() => {
                // A refusal: the detach with its reason follows.
                self.done_sending = true;
            }
            Event::LinkDetached { error, .. } => {
                let why = error.as_ref().map_or("no reason given".into(), describe);
                self.error(format!("'{}' detached the sender: {why}", self.address));
            }
            Event::SessionEnded { error: Some(e), .. } => {
                self.error(format!("the session ended: {}", describe(&e)));
            }
            Event::Disposition {
                role: LinkRole::Receiver,
                first,
                last,
                settled: true,
                state,
                ..
            } => {
                if let Some(txn) = self.txn.as_mut() {
                    match txn.on_disposition(first, last, state.as_ref()) {
                        Answer::NotOurs => {}
                        Answer::Handled => {
                            self.stats.commits = txn.commits;
                            return;
                        }
                        Answer::Failed(why) => return self.error(why),
                    }
                }
                let count = u64::from(last.wrapping_sub(first)) + 1;
                self.shared.settled.fetch_add(count, Ordering::Relaxed);
                let accepted = is_accepted(state.as_ref());
                self.confirms.settled(
                    first,
                    last,
                    accepted,
                    self.nanos(now),
                    self.nanos(self.warm_end),
                    &mut self.stats.confirm,
                );
                self.record_outcome(count, state.as_ref());
            }
            _ => {}
        }
    }

    fn pump(&mut self, engine: &mut Connection, now: Instant) -> Option<Instant> {
        let link = self.link?;
        if self.done_sending || self.stopped {
            return None;
        }
        let over = self.sending_over(now);
        // Transactional: messages go only into an open transaction, and sending is done once
        // the last one is committed.
        let mut txn_state = None;
        let mut txn_room = u64::MAX;
        if let Some(txn) = self.txn.as_mut() {
            if let Err(e) = txn.step(engine, !over, now) {
                self.error(e);
                return None;
            }
            match txn.open() {
                Some((state, left)) if !over => {
                    txn_state = Some(state);
                    txn_room = left;
                }
                _ => {
                    self.done_sending = over && txn.idle();
                    return None;
                }
            }
        } else if over {
            self.done_sending = true;
            return None;
        }
        let credit = u64::from(engine.sendable(link));
        let mut room = credit.min(u64::from(BATCH)).min(txn_room);
        let due = self
            .pacer
            .map(|p| p.due_by(now).saturating_sub(self.stats.sent));
        if let Some(due) = due {
            room = room.min(due);
        }
        if let Until::Count(n) = self.until {
            room = room.min(n - self.stats.sent);
        }
        let sent_ns = self.nanos(now);
        let measured = now >= self.warm_end;
        let before = self.stats.sent;
        for _ in 0..room {
            let n = self.stats.sent;
            // Paced: a message that waited for credit is timed from when it was due (the
            // broker held it back: coordinated omission); one that only waited for our timer
            // (1 ms granularity) is timed from now, so the harness's lateness is not charged.
            let stamp = match &self.pacer {
                Some(p) if self.held_back => {
                    p.due_at(n).duration_since(self.epoch).as_nanos() as u64
                }
                _ => sent_ns,
            };
            let payload = self.template.fill(self.index << 48 | n, stamp);
            let Ok(id) = engine.send_in_state(
                link,
                DeliveryTag::from_u64(n),
                payload,
                self.presettled,
                txn_state.clone(),
                now,
            ) else {
                break;
            };
            if !self.presettled {
                // Timed from the send itself, not from when a paced message was due: the
                // confirm is the broker's part alone.
                self.confirms.sent(id, sent_ns);
            }
            self.stats.sent += 1;
            if engine.output_len() >= WRITE_CHUNK {
                break;
            }
        }
        let just_sent = self.stats.sent - before;
        let more = !self.sending_over(now);
        if let Some(txn) = self.txn.as_mut() {
            txn.sent(just_sent);
            // A transaction just filled commits in this wake-up, not the next.
            if let Err(e) = txn.step(engine, more, now) {
                self.error(e);
                return None;
            }
        }
        if let Some(due) = due {
            // Held back: messages are due that credit did not let go.
            self.held_back = due > just_sent && credit < due.min(u64::from(BATCH));
        }
        if just_sent > 0 {
            self.shared.sent.fetch_add(just_sent, Ordering::Relaxed);
            self.stats.last_send = Some(now);
            if measured {
                self.stats.measured += just_sent;
            }
        }
        if self.sending_over(now) {
            // A transactional sender is done once its last commit is answered.
            self.done_sending = self.txn.is_none();
            return None;
        }
        // More may go at once (a full batch), at the next paced message, or when time is up.
        let next_paced = self.pacer.map(|p| p.due_at(self.stats.sent));
        let end = match self.until {
            Until::Time(at) => Some(at),
            Until::Count(_) => None,
        };
        if just_sent == u64::from(BATCH) || engine.output_len() >= WRITE_CHUNK {
            return Some(now);
        }
        match (next_paced, end) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn finished(&self) -> bool {
        self.stopped || (self.done_sending && (self.presettled || self.settled >= self.stats.sent))
    }

    fn stop(&mut self) {
        self.stopped = true;
    }

    fn error(&mut self, what: String) {
        self.done_sending = true;
        self.stats.errors.push(what);
    }
}
