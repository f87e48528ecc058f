//! The broker core: every node of the address space, as a sans-IO state machine.
//!
//! Commands from connections go in with [`Core::handle`] (with the connection and the current
//! time), timers with [`Core::handle_timeout`]; what the core has to say comes out of
//! [`Core::poll_output`]: journal records to write, then one batch of answers and deliveries
//! per connection, and [`Core::poll_timeout`] says when the next timer is due. Nothing here
//! touches tokio, a socket, a file or the clock, so the core runs in memory in its tests, one
//! command at a time. The driver (`crate::driver`) owns the channels, the clock and the journal
//! writer around it.
//!
//! ```text
//!  Command ──handle──▶ node (queue, topic, anycast, multicast) ──▶ Forward steps to other nodes
//!                        │
//!                        ▼  (at poll_output: the nodes the commands touched, once each)
//!          pump: waiting messages placed, deliveries handed out, drains answered
//!                        │
//!                        ▼
//!  Output::Journal (records)   Output::Conn (answers; `synced` ones wait for the journal)
//! ```
//!
//! Nodes are held by [`NodeId`] in a slab; a connection resolved its address to the id at
//! attach, so a publish costs no string hashing. A node never reaches into another node:
//! dead-lettering, expiry and a topic's copies to its named subscriptions are [`Forward`]
//! steps the core runs after the node that made them. Everything a node owns (a topic's
//! private subscriptions) lives in it, so nodes could be split among several cores.
//!
//! A transaction's commit is one [`Command::Commit`], checked whole and then applied in one
//! step, its journal records one unit ([`commit`]).

mod anycast;
mod command;
mod commit;
mod duplicates;
mod fanout;
mod ids;
mod journal;
mod links;
mod manage;
mod multicast;
mod outbox;
mod queue;
mod reload;
mod stats;
mod step;
mod topic;

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHashSet};

use sluice_codec::messaging::ScannedMessage;
use sluice_codec::transport::{Accepted, DeliveryState};
use sluice_engine::LinkId;

pub(crate) use anycast::AnycastNode;
pub(crate) use command::{Attached, Command, Filter, Origin, Route, Source, ToConn};
pub(crate) use commit::Commit;
pub(crate) use ids::{ConnId, LinkKey, NodeId};
pub(crate) use journal::{PageRead, Record};
pub(crate) use manage::{
    MOVE_MESSAGES_MAX, Operation as ManageOperation, ReplyTo, Request as ManageRequest,
    Status as ManageStatus,
};
pub(crate) use multicast::MulticastNode;
pub(crate) use queue::{AddressFullPolicy, QueueNode, QueuePlan};
pub(crate) use reload::Reloaded;
pub(crate) use stats::CoreStats;
#[allow(unused_imports)]
pub(crate) use stats::{Held, NodeStats};
pub(crate) use topic::TopicNode;

use crate::error::Refusal;
use ids::Slab;
use journal::Journal;
use links::Binding;
use outbox::Outbox;
use step::{Answer, Arrival, Ctx, Forward, Joins, Via};

/// A node of the address space.
// Nodes live in the slab, one per address: boxing the big variant would add a pointer chase
// to every publish to save little memory.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Node {
    Queue(QueueNode),
    Topic(TopicNode),
    Anycast(AnycastNode),
    Multicast(MulticastNode),
}

impl Node {
    /// Drops what `conn` (and `link`) published and is still waiting: nobody is left to
    /// answer.
    fn forget(&mut self, conn: ConnId, link: Option<LinkId>, joins: &Joins) {
        match self {
            Node::Queue(n) => n.waiting.forget(conn, link, joins),
            Node::Topic(n) => n.forget(conn, link),
            Node::Anycast(n) => n.forget(conn, link),
            Node::Multicast(_) => {}
        }
    }

    /// Whether publishes wait in the node for room or credit.
    fn is_holding(&self) -> bool {
        match self {
            Node::Queue(n) => !n.waiting.is_empty(),
            Node::Topic(n) => n.is_holding(),
            Node::Anycast(n) => n.is_holding(),
            Node::Multicast(_) => false,
        }
    }
}

/// A node and the core's marks on it.
#[derive(Debug)]
struct Slot {
    node: Node,
    /// Touched in this wake-up: pumped at its end.
    dirty: bool,
    /// The bytes of messages it held in memory when last pumped.
    memory: usize,
    /// When its expiry timer is set for.
    timer: Option<i64>,
    /// What went through it.
    counts: stats::NodeCounts,
}

/// What the core has to say.
#[derive(Debug)]
pub(crate) enum Output {
    /// Journal records to write, in order.
    Journal(Vec<Record>),
    /// Messages to read back from the journal, once the records before are written; the
    /// driver hands what was found to [`Core::page_in`].
    Read(Vec<PageRead>),
    /// A batch for a connection. `after`: send it only once the journal is durable up to this
    /// record.
    Conn {
        conn: ConnId,
        answers: Vec<ToConn>,
        after: Option<u64>,
    },
}

/// The nodes and the links bound to them.
#[derive(Debug, Default)]
pub(crate) struct Core {
    nodes: Slab<Slot>,
    /// Every receiver and anycast sender, by connection and link.
    links: FxHashMap<LinkKey, Binding>,
    /// The links each connection has bound, so one leaving costs its own links.
    links_of: FxHashMap<ConnId, Vec<LinkId>>,
    out: Outbox,
    journal: Journal,
    steps: VecDeque<Forward>,
    joins: Joins,
    /// Nodes touched in this wake-up.
    dirty: Vec<NodeId>,
    /// Queue nodes' expiry timers, earliest first.
    timers: BTreeSet<(i64, NodeId)>,
    /// Nodes where publishes wait, which a link or connection leaving must look through.
    holding: FxHashSet<NodeId>,
    /// Outputs ready to be polled.
    ready: VecDeque<Output>,
    next_consumer: u64,
    /// The time of the latest input.
    now: i64,
    memory: Memory,
    /// The configured addresses and their nodes.
    configured: FxHashMap<String, sluice_router::NodeSpec>,
    /// Queues removed from the configuration, kept for their messages.
    retired: FxHashMap<NodeId, reload::Retired>,
    /// Durable queues reloads added, which the journal has not been told of.
    new_durable: Vec<(NodeId, Arc<str>)>,
}

/// The broker's memory budget: the bytes of messages the queues hold in memory. Above it,
/// queues that page keep new messages on disk and the others hold their publishers back;
/// it is lifted once use falls below [`MEMORY_RESUME_PERCENT`] of the budget.
#[derive(Debug)]
struct Memory {
    max: usize,
    used: usize,
    over: bool,
}

impl Default for Memory {
    fn default() -> Self {
        Memory {
            max: usize::MAX,
            used: 0,
            over: false,
        }
    }
}

/// Below this share of the budget, a broker over it is under it again (so it does not flap).
const MEMORY_RESUME_PERCENT: usize = 90;

impl Core {
    /// A core serving `nodes`, numbered as the address space's plan numbered them.
    pub(crate) fn new(nodes: Vec<(NodeId, Node)>) -> Self {
        let mut core = Core::default();
        for (id, node) in nodes {
            core.nodes.insert_at(
                id,
                Slot {
                    node,
                    dirty: false,
                    memory: 0,
                    timer: None,
                    counts: stats::NodeCounts::default(),
                },
            );
        }
        core
    }

    /// Applies one command of connection `conn`, received at `now` (ms since the epoch).
    pub(crate) fn handle(&mut self, conn: ConnId, command: Command, now: i64) {
        self.now = now;
        match command {
            Command::Connected => self.out.connect(conn),
            Command::Gone => {
                for link in self.links_of.remove(&conn).unwrap_or_default() {
                    self.unbind((conn, link));
                }
                self.forget(conn, None);
                self.out.disconnect(conn);
            }
            Command::Publish {
                link,
                route,
                message,
                settle,
            } => self.publish(Origin { conn, link, settle }, route, message),
            Command::AttachReceiver { link, source } => {
                let result = self
                    .attach_receiver((conn, link), source)
                    .map_err(|e| e.to_amqp());
                self.out.push(conn, ToConn::Attached { link, result });
            }
            Command::AttachSender { link, node } => self.attach_sender((conn, link), node),
            Command::Credit {
                link,
                credit,
                drain,
            } => self.credit((conn, link), credit, drain),
            Command::Settle {
                link,
                messages,
                state,
            } => self.settle((conn, link), &messages, &state),
            Command::Unsent { link, message } => self.unsent((conn, link), message),
            Command::Detach { link } => {
                if let Some(links) = self.links_of.get_mut(&conn) {
                    links.retain(|l| *l != link);
                }
                self.unbind((conn, link));
                self.forget(conn, Some(link));
            }
            Command::Commit(commit) => self.commit(conn, *commit),
            Command::Manage(request) => self.manage(conn, *request),
        }
    }

    /// Acts on the time: expires what is due.
    pub(crate) fn handle_timeout(&mut self, now: i64) {
        self.now = now;
        if self.next_retirement().is_some_and(|at| at <= now) {
            self.expire_retired(now);
        }
        while let Some(&(at, id)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            let (nodes, mut ctx) = self.ctx();
            if let Some(slot) = nodes.get_mut(id) {
                slot.timer = None;
                if let Node::Queue(q) = &mut slot.node {
                    q.expire(id, &mut ctx);
                }
            }
            self.mark(id);
        }
    }

    /// When [`Core::handle_timeout`] is next due.
    pub(crate) fn poll_timeout(&self) -> Option<i64> {
        let expiry = self.timers.first().map(|&(at, _)| at);
        match (expiry, self.next_retirement()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// What the core has to say after the inputs so far: the first call after inputs finishes
    /// the wake-up's work on every node they touched.
    pub(crate) fn poll_output(&mut self) -> Option<Output> {
        if !self.dirty.is_empty() || !self.steps.is_empty() {
            self.pump();
        }
        if self.ready.is_empty() {
            if let Some(records) = self.journal.drain() {
                self.ready.push_back(Output::Journal(records));
            }
            if let Some(reads) = self.journal.drain_reads() {
                self.ready.push_back(Output::Read(reads));
            }
            let last = self.journal.last();
            let ready = &mut self.ready;
            self.out.flush(|batch| {
                ready.push_back(Output::Conn {
                    conn: batch.conn,
                    answers: batch.answers,
                    after: batch.synced.then_some(last),
                });
            });
        }
        self.ready.pop_front()
    }

    /// The node table and a context over the rest of the core, borrowed apart.
    fn ctx(&mut self) -> (&mut Slab<Slot>, Ctx<'_>) {
        let Core {
            nodes,
            out,
            journal,
            steps,
            joins,
            now,
            memory,
            ..
        } = self;
        let ctx = Ctx {
            out,
            journal,
            steps,
            joins,
            now: *now,
            memory_over: memory.over,
        };
        (nodes, ctx)
    }

    /// Marks `id` for the end of this wake-up.
    fn mark(&mut self, id: NodeId) {
        if let Some(slot) = self.nodes.get_mut(id)
            && !slot.dirty
        {
            slot.dirty = true;
            self.dirty.push(id);
        }
    }

    fn publish(&mut self, origin: Origin, route: Route, message: Box<ScannedMessage>) {
        let id = route.node;
        // A queue removed from the configuration, kept for its messages, takes no more.
        let retired = self.retired.get(&id).map(|r| r.address.to_string());
        let (nodes, mut ctx) = self.ctx();
        let Some(slot) = nodes.get_mut(id).filter(|_| retired.is_none()) else {
            let refusal = Refusal::Gone(retired.unwrap_or_else(|| temporary_address(id)));
            return ctx.refuse(Answer::Publisher(origin), &refusal);
        };
        slot.counts.deliveries_in += 1;
        let delivered = ctx.out.delivered;
        match &mut slot.node {
            Node::Queue(q) => {
                let arrival = Arrival {
                    message,
                    answer: Answer::Publisher(origin),
                    via: Via::Publish,
                };
                q.arrive(id, arrival, &mut ctx);
            }
            Node::Topic(t) => t.publish(origin, route.name, message, &mut ctx),
            Node::Multicast(m) => {
                m.publish(message.raw(), ctx.out);
                ctx.out
                    .answer(origin, DeliveryState::Accepted(Accepted {}), false);
            }
            Node::Anycast(a) => a.publish(origin, message.raw().clone(), ctx.out),
        }
        if matches!(slot.node, Node::Multicast(_) | Node::Anycast(_)) {
            slot.counts.transit += 1;
        }
        slot.counts.deliveries_out += ctx.out.delivered - delivered;
        self.mark(id);
    }

    /// Drops what `conn` (and `link`) published that is still waiting anywhere: the memory
    /// goes with the client.
    fn forget(&mut self, conn: ConnId, link: Option<LinkId>) {
        self.joins.forget(conn, link);
        // A publish of this wake-up may wait in a node not pumped yet.
        let holding: Vec<NodeId> = self.holding.iter().chain(&self.dirty).copied().collect();
        for id in holding {
            if let Some(slot) = self.nodes.get_mut(id) {
                slot.node.forget(conn, link, &self.joins);
            }
            // What is left may fit now.
            self.mark(id);
        }
    }

    /// The end of a wake-up: forward steps run, then every touched node does its work, round
    /// after round until nothing moves (forwarding touches its targets, and a queue's dispatch
    /// may expire messages on the way).
    fn pump(&mut self) {
        loop {
            while let Some(step) = self.steps.pop_front() {
                self.run_step(step);
            }
            if self.dirty.is_empty() {
                break;
            }
            for id in std::mem::take(&mut self.dirty) {
                self.pump_node(id);
            }
            self.check_memory();
        }
    }

    /// Sets the memory budget (bytes of messages held in memory by every queue together).
    pub(crate) fn set_memory_max(&mut self, max: usize) {
        self.memory.max = max;
    }

    /// Whether the broker is over its memory budget, the bytes it holds, and the budget.
    #[cfg(test)]
    pub(crate) fn memory(&self) -> (bool, usize, usize) {
        (self.memory.over, self.memory.used, self.memory.max)
    }

    /// Turns the memory pressure on past the budget and off below its resume mark; on a
    /// change, tells every queue, and when it lifts, wakes the nodes holding publishes.
    fn check_memory(&mut self) {
        let m = &mut self.memory;
        let over = if m.over {
            m.used as u128 * 100 >= m.max as u128 * MEMORY_RESUME_PERCENT as u128
        } else {
            m.used > m.max
        };
        if over == m.over {
            return;
        }
        m.over = over;
        if over {
            tracing::warn!(
                used_bytes = m.used,
                max_bytes = m.max,
                "over the memory budget (--max-memory): queues with a journal keep new messages on disk, and publishers to the others wait for credit until memory falls"
            );
        } else {
            tracing::info!(
                used_bytes = m.used,
                max_bytes = m.max,
                "under the memory budget again: publishers get credit"
            );
        }
        let mut wake = Vec::new();
        for (id, slot) in self.nodes.iter_mut() {
            if let Node::Queue(q) = &mut slot.node {
                q.set_memory_pressure(over);
                if !over && !q.waiting.is_empty() {
                    wake.push(id);
                }
            }
        }
        for id in wake {
            self.mark(id);
        }
    }

    /// What a page-in read of `node` found, read at `now`.
    pub(crate) fn page_in(
        &mut self,
        node: NodeId,
        found: Vec<(sluice_store::MessageId, bytes::Bytes)>,
        now: i64,
    ) {
        self.now = now;
        let (nodes, mut ctx) = self.ctx();
        if let Some(Slot {
            node: Node::Queue(q),
            ..
        }) = nodes.get_mut(node)
        {
            let found = found
                .into_iter()
                .map(|(id, payload)| match ScannedMessage::scan(payload) {
                    Ok(m) => (id, Some(Box::new(m))),
                    Err(e) => {
                        tracing::error!(queue = %q.address, id = id.0, error = %e, "a message read back from the journal does not decode: it is dropped");
                        (id, None)
                    }
                })
                .collect();
            q.page_in(node, found, &mut ctx);
        }
        self.mark(node);
    }

    fn run_step(&mut self, step: Forward) {
        let Forward { to, arrival } = step;
        if let Answer::Join(id) = arrival.answer
            && !self.joins.is_open(id)
        {
            // A topic copy whose publisher went before it was placed: nobody wants it.
            return;
        }
        let (nodes, mut ctx) = self.ctx();
        match nodes.get_mut(to).map(|s| &mut s.node) {
            Some(Node::Queue(q)) => q.arrive(to, arrival, &mut ctx),
            // Plans only forward to stored nodes; a target removed meanwhile has gone.
            _ => {
                let refusal = Refusal::Gone(temporary_address(to));
                if let Via::Moved {
                    from: Some((node, message)),
                } = arrival.via
                {
                    ctx.journal
                        .push(node, sluice_store::Change::Removed { id: message });
                }
                ctx.refuse(arrival.answer, &refusal);
            }
        }
        self.mark(to);
    }

    fn pump_node(&mut self, id: NodeId) {
        let (nodes, mut ctx) = self.ctx();
        let Some(slot) = nodes.get_mut(id) else {
            return;
        };
        slot.dirty = false;
        let mut due = None;
        let before = slot.memory;
        let delivered = ctx.out.delivered;
        match &mut slot.node {
            Node::Queue(q) => {
                q.pump(id, &mut ctx);
                due = q.next_expiry();
                slot.memory = q.memory_bytes();
            }
            Node::Topic(t) => t.pump(&mut ctx),
            Node::Anycast(a) => a.route(ctx.out),
            Node::Multicast(_) => {}
        }
        slot.counts.deliveries_out += ctx.out.delivered - delivered;
        let after = slot.memory;
        let holding = slot.node.is_holding();
        let timer = std::mem::replace(&mut slot.timer, due);
        self.memory.used = self.memory.used - before + after;
        if timer != due {
            if let Some(at) = timer {
                self.timers.remove(&(at, id));
            }
            if let Some(at) = due {
                self.timers.insert((at, id));
            }
        }
        if holding {
            self.holding.insert(id);
        } else {
            self.holding.remove(&id);
        }
    }
}

/// Why messages the journal kept could not be put back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RestoreError {
    /// No stored node has the address (it left the configuration): the journal keeps them.
    #[error("no durable queue '{0}' in this address space")]
    NoQueue(String),
}

impl Core {
    /// The durable queues and their addresses: what the journal names them by.
    pub(crate) fn durable_queues(&self) -> Vec<(NodeId, Arc<str>)> {
        self.nodes
            .iter()
            .filter_map(|(id, slot)| match &slot.node {
                Node::Queue(q) if q.owner.is_none() && q.is_durable() => {
                    Some((id, q.address.clone()))
                }
                _ => None,
            })
            .collect()
    }

    /// Puts back the messages the journal kept for the durable queue at `address`, before any
    /// connection comes: under their old ids, with their delivery counts, in id order. A
    /// message that no longer decodes is left out and returned (it stays in the journal).
    pub(crate) fn restore(
        &mut self,
        address: &str,
        messages: Vec<sluice_store::journal::RecoveredMessage>,
        on_disk: Vec<sluice_store::journal::PagedMessage>,
        now: i64,
    ) -> Result<Vec<(sluice_store::MessageId, String)>, RestoreError> {
        let node = self
            .durable_queues()
            .into_iter()
            .find(|(_, a)| &**a == address)
            .map(|(id, _)| id)
            .ok_or_else(|| RestoreError::NoQueue(address.to_string()))?;
        let mut undecodable = Vec::new();
        if let Some(Slot {
            node: Node::Queue(q),
            ..
        }) = self.nodes.get_mut(node)
        {
            for m in messages {
                match ScannedMessage::scan(m.payload) {
                    Ok(message) => q.restore(m.id, message, m.delivery_count, now),
                    Err(e) => undecodable.push((m.id, e.to_string())),
                }
            }
            // Left on disk past the load budget: read back as consumers come to them.
            for m in on_disk {
                q.restore_paged(m.id, m.size, m.delivery_count, now);
            }
        }
        self.mark(node);
        Ok(undecodable)
    }
}

impl Core {
    /// What is still held for a client, if anything: a link, a publish waiting anywhere, a
    /// topic message's unanswered join, or a temporary queue. Once every connection has gone
    /// there must be nothing (the fuzz target checks it).
    pub(crate) fn held_for_clients(&self) -> Option<String> {
        for (id, slot) in self.nodes.iter() {
            let held = match &slot.node {
                Node::Queue(q) if q.owner.is_some() => Some("a temporary queue"),
                Node::Queue(q) if q.waiting.holds_publishes() => Some("waiting publishes"),
                Node::Queue(_) => None,
                node => node.is_holding().then_some("held publishes"),
            };
            if let Some(what) = held {
                return Some(format!("{what} in {id:?}"));
            }
        }
        if !self.links.is_empty() || !self.links_of.is_empty() {
            return Some(format!("{} links", self.links.len()));
        }
        (!self.joins.is_empty()).then(|| "open joins".to_string())
    }
}

/// The address of a temporary queue: its node's id, so a reply-to address resolves without
/// a table (and, through the generation, never to a later queue in the same slot).
pub(crate) fn temporary_address(id: NodeId) -> String {
    format!(
        "{}{}.{}",
        sluice_config::TEMPORARY_ADDRESS_PREFIX,
        id.index,
        id.generation
    )
}

/// The node a temporary queue's address names, if it is one.
pub(crate) fn temporary_node(address: &str) -> Option<NodeId> {
    let rest = address.strip_prefix(sluice_config::TEMPORARY_ADDRESS_PREFIX)?;
    let (index, generation) = rest.split_once('.')?;
    Some(NodeId {
        index: index.parse().ok()?,
        generation: generation.parse().ok()?,
    })
}

/// An error the core's own bookkeeping caused (a consumer or delivery it should know): never
/// the client's doing, so it is a bug to find in tests, and logged in production.
fn bookkeeping(error: &dyn std::fmt::Display) {
    debug_assert!(
        false,
        "the core's bookkeeping drifted from the store: {error}"
    );
    tracing::error!(%error, "the core's bookkeeping drifted from the store");
}

#[cfg(test)]
mod tests;
