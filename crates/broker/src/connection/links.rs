//! The links of a connection: one entry per link, holding everything the connection keeps for
//! it, so a link that goes takes all of it at once.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use sluice_codec::transport::Attach;
use sluice_engine::{LinkId, SessionId};

use crate::core::Route;

/// What a link attached on this connection is bound to.
#[derive(Debug)]
pub(super) enum Binding {
    /// The client publishes along a fixed route; its credit follows the core's answers.
    Publisher(Route),
    /// The client publishes to an anycast address; its credit comes from the core, as
    /// receivers grant theirs.
    AnycastSender(Route),
    /// The client sends with a null target address: each message goes where its `to` says
    /// (the `ANONYMOUS-RELAY` capability).
    Relay,
    /// The client receives; the core knows from what.
    Receiver,
    /// The client sends `$cbs` put-token requests; the connection answers them itself.
    CbsRequests,
    /// The client receives the `$cbs` answers.
    CbsReplies,
    /// The client sends `$management` requests ([`super::manage`]).
    ManageRequests,
    /// The client receives the `$management` answers.
    ManageReplies,
    /// The client declares and discharges transactions ([`super::txn`]).
    Coordinator,
}

/// What a link was authorized for at attach, so a change of rights (a reload, an expired
/// token) can check it again.
#[derive(Debug, Clone)]
pub(super) struct Authorized {
    /// The address, or none for an anonymous relay (each message's `to` is checked).
    pub(super) address: Option<Arc<str>>,
    /// Whether the client sends (else receives).
    pub(super) send: bool,
}

/// One link.
#[derive(Debug)]
pub(super) struct LinkEntry {
    pub(super) binding: Binding,
    /// What it was authorized for.
    pub(super) authorized: Authorized,
    /// A receiver's attach reply, sent once the core has subscribed it.
    pub(super) reply: Option<Attach>,
    /// A publisher's publishes the core has not answered yet.
    pub(super) unanswered: u32,
    /// A receiver that asked for settled deliveries (`snd-settle-mode: settled`).
    pub(super) presettled: bool,
    /// A receiver whose client left too much unsettled (or closed its session window): the
    /// core was told its credit is 0 until there is room again. The value is the drain flag
    /// of the client's latest flow, passed on with the credit then. Set through
    /// [`Links::set_stalled`], which counts them.
    stalled: Option<bool>,
    /// The link in the metrics' link count, while it lives.
    pub(super) counted: Option<crate::telemetry::metrics::LinkGauge>,
    /// The configured node it is bound to (none: a relay, a temporary queue, `$cbs`): a
    /// reload that removes it detaches the link.
    pub(super) node: Option<crate::core::NodeId>,
}

impl LinkEntry {
    pub(super) fn new(binding: Binding, authorized: Authorized) -> Self {
        LinkEntry {
            binding,
            authorized,
            reply: None,
            unanswered: 0,
            presettled: false,
            stalled: None,
            counted: None,
            node: None,
        }
    }

    pub(super) fn is_stalled(&self) -> bool {
        self.stalled.is_some()
    }

    /// Whether it is a `$cbs` link, which the core never hears of.
    pub(super) fn is_cbs(&self) -> bool {
        matches!(self.binding, Binding::CbsRequests | Binding::CbsReplies)
    }

    /// Whether it is a `$management` link, which the core never hears of.
    pub(super) fn is_manage(&self) -> bool {
        matches!(
            self.binding,
            Binding::ManageRequests | Binding::ManageReplies
        )
    }

    pub(super) fn is_receiver(&self) -> bool {
        matches!(self.binding, Binding::Receiver)
    }

    /// Whether its credit follows the core's answers (publishers and relays).
    pub(super) fn is_publisher(&self) -> bool {
        matches!(self.binding, Binding::Publisher(_) | Binding::Relay)
    }
}

/// Every link of the connection.
#[derive(Debug, Default)]
pub(super) struct Links {
    links: FxHashMap<LinkId, LinkEntry>,
    /// How many receivers are stalled, so a wake-up without any costs nothing.
    stalled: usize,
    /// Links the client sends on, and receives on: each counted against its per-connection
    /// limit.
    senders: u32,
    receivers: u32,
}

impl Links {
    pub(super) fn get(&self, link: LinkId) -> Option<&LinkEntry> {
        self.links.get(&link)
    }

    pub(super) fn get_mut(&mut self, link: LinkId) -> Option<&mut LinkEntry> {
        self.links.get_mut(&link)
    }

    pub(super) fn insert(&mut self, link: LinkId, entry: LinkEntry) {
        self.count(&entry, true);
        if let Some(old) = self.links.insert(link, entry) {
            self.count(&old, false);
        }
    }

    fn count(&mut self, entry: &LinkEntry, add: bool) {
        let n = if entry.authorized.send {
            &mut self.senders
        } else {
            &mut self.receivers
        };
        *n = if add { *n + 1 } else { n.saturating_sub(1) };
    }

    /// Links the client sends on, and receives on.
    pub(super) fn counts(&self) -> (u32, u32) {
        (self.senders, self.receivers)
    }

    /// Every link with what it was authorized for.
    /// The links bound to configured nodes: their node and what they were authorized for.
    pub(super) fn bound(&self) -> Vec<(LinkId, crate::core::NodeId, Authorized)> {
        self.links
            .iter()
            .filter_map(|(l, e)| Some((*l, e.node?, e.authorized.clone())))
            .collect()
    }

    pub(super) fn authorized(&self) -> Vec<(LinkId, Authorized)> {
        self.links
            .iter()
            .map(|(l, e)| (*l, e.authorized.clone()))
            .collect()
    }

    pub(super) fn remove(&mut self, link: LinkId) -> Option<LinkEntry> {
        let entry = self.links.remove(&link)?;
        self.count(&entry, false);
        if entry.stalled.is_some() {
            self.stalled -= 1;
        }
        Some(entry)
    }

    /// Marks a receiver stalled (with the drain flag to pass on later), or not; whether it
    /// was stalled before.
    pub(super) fn set_stalled(&mut self, link: LinkId, stalled: Option<bool>) -> bool {
        let Some(entry) = self.links.get_mut(&link) else {
            return false;
        };
        let was = std::mem::replace(&mut entry.stalled, stalled).is_some();
        match (was, stalled.is_some()) {
            (false, true) => self.stalled += 1,
            (true, false) => self.stalled -= 1,
            _ => {}
        }
        was
    }

    /// The links of `session`.
    pub(super) fn of_session(&self, session: SessionId) -> Vec<LinkId> {
        self.links
            .keys()
            .filter(|l| l.session == session)
            .copied()
            .collect()
    }

    /// The stalled receivers, with the drain flag each waits to pass on.
    pub(super) fn stalled(&self) -> Vec<(LinkId, bool)> {
        if self.stalled == 0 {
            return Vec::new();
        }
        self.links
            .iter()
            .filter_map(|(link, e)| e.stalled.map(|drain| (*link, drain)))
            .collect()
    }
}
