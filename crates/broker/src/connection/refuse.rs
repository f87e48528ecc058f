//! Refusing a connection the broker does not admit (too many connections in all, from its
//! host, or authenticating): it is told why in AMQP terms, then dropped. A client that skips
//! SASL gets its open answered and a close with `amqp:resource-limit-exceeded` and the reason;
//! one that starts SASL gets the outcome `sys-temp` (SASL has no error text; the code says
//! "try again later"). Refusals are bounded by the caller (how many run at once) and by
//! [`REFUSE_TIMEOUT`] each, so a flood of them holds little.

use std::time::{Duration, Instant};

use sluice_codec::SaslCode;
use sluice_codec::transport::Error;
use sluice_engine::{Config, Connection, Event};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::read::ReadBuffer;

/// The most time one refusal may take, from accept to the socket's drop.
pub(crate) const REFUSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Runs the refusal of `stream` with `error`; returns when it has been said, or the time is
/// up.
pub(crate) async fn refuse<S>(stream: S, mut config: Config, error: Error)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let started = Instant::now();
    config.handshake_timeout = REFUSE_TIMEOUT;
    let _expired = tokio::time::timeout(REFUSE_TIMEOUT, say(stream, config, error, started)).await;
}

async fn say<S>(stream: S, config: Config, error: Error, now: Instant)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut engine = Connection::server(config, now);
    let mut buf = ReadBuffer::default();
    let mut error = Some(error);
    loop {
        while let Some(event) = engine.poll_event() {
            let now = Instant::now();
            match event {
                Event::SaslInit { .. } => engine.sasl_outcome(SaslCode::SysTemp, now),
                Event::Opened { .. } => engine.close(error.take(), now),
                _ => {}
            }
        }
        let out = engine.take_output();
        // One flush per wake-up: a TLS or WebSocket stream sends what it buffered (a
        // WebSocket message per flush), plain TCP has nothing to do.
        if !out.is_empty() && (wr.write_all(&out).await.is_err() || wr.flush().await.is_err()) {
            return;
        }
        if engine.is_done() {
            let _flushed = wr.shutdown().await;
            return;
        }
        match buf.read_from(&mut rd).await {
            Ok(bytes) if !bytes.is_empty() => engine.handle_input(bytes, Instant::now()),
            _ => return,
        }
    }
}
