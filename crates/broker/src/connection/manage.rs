//! `$management`: operators purge a queue and move a dead-letter queue's messages back to
//! where they came from, with the request/response conventions of the AMQP Management draft
//! (OASIS, "AMQP Management Version 1.0").
//!
//! The client attaches a sender to `$management`, and for the answers either a receiver from
//! `$management` (the answers come on it, as for `$cbs`) or a dynamic receiver whose address
//! it sets as each request's `reply-to` (the answer goes into that temporary queue). A request
//! is a message with application properties:
//!
//! | property    | value                                                                  |
//! |-------------|------------------------------------------------------------------------|
//! | `operation` | `PURGE`, `MOVE` or `READ`                                              |
//! | `type`      | [`MANAGE_TYPE`] (`sluice.queue`: a queue, deadletter or subscription)  |
//! | `name`      | the address (`identity` is taken too)                                  |
//! | `to`        | `MOVE`, optional: only the messages that came from this address        |
//! | `max`       | `MOVE`, optional: at most this many (and never more than 10,000)       |
//!
//! `PURGE` removes every available message (in-flight ones stay with their consumers), as
//! Artemis's `removeMessages`; `MOVE` sends each message back to the address it was
//! dead-lettered or expired from (its `x-opt-ORIG-ADDRESS`), as Artemis's `retryMessages`;
//! `READ` gives the queue's figures. The answer carries `correlation-id` (the request's
//! `correlation-id`, else its `message-id`), `statusCode` (200; 400 a bad request; 401 not
//! authenticated; 403 no right; 404 no such address; 501 an operation not implemented) and
//! `statusDescription`, and a map body: `count` for `PURGE` and `MOVE`, the figures for
//! `READ`. `PURGE` and `MOVE` need the `manage` right on the address (and a `MOVE`'s `to` on
//! that address too), `READ` needs `view` (which `manage` implies). A `type` other than
//! `sluice.queue` is answered 404, as the draft has it for an unknown type.
//!
//! Bounded: one request at a time per connection (the request link gets one credit, given
//! again once the answer is out), one request link per connection, [`MANAGE_REPLIES_MAX`]
//! answers waiting for the receiver's credit, and a move of at most
//! [`crate::core::MOVE_MESSAGES_MAX`] messages per request (the answer says how many moved;
//! the operator asks again for the rest).

use std::time::Instant;

use bytes::Bytes;
use sluice_auth::Operation as Right;
use sluice_codec::messaging::ScannedMessage;
use sluice_codec::transport::{Accepted, Attach, DeliveryState, Rejected};
use sluice_codec::types::Value;
use sluice_engine::LinkId;
use sluice_router::{Direction, NodeKind, Resolution};

use super::State;
use super::links::Binding;
use super::replies::Replies;
use crate::core::{
    Command, MOVE_MESSAGES_MAX, ManageOperation, ManageRequest, ManageStatus, NodeId, ReplyTo,
    temporary_node,
};
use crate::error::Refusal;

/// The node operators send their requests to.
pub(crate) const MANAGE_ADDRESS: &str = "$management";
/// The `type` of the entities the operations apply to.
pub(crate) const MANAGE_TYPE: &str = "sluice.queue";
/// Answers waiting for the client's credit on the `$management` receiver.
pub(crate) const MANAGE_REPLIES_MAX: usize = 16;

/// What a connection holds for `$management`.
pub(crate) struct Manage {
    /// The link requests come on.
    requests: Option<LinkId>,
    /// The receiver answers go to, and those waiting for its credit.
    replies: Replies,
    /// A request is with the core: the request link gets no credit until it is answered.
    busy: bool,
}

impl Default for Manage {
    fn default() -> Self {
        Manage {
            requests: None,
            replies: Replies::new(MANAGE_REPLIES_MAX),
            busy: false,
        }
    }
}

impl State {
    pub(super) fn attach_manage_requests(
        &mut self,
        link: LinkId,
        attach: &Attach,
        now: Instant,
    ) -> Result<(), Refusal> {
        if self.manage.requests.is_some() {
            return Err(Refusal::TooManyLinks {
                kind: "$management senders",
                max: 1,
            });
        }
        // One request at a time: a link attached while one is with the core waits for it.
        let credit = u32::from(!self.manage.busy);
        self.attach_requests(link, attach, Binding::ManageRequests, credit, now);
        self.manage.requests = Some(link);
        Ok(())
    }

    pub(super) fn attach_manage_replies(
        &mut self,
        link: LinkId,
        attach: &Attach,
        now: Instant,
    ) -> Result<(), Refusal> {
        let replies: fn(&mut State) -> &mut Replies = |s| &mut s.manage.replies;
        self.attach_replies(link, attach, Binding::ManageReplies, replies, now);
        Ok(())
    }

    /// A request: settled at once (the answer says how it went), judged, and given to the
    /// core, which carries it out and answers. One the broker cannot answer (no `reply-to`
    /// queue and no `$management` receiver, or not a message) is rejected.
    pub(super) fn on_manage_request(
        &mut self,
        link: LinkId,
        delivery_id: u32,
        settled: bool,
        payload: Bytes,
        now: Instant,
    ) {
        let reply = ScannedMessage::scan(payload)
            .map_err(|e| e.to_string())
            .and_then(|m| self.reply_of(&m).map(|r| (m, r)));
        let (message, reply) = match reply {
            Ok(r) => r,
            Err(why) => {
                if !settled {
                    let error = sluice_codec::transport::Error::new(
                        sluice_codec::transport::conditions::DECODE_ERROR,
                        why,
                    );
                    let state = DeliveryState::Rejected(Rejected {
                        error: Some(Box::new(error)),
                    });
                    self.settle_received(link.session, (delivery_id, delivery_id), state, now);
                }
                self.engine.grant_credit(link, 1, false, now);
                return;
            }
        };
        if !settled {
            let state = DeliveryState::Accepted(Accepted {});
            self.settle_received(link.session, (delivery_id, delivery_id), state, now);
        }
        let properties = message.properties().ok().flatten().unwrap_or_default();
        let correlation = properties.correlation_id.or(properties.message_id);
        let operation = self.manage_operation(&message);
        self.manage.busy = true;
        self.push(Command::Manage(Box::new(ManageRequest {
            operation,
            reply,
            correlation,
        })));
    }

    /// Where the answer to `message` goes: the temporary queue its `reply-to` names, else
    /// the connection's `$management` receiver.
    fn reply_of(&self, message: &ScannedMessage) -> Result<ReplyTo, String> {
        let reply_to = message
            .properties()
            .map_err(|e| e.to_string())?
            .and_then(|p| p.reply_to);
        if let Some(node) = reply_to.as_ref().and_then(|a| temporary_node(a.as_str())) {
            return Ok(ReplyTo::Queue(node));
        }
        self.manage
            .replies
            .link()
            .map(ReplyTo::Link)
            .ok_or_else(|| {
                "no answer can reach the client: attach a receiver from '$management', or set \
             'reply-to' to a dynamic receiver's address"
                    .to_string()
            })
    }

    /// What the request asks for, parsed, authorized and resolved; or the status refusing it.
    fn manage_operation(&self, message: &ScannedMessage) -> Result<ManageOperation, ManageStatus> {
        let bad = |why: String| ManageStatus::new(400, why);
        let properties = message
            .application_properties()
            .map_err(|e| bad(e.to_string()))?
            .unwrap_or_default();
        let field = |name: &str| {
            properties
                .iter()
                .find(|(k, _)| text(k) == Some(name))
                .map(|(_, v)| v)
        };
        let string = |name: &str| field(name).and_then(text);
        let operation = string("operation").ok_or_else(|| bad("no 'operation'".into()))?;
        match string("type") {
            Some(MANAGE_TYPE) => {}
            Some(other) => {
                return Err(ManageStatus::new(
                    404,
                    format!("no entities of type '{other}': the type is '{MANAGE_TYPE}'"),
                ));
            }
            None => return Err(bad(format!("no 'type' (it is '{MANAGE_TYPE}')"))),
        }
        let address = string("name")
            .or_else(|| string("identity"))
            .ok_or_else(|| bad("no 'name' (the address)".into()))?;
        let right = match operation {
            "PURGE" | "MOVE" => Right::Manage,
            "READ" => Right::View,
            other => {
                return Err(ManageStatus::new(
                    501,
                    format!("operation '{other}' is not implemented: PURGE, MOVE and READ are"),
                ));
            }
        };
        self.authorize_manage(address, right)?;
        let node = self.stored_node(address)?;
        Ok(match operation {
            "PURGE" => ManageOperation::Purge { node },
            "READ" => ManageOperation::Read { node },
            _ => {
                let max = match field("max") {
                    None => MOVE_MESSAGES_MAX,
                    Some(v) => count(v).ok_or_else(|| {
                        bad("'max' is not a count of messages (a non-negative integer)".into())
                    })?,
                };
                let only = match field("to") {
                    None => None,
                    Some(v) => {
                        let to = text(v).ok_or_else(|| bad("'to' is not an address".into()))?;
                        self.authorize_manage(to, Right::Manage)?;
                        self.stored_node(to)?;
                        Some(to.to_string())
                    }
                };
                ManageOperation::Move {
                    from: node,
                    only,
                    max: max.min(MOVE_MESSAGES_MAX),
                }
            }
        })
    }

    /// Whether the peer may do `right` on `address`.
    fn authorize_manage(&self, address: &str, right: Right) -> Result<(), ManageStatus> {
        let Some(principal) = &self.auth.principal else {
            return Err(ManageStatus::new(401, "not authenticated"));
        };
        sluice_auth::authorize(&self.auth.users, principal, None, right, address)
            .map_err(|denied| ManageStatus::new(403, denied.to_string()))
    }

    /// The stored node (queue, deadletter, subscription) at `address`.
    fn stored_node(&self, address: &str) -> Result<NodeId, ManageStatus> {
        let shown = address.escape_debug();
        match self.serving.table.resolve(address, Direction::Receive) {
            Ok(Resolution::Node(n) | Resolution::Subscription(n))
                if matches!(
                    n.kind,
                    NodeKind::Queue | NodeKind::Deadletter | NodeKind::Subscription { .. }
                ) =>
            {
                Ok(n.id)
            }
            Ok(_) => Err(ManageStatus::new(
                400,
                format!(
                    "'{shown}' holds no messages to manage: only queue, deadletter and \
                     subscription addresses do"
                ),
            )),
            Err(_) => Err(ManageStatus::new(404, format!("no address '{shown}'"))),
        }
    }

    /// The core is done with a request: its answer goes out (or went to the reply queue),
    /// and the request link may send the next.
    pub(super) fn on_managed(&mut self, answer: Option<(LinkId, Bytes)>, now: Instant) {
        self.manage.busy = false;
        if let Some((link, answer)) = answer {
            self.manage.replies.push(link, answer);
            self.send_manage_answers(now);
        }
        if let Some(link) = self.manage.requests {
            self.engine.grant_credit(link, 1, false, now);
        }
    }

    /// Sends waiting answers while the `$management` receiver has credit.
    pub(super) fn send_manage_answers(&mut self, now: Instant) {
        self.send_replies(|s| &mut s.manage.replies, now);
    }

    /// A `$management` link went.
    pub(super) fn forget_manage_link(&mut self, link: LinkId) {
        self.manage.replies.forget(link);
        if self.manage.requests == Some(link) {
            self.manage.requests = None;
        }
    }
}

/// A string or symbol's text.
fn text(value: &Value) -> Option<&str> {
    match value {
        Value::String(s) => Some(s.as_str()),
        Value::Symbol(s) => Some(s.as_str()),
        _ => None,
    }
}

/// A non-negative integer of any AMQP width, as a count.
fn count(value: &Value) -> Option<usize> {
    let n: i128 = match value {
        Value::Ubyte(n) => (*n).into(),
        Value::Ushort(n) => (*n).into(),
        Value::Uint(n) => (*n).into(),
        Value::Ulong(n) => (*n).into(),
        Value::Byte(n) => (*n).into(),
        Value::Short(n) => (*n).into(),
        Value::Int(n) => (*n).into(),
        Value::Long(n) => (*n).into(),
        _ => return None,
    };
    (n >= 0).then(|| usize::try_from(n).unwrap_or(usize::MAX))
}
