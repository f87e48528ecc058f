//! Claims-based security (`$cbs`), as the Azure SDKs use it: the client attaches a sender to
//! `$cbs` and a receiver from it, and sends `put-token` requests, each a token for one
//! audience (`name`, an entity's URI such as `sb://host/orders`); an accepted token lets the
//! connection use that address until the token expires.
//!
//! Tokens: a SAS token (`servicebus.windows.net:sastoken`) signed with a key given to Sluice
//! (`--sas-key`), whose rights are send and receive; or a Kubernetes service-account token
//! (`jwt`), reviewed by the API server, whose MessagingUser's rights on the address apply.
//! Each answer is a message to the `$cbs` receiver: `status-code` 202 when the token is
//! accepted, 401 when not, 400 for a malformed request, with a `status-description`.
//!
//! Bounded: at most [`CBS_GRANTS_MAX`] grants per connection (a new token for an audience
//! replaces the old one), [`CBS_REPLIES_MAX`] answers waiting for the client's credit, and one
//! token review in flight at a time.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use sluice_auth::{Grants, Mechanism, Operation, Principal, Rights};
use sluice_codec::Encode;
use sluice_codec::messaging::{Body, Message, MessageId, Properties, ScannedMessage};
use sluice_codec::transport::{Accepted, Attach, DeliveryState};
use sluice_codec::types::Value;
use sluice_engine::LinkId;
use sluice_tokenreview::{ReviewError, Reviewed};

use super::State;
use super::links::Binding;
use super::replies::Replies;
use super::sasl::{Pending, now_ms};
use crate::error::Refusal;

/// The node the Azure SDKs send their tokens to.
pub(crate) const CBS_ADDRESS: &str = "$cbs";
/// Grants one connection holds at once.
pub(crate) const CBS_GRANTS_MAX: usize = 64;
/// Answers waiting for the client's credit on the `$cbs` receiver.
pub(crate) const CBS_REPLIES_MAX: usize = 16;
/// Credit for put-token requests.
const CBS_CREDIT: u32 = 16;
/// Largest token accepted.
pub(crate) const CBS_TOKEN_BYTES_MAX: usize = 16 * 1024;

/// The SAS token type, and the JWT one.
const SAS_TOKEN: &str = "servicebus.windows.net:sastoken";
const JWT_TOKENS: [&str; 2] = ["jwt", "servicebus.windows.net:jwt"];
/// How a SAS token starts.
const SAS_PREFIX: &str = "SharedAccessSignature ";

/// What a connection holds for `$cbs`.
pub(crate) struct Cbs {
    grants: Vec<Grant>,
    /// The receiver the answers go to, and those waiting for its credit.
    replies: Replies,
    /// A token review to poll; taken by the loop.
    pub(super) pending: Option<super::sasl::PendingFuture>,
    /// Whether a review is in flight.
    reviewing: bool,
}

struct Grant {
    audience: String,
    rights: Rights,
    expires_at_ms: i64,
}

/// A put-token request, as much as the answer needs.
pub(crate) struct Request {
    message_id: Option<MessageId>,
    audience: String,
}

/// A review of a `$cbs` JWT, with the request it answers.
pub(crate) struct CbsReviewed {
    request: Request,
    result: Result<Reviewed, ReviewError>,
}

impl Default for Cbs {
    fn default() -> Self {
        Cbs {
            grants: Vec::new(),
            replies: Replies::new(CBS_REPLIES_MAX),
            pending: None,
            reviewing: false,
        }
    }
}

impl Cbs {
    /// The rights of grants still in force at `now_ms`.
    pub(super) fn grants(&self, now_ms: i64) -> impl Iterator<Item = &Rights> {
        self.grants
            .iter()
            .filter(move |g| g.expires_at_ms > now_ms)
            .map(|g| &g.rights)
    }

    pub(super) fn next_expiry(&self) -> Option<i64> {
        self.grants.iter().map(|g| g.expires_at_ms).min()
    }

    /// Drops the grants expired at `now_ms`; whether there were any.
    pub(super) fn expire(&mut self, now_ms: i64) -> bool {
        let before = self.grants.len();
        self.grants.retain(|g| g.expires_at_ms > now_ms);
        self.grants.len() != before
    }

    fn add(&mut self, grant: Grant) {
        self.grants.retain(|g| g.audience != grant.audience);
        if self.grants.len() >= CBS_GRANTS_MAX {
            // The one expiring first goes: the client renews tokens before they expire.
            if let Some(first) = self
                .grants
                .iter()
                .enumerate()
                .min_by_key(|(_, g)| g.expires_at_ms)
                .map(|(i, _)| i)
            {
                self.grants.swap_remove(first);
            }
        }
        self.grants.push(grant);
    }
}

/// The address an audience URI names: the path after the host (`sb://host/orders` is
/// `orders`), or the audience itself when it is not a URI. Empty: the whole namespace.
fn audience_address(audience: &str) -> &str {
    super::attach::link_address(audience).trim_matches('/')
}

impl State {
    pub(super) fn attach_cbs_requests(
        &mut self,
        link: LinkId,
        attach: &Attach,
        now: Instant,
    ) -> Result<(), Refusal> {
        self.attach_requests(link, attach, Binding::CbsRequests, CBS_CREDIT, now);
        Ok(())
    }

    pub(super) fn attach_cbs_replies(
        &mut self,
        link: LinkId,
        attach: &Attach,
        now: Instant,
    ) -> Result<(), Refusal> {
        self.attach_replies(
            link,
            attach,
            Binding::CbsReplies,
            |s| &mut s.cbs.replies,
            now,
        );
        Ok(())
    }

    /// A put-token request: settled at once (the answer says how it went), then judged.
    pub(super) fn on_cbs_request(
        &mut self,
        link: LinkId,
        delivery_id: u32,
        settled: bool,
        payload: Bytes,
        now: Instant,
    ) {
        if !settled {
            let state = DeliveryState::Accepted(Accepted {});
            self.settle_received(link.session, (delivery_id, delivery_id), state, now);
        }
        self.engine.grant_credit(link, CBS_CREDIT, false, now);
        let parsed = ScannedMessage::scan(payload)
            .map_err(|e| (None, e.to_string()))
            .and_then(|m| parse(&m));
        let (request, kind, token) = match parsed {
            Ok(p) => p,
            Err((message_id, why)) => {
                self.cbs_answer(message_id, 400, &why, now);
                return;
            }
        };
        // The Azure SDKs send SAS tokens with type `jwt` too; Service Bus tells them apart by
        // their form.
        if kind == SAS_TOKEN || token.starts_with(SAS_PREFIX) {
            let grant = self.sas_grant(&request.audience, &token);
            match grant {
                Ok(grant) => {
                    tracing::info!(conn = self.conn, audience = %request.audience, "$cbs: SAS token accepted");
                    self.cbs.add(grant);
                    self.cbs_answer(request.message_id, 202, "Accepted", now);
                }
                Err(why) => {
                    tracing::warn!(conn = self.conn, audience = %request.audience, %why, "$cbs: SAS token refused");
                    self.cbs_answer(request.message_id, 401, &why, now);
                }
            }
        } else if JWT_TOKENS.contains(&kind.as_str()) {
            self.review_cbs_token(request, token, now);
        } else {
            let why = format!("token type '{kind}' is not accepted");
            self.cbs_answer(request.message_id, 400, &why, now);
        }
    }

    fn sas_grant(&self, audience: &str, token: &str) -> Result<Grant, String> {
        let sas = sluice_auth::verify_sas(token, &self.auth.security().sas_keys, now_ms())
            .map_err(|e| e.to_string())?;
        let signed = audience_address(&sas.resource);
        let wanted = audience_address(audience);
        // A token signed for the namespace covers every entity; one signed for an entity
        // covers it and what is below it.
        if !signed.is_empty() && wanted != signed && !wanted.starts_with(&format!("{signed}/")) {
            return Err(format!(
                "the token is signed for '{}', not '{audience}'",
                sas.resource
            ));
        }
        let space = self.auth.security().space_type;
        let mut rights = Rights::default();
        let pattern = if wanted.is_empty() { "*" } else { wanted };
        rights.grant(pattern, true, true, space);
        Ok(Grant {
            audience: audience.to_string(),
            rights,
            expires_at_ms: sas.expires_at_ms,
        })
    }

    fn review_cbs_token(&mut self, request: Request, token: String, now: Instant) {
        let Some(reviewer) = self.auth.security().reviewer.clone() else {
            let why = "no Kubernetes API server to review the token";
            self.cbs_answer(request.message_id, 401, why, now);
            return;
        };
        if self.cbs.reviewing {
            let why = "a token review is already in progress on this connection; retry";
            self.cbs_answer(request.message_id, 503, why, now);
            return;
        }
        self.cbs.reviewing = true;
        self.cbs.pending = Some(Box::pin(async move {
            let result = reviewer.review(&token).await;
            Pending::Cbs(Box::new(CbsReviewed { request, result }))
        }));
    }

    pub(super) fn on_cbs_reviewed(&mut self, answer: CbsReviewed, now: Instant) {
        self.cbs.reviewing = false;
        let CbsReviewed { request, result } = answer;
        let reviewed = match result {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(conn = self.conn, audience = %request.audience, error = %e, "$cbs: token refused");
                self.cbs_answer(request.message_id, 401, &e.to_string(), now);
                return;
            }
        };
        let address = audience_address(&request.audience).to_string();
        // The reviewed service account's MessagingUser decides what the token allows.
        let principal = Principal {
            username: Arc::from(reviewed.username.as_str()),
            mechanism: Mechanism::Plain,
            grants: Grants::User,
            expires_at_ms: None,
        };
        let users = &self.auth.users;
        let may = |op| sluice_auth::authorize(users, &principal, None, op, &address).is_ok();
        let (send, recv) = (may(Operation::Send), may(Operation::Recv));
        let is_service_account = users
            .get(&reviewed.username)
            .is_some_and(|u| u.kind() == sluice_auth::UserKind::ServiceAccount);
        if !is_service_account || !(send || recv) {
            let why = format!(
                "'{}' has no right on '{address}' (no MessagingUser of type serviceaccount grants one)",
                reviewed.username
            );
            self.cbs_answer(request.message_id, 401, &why, now);
            return;
        }
        let space = self.auth.security().space_type;
        let mut rights = Rights::default();
        rights.grant(&address, send, recv, space);
        let expires_at_ms = reviewed
            .expires_at
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(i64::MAX, |d| {
                i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
            });
        tracing::info!(conn = self.conn, user = %reviewed.username, %address, "$cbs: token accepted");
        self.cbs.add(Grant {
            audience: request.audience,
            rights,
            expires_at_ms,
        });
        self.cbs_answer(request.message_id, 202, "Accepted", now);
    }

    /// Queues an answer for the `$cbs` receiver and sends what its credit allows.
    fn cbs_answer(&mut self, message_id: Option<MessageId>, code: i32, why: &str, now: Instant) {
        let answer = Message {
            properties: Some(Properties {
                correlation_id: message_id,
                ..Properties::default()
            }),
            application_properties: Some(vec![
                (Value::from("status-code"), Value::Int(code)),
                (Value::from("status-description"), Value::from(why)),
            ]),
            body: Body::Empty,
            ..Message::default()
        };
        if let Some(link) = self.cbs.replies.link() {
            self.cbs.replies.push(link, answer.to_bytes().freeze());
        }
        self.send_cbs_answers(now);
    }

    /// Sends waiting answers while the `$cbs` receiver has credit.
    pub(super) fn send_cbs_answers(&mut self, now: Instant) {
        self.send_replies(|s| &mut s.cbs.replies, now);
    }

    /// A `$cbs` link went.
    pub(super) fn forget_cbs_link(&mut self, link: LinkId) {
        self.cbs.replies.forget(link);
    }
}

/// The request's fields: its id and audience, the token type and the token. An error carries
/// the id to answer to.
#[allow(clippy::type_complexity)]
fn parse(
    message: &ScannedMessage,
) -> Result<(Request, String, String), (Option<MessageId>, String)> {
    let message_id = message
        .properties()
        .ok()
        .flatten()
        .and_then(|p| p.message_id);
    let bad = |why: &str| (message_id.clone(), why.to_string());
    let properties = message
        .application_properties()
        .map_err(|e| bad(&e.to_string()))?
        .unwrap_or_default();
    let field = |name: &str| {
        properties.iter().find_map(|(k, v)| {
            let key = match k {
                Value::String(s) => s.as_str(),
                Value::Symbol(s) => s.as_str(),
                _ => return None,
            };
            (key == name).then(|| match v {
                Value::String(s) => Some(s.as_str().to_string()),
                Value::Symbol(s) => Some(s.as_str().to_string()),
                _ => None,
            })?
        })
    };
    let operation = field("operation").ok_or_else(|| bad("no 'operation'"))?;
    if operation != "put-token" {
        return Err(bad(&format!("operation '{operation}' is not supported")));
    }
    let kind = field("type").ok_or_else(|| bad("no token 'type'"))?;
    let audience = field("name").ok_or_else(|| bad("no 'name' (the token's audience)"))?;
    let token = match message.body().map_err(|e| bad(&e.to_string()))? {
        Body::Value(Value::String(s)) => s.as_str().to_string(),
        Body::Value(Value::Binary(b)) => {
            String::from_utf8(b.to_vec()).map_err(|_| bad("the token is not UTF-8"))?
        }
        Body::Data(parts) if parts.len() == 1 => parts
            .first()
            .and_then(|b| String::from_utf8(b.to_vec()).ok())
            .ok_or_else(|| bad("the token is not UTF-8"))?,
        _ => return Err(bad("the body is not a token")),
    };
    if token.len() > CBS_TOKEN_BYTES_MAX {
        return Err(bad(&format!(
            "the token is larger than {CBS_TOKEN_BYTES_MAX} bytes"
        )));
    }
    Ok((
        Request {
            message_id,
            audience,
        },
        kind,
        token,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_address_written_as_a_uri_names_the_address_after_its_host() {
        use super::super::attach::link_address;
        assert_eq!(link_address("amqps://h:5671/orders"), "orders");
        assert_eq!(link_address("amqp://h/a/b/"), "a/b");
        assert_eq!(link_address("orders"), "orders");
        assert_eq!(link_address("topic/x"), "topic/x");
        assert_eq!(link_address("a/b://c"), "a/b://c");
    }

    #[test]
    fn an_audience_names_the_address_after_its_host() {
        assert_eq!(audience_address("sb://localhost/orders"), "orders");
        assert_eq!(audience_address("amqp://h:5672/a/b/"), "a/b");
        assert_eq!(audience_address("sb://localhost/"), "");
        assert_eq!(audience_address("sb://localhost"), "");
        assert_eq!(audience_address("orders"), "orders");
    }
}
