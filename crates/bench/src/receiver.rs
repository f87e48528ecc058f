//! A receiving connection: as a client it attaches to an address; as the peer-to-peer server it
//! accepts whatever senders attach. It records each message's latency, accepts what arrives
//! unsettled (one ranged disposition per wake-up) and keeps its credit window topped up.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use hdrhistogram::Histogram;
use sluice_codec::SaslCode;
use sluice_codec::messaging::{Source, Target};
use sluice_codec::transport::{
    Accepted, Attach, ReceiverSettleMode, Role as LinkRole, SenderSettleMode,
};
use sluice_codec::types::{Described, Symbol, Value};
use sluice_engine::{Connection, Event, LinkId, SessionId};

use crate::driver::{Role, describe};
use crate::message::trailer;
use crate::report::{latency_histogram, record_latency};
use crate::run::Shared;

/// What receivers saw.
#[derive(Debug, Clone)]
pub(crate) struct ReceiverStats {
    pub(crate) received: u64,
    /// Received that were sent after the warm-up.
    pub(crate) measured: u64,
    pub(crate) first_measured: Option<Instant>,
    pub(crate) last_received: Option<Instant>,
    /// End-to-end latency of measured messages, microseconds.
    pub(crate) latency: Histogram<u64>,
    pub(crate) errors: Vec<String>,
}

impl ReceiverStats {
    pub(crate) fn new() -> Self {
        ReceiverStats {
            received: 0,
            measured: 0,
            first_measured: None,
            last_received: None,
            latency: latency_histogram(),
            errors: Vec::new(),
        }
    }

    /// Adds `other` into this one.
    pub(crate) fn merge(&mut self, other: &ReceiverStats) {
        self.received += other.received;
        self.measured += other.measured;
        self.first_measured = earliest(self.first_measured, other.first_measured);
        self.last_received = latest(self.last_received, other.last_received);
        let _ = self.latency.add(&other.latency);
        self.errors.extend(other.errors.iter().cloned());
    }
}

/// A source's filter map holding one JMS selector (`apache.org:selector-filter:string`).
pub(crate) fn selector_filter(selector: &str) -> Vec<(Symbol, Value)> {
    let value = Value::Described(Box::new(Described {
        descriptor: Value::Symbol(Symbol::from_static("apache.org:selector-filter:string")),
        value: Value::String(selector.into()),
    }));
    vec![(Symbol::from_static("jms-selector"), value)]
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn latest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// Whether the receiver attaches (client) or accepts senders' links (peer-to-peer server).
pub(crate) enum Mode {
    Client {
        address: String,
        index: usize,
        /// A JMS selector the receiver's source filters by.
        selector: Option<String>,
    },
    Server,
}

pub(crate) struct Receiver {
    mode: Mode,
    window: u32,
    epoch: Instant,
    links: Vec<LinkId>,
    /// Deliveries to accept, per session: the contiguous range of delivery ids growing now.
    pending: HashMap<SessionId, (u32, u32)>,
    /// Finished ranges to accept at the end of this wake-up.
    flush: Vec<(SessionId, u32, u32)>,
    /// How much of `stats.received` has been added to `progress`.
    reported: u64,
    stopped: bool,
    /// Counters every connection of the run shares.
    shared: Arc<Shared>,
    pub(crate) stats: ReceiverStats,
}

impl Receiver {
    pub(crate) fn new(mode: Mode, window: u32, epoch: Instant, shared: Arc<Shared>) -> Self {
        Receiver {
            mode,
            window,
            epoch,
            links: Vec::new(),
            pending: HashMap::new(),
            flush: Vec::new(),
            reported: 0,
            stopped: false,
            shared,
            stats: ReceiverStats::new(),
        }
    }

    fn attach(&mut self, engine: &mut Connection, now: Instant) {
        let Mode::Client {
            address,
            index,
            selector,
        } = &self.mode
        else {
            return;
        };
        let session = match engine.begin(now) {
            Ok(s) => s,
            Err(e) => return self.error(format!("cannot begin a session: {e}")),
        };
        let attach = Attach {
            name: format!("sluice-bench-receiver-{index}").as_str().into(),
            role: LinkRole::Receiver,
            snd_settle_mode: SenderSettleMode::Mixed,
            rcv_settle_mode: ReceiverSettleMode::First,
            source: Some(Source {
                address: Some(address.as_str().into()),
                filter: selector.as_deref().map(selector_filter),
                ..Default::default()
            }),
            target: Some(Target::default().into()),
            ..Default::default()
        };
        if let Err(e) = engine.attach(session, attach, now) {
            let address = address.clone();
            self.error(format!("cannot attach to '{address}': {e}"));
        }
    }

    fn on_delivery(&mut self, link: LinkId, id: u32, settled: bool, payload: &[u8], now: Instant) {
        self.stats.received += 1;
        self.stats.last_received = Some(now);
        if let Some((_, sent_ns)) = trailer(payload)
            && sent_ns >= self.shared.warm_end_ns.load(Ordering::Relaxed)
        {
            let now_ns = now.duration_since(self.epoch).as_nanos() as u64;
            let micros = now_ns.saturating_sub(sent_ns) / 1000;
            record_latency(&mut self.stats.latency, micros);
            self.stats.measured += 1;
            self.stats.first_measured.get_or_insert(now);
        }
        if settled {
            return;
        }
        let session = link.session;
        match self.pending.get_mut(&session) {
            Some((_, last)) if last.wrapping_add(1) == id => *last = id,
            Some(range) => {
                let (first, last) = *range;
                *range = (id, id);
                self.flush.push((session, first, last));
            }
            None => {
                self.pending.insert(session, (id, id));
            }
        }
    }
}

impl Role for Receiver {
    fn on_event(&mut self, engine: &mut Connection, event: Event, now: Instant) {
        match event {
            Event::SaslInit { .. } | Event::SaslResponse { .. } => {
                engine.sasl_outcome(SaslCode::Ok, now);
            }
            Event::Opened { .. } => self.attach(engine, now),
            // Peer-to-peer: a sender attached to us.
            Event::LinkAttached {
                link,
                attach,
                remote_first: true,
            } if attach.role == LinkRole::Sender => {
                let reply = Attach {
                    name: attach.name.clone(),
                    role: LinkRole::Receiver,
                    source: attach.source.clone(),
                    target: attach.target.clone(),
                    ..Default::default()
                };
                engine.accept_link(link, reply, now);
                engine.grant_credit(link, self.window, false, now);
                self.links.push(link);
            }
            // Our attach answered; without a source it is a refusal, whose detach follows.
            Event::LinkAttached {
                link,
                attach,
                remote_first: false,
            } if attach.source.is_some() => {
                engine.grant_credit(link, self.window, false, now);
                self.links.push(link);
                self.shared.ready.fetch_add(1, Ordering::Relaxed);
            }
            Event::LinkDetached { link, error, .. } => {
                // No more flows for a link that is gone.
                self.links.retain(|l| *l != link);
                if let Some(e) = error {
                    self.error(format!("the receiver was detached: {}", describe(&e)));
                }
            }
            Event::SessionEnded { error: Some(e), .. } => {
                self.error(format!("the session ended: {}", describe(&e)));
            }
            Event::Delivery {
                link,
                delivery_id,
                settled,
                payload,
                ..
            } => self.on_delivery(link, delivery_id, settled, &payload, now),
            _ => {}
        }
    }

    fn pump(&mut self, engine: &mut Connection, now: Instant) -> Option<Instant> {
        let open = self
            .pending
            .drain()
            .map(|(s, (first, last))| (s, first, last));
        for (session, first, last) in self.flush.drain(..).chain(open) {
            engine.disposition(
                session,
                LinkRole::Receiver,
                first,
                last,
                true,
                Some(Accepted {}.into()),
                now,
            );
        }
        // Top the window up once half is used, so flows are not sent per message.
        for link in &self.links {
            if engine.credit(*link) <= self.window / 2 {
                engine.grant_credit(*link, self.window, false, now);
            }
        }
        let received = self.stats.received;
        let reported = self.reported;
        if received > reported {
            self.shared
                .received
                .fetch_add(received - reported, Ordering::Relaxed);
            self.reported = received;
        }
        None
    }

    fn finished(&self) -> bool {
        self.stopped
    }

    fn stop(&mut self) {
        self.stopped = true;
    }

    fn error(&mut self, what: String) {
        if self.stats.errors.is_empty() {
            self.shared.failed.fetch_add(1, Ordering::Relaxed);
        }
        self.stats.errors.push(what);
        // A receiver that failed takes nothing more: the run ends without waiting for it.
        self.stopped = true;
    }
}
