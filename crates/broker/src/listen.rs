//! The accept loops: every listener (plain AMQP, AMQP over TLS, AMQP over WebSockets) feeds
//! connection tasks, each admitted by the [`Gate`] first. A connection over a limit is told
//! why and dropped ([`connection::refuse`]); one admitted runs its transport's handshake
//! (TLS, the WebSocket upgrade) under the handshake deadline, then the AMQP connection.
//!
//! Accept errors (out of file descriptors, say) back off, doubling up to
//! [`ACCEPT_BACKOFF_MAX`], instead of spinning on a listener that keeps failing.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_transport::{PeerInfo, Tls, TransportError};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::connection;
use crate::error::Refusal;
use crate::gate::{Gate, Refused};

/// How long a shutdown waits for connections to finish closing.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// The first wait after a failed accept.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
/// The longest wait after failed accepts.
pub(crate) const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// Refusals that speak AMQP at once (a TLS handshake included); past them a refused socket is
/// just closed.
const REFUSING_MAX: usize = 64;
/// Refusals logged per second; the rest are counted in the next line.
const REFUSALS_LOGGED_PER_SECOND: u32 = 5;

/// The sockets the broker serves, and the TLS they use.
#[derive(Debug, Default)]
pub struct Listeners {
    /// Plain AMQP (EnMasse's 5672); with `tls`, a client may upgrade with the AMQP TLS header.
    pub amqp: Option<TcpListener>,
    /// AMQP over TLS (5671).
    pub amqps: Option<TcpListener>,
    /// AMQP over WebSockets over TLS (EnMasse's `messaging-wss`, 8443).
    pub wss: Option<TcpListener>,
    /// The server certificate for `amqps`, `wss` and the upgrade.
    pub tls: Option<Tls>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Amqp,
    Amqps,
    Wss,
}

/// Logs refusals, at most [`REFUSALS_LOGGED_PER_SECOND`] a second.
struct Throttle {
    since: Instant,
    logged: u32,
    suppressed: u64,
}

impl Throttle {
    fn new() -> Self {
        Throttle {
            since: Instant::now(),
            logged: 0,
            suppressed: 0,
        }
    }

    fn log(&mut self, what: &str, peer: std::net::SocketAddr, why: &dyn std::fmt::Display) {
        let now = Instant::now();
        if now.duration_since(self.since) >= Duration::from_secs(1) {
            if self.suppressed > 0 {
                tracing::warn!(suppressed = self.suppressed, "more {what} not logged");
            }
            *self = Throttle::new();
        }
        if self.logged < REFUSALS_LOGGED_PER_SECOND {
            self.logged += 1;
            tracing::warn!(%peer, "{what}: {why}");
        } else {
            self.suppressed += 1;
        }
    }
}

async fn accept_on(
    listener: &Option<TcpListener>,
) -> io::Result<(TcpStream, std::net::SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// Accepts connections on every listener until `shutdown`, then closes them all.
pub(crate) async fn accept(
    listeners: Listeners,
    gate: Arc<Gate>,
    shared: connection::Shared,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let (stop, stopping) = watch::channel(false);
    let mut connections = JoinSet::new();
    let refusing = Arc::new(Semaphore::new(REFUSING_MAX));
    let mut refusals = Throttle::new();
    let mut failures = Throttle::new();
    let mut backoff = ACCEPT_BACKOFF_MIN;
    let mut next_conn: u64 = 0;
    let tls = listeners.tls.clone();
    let handshake_timeout = gate.limits().handshake_timeout;
    loop {
        let accepted = tokio::select! {
            a = accept_on(&listeners.amqp) => (Kind::Amqp, a),
            a = accept_on(&listeners.amqps) => (Kind::Amqps, a),
            a = accept_on(&listeners.wss) => (Kind::Wss, a),
            // Reap finished connections as we go, so the set holds only live ones.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            () = &mut shutdown => break,
        };
        let (kind, (stream, peer)) = match accepted {
            (kind, Ok(a)) => {
                backoff = ACCEPT_BACKOFF_MIN;
                (kind, a)
            }
            (_, Err(e)) => {
                // EMFILE and its kin: waiting lets connections end and free descriptors.
                failures.log("accept failed", unspecified(), &e);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                continue;
            }
        };
        // Without it every request/response step (attach, credit, disposition) waits out
        // Nagle.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(%peer, error = %e, "TCP_NODELAY not set");
        }
        let admission = match gate.admit(peer.ip()) {
            Ok(a) => a,
            Err(refused) => {
                refusals.log("connection refused", peer, &refused);
                shared.telemetry.metrics().refused(refused.reason());
                refuse(
                    kind,
                    stream,
                    &refused,
                    &shared,
                    tls.as_ref(),
                    &refusing,
                    &mut connections,
                );
                continue;
            }
        };
        next_conn += 1;
        let conn = next_conn;
        tracing::debug!(%peer, conn, ?kind, "connection accepted");
        let shared = shared.clone();
        let stopping = stopping.clone();
        let tls = tls.clone();
        connections.spawn(async move {
            let handshake =
                tokio::time::timeout(handshake_timeout, handshake(kind, stream, tls.as_ref()));
            match handshake.await {
                Ok(Ok((stream, info))) => {
                    connection::run(stream, info, conn, shared, admission, stopping).await;
                }
                Ok(Err(e)) => log_handshake_error(conn, peer, &e),
                Err(_) => tracing::info!(conn, %peer, "transport handshake timed out"),
            }
        });
    }
    // Every connection closes with `amqp:connection:forced` and waits for its peer's close;
    // those that do not finish within the grace period are dropped.
    drop(listeners);
    // Nobody listening means every connection is already gone.
    let _none_left = stop.send(true);
    let open = connections.len();
    let all_closed = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, all_closed)
        .await
        .is_err()
    {
        tracing::warn!(
            open,
            "connections still open after the shutdown grace period"
        );
    }
}

fn unspecified() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([0, 0, 0, 0], 0))
}

/// Runs the transport's handshake for a listener of `kind`.
async fn handshake(
    kind: Kind,
    stream: TcpStream,
    tls: Option<&Tls>,
) -> Result<(sluice_transport::Stream, PeerInfo), TransportError> {
    match (kind, tls) {
        (Kind::Amqp, tls) => sluice_transport::accept_amqp(stream, tls).await,
        (Kind::Amqps, Some(tls)) => sluice_transport::accept_amqps(stream, tls).await,
        (Kind::Wss, Some(tls)) => sluice_transport::accept_wss(stream, tls).await,
        // The binary never makes a TLS listener without TLS; say so if it ever does.
        (_, None) => Err(TransportError::Io(io::Error::other(
            "a TLS listener without a certificate",
        ))),
    }
}

fn log_handshake_error(conn: u64, peer: std::net::SocketAddr, e: &TransportError) {
    match e {
        TransportError::PlainOnTlsPort => {
            tracing::warn!(conn, %peer, "plain AMQP sent to the TLS port: answered with the TLS protocol header and closed");
        }
        e => tracing::info!(conn, %peer, error = %e, "transport handshake failed"),
    }
}

/// Tells a refused connection why, in AMQP, on whatever transport it came (so a TLS or
/// WebSocket client learns it too), when there is room for that: at most [`REFUSING_MAX`] at
/// once, each within [`connection::refuse::REFUSE_TIMEOUT`]; else it is just closed.
fn refuse(
    kind: Kind,
    stream: TcpStream,
    refused: &Refused,
    shared: &connection::Shared,
    tls: Option<&Tls>,
    refusing: &Arc<Semaphore>,
    connections: &mut JoinSet<()>,
) {
    let Ok(permit) = Arc::clone(refusing).try_acquire_owned() else {
        return;
    };
    let error = Refusal::Admission(refused.clone()).to_amqp();
    let config = shared.config.clone();
    let tls = tls.cloned();
    connections.spawn(async move {
        let said = async {
            if let Ok((stream, _)) = handshake(kind, stream, tls.as_ref()).await {
                connection::refuse::refuse(stream, config, error).await;
            }
        };
        let _expired = tokio::time::timeout(connection::refuse::REFUSE_TIMEOUT, said).await;
        drop(permit);
    });
}
