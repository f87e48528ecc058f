//! One client's SASL exchange, relayed to the external server by a task of its own.
//!
//! The task owns the socket and a client-side `sluice_engine::Connection`; the [`Delegation`]
//! handle talks to it through two one-slot channels: steps (challenge or verdict) come out,
//! the client's responses go in. At most one step is ever outstanding, because the task waits
//! for a response after each challenge and ends after a verdict. Dropping the handle ends the
//! exchange: the task sees the response channel close and drops the connection.

use bytes::Bytes;
use sluice_codec::SaslCode;
use sluice_codec::transport::conditions;
use sluice_codec::types::Symbol;
use sluice_engine::{Config, Connection, Event, SaslConfig};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::debug;

use crate::error::ExtAuthError;
use crate::identity::ExternalIdentity;
use crate::io::{READ_BUFFER_BYTES, connect};
use crate::server::ExternalServer;
use crate::{
    ADDRESS_AUTHZ, CHALLENGES_MAX, CLOSE_TIMEOUT, MECHANISM_BYTES_MAX, OPEN_FRAME_SIZE_MAX,
    RESPONSE_BYTES_MAX, SASL_FRAME_SIZE_MAX,
};

/// What the external server said, to pass on to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtStep {
    /// The server challenges; relay to the client.
    Challenge(Bytes),
    /// SASL ok and the open exchanged: who the user is and what it may do.
    Authenticated(ExternalIdentity),
    /// The server refused (its SASL outcome code: auth, sys, sys-perm, sys-temp).
    Refused(SaslCode),
}

type StepResult = Result<ExtStep, ExtAuthError>;

/// One client's exchange, relayed.
#[derive(Debug)]
pub struct Delegation {
    responses: mpsc::Sender<Bytes>,
    steps: mpsc::Receiver<StepResult>,
    deadline: Instant,
    challenged: bool,
}

impl Delegation {
    /// Opens the connection to the external server and sends the client's sasl-init. Returns
    /// the server's first answer: a challenge (answer it with [`Delegation::respond`]) or a
    /// verdict. The whole exchange, responses included, must end within
    /// [`ExternalServer::timeout`] of this call.
    pub async fn start(
        server: &ExternalServer,
        mechanism: &str,
        initial_response: Option<Bytes>,
    ) -> Result<(Delegation, ExtStep), ExtAuthError> {
        let mechanism = checked_mechanism(mechanism)?;
        if let Some(r) = &initial_response {
            check_response(r)?;
        }
        let config = engine_config(server, mechanism.clone(), initial_response)?;
        let deadline = Instant::now() + server.timeout;
        let (responses, responses_rx) = mpsc::channel(1);
        let (steps_tx, steps) = mpsc::channel(1);
        let task = Task {
            server: server.clone(),
            config,
            mechanism,
            deadline,
        };
        tokio::spawn(task.run(responses_rx, steps_tx));
        let mut delegation = Delegation {
            responses,
            steps,
            deadline,
            challenged: false,
        };
        let step = delegation.next_step().await?;
        Ok((delegation, step))
    }

    /// Relays the client's response to the server's last challenge.
    pub async fn respond(&mut self, response: Bytes) -> Result<ExtStep, ExtAuthError> {
        if !self.challenged {
            return Err(ExtAuthError::NotChallenged);
        }
        check_response(&response)?;
        self.challenged = false;
        // If the task has ended, its last word (an error) is still in the step channel.
        let _ = self.responses.send(response).await;
        self.next_step().await
    }

    async fn next_step(&mut self) -> StepResult {
        // The task keeps the same deadline and reports it; this one only guards against a
        // task that cannot run.
        let step = match tokio::time::timeout_at(self.deadline, self.steps.recv()).await {
            Err(_) => Err(ExtAuthError::Timeout),
            Ok(None) => Err(ExtAuthError::Disconnected(
                "the exchange ended without a verdict".into(),
            )),
            Ok(Some(step)) => step,
        };
        self.challenged = matches!(step, Ok(ExtStep::Challenge(_)));
        step
    }
}

fn checked_mechanism(mechanism: &str) -> Result<Symbol, ExtAuthError> {
    let invalid = || ExtAuthError::InvalidMechanism(mechanism.chars().take(80).collect());
    if mechanism.is_empty() || mechanism.len() > MECHANISM_BYTES_MAX {
        return Err(invalid());
    }
    Symbol::from_ascii(Bytes::copy_from_slice(mechanism.as_bytes())).map_err(|_| invalid())
}

fn check_response(response: &Bytes) -> Result<(), ExtAuthError> {
    if response.len() > RESPONSE_BYTES_MAX {
        return Err(ExtAuthError::TooLarge(format!(
            "a SASL response of {} bytes, at most {RESPONSE_BYTES_MAX}",
            response.len()
        )));
    }
    Ok(())
}

/// The engine's client settings: this one mechanism, the realm as hostname, `ADDRESS-AUTHZ`
/// desired, and tight limits (no sessions: we only open and close).
fn engine_config(
    server: &ExternalServer,
    mechanism: Symbol,
    initial_response: Option<Bytes>,
) -> Result<Config, ExtAuthError> {
    let sasl = SaslConfig::Client {
        mechanism,
        initial_response,
    };
    let mut config = Config::client("sluice-extauth", sasl);
    config.hostname = server.checked_realm()?;
    config.desired_capabilities = vec![Symbol::from_static(ADDRESS_AUTHZ)];
    config.sasl_frame_size_max = SASL_FRAME_SIZE_MAX;
    config.frame_size_max = OPEN_FRAME_SIZE_MAX;
    config.channel_max = 0;
    config.idle_timeout = None;
    // Our own deadline ends the exchange first; the engine's is a backstop.
    config.handshake_timeout = server.timeout + CLOSE_TIMEOUT;
    config.close_timeout = CLOSE_TIMEOUT;
    Ok(config)
}

/// The task behind a [`Delegation`].
struct Task {
    server: ExternalServer,
    config: Config,
    mechanism: Symbol,
    deadline: Instant,
}

/// How the relay ended, when it did not fail.
enum Ended {
    /// A verdict went out; with an open connection to close politely.
    Verdict { close: bool },
    /// The caller dropped its handle.
    Abandoned,
}

impl Task {
    async fn run(self, mut responses: mpsc::Receiver<Bytes>, steps: mpsc::Sender<StepResult>) {
        let exchange = async {
            let mut stream = connect(&self.server).await?;
            let mut engine = Connection::client(self.config.clone(), std::time::Instant::now());
            let ended = self
                .relay(&mut stream, &mut engine, &mut responses, &steps)
                .await?;
            Ok::<_, ExtAuthError>((stream, engine, ended))
        };
        let result = match tokio::time::timeout_at(self.deadline, exchange).await {
            Ok(result) => result,
            Err(_) => Err(ExtAuthError::Timeout),
        };
        match result {
            Ok((mut stream, mut engine, Ended::Verdict { close: true })) => {
                // The caller has its answer; the polite close runs on, briefly.
                let closing = close(&mut stream, &mut engine);
                let _ = tokio::time::timeout(CLOSE_TIMEOUT, closing).await;
            }
            Ok(_) => {}
            Err(e) => {
                debug!(host = %self.server.host, error = %e, "external authentication failed");
                // The slot is free: the caller has read every earlier step.
                let _ = steps.try_send(Err(e));
            }
        }
    }

    /// Runs the SASL exchange and the open, passing steps out and responses in.
    async fn relay<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        stream: &mut S,
        engine: &mut Connection,
        responses: &mut mpsc::Receiver<Bytes>,
        steps: &mpsc::Sender<StepResult>,
    ) -> Result<Ended, ExtAuthError> {
        let mut buf = vec![0u8; READ_BUFFER_BYTES];
        let mut challenges = 0usize;
        let mut awaiting_response = false;
        loop {
            let now = std::time::Instant::now();
            let mut verdict = None;
            while let Some(event) = engine.poll_event() {
                match self.on_event(engine, event, now) {
                    Ok(None) => {}
                    Ok(Some(ExtStep::Challenge(challenge))) => {
                        challenges += 1;
                        if challenges > CHALLENGES_MAX {
                            return Err(ExtAuthError::TooLarge(format!(
                                "more than {CHALLENGES_MAX} SASL challenges"
                            )));
                        }
                        if steps.try_send(Ok(ExtStep::Challenge(challenge))).is_err() {
                            return Ok(Ended::Abandoned);
                        }
                        awaiting_response = true;
                    }
                    Ok(Some(step)) => {
                        verdict = Some(step);
                        break;
                    }
                    Err(e) => {
                        // Best effort: our close (if the engine wrote one) goes out.
                        let _ = write_output(stream, engine).await;
                        return Err(e);
                    }
                }
            }
            write_output(stream, engine).await?;
            if let Some(step) = verdict {
                let close = matches!(step, ExtStep::Authenticated(_));
                debug!(host = %self.server.host, ?step, "external authentication verdict");
                if steps.try_send(Ok(step)).is_err() {
                    return Ok(Ended::Abandoned);
                }
                return Ok(Ended::Verdict { close });
            }
            if engine.is_done() {
                return Err(ExtAuthError::Disconnected(
                    "the server ended the exchange without a verdict".into(),
                ));
            }
            let timeout = engine.poll_timeout();
            tokio::select! {
                read = stream.read(&mut buf) => match read {
                    Ok(0) => return Err(ExtAuthError::Disconnected(
                        "the server closed the connection before a verdict".into(),
                    )),
                    Ok(n) => engine.handle_input(
                        buf.get(..n).unwrap_or_default(),
                        std::time::Instant::now(),
                    ),
                    Err(e) => return Err(ExtAuthError::Disconnected(format!("reading: {e}"))),
                },
                () = sleep_until(timeout) => engine.handle_timeout(std::time::Instant::now()),
                response = responses.recv(), if awaiting_response => match response {
                    None => return Ok(Ended::Abandoned),
                    Some(response) => {
                        awaiting_response = false;
                        engine.sasl_respond(response, std::time::Instant::now());
                    }
                },
            }
        }
    }

    /// What one engine event means for the exchange: a step to pass out, nothing, or a
    /// failure.
    fn on_event(
        &self,
        engine: &mut Connection,
        event: Event,
        now: std::time::Instant,
    ) -> Result<Option<ExtStep>, ExtAuthError> {
        match event {
            Event::SaslChallenge { challenge } => Ok(Some(ExtStep::Challenge(challenge))),
            // Ok: the engine has already sent our AMQP header and open.
            Event::SaslOutcome { code: SaslCode::Ok } => Ok(None),
            Event::SaslOutcome { code } => Ok(Some(ExtStep::Refused(code))),
            Event::Opened { remote } => {
                let identity = ExternalIdentity::from_open(&remote);
                // Part 2 §2.4.3: we have what we came for; close whatever the open said.
                engine.close(None, now);
                Ok(Some(ExtStep::Authenticated(identity?)))
            }
            Event::RemoteClose { error } => Err(ExtAuthError::Protocol(match error {
                Some(e) => format!(
                    "the server closed the connection before a verdict: {}{}",
                    e.condition.as_str(),
                    e.description
                        .map(|d| format!(": {}", d.as_str()))
                        .unwrap_or_default()
                ),
                None => "the server closed the connection before a verdict".into(),
            })),
            Event::Failed(e) if e.condition == conditions::NOT_IMPLEMENTED => Err(
                ExtAuthError::MechanismNotOffered(self.mechanism.as_str().to_string()),
            ),
            Event::Failed(e) => Err(ExtAuthError::Protocol(e.to_string())),
            // Sessions or links the server might begin are never answered: we only close.
            _ => Ok(None),
        }
    }
}

/// Writes what the engine has to send.
async fn write_output<S: AsyncWrite + Unpin>(
    stream: &mut S,
    engine: &mut Connection,
) -> Result<(), ExtAuthError> {
    let out = engine.take_output();
    if !out.is_empty() {
        stream
            .write_all(&out)
            .await
            .map_err(|e| ExtAuthError::Disconnected(format!("writing: {e}")))?;
        engine.recycle_output(out);
    }
    Ok(())
}

/// After a verdict: our close is out; read until the server's close (or its end of the
/// connection), then shut the stream (TLS: close_notify). The caller bounds the time.
async fn close<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, engine: &mut Connection) {
    let mut buf = vec![0u8; READ_BUFFER_BYTES];
    while !engine.is_done() {
        let timeout = engine.poll_timeout();
        tokio::select! {
            read = stream.read(&mut buf) => match read {
                Ok(n) if n > 0 => engine.handle_input(
                    buf.get(..n).unwrap_or_default(),
                    std::time::Instant::now(),
                ),
                _ => break,
            },
            () = sleep_until(timeout) => engine.handle_timeout(std::time::Instant::now()),
        }
        if write_output(stream, engine).await.is_err() {
            break;
        }
    }
    let _ = stream.shutdown().await;
}

async fn sleep_until(deadline: Option<std::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
