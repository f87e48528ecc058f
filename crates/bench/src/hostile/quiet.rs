//! A connection that begins one session, attaches receivers that never grant credit (or
//! none), and then only answers heartbeats: the idle connection of `idle-connections` and
//! the subscribers of `topic-subscribers`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use sluice_codec::messaging::{Source, Target};
use sluice_codec::transport::{Attach, ReceiverSettleMode, Role as LinkRole, SenderSettleMode};
use sluice_engine::{Connection, Event};

use crate::driver::{Role, describe};
use crate::receiver::selector_filter;
use crate::run::Shared;

/// Errors a connection keeps for the report: the first says what happened.
const ERRORS_KEPT: usize = 3;

pub(crate) struct Quiet {
    /// What the receivers attach to.
    address: String,
    /// Numbers of the receivers' link names: `first..first + links`.
    first: u32,
    links: u32,
    /// A JMS selector every receiver's source carries.
    selector: Option<String>,
    /// Counts, in `ready` and `failed`, what is ready: the session when there are no links,
    /// else each link.
    shared: Arc<Shared>,
    /// Of those, how many are neither ready nor failed yet.
    pending: u32,
    pub(crate) errors: Vec<String>,
    stopped: bool,
}

impl Quiet {
    /// A connection with receivers `first..first + links` on `address`.
    pub(crate) fn new(address: &str, first: u32, links: u32, shared: &Arc<Shared>) -> Self {
        Quiet {
            address: address.to_string(),
            first,
            links,
            selector: None,
            shared: shared.clone(),
            pending: links.max(1),
            errors: Vec::new(),
            stopped: false,
        }
    }

    /// Every receiver's source carries `selector`.
    pub(crate) fn selecting(mut self, selector: String) -> Self {
        self.selector = Some(selector);
        self
    }

    fn record(&mut self, what: String) {
        if self.errors.len() < ERRORS_KEPT {
            self.errors.push(what);
        }
    }

    fn settle_one(&mut self, ready: bool) {
        if self.pending == 0 {
            return;
        }
        self.pending -= 1;
        let counter = if ready {
            &self.shared.ready
        } else {
            &self.shared.failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// A receiver's attach to `address`.
pub(crate) fn receiver_attach(name: &str, address: &str) -> Attach {
    Attach {
        name: name.into(),
        role: LinkRole::Receiver,
        snd_settle_mode: SenderSettleMode::Unsettled,
        rcv_settle_mode: ReceiverSettleMode::First,
        source: Some(Source {
            address: Some(address.into()),
            ..Default::default()
        }),
        target: Some(Target::default().into()),
        ..Default::default()
    }
}

impl Role for Quiet {
    fn on_event(&mut self, engine: &mut Connection, event: Event, now: Instant) {
        match event {
            Event::Opened { .. } => {
                let session = match engine.begin(now) {
                    Ok(s) => s,
                    Err(e) => return self.error(format!("cannot begin a session: {e}")),
                };
                for i in self.first..self.first + self.links {
                    let name = format!("sluice-hostile-receiver-{i}");
                    let mut attach = receiver_attach(&name, &self.address);
                    if let (Some(text), Some(source)) = (&self.selector, attach.source.as_mut()) {
                        source.filter = Some(selector_filter(text));
                    }
                    if let Err(e) = engine.attach(session, attach, now) {
                        return self.error(format!("cannot attach: {e}"));
                    }
                }
            }
            Event::SessionBegun { .. } if self.links == 0 => self.settle_one(true),
            // No credit, ever. Without a source it is a refusal, whose detach follows.
            Event::LinkAttached {
                attach,
                remote_first: false,
                ..
            } if attach.source.is_some() => self.settle_one(true),
            Event::LinkDetached { error, .. } => {
                self.settle_one(false);
                let why = error.as_ref().map_or("no reason given".into(), describe);
                self.record(format!("a receiver was detached: {why}"));
            }
            Event::SessionEnded { error: Some(e), .. } => {
                self.error(format!("the session ended: {}", describe(&e)));
            }
            _ => {}
        }
    }

    fn pump(&mut self, _engine: &mut Connection, _now: Instant) -> Option<Instant> {
        None
    }

    fn finished(&self) -> bool {
        self.stopped
    }

    fn stop(&mut self) {
        self.stopped = true;
    }

    /// The connection failed: so did whatever was still pending.
    fn error(&mut self, what: String) {
        let pending = std::mem::take(&mut self.pending);
        self.shared
            .failed
            .fetch_add(pending as usize, Ordering::Relaxed);
        self.record(what);
    }
}
