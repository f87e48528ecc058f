//! One request and its answer over a connection-level request/response node (`$management`
//! in the AMQP Management draft's conventions): a receiver from the node for the answer, a
//! sender to it for the request, on the harness's own engine and IO loop. `sluice queue`
//! runs its operations with it.

use std::time::{Duration, Instant};

use bytes::Bytes;
use sluice_codec::Encode;
use sluice_codec::messaging::{Body, Message, MessageId, Properties, Source, Target};
use sluice_codec::transport::Attach;
use sluice_codec::transport::{
    AttachTarget, DeliveryTag, ReceiverSettleMode, Role as LinkRole, SenderSettleMode,
};
/// The AMQP values of a request's properties and its answer.
pub use sluice_codec::types::Value;
use sluice_engine::{Connection, Event, LinkId};
use tokio::sync::watch;

use crate::driver::{Role, describe, drive};
use crate::run::{client_config, connect};
use crate::url::BenchUrl;

/// The message id of the request, which the answer's `correlation-id` names.
const REQUEST_ID: &str = "sluice-request-1";

/// The answer to a request.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// Its application properties.
    pub properties: Vec<(Value, Value)>,
    /// Its body (an AMQP value section; `Null` for any other body).
    pub body: Value,
}

impl Answer {
    /// The application property `name`.
    pub fn property(&self, name: &str) -> Option<&Value> {
        self.properties
            .iter()
            .find(|(k, _)| matches!(k, Value::String(s) if s.as_str() == name))
            .map(|(_, v)| v)
    }
}

/// Sends one request with application properties `properties` to the node `url.address`,
/// and waits (at most `timeout`) for its answer on a receiver from the same node.
pub async fn request(
    url: &BenchUrl,
    properties: Vec<(Value, Value)>,
    timeout: Duration,
) -> Result<Answer, String> {
    let stream = connect(&url.host, url.port, timeout).await?;
    let name = format!("sluice-request-{}", std::process::id());
    let engine = Connection::client(client_config(name, Some(url), &url.host), Instant::now());
    let message = Message {
        properties: Some(Properties {
            message_id: Some(MessageId::String(REQUEST_ID.into())),
            reply_to: Some(format!("{}-replies", url.address).as_str().into()),
            ..Properties::default()
        }),
        application_properties: Some(properties),
        body: Body::Empty,
        ..Message::default()
    };
    let mut role = Requester {
        node: url.address.clone(),
        request: message.to_bytes().freeze(),
        sender: None,
        receiver: None,
        ready: false,
        sent: false,
        answer: None,
        error: None,
    };
    let (_stop_tx, stop) = watch::channel(false);
    if tokio::time::timeout(timeout, drive(stream, engine, &mut role, stop))
        .await
        .is_err()
    {
        return Err(format!(
            "no answer from '{}' within {timeout:?}",
            url.address
        ));
    }
    match (role.answer, role.error) {
        (Some(answer), _) => Ok(answer),
        (None, Some(e)) => Err(e),
        (None, None) => Err("the connection closed before the answer came".into()),
    }
}

struct Requester {
    node: String,
    request: Bytes,
    sender: Option<LinkId>,
    receiver: Option<LinkId>,
    /// The receiver's attach was answered and it has credit.
    ready: bool,
    sent: bool,
    answer: Option<Answer>,
    error: Option<String>,
}

impl Requester {
    fn attach(&mut self, engine: &mut Connection, now: Instant) {
        let session = match engine.begin(now) {
            Ok(s) => s,
            Err(e) => return self.error(format!("cannot begin a session: {e}")),
        };
        let node = Some(self.node.as_str().into());
        let receiver = Attach {
            name: format!("{}-replies", self.node).as_str().into(),
            role: LinkRole::Receiver,
            snd_settle_mode: SenderSettleMode::Mixed,
            rcv_settle_mode: ReceiverSettleMode::First,
            source: Some(Source {
                address: node.clone(),
                ..Default::default()
            }),
            target: Some(Target::default().into()),
            ..Default::default()
        };
        let sender = Attach {
            name: format!("{}-requests", self.node).as_str().into(),
            role: LinkRole::Sender,
            snd_settle_mode: SenderSettleMode::Unsettled,
            rcv_settle_mode: ReceiverSettleMode::First,
            source: Some(Source::default()),
            target: Some(AttachTarget::Target(Target {
                address: node,
                ..Default::default()
            })),
            ..Default::default()
        };
        match (
            engine.attach(session, receiver, now),
            engine.attach(session, sender, now),
        ) {
            (Ok(r), Ok(s)) => {
                self.receiver = Some(r);
                self.sender = Some(s);
            }
            (Err(e), _) | (_, Err(e)) => {
                self.error(format!("cannot attach to '{}': {e}", self.node))
            }
        }
    }

    fn on_answer(&mut self, payload: &[u8]) {
        match Message::decode(&Bytes::copy_from_slice(payload)) {
            Ok(m) => {
                self.answer = Some(Answer {
                    properties: m.application_properties.unwrap_or_default(),
                    body: match m.body {
                        Body::Value(v) => v,
                        _ => Value::Null,
                    },
                })
            }
            Err(e) => self.error(format!("the answer does not decode: {e}")),
        }
    }
}

impl Role for Requester {
    fn on_event(&mut self, engine: &mut Connection, event: Event, now: Instant) {
        match event {
            Event::Opened { .. } => self.attach(engine, now),
            Event::LinkAttached {
                link,
                attach,
                remote_first: false,
            } if Some(link) == self.receiver && attach.source.is_some() => {
                engine.grant_credit(link, 1, false, now);
                self.ready = true;
            }
            Event::LinkDetached { error, .. } => {
                let why = error.as_ref().map_or("no reason given".into(), describe);
                self.error(format!("'{}' detached a link: {why}", self.node));
            }
            Event::Delivery { link, payload, .. } if Some(link) == self.receiver => {
                self.on_answer(&payload);
            }
            _ => {}
        }
    }

    fn pump(&mut self, engine: &mut Connection, now: Instant) -> Option<Instant> {
        if let Some(link) = self.sender
            && self.ready
            && !self.sent
            && engine.sendable(link) > 0
        {
            match engine.send(link, DeliveryTag::from_u64(1), &self.request, false, now) {
                Ok(_) => self.sent = true,
                Err(e) => self.error(format!("cannot send the request: {e}")),
            }
        }
        None
    }

    fn finished(&self) -> bool {
        self.answer.is_some() || self.error.is_some()
    }

    fn stop(&mut self) {}

    fn error(&mut self, what: String) {
        self.error.get_or_insert(what);
    }
}
