//! Operators' work on a stored node (a queue, deadletter or subscription), asked for over
//! `$management` (`crate::connection::manage` parses and authorizes the request): purge it,
//! move a dead-letter queue's messages back to where they came from, or read its figures.
//! The answer is an AMQP Management response message (`statusCode`, `statusDescription`, a
//! map body), which goes to the connection's `$management` receiver or into the temporary
//! queue the request's `reply-to` names.
//!
//! Where a message came from: when a queue hands a message to its dead-letter or expiry
//! target, the core annotates it `x-opt-ORIG-ADDRESS` (Artemis's AMQP name for
//! `_AMQ_ORIG_ADDRESS`) with the queue's address, re-encoding the message annotations in
//! front of the untouched bare message (an intermediary may, part 3 §3.2.3). A move sends
//! each message to the stored node its annotation names; one whose origin is no longer a
//! stored node stays. The annotation stays on the moved message: dead-lettered again, it is
//! overwritten with the address it then came from.
//!
//! A move is journaled as dead-lettering is: each message is a [`Forward`] step, stored by
//! its target before its source logs it removed, and the answer waits for the journal. It is
//! bounded: at most [`MOVE_MESSAGES_MAX`] messages per request, looking at no more than
//! [`MOVE_SCAN_MAX`]; the answer says how many moved, and the operator asks again for the
//! rest. Only messages in memory move; a queue's paged messages move once read back.

use bytes::Bytes;
use rustc_hash::FxHashMap;

use sluice_codec::Encode;
use sluice_codec::messaging::{Body, Message, MessageId, Properties, ScannedMessage};
use sluice_codec::types::{Symbol, Value};
use sluice_engine::LinkId;

use super::command::ToConn;
use super::ids::{ConnId, NodeId};
use super::step::{Answer, Arrival, Forward, Via};
use super::{Core, Node, Slot};

/// The message annotation naming the address a dead-lettered or expired message left.
pub(crate) const ORIG_ADDRESS: &str = "x-opt-ORIG-ADDRESS";
/// The most messages one move request moves.
pub(crate) const MOVE_MESSAGES_MAX: usize = 10_000;
/// The most messages one move request looks at (those it leaves cost too).
pub(crate) const MOVE_SCAN_MAX: usize = 100_000;

/// What an operator asks of a stored node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Operation {
    /// Remove every available message; in-flight ones stay with their consumers.
    Purge { node: NodeId },
    /// Send up to `max` messages back to the address each came from; with `only`, just those
    /// that came from that address.
    Move {
        from: NodeId,
        only: Option<String>,
        max: usize,
    },
    /// The node's figures.
    Read { node: NodeId },
}

/// An AMQP Management status: `statusCode` and `statusDescription`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Status {
    pub(crate) code: i32,
    pub(crate) description: String,
}

impl Status {
    pub(crate) fn new(code: i32, description: impl Into<String>) -> Self {
        Status {
            code,
            description: description.into(),
        }
    }
}

/// Where the answer goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReplyTo {
    /// The connection's `$management` receiver.
    Link(LinkId),
    /// A temporary queue (a dynamic receiver's address).
    Queue(NodeId),
}

/// A request, parsed and authorized by the connection; `Err` when it was refused there (the
/// core only delivers the answer).
#[derive(Debug)]
pub(crate) struct Request {
    pub(crate) operation: Result<Operation, Status>,
    pub(crate) reply: ReplyTo,
    /// The request's `correlation-id`, else its `message-id`.
    pub(crate) correlation: Option<MessageId>,
}

/// The answer to a request: `statusCode`, `statusDescription`, and the body (an AMQP map of
/// string keys, empty for a refusal).
pub(crate) fn response(
    correlation: Option<MessageId>,
    status: &Status,
    body: Vec<(&str, Value)>,
) -> Bytes {
    let message = Message {
        properties: Some(Properties {
            correlation_id: correlation,
            ..Properties::default()
        }),
        application_properties: Some(vec![
            (Value::from("statusCode"), Value::Int(status.code)),
            (
                Value::from("statusDescription"),
                Value::from(status.description.as_str()),
            ),
        ]),
        body: Body::Value(Value::Map(
            body.into_iter().map(|(k, v)| (Value::from(k), v)).collect(),
        )),
        ..Message::default()
    };
    message.to_bytes().freeze()
}

/// `message` with `x-opt-ORIG-ADDRESS` set to `address` (replacing an earlier one).
pub(crate) fn annotate_origin(
    message: ScannedMessage,
    address: &str,
) -> Result<ScannedMessage, sluice_codec::CodecError> {
    let mut message = message;
    let annotations = message.message_annotations.get_or_insert_with(Vec::new);
    annotations.retain(|(k, _)| !is_origin_key(k));
    annotations.push((
        Value::Symbol(Symbol::from_static(ORIG_ADDRESS)),
        Value::from(address),
    ));
    ScannedMessage::scan(message.to_bytes().freeze())
}

fn is_origin_key(key: &Value) -> bool {
    matches!(key, Value::Symbol(s) if s.as_str() == ORIG_ADDRESS)
}

/// The address a message's `x-opt-ORIG-ADDRESS` names.
pub(crate) fn origin_of(message: &ScannedMessage) -> Option<&str> {
    message
        .message_annotations
        .as_ref()?
        .iter()
        .find(|(k, _)| is_origin_key(k))
        .and_then(|(_, v)| match v {
            Value::String(s) => Some(s.as_str()),
            Value::Symbol(s) => Some(s.as_str()),
            _ => None,
        })
}

fn count(n: usize) -> Value {
    Value::Ulong(n as u64)
}

impl Core {
    /// Carries out `request` of connection `conn` and sends its answer. The answer waits for
    /// the journal, so an operator told a purge or move is done finds it done after a crash.
    pub(crate) fn manage(&mut self, conn: ConnId, request: Request) {
        let Request {
            operation,
            reply,
            correlation,
        } = request;
        let (status, body) = match operation {
            Ok(op) => self.operate(op),
            Err(status) => (status, Vec::new()),
        };
        if status.code != 200 {
            tracing::info!(
                conn,
                code = status.code,
                "$management: {}",
                status.description
            );
        }
        let answer = response(correlation, &status, body);
        match reply {
            ReplyTo::Link(link) => self.out.push_after_journal(
                conn,
                ToConn::Managed {
                    answer: Some((link, answer)),
                },
                true,
            ),
            ReplyTo::Queue(node) => {
                match ScannedMessage::scan(answer) {
                    Ok(message) => self.steps.push_back(Forward {
                        to: node,
                        arrival: Arrival {
                            message: Box::new(message),
                            answer: Answer::Nobody,
                            via: Via::Moved { from: None },
                        },
                    }),
                    Err(e) => tracing::error!(error = %e, "a management answer does not decode"),
                }
                self.out
                    .push_after_journal(conn, ToConn::Managed { answer: None }, true);
            }
        }
    }

    fn operate(&mut self, op: Operation) -> (Status, Vec<(&'static str, Value)>) {
        let node = match &op {
            Operation::Purge { node } | Operation::Read { node } => *node,
            Operation::Move { from, .. } => *from,
        };
        let address = match self.nodes.get(node).map(|s| &s.node) {
            Some(Node::Queue(q)) => q.address.clone(),
            Some(_) => {
                return (
                    Status::new(400, "not a queue, deadletter or subscription"),
                    Vec::new(),
                );
            }
            None => return (Status::new(404, "the address no longer exists"), Vec::new()),
        };
        match op {
            Operation::Purge { node } => {
                let (nodes, mut ctx) = self.ctx();
                let removed = match nodes.get_mut(node) {
                    Some(Slot {
                        node: Node::Queue(q),
                        ..
                    }) => q.purge(node, &mut ctx),
                    _ => 0,
                };
                self.mark(node);
                tracing::info!(%address, messages = removed, "$management: purged");
                (
                    Status::new(200, format!("purged {removed} message(s)")),
                    vec![("count", count(removed))],
                )
            }
            Operation::Move { from, only, max } => {
                let moved = self.move_back(from, only.as_deref(), max);
                tracing::info!(%address, messages = moved, "$management: moved back to their origins");
                (
                    Status::new(200, format!("moved {moved} message(s)")),
                    vec![("count", count(moved))],
                )
            }
            Operation::Read { node } => {
                let Some(Slot {
                    node: Node::Queue(q),
                    ..
                }) = self.nodes.get(node)
                else {
                    return (Status::new(404, "the address no longer exists"), Vec::new());
                };
                let queue = q.queue();
                let c = queue.counters();
                let figures = vec![
                    ("address", Value::from(&*q.address)),
                    ("depth", count(queue.depth())),
                    ("available", count(queue.available())),
                    ("inFlight", count(queue.in_flight())),
                    ("consumers", count(queue.consumer_count())),
                    ("bytes", count(queue.bytes())),
                    ("enqueued", Value::Ulong(c.enqueued)),
                    ("acknowledged", Value::Ulong(c.acknowledged)),
                    ("deadLettered", Value::Ulong(c.dead_lettered)),
                    ("expired", Value::Ulong(c.expired)),
                    ("moved", Value::Ulong(c.moved)),
                ];
                (Status::new(200, "OK"), figures)
            }
        }
    }

    /// Moves up to `max` messages of `from` to the stored nodes their origin names (only those
    /// from `only`, when given); returns how many went.
    fn move_back(&mut self, from: NodeId, only: Option<&str>, max: usize) -> usize {
        // Where a message may go: a stored node of the configuration, not the source itself.
        let targets: FxHashMap<&str, NodeId> = self
            .configured
            .iter()
            .filter(|(address, _)| only.is_none_or(|o| o == address.as_str()))
            .filter(|(_, spec)| spec.id != from)
            .filter(|(_, spec)| {
                matches!(
                    self.nodes.get(spec.id).map(|s| &s.node),
                    Some(Node::Queue(_))
                )
            })
            .map(|(address, spec)| (address.as_str(), spec.id))
            .collect();
        let max = max.min(MOVE_MESSAGES_MAX);
        let Some(Slot {
            node: Node::Queue(q),
            ..
        }) = self.nodes.get_mut(from)
        else {
            return 0;
        };
        let taken = q.queue_mut().take_where(max, MOVE_SCAN_MAX, |m| {
            origin_of(m).and_then(|a| targets.get(a).copied())
        });
        let moved = taken.len();
        for (to, f) in taken {
            let from_journal = f.journaled.then_some((from, f.id));
            match ScannedMessage::scan(f.payload) {
                Ok(message) => self.steps.push_back(Forward {
                    to,
                    arrival: Arrival {
                        message: Box::new(message),
                        answer: Answer::Nobody,
                        via: Via::Moved { from: from_journal },
                    },
                }),
                // Its header was re-encoded by the store: the broker's bug; it has gone.
                Err(e) => {
                    tracing::error!(error = %e, "a moved message does not decode");
                    if let Some((node, id)) = from_journal {
                        self.journal
                            .push(node, sluice_store::Change::Removed { id });
                    }
                }
            }
        }
        self.mark(from);
        moved
    }
}
