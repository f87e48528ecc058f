//! One connection's IO loop: the socket, the engine, and a [`Role`] (sender or receiver)
//! deciding what to do with events. One write per wake-up.

use std::time::Instant;

use sluice_codec::transport::Error;
use sluice_engine::{Connection, Event};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

/// Read buffer: one syscall takes up to this much.
const READ_BUFFER: usize = 256 * 1024;

/// What a connection does with its engine.
pub(crate) trait Role {
    /// One event from the engine.
    fn on_event(&mut self, engine: &mut Connection, event: Event, now: Instant);
    /// After the events of a wake-up: send, settle, grant credit. Returns when to wake even if
    /// nothing arrives (the next paced message, the end of sending).
    fn pump(&mut self, engine: &mut Connection, now: Instant) -> Option<Instant>;
    /// Whether the work is done and the connection may close.
    fn finished(&self) -> bool;
    /// The run is over: finish now.
    fn stop(&mut self);
    /// Something went wrong on the connection.
    fn error(&mut self, what: String);
}

/// Describes an AMQP error for a report line.
pub(crate) fn describe(error: &Error) -> String {
    match &error.description {
        Some(d) => format!("{}: {}", error.condition.as_str(), d.as_str()),
        None => error.condition.as_str().to_string(),
    }
}

/// Drives `engine` over `stream` until the connection closes; `role` decides, `stop` ends it.
pub(crate) async fn drive(
    stream: TcpStream,
    mut engine: Connection,
    role: &mut impl Role,
    mut stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let mut buf = vec![0u8; READ_BUFFER];
    let mut closing = false;
    let mut stopped = *stop.borrow();
    if stopped {
        role.stop();
    }
    loop {
        let now = Instant::now();
        while let Some(event) = engine.poll_event() {
            match &event {
                Event::RemoteClose { error: Some(e) } => {
                    role.error(format!("the peer closed the connection: {}", describe(e)));
                }
                Event::Failed(e) => role.error(format!("connection failed: {e}")),
                _ => {}
            }
            role.on_event(&mut engine, event, now);
        }
        let wake = role.pump(&mut engine, now);
        if role.finished() && !closing {
            engine.close(None, now);
            closing = true;
        }
        let out = engine.take_output();
        if !out.is_empty() && wr.write_all(&out).await.is_err() {
            if !closing {
                role.error("the connection was lost while writing".into());
            }
            return;
        }
        engine.recycle_output(out);
        if engine.is_done() {
            return;
        }
        let deadline = match (engine.poll_timeout(), wake) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        tokio::select! {
            read = rd.read(&mut buf) => match read {
                Ok(0) | Err(_) => {
                    if !closing {
                        role.error("the peer dropped the connection".into());
                    }
                    return;
                }
                Ok(n) => engine.handle_input(buf.get(..n).unwrap_or_default(), Instant::now()),
            },
            () = sleep_until(deadline) => engine.handle_timeout(Instant::now()),
            // A change, or the run dropping its end: either way this side is done.
            _ = stop.changed(), if !stopped => {
                stopped = true;
                role.stop();
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
