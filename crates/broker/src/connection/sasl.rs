//! The SASL step of a connection: who the peer is.
//!
//! The engine reports the client's `sasl-init` and responses; the address space's
//! authentication service judges them. Services `none` and `standard` run in
//! [`sluice_auth::Exchange`], a sans-IO state machine; what needs the network (a
//! service-account token's TokenReview, the exchange with an external authentication server)
//! is started here as a future the connection's loop polls beside its socket, and its result
//! is fed back. Input waits meanwhile: the engine reads nothing past the SASL frame it
//! reported until it has an answer.
//!
//! A failed authentication is answered after [`crate::AUTH_FAILURE_DELAY`], on this
//! connection only; the engine's handshake deadline bounds the whole exchange.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use sluice_auth::{
    Exchange, FailureCode, Grants, Mechanism, Principal, ReviewFailure, Reviewed, Rights, Step,
    Users,
};
use sluice_codec::SaslCode;
use sluice_codec::transport::Error;
use sluice_codec::types::Symbol;
use sluice_extauth::{Delegation, ExtAuthError, ExtStep};
use sluice_tokenreview::ReviewError;
use sluice_transport::PeerInfo;
use tokio::sync::Semaphore;

use super::State;
use crate::error::Refusal;
use crate::security::Security;

/// What a future the connection waits on yields.
pub(super) enum Pending {
    /// A TokenReview's answer.
    Reviewed(Result<Reviewed, ReviewFailure>),
    /// The external server's next step, with the exchange to go on with.
    External(Result<(Delegation, ExtStep), ExtAuthError>),
    /// The delay before a failure's outcome is over.
    FailureDue(SaslCode),
    /// A `$cbs` token's review.
    Cbs(Box<super::cbs::CbsReviewed>),
    /// A PLAIN password checked on the blocking pool, with the exchange to go on with.
    Hashed(Box<(Exchange, Step)>),
}

/// A future the connection loop polls while authentication waits on the network.
pub(super) type PendingFuture = Pin<Box<dyn Future<Output = Pending> + Send>>;

/// One connection's authentication.
pub(crate) struct Auth {
    security: Arc<Security>,
    /// The rights in force, refreshed when a reload sends new ones.
    pub(super) users: Arc<Users>,
    /// The state machine; away on the blocking pool while a password is hashed.
    exchange: Option<Exchange>,
    /// Password hashes computed at once, broker-wide.
    hashing: Arc<Semaphore>,
    /// The exchange relayed to the external server, between its steps.
    delegation: Option<Delegation>,
    /// The mechanism the client chose, for the log.
    mechanism: Option<String>,
    /// A future to poll; taken by the loop.
    pub(super) pending: Option<PendingFuture>,
    /// Who the peer is, once authenticated.
    pub(super) principal: Option<Principal>,
    /// Why to close the connection once open (a limit the user is over).
    pub(super) refused_at_open: Option<Error>,
    /// What the transport said about the peer.
    pub(super) peer: PeerInfo,
}

impl Auth {
    pub(super) fn new(security: Arc<Security>, hashing: Arc<Semaphore>, peer: PeerInfo) -> Auth {
        let users = Arc::clone(&security.users.borrow());
        let transport = sluice_auth::Transport {
            tls: peer.tls,
            client_subject: peer.client_subject.clone(),
        };
        let exchange = Exchange::new(Arc::clone(&users), &security.settings, transport);
        Auth {
            security,
            users,
            exchange: Some(exchange),
            hashing,
            delegation: None,
            mechanism: None,
            pending: None,
            principal: None,
            refused_at_open: None,
            peer,
        }
    }

    /// The mechanisms to offer this connection.
    pub(super) fn mechanisms(&self, external: &[String]) -> Vec<Symbol> {
        match self.security.settings.service {
            sluice_auth::Service::External => external
                .iter()
                .filter(|m| self.external_allows(m))
                .filter_map(|m| Symbol::try_from(m.as_str()).ok())
                .collect(),
            _ => self
                .exchange
                .iter()
                .flat_map(Exchange::mechanisms)
                .map(Symbol::from_static)
                .collect(),
        }
    }

    /// Whether an external server's mechanism may be relayed on this connection: PLAIN
    /// carries the password in clear, so only over TLS unless the danger setting allows it.
    fn external_allows(&self, mechanism: &str) -> bool {
        mechanism != Mechanism::Plain.name()
            || self.peer.tls
            || self.security.settings.danger_plain_without_tls
    }

    /// Whether a client may skip SASL: only when anyone may connect.
    pub(super) fn allows_no_sasl(&self) -> bool {
        self.security.settings.service == sluice_auth::Service::None
    }

    /// The principal of a connection that skipped SASL (service `none`).
    pub(super) fn anonymous() -> Principal {
        Principal {
            username: Arc::from("anonymous"),
            mechanism: Mechanism::Anonymous,
            grants: Grants::All,
            expires_at_ms: None,
        }
    }

    pub(super) fn security(&self) -> &Security {
        &self.security
    }

    /// When the principal's credentials expire, if they do.
    pub(super) fn expires_at_ms(&self) -> Option<i64> {
        self.principal.as_ref().and_then(|p| p.expires_at_ms)
    }
}

/// Milliseconds since the Unix epoch.
pub(super) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl State {
    pub(super) fn on_sasl_init(&mut self, mechanism: &str, response: Option<Bytes>, now: Instant) {
        self.auth.mechanism = Some(mechanism.to_string());
        if self.auth.security.settings.service == sluice_auth::Service::External {
            if !self.auth.external_allows(mechanism) {
                let why = format!("{mechanism} is not offered without TLS");
                self.sasl_failed(FailureCode::Auth, why);
                return;
            }
            let Some(server) = self.auth.security.external.clone() else {
                self.sasl_failed(FailureCode::Sys, "no external server configured".into());
                return;
            };
            let mechanism = mechanism.to_string();
            self.auth.pending = Some(Box::pin(async move {
                Pending::External(Delegation::start(&server, &mechanism, response).await)
            }));
            return;
        }
        let Some(mut exchange) = self.auth.exchange.take() else {
            return;
        };
        if mechanism == Mechanism::Plain.name() {
            // PLAIN derives the salted password (thousands of HMACs): off the connection
            // workers, at most `hashing` at a time, so a flood of guesses queues for the CPU
            // instead of stalling every connection's IO.
            let hashing = Arc::clone(&self.auth.hashing);
            self.auth.pending = Some(Box::pin(async move {
                let _permit = hashing.acquire_owned().await;
                let checked = tokio::task::spawn_blocking(move || {
                    let step =
                        exchange.init(Mechanism::Plain.name(), response.as_deref(), now_ms());
                    (exchange, step)
                })
                .await;
                match checked {
                    Ok(done) => Pending::Hashed(Box::new(done)),
                    // The blocking pool is gone: the runtime is shutting down.
                    Err(_) => Pending::FailureDue(SaslCode::Sys),
                }
            }));
            return;
        }
        let step = exchange.init(mechanism, response.as_deref(), now_ms());
        self.auth.exchange = Some(exchange);
        self.sasl_step(step, now);
    }

    pub(super) fn on_sasl_response(&mut self, response: Bytes, now: Instant) {
        if let Some(mut delegation) = self.auth.delegation.take() {
            self.auth.pending = Some(Box::pin(async move {
                let step = delegation.respond(response).await;
                Pending::External(step.map(|s| (delegation, s)))
            }));
            return;
        }
        let Some(exchange) = self.auth.exchange.as_mut() else {
            return;
        };
        let step = exchange.respond(&response, now_ms());
        self.sasl_step(step, now);
    }

    pub(super) fn on_pending(&mut self, pending: Pending, now: Instant) {
        match pending {
            Pending::Reviewed(result) => {
                let Some(exchange) = self.auth.exchange.as_mut() else {
                    return;
                };
                let step = exchange.reviewed(result, now_ms());
                self.sasl_step(step, now);
            }
            Pending::Hashed(done) => {
                let (exchange, step) = *done;
                self.auth.exchange = Some(exchange);
                self.sasl_step(step, now);
            }
            Pending::External(Ok((delegation, step))) => match step {
                ExtStep::Challenge(challenge) => {
                    self.auth.delegation = Some(delegation);
                    self.engine.sasl_challenge(challenge, now);
                }
                ExtStep::Authenticated(identity) => {
                    let space = self.auth.security.space_type;
                    let mut rights = Rights::default();
                    for (pattern, operations) in identity.address_authz.iter().flatten() {
                        let send = operations.iter().any(|o| o == "send");
                        let recv = operations.iter().any(|o| o == "recv");
                        rights.grant(pattern, send, recv, space);
                    }
                    let username = identity
                        .preferred_username
                        .or(identity.sub)
                        .unwrap_or_else(|| "external".to_string());
                    let principal = Principal {
                        username: Arc::from(username.as_str()),
                        mechanism: Mechanism::Plain,
                        grants: Grants::Explicit(rights),
                        expires_at_ms: None,
                    };
                    self.sasl_succeeded(principal, None, now);
                }
                ExtStep::Refused(code) => {
                    let reason = format!("the external server refused ({code:?})");
                    self.sasl_failed(failure_code(code), reason);
                }
            },
            Pending::External(Err(e)) => {
                self.sasl_failed(FailureCode::SysTemp, format!("external server: {e}"));
            }
            Pending::FailureDue(code) => self.engine.sasl_outcome(code, now),
            Pending::Cbs(answer) => self.on_cbs_reviewed(*answer, now),
        }
    }

    fn sasl_step(&mut self, step: Step, now: Instant) {
        match step {
            Step::Challenge(challenge) => self.engine.sasl_challenge(challenge, now),
            Step::Success {
                principal,
                additional_data,
            } => self.sasl_succeeded(principal, additional_data, now),
            Step::Failure { code, reason } => self.sasl_failed(code, reason),
            Step::Review { token } => match self.auth.security.reviewer.clone() {
                Some(reviewer) => {
                    self.auth.pending = Some(Box::pin(async move {
                        let reviewed = reviewer.review(&token).await;
                        Pending::Reviewed(
                            reviewed
                                .map(|r| Reviewed {
                                    username: r.username,
                                    expires_at_ms: expiry_ms(r.expires_at),
                                })
                                .map_err(review_failure),
                        )
                    }));
                }
                None => self.sasl_failed(
                    FailureCode::SysTemp,
                    "a service-account token, but no Kubernetes API server to review it \
                     (in-cluster configuration or --kubeconfig)"
                        .into(),
                ),
            },
        }
    }

    fn sasl_succeeded(&mut self, principal: Principal, additional: Option<Bytes>, now: Instant) {
        tracing::info!(
            conn = self.conn,
            peer = %self.auth.peer.addr,
            user = %principal.username,
            mechanism = principal.mechanism.name(),
            tls = self.auth.peer.tls,
            "authenticated"
        );
        let metrics = self.telemetry.metrics();
        metrics.authenticated(self.auth.mechanism.as_deref(), true);
        self.admit(&principal);
        self.auth.principal = Some(principal);
        self.engine.sasl_outcome_with(SaslCode::Ok, additional, now);
    }

    /// Counts the connection against its user's limit; over it, the connection is closed
    /// once open, with the reason.
    pub(super) fn admit(&mut self, principal: &Principal) {
        if let Err(refused) = self
            .admission
            .authenticated(Arc::clone(&principal.username))
        {
            tracing::warn!(conn = self.conn, peer = %self.auth.peer.addr, "connection refused: {refused}");
            self.telemetry.metrics().refused(refused.reason());
            self.auth.refused_at_open = Some(Refusal::Admission(refused).to_amqp());
        }
    }

    /// Logs the failure now and answers after the failure delay.
    fn sasl_failed(&mut self, code: FailureCode, reason: String) {
        tracing::warn!(
            conn = self.conn,
            peer = %self.auth.peer.addr,
            mechanism = self.auth.mechanism.as_deref().unwrap_or(""),
            %reason,
            "authentication failed"
        );
        let metrics = self.telemetry.metrics();
        metrics.authenticated(self.auth.mechanism.as_deref(), false);
        let code = sasl_code(code);
        let delay = self.auth.security.failure_delay;
        self.auth.pending = Some(Box::pin(async move {
            tokio::time::sleep(delay).await;
            Pending::FailureDue(code)
        }));
    }
}

fn sasl_code(code: FailureCode) -> SaslCode {
    match code {
        FailureCode::Auth => SaslCode::Auth,
        FailureCode::Sys => SaslCode::Sys,
        FailureCode::SysPerm => SaslCode::SysPerm,
        FailureCode::SysTemp => SaslCode::SysTemp,
    }
}

fn failure_code(code: SaslCode) -> FailureCode {
    match code {
        SaslCode::Sys => FailureCode::Sys,
        SaslCode::SysPerm => FailureCode::SysPerm,
        SaslCode::SysTemp => FailureCode::SysTemp,
        _ => FailureCode::Auth,
    }
}

/// A TokenReview's error, as the exchange judges it: the API server's "no" is a refusal,
/// not being able to ask is a temporary failure (fail closed, and say so).
fn review_failure(e: ReviewError) -> ReviewFailure {
    match e {
        ReviewError::Unavailable(why) => ReviewFailure::Unavailable(why),
        other => ReviewFailure::Rejected(other.to_string()),
    }
}

/// A reviewed token's expiry in Unix milliseconds.
fn expiry_ms(at: Option<SystemTime>) -> Option<i64> {
    at.and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
