//! Attaching links: an address resolves once, here, to the node it names, and the link is
//! bound to it (a sender's route, or a receiver's source in the core).

use std::sync::Arc;
use std::time::Instant;

use sluice_codec::messaging::ScannedMessage;
use sluice_codec::transport::{Attach, AttachTarget, ReceiverSettleMode, Role, SenderSettleMode};
use sluice_engine::LinkId;
use sluice_router::{Direction, NodeKind, Resolution};

use sluice_store::ConsumerOptions;

use super::State;
use super::filters::Consuming;
use super::links::{Authorized, Binding, LinkEntry};
use crate::core::{Command, Filter, NodeId, Route, Source, temporary_node};
use crate::error::Refusal;
use crate::telemetry::metrics::RELAY_LABEL;

/// Credit a publishing link is kept topped up to, counting the messages the core has not
/// answered yet, unless the infra config's `linkCapacity` says otherwise: enough to keep a
/// fast producer streaming, and the most the core holds for one link when a node holds
/// publishers back.
pub(crate) const PUBLISH_CREDIT: u32 = 1000;

/// The most `linkCapacity` can raise it to.
pub(crate) const LINK_CAPACITY_MAX: u32 = 10_000;

/// What an address is, for a link in one direction.
enum Resolved {
    /// A node, with the filter a topic receiver reads it with, and whether it is anycast.
    Node {
        node: NodeId,
        filter: Filter,
        kind: Kind,
        /// The configured address it is counted under in the metrics (none: a temporary
        /// queue).
        counted: Option<String>,
    },
    /// A name below a topic, published to (or received from exactly).
    TopicName {
        node: NodeId,
        name: Arc<str>,
        counted: String,
    },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Anycast,
    Multicast,
    /// A queue, deadletter, subscription or temporary queue: competing consumers, which may
    /// select and browse.
    Queue,
    Other,
}

impl State {
    /// Resolves `address` for a link in `direction`, and checks the peer may use it.
    fn resolve(&self, address: &str, direction: Direction) -> Result<Resolved, Refusal> {
        if let Some(node) = temporary_node(address) {
            // Temporary queues are not in the address table: their address is their node.
            // Anyone authenticated may send to one (it is a reply-to address); only the link
            // that created it may receive from it, which the core enforces.
            return Ok(Resolved::Node {
                node,
                filter: Filter::All,
                kind: Kind::Queue,
                counted: None,
            });
        }
        self.authorize(address, direction)?;
        Ok(match self.serving.table.resolve(address, direction)? {
            Resolution::Node(node) => Resolved::Node {
                node: node.id,
                filter: Filter::All,
                kind: match node.kind {
                    NodeKind::Anycast => Kind::Anycast,
                    NodeKind::Multicast => Kind::Multicast,
                    NodeKind::Queue | NodeKind::Deadletter | NodeKind::Subscription { .. } => {
                        Kind::Queue
                    }
                    _ => Kind::Other,
                },
                counted: Some(node.address.clone()),
            },
            Resolution::Subscription(node) => Resolved::Node {
                node: node.id,
                filter: Filter::All,
                kind: Kind::Queue,
                counted: Some(node.address.clone()),
            },
            Resolution::TopicName { topic, name } => Resolved::TopicName {
                node: topic.id,
                name: name.into(),
                counted: topic.address.clone(),
            },
            Resolution::TopicPattern { topic, pattern } => Resolved::Node {
                node: topic.id,
                filter: Filter::Pattern(pattern),
                kind: Kind::Other,
                counted: Some(topic.address.clone()),
            },
        })
    }

    /// Where a sender's messages to `address` go, whether it is anycast, and the configured
    /// address it is counted under.
    pub(super) fn send_route(
        &self,
        address: &str,
    ) -> Result<(Route, bool, Option<String>), Refusal> {
        Ok(match self.resolve(address, Direction::Send)? {
            Resolved::Node {
                node,
                kind,
                counted,
                ..
            } => (Route::to(node), kind == Kind::Anycast, counted),
            Resolved::TopicName {
                node,
                name,
                counted,
            } => (
                Route {
                    node,
                    name: Some(name),
                },
                false,
                Some(counted),
            ),
        })
    }

    /// Anonymous relay: where a message's `to` sends it.
    pub(super) fn relay_route(&self, message: &ScannedMessage) -> Result<Route, Refusal> {
        let to = message.to().ok_or(Refusal::NoTo)?;
        Ok(self.send_route(to)?.0)
    }

    pub(super) fn on_attach(&mut self, link: LinkId, attach: &Attach, now: Instant) {
        let result = match attach.role {
            // The peer sends: we receive into the target's address.
            Role::Sender => self.attach_sender(link, attach, now),
            // The peer receives: we send from the source's address, once the core has
            // subscribed the link (it may refuse, e.g. a subscription's `maxConsumers`).
            Role::Receiver => self.attach_receiver(link, attach, now),
        };
        if let Err(refusal) = result {
            let error = refusal.to_amqp();
            self.log_refusal(attach.name.as_str(), &error);
            self.engine.refuse_link(link, error, now);
        }
    }

    /// Logs a refused attach, the first [`super::LINK_REFUSALS_LOGGED_MAX`] of a connection.
    pub(super) fn log_refusal(&mut self, link: &str, error: &sluice_codec::transport::Error) {
        if self.link_refusals_logged >= super::LINK_REFUSALS_LOGGED_MAX {
            return;
        }
        self.link_refusals_logged += 1;
        let last = self.link_refusals_logged == super::LINK_REFUSALS_LOGGED_MAX;
        tracing::warn!(
            conn = self.conn,
            peer = %self.auth.peer.addr,
            user = self.auth.principal.as_ref().map_or("", |p| &*p.username),
            link,
            condition = error.condition.as_str(),
            "attach refused: {}{}",
            error.description.as_ref().map_or("", |d| d.as_str()),
            if last { " (further refusals on this connection are not logged)" } else { "" }
        );
    }

    fn attach_sender(
        &mut self,
        link: LinkId,
        attach: &Attach,
        now: Instant,
    ) -> Result<(), Refusal> {
        let target = match &attach.target {
            Some(AttachTarget::Target(t)) => Some(t),
            _ => None,
        };
        let address = target
            .and_then(|t| t.address.as_ref())
            .map(|a| link_address(a.as_str()));
        let dynamic = target.is_some_and(|t| t.dynamic);
        let (senders, _) = self.links.counts();
        if senders >= self.senders_max {
            return Err(Refusal::TooManyLinks {
                kind: "senders",
                max: self.senders_max,
            });
        }
        if address == Some(super::cbs::CBS_ADDRESS) {
            return self.attach_cbs_requests(link, attach, now);
        }
        if address == Some(super::manage::MANAGE_ADDRESS) {
            return self.attach_manage_requests(link, attach, now);
        }
        if matches!(attach.target, Some(AttachTarget::Coordinator(_))) {
            return self.attach_coordinator(link, attach, now);
        }
        let (binding, counted) = match (address, dynamic) {
            (None, false) => (Binding::Relay, Some(RELAY_LABEL.to_string())),
            (None, true) => return Err(Refusal::DynamicTarget),
            (Some(address), _) => match self.send_route(address)? {
                (route, true, counted) => (Binding::AnycastSender(route), counted),
                (route, false, counted) => (Binding::Publisher(route), counted),
            },
        };
        self.engine.accept_link(link, reply_to(attach, false), now);
        if let Binding::AnycastSender(route) = &binding {
            self.push(Command::AttachSender {
                link,
                node: route.node,
            });
        } else {
            self.engine
                .grant_credit(link, self.serving.link_capacity, false, now);
        }
        let authorized = Authorized {
            address: address
                .filter(|a| temporary_node(a).is_none())
                .map(Arc::from),
            send: true,
        };
        let node = match &binding {
            Binding::Publisher(route) | Binding::AnycastSender(route) => Some(route.node),
            _ => None,
        };
        let mut entry = LinkEntry::new(binding, authorized);
        entry.node = node.filter(|_| counted.is_some());
        entry.counted = counted.map(|a| self.telemetry.metrics().link(&a, true));
        self.links.insert(link, entry);
        Ok(())
    }

    fn attach_receiver(
        &mut self,
        link: LinkId,
        attach: &Attach,
        now: Instant,
    ) -> Result<(), Refusal> {
        let source = attach.source.as_ref();
        let dynamic = source.is_some_and(|s| s.dynamic)
            || matches!(&attach.target, Some(AttachTarget::Target(t)) if t.dynamic);
        let address = source
            .and_then(|s| s.address.as_ref())
            .map(|a| link_address(a.as_str()));
        let (_, receivers) = self.links.counts();
        if receivers >= self.receivers_max {
            return Err(Refusal::TooManyLinks {
                kind: "receivers",
                max: self.receivers_max,
            });
        }
        if address == Some(super::cbs::CBS_ADDRESS) {
            return self.attach_cbs_replies(link, attach, now);
        }
        if address == Some(super::manage::MANAGE_ADDRESS) {
            return self.attach_manage_replies(link, attach, now);
        }
        let mut consuming = Consuming::default();
        let (source, multicast, counted) = match address {
            None if dynamic => {
                consuming = Consuming::of(source)?;
                (
                    Source::Temporary {
                        consumer: consuming.options.clone(),
                    },
                    false,
                    None,
                )
            }
            None => return Err(Refusal::NoSource),
            Some(address) => match self.resolve(address, Direction::Receive)? {
                Resolved::Node {
                    node,
                    filter,
                    kind,
                    counted,
                } => {
                    if kind == Kind::Queue {
                        consuming = Consuming::of(source)?;
                    }
                    (
                        Source::Node {
                            node,
                            filter,
                            consumer: consuming.options.clone(),
                        },
                        kind == Kind::Multicast,
                        counted,
                    )
                }
                Resolved::TopicName {
                    node,
                    name,
                    counted,
                } => (
                    Source::Node {
                        node,
                        filter: Filter::Name(name.to_string()),
                        consumer: ConsumerOptions::default(),
                    },
                    false,
                    Some(counted),
                ),
            },
        };
        let authorized = Authorized {
            // A temporary queue is its creator's: nothing to check again.
            address: address
                .filter(|a| temporary_node(a).is_none())
                .map(Arc::from),
            send: false,
        };
        let mut entry = LinkEntry::new(Binding::Receiver, authorized);
        entry.presettled = attach.snd_settle_mode == SenderSettleMode::Settled;
        // A browser's deliveries go pre-settled: there is nothing for it to settle.
        let settled = multicast || entry.presettled || consuming.options.browse;
        let mut reply = reply_to(attach, settled);
        if let Some(s) = reply.source.as_mut() {
            s.filter = consuming.in_force.take();
            s.distribution_mode = consuming.distribution_mode();
        }
        entry.reply = Some(reply);
        entry.node = match &source {
            Source::Node { node, .. } if counted.is_some() => Some(*node),
            _ => None,
        };
        entry.counted = counted.map(|a| self.telemetry.metrics().link(&a, false));
        self.links.insert(link, entry);
        self.push(Command::AttachReceiver { link, source });
        Ok(())
    }
}

/// The address a link's terminus names: the Azure SDKs write an entity's URI
/// (`amqps://host:5671/orders`), which names the address after the host; anything else is the
/// address itself.
pub(super) fn link_address(address: &str) -> &str {
    match address.split_once("://") {
        Some((scheme, rest)) if !scheme.is_empty() && !scheme.contains('/') => rest
            .split_once('/')
            .map_or("", |(_, path)| path.trim_end_matches('/')),
        _ => address,
    }
}

/// The reply to a link the peer attached, mirroring its terminii; `settled` when what we send
/// on it goes pre-settled (multicast). A source's filters are not echoed: the reply names only
/// the filters in force, which a queue receiver's attach sets afterwards (see [`Consuming`]),
/// so a client never believes it filters when it does not.
pub(super) fn reply_to(attach: &Attach, settled: bool) -> Attach {
    let mut source = attach.source.clone();
    if let Some(s) = source.as_mut() {
        s.filter = None;
    }
    Attach {
        name: attach.name.clone(),
        role: match attach.role {
            Role::Sender => Role::Receiver,
            Role::Receiver => Role::Sender,
        },
        snd_settle_mode: if settled {
            SenderSettleMode::Settled
        } else {
            SenderSettleMode::Mixed
        },
        // We settle first: a sender asking for second is told the mode we use (part 2
        // §2.7.3 lets the receiver state its own).
        rcv_settle_mode: ReceiverSettleMode::First,
        source,
        target: attach.target.clone(),
        ..Default::default()
    }
}
