//! One connection's SASL exchange, as a state machine the connection task drives.
//!
//! ```text
//!            init(ANONYMOUS | EXTERNAL)                 -> Success | Failure
//!  Start ─── init(PLAIN | SCRAM-*, no initial response) -> Challenge("") ─┐
//!    │                                                                     │ respond
//!    ├────── init(PLAIN, message) ──────────────────────┬──────────────────┤
//!    │                         password user            │ service account  │
//!    │                      Success | Failure     Review{token} ── reviewed ──> Success | Failure
//!    └────── init(SCRAM-*, client-first) ── Challenge(server-first)
//!                                              │ respond(client-final)
//!                                              └─> Success{v=...} | Failure
//! ```
//!
//! Every path ends in `Success` or `Failure`, after which the exchange is done: a second
//! `init` or a stray `respond` fails (one authentication attempt per connection).
//!
//! Timing: an unknown user and a wrong password cost the same work and fail at the same step
//! (PLAIN runs PBKDF2 against a dummy credential; SCRAM answers with a stable fake salt and
//! fails on client-final). A service-account user is not hidden that way: its PLAIN goes to
//! a TokenReview, which takes a network round trip, so such usernames can be told apart.
//!
//! EXTERNAL: with `none`, every right; with `standard`, the MessagingUser (of any kind) whose
//! username is the certificate subject lower-cased, else a failure.

use std::fmt;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;

use crate::plain;
use crate::principal::{Grants, Mechanism, Principal};
use crate::scram::{self, Hash, ScramServer};
use crate::settings::{AuthSettings, Service, Transport};
use crate::step::{FailureCode, ReviewFailure, Reviewed, Step};
use crate::users::{UserKind, Users};
use crate::{ANONYMOUS_TRACE_BYTES_MAX, USERNAME_BYTES_MAX};

/// The PLAIN username with which an in-cluster client presents a bare service-account token;
/// the TokenReview's username then picks the MessagingUser (anchors/enmasse.md §3.3).
pub const SERVICE_ACCOUNT_USERNAME: &str = "@@serviceaccount@@";

/// Random bytes in a server nonce (base64-encoded to 24 printable characters).
const SERVER_NONCE_BYTES: usize = 18;
/// How much of an unknown mechanism name a failure reason repeats.
const MECHANISM_NAME_LOGGED_CHARS_MAX: usize = 40;

/// A source of random bytes for server nonces.
pub type Random = Box<dyn FnMut(&mut [u8]) + Send>;

enum Randomness {
    Os,
    Given(Random),
}

impl Randomness {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), String> {
        match self {
            Randomness::Os => getrandom::fill(buf).map_err(|e| e.to_string()),
            Randomness::Given(random) => {
                random(buf);
                Ok(())
            }
        }
    }
}

#[derive(Debug)]
enum State {
    Start,
    /// `sasl-init` came without an initial response; the first message comes in a response.
    AwaitingInitial(Mechanism),
    ScramFinal {
        server: Box<ScramServer>,
        mechanism: Mechanism,
        username: String,
    },
    Review(ReviewTarget),
    Done,
}

#[derive(Debug)]
enum ReviewTarget {
    /// `@@serviceaccount@@`: the reviewed username picks the user.
    AnyServiceAccount,
    /// A named service-account user: the reviewed username must be this.
    Named(String),
}

/// One connection's SASL exchange.
pub struct Exchange {
    users: Arc<Users>,
    service: Service,
    offered: Vec<Mechanism>,
    transport: Transport,
    random: Randomness,
    state: State,
}

impl fmt::Debug for Exchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exchange")
            .field("service", &self.service)
            .field("offered", &self.offered)
            .field("transport", &self.transport)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl Exchange {
    /// An exchange whose server nonces come from the operating system.
    pub fn new(users: Arc<Users>, settings: &AuthSettings, transport: Transport) -> Exchange {
        Exchange::build(users, settings, transport, Randomness::Os)
    }

    /// An exchange whose server nonces come from `random` (tests pass a repeatable one).
    pub fn with_random(
        users: Arc<Users>,
        settings: &AuthSettings,
        transport: Transport,
        random: Random,
    ) -> Exchange {
        Exchange::build(users, settings, transport, Randomness::Given(random))
    }

    fn build(
        users: Arc<Users>,
        settings: &AuthSettings,
        transport: Transport,
        random: Randomness,
    ) -> Exchange {
        let offered = offer(settings, &transport);
        Exchange {
            users,
            service: settings.service,
            offered,
            transport,
            random,
            state: State::Start,
        }
    }

    /// The mechanisms to offer, most preferred first:
    /// - `none`: ANONYMOUS, PLAIN (any credentials succeed), EXTERNAL with a client
    ///   certificate;
    /// - `standard`: SCRAM-SHA-512, SCRAM-SHA-256, PLAIN only with TLS or
    ///   `danger_plain_without_tls` (service-account users need PLAIN), EXTERNAL with a
    ///   client certificate;
    /// - `external`: nothing (the broker relays to the external server).
    pub fn mechanisms(&self) -> Vec<&'static str> {
        self.offered.iter().map(|m| m.name()).collect()
    }

    /// The client's `sasl-init`. A mechanism not offered fails, and so does a second init.
    pub fn init(&mut self, mechanism: &str, initial_response: Option<&[u8]>, now_ms: i64) -> Step {
        let _ = now_ms;
        if !matches!(self.state, State::Start) {
            self.state = State::Done;
            return Step::auth("a second sasl-init");
        }
        self.state = State::Done;
        let Some(chosen) = Mechanism::from_name(mechanism).filter(|m| self.offered.contains(m))
        else {
            let shown: String = mechanism
                .chars()
                .take(MECHANISM_NAME_LOGGED_CHARS_MAX)
                .collect();
            return Step::auth(format!("mechanism {shown:?} is not offered"));
        };
        match (chosen, initial_response) {
            (Mechanism::Anonymous, trace) => anonymous(trace.unwrap_or_default(), self.service),
            (Mechanism::External, authzid) => self.external(authzid.unwrap_or_default()),
            (_, None) => {
                self.state = State::AwaitingInitial(chosen);
                Step::Challenge(Bytes::new())
            }
            (_, Some(message)) => self.first_message(chosen, message),
        }
    }

    /// The client's `sasl-response` to our challenge.
    pub fn respond(&mut self, response: &[u8], now_ms: i64) -> Step {
        let _ = now_ms;
        match std::mem::replace(&mut self.state, State::Done) {
            State::AwaitingInitial(mechanism) => self.first_message(mechanism, response),
            State::ScramFinal {
                server,
                mechanism,
                username,
            } => match server.finish(response) {
                Ok(server_final) => Step::Success {
                    principal: Principal::new(&username, mechanism, Grants::User),
                    additional_data: Some(Bytes::from(server_final)),
                },
                Err(reason) => Step::auth(format!("{reason} (user {username:?})")),
            },
            _ => Step::auth("a sasl-response without a challenge"),
        }
    }

    /// The result of the TokenReview asked for by [`Step::Review`].
    pub fn reviewed(&mut self, result: Result<Reviewed, ReviewFailure>, now_ms: i64) -> Step {
        let State::Review(target) = std::mem::replace(&mut self.state, State::Done) else {
            return Step::fail(FailureCode::Sys, "a TokenReview result with none pending");
        };
        let reviewed = match result {
            Ok(reviewed) => reviewed,
            Err(ReviewFailure::Unavailable(why)) => {
                return Step::fail(FailureCode::SysTemp, format!("TokenReview failed: {why}"));
            }
            Err(ReviewFailure::Rejected(why)) => {
                return Step::auth(format!("TokenReview rejected the token: {why}"));
            }
        };
        let username = reviewed.username;
        if let ReviewTarget::Named(named) = &target
            && *named != username
        {
            return Step::auth(format!(
                "the token belongs to {username:?}, not to {named:?}"
            ));
        }
        match self.users.get(&username) {
            Some(user) if user.kind() == UserKind::ServiceAccount => {}
            _ => {
                return Step::auth(format!(
                    "the token's user {username:?} is not a service-account MessagingUser"
                ));
            }
        }
        if let Some(expires_at_ms) = reviewed.expires_at_ms
            && expires_at_ms <= now_ms
        {
            return Step::auth(format!("the token of {username:?} has expired"));
        }
        let mut principal = Principal::new(&username, Mechanism::Plain, Grants::User);
        principal.expires_at_ms = reviewed.expires_at_ms;
        Step::Success {
            principal,
            additional_data: None,
        }
    }

    fn first_message(&mut self, mechanism: Mechanism, message: &[u8]) -> Step {
        match mechanism {
            Mechanism::ScramSha256 => self.scram_first(Hash::Sha256, mechanism, message),
            Mechanism::ScramSha512 => self.scram_first(Hash::Sha512, mechanism, message),
            _ => self.plain(message),
        }
    }

    fn plain(&mut self, message: &[u8]) -> Step {
        let plain = match plain::parse(message) {
            Ok(plain) => plain,
            Err(reason) => return Step::auth(reason),
        };
        let username = plain.authcid;
        if self.service == Service::None {
            return success(Principal::new(username, Mechanism::Plain, Grants::All));
        }
        let target = if username == SERVICE_ACCOUNT_USERNAME {
            Some(ReviewTarget::AnyServiceAccount)
        } else {
            self.users
                .get(username)
                .filter(|user| user.kind() == UserKind::ServiceAccount)
                .map(|user| ReviewTarget::Named(user.username().to_owned()))
        };
        if let Some(target) = target {
            self.state = State::Review(target);
            return Step::Review {
                token: plain.password.to_owned(),
            };
        }
        match self
            .users
            .check_password(username, plain.password.as_bytes())
        {
            Ok(()) => success(Principal::new(username, Mechanism::Plain, Grants::User)),
            Err(reason) => Step::auth(format!("{reason} (user {username:?})")),
        }
    }

    fn scram_first(&mut self, hash: Hash, mechanism: Mechanism, message: &[u8]) -> Step {
        let first = match scram::parse_client_first(message) {
            Ok(first) => first,
            Err(reason) => return Step::auth(reason),
        };
        if first.authzid.as_ref().is_some_and(|a| *a != first.username) {
            return Step::auth("SCRAM authzid differs from the username");
        }
        let mut random = [0u8; SERVER_NONCE_BYTES];
        if let Err(why) = self.random.fill(&mut random) {
            return Step::fail(FailureCode::SysTemp, format!("no random bytes: {why}"));
        }
        let (credential, refusal) = self.users.scram_credential(hash, &first.username);
        let username = first.username.clone();
        let (server, server_first) =
            ScramServer::start(hash, first, credential, refusal, &STANDARD.encode(random));
        self.state = State::ScramFinal {
            server: Box::new(server),
            mechanism,
            username,
        };
        Step::Challenge(Bytes::from(server_first))
    }

    fn external(&self, authzid: &[u8]) -> Step {
        let Some(subject) = self.transport.client_subject.as_deref() else {
            return Step::auth("EXTERNAL without a client certificate");
        };
        if authzid.len() > USERNAME_BYTES_MAX {
            return Step::auth("EXTERNAL authzid is too long");
        }
        if !authzid.is_empty() && authzid != subject.as_bytes() {
            return Step::auth("EXTERNAL authzid differs from the certificate subject");
        }
        if self.service == Service::None {
            return success(Principal::new(subject, Mechanism::External, Grants::All));
        }
        let username = subject.to_lowercase();
        match self.users.get(&username) {
            Some(_) => success(Principal::new(&username, Mechanism::External, Grants::User)),
            None => Step::auth(format!(
                "no MessagingUser for certificate subject {subject:?}"
            )),
        }
    }
}

fn offer(settings: &AuthSettings, transport: &Transport) -> Vec<Mechanism> {
    let certificate = transport.client_subject.is_some();
    let mut offered = Vec::new();
    match settings.service {
        Service::None => {
            offered.extend([Mechanism::Anonymous, Mechanism::Plain]);
        }
        Service::Standard => {
            offered.extend([Mechanism::ScramSha512, Mechanism::ScramSha256]);
            if transport.tls || settings.danger_plain_without_tls {
                offered.push(Mechanism::Plain);
            }
            if settings.anonymous_claims {
                offered.push(Mechanism::Anonymous);
            }
        }
        Service::External => return offered,
    }
    if certificate {
        offered.push(Mechanism::External);
    }
    offered
}

/// ANONYMOUS: every right with service `none`; under `standard` (offered only for `$cbs`),
/// none until a token grants some.
fn anonymous(trace: &[u8], service: Service) -> Step {
    if trace.len() > ANONYMOUS_TRACE_BYTES_MAX {
        return Step::auth("ANONYMOUS trace information is too long");
    }
    let grants = match service {
        Service::None => Grants::All,
        _ => Grants::Explicit(crate::Rights::new()),
    };
    success(Principal::new("anonymous", Mechanism::Anonymous, grants))
}

fn success(principal: Principal) -> Step {
    Step::Success {
        principal,
        additional_data: None,
    }
}

#[cfg(test)]
mod tests;
