//! A fake external authentication server for tests (feature `testing`), on the engine's
//! server side: it listens on 127.0.0.1 port 0, offers configurable SASL mechanisms, checks
//! credentials against a table of [`FakeUser`]s, and answers the `open` with the properties
//! of EnMasse's external authentication server API.
//!
//! Mechanisms it understands:
//! - `PLAIN` (RFC 4616): `authzid NUL authcid NUL password`, checked against the table.
//! - [`X_TEST_CHALLENGE`], made up for tests of challenge relaying: the initial response is
//!   the username; the server challenges once with [`FakeConfig::challenge`]; the response is
//!   the password.
//!
//! A user that passes gets `authenticated-identity` `{sub: "sub-<username>",
//! preferred_username: <username>}`, `groups` (a list), and, only if the client desired
//! `ADDRESS-AUTHZ`, that offered capability and `address-authz` (pattern to an array of
//! operations, as Java servers send it).

mod conn;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

use crate::server::ExternalServer;

/// The made-up challenge/response mechanism of the fake server.
pub const X_TEST_CHALLENGE: &str = "X-TEST-CHALLENGE";

/// One user the fake server knows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FakeUser {
    /// The password PLAIN and X-TEST-CHALLENGE check.
    pub password: String,
    /// Sent as `groups`.
    pub groups: Vec<String>,
    /// Sent as `address-authz` when the client desires `ADDRESS-AUTHZ`.
    pub address_authz: BTreeMap<String, Vec<String>>,
}

impl FakeUser {
    /// A user with this password, no groups and no grants.
    pub fn new(password: impl Into<String>) -> Self {
        FakeUser {
            password: password.into(),
            ..FakeUser::default()
        }
    }

    /// Adds a group.
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.groups.push(group.into());
        self
    }

    /// Grants `operations` on an address pattern.
    pub fn authz(mut self, pattern: impl Into<String>, operations: &[&str]) -> Self {
        let ops = self.address_authz.entry(pattern.into()).or_default();
        ops.extend(operations.iter().map(|o| o.to_string()));
        self
    }
}

/// How the fake server behaves.
#[derive(Debug, Clone)]
pub struct FakeConfig {
    /// Mechanisms offered, in order (default `PLAIN`, `X-TEST-CHALLENGE`).
    pub mechanisms: Vec<String>,
    /// Users by name.
    pub users: BTreeMap<String, FakeUser>,
    /// Serve TLS with this configuration (the test makes its certificates).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// The challenge X-TEST-CHALLENGE sends (default `password?`); make it large to test the
    /// client's limit.
    pub challenge: Bytes,
}

impl Default for FakeConfig {
    fn default() -> Self {
        FakeConfig {
            mechanisms: vec!["PLAIN".into(), X_TEST_CHALLENGE.into()],
            users: BTreeMap::new(),
            tls: None,
            challenge: Bytes::from_static(b"password?"),
        }
    }
}

impl FakeConfig {
    /// Adds a user.
    pub fn user(mut self, name: impl Into<String>, user: FakeUser) -> Self {
        self.users.insert(name.into(), user);
        self
    }
}

/// What the connections have seen, shared with the test.
#[derive(Debug)]
struct Shared {
    config: FakeConfig,
    connections: AtomicUsize,
    closes: AtomicUsize,
    hostnames: Mutex<Vec<Option<String>>>,
}

/// A running fake server; dropping it stops it and every connection it serves.
#[derive(Debug)]
pub struct FakeServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl FakeServer {
    /// Starts listening on 127.0.0.1, port 0.
    pub async fn start(config: FakeConfig) -> std::io::Result<FakeServer> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            config,
            connections: AtomicUsize::new(0),
            closes: AtomicUsize::new(0),
            hostnames: Mutex::new(Vec::new()),
        });
        let accept = tokio::spawn(accept(listener, shared.clone()));
        Ok(FakeServer {
            addr,
            shared,
            accept,
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// An [`ExternalServer`] pointing at it: plain TCP, no realm, default timeout.
    pub fn external_server(&self) -> ExternalServer {
        ExternalServer::new(self.addr.ip().to_string(), self.addr.port())
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Authenticated connections the client ended with an AMQP `close`.
    pub fn closes(&self) -> usize {
        self.shared.closes.load(Ordering::SeqCst)
    }

    /// The SASL hostname of each `sasl-init` received, in order.
    pub fn hostnames(&self) -> Vec<Option<String>> {
        self.shared
            .hostnames
            .lock()
            .map(|h| h.clone())
            .unwrap_or_default()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        // The connection tasks live in the accept task's JoinSet and are aborted with it.
        self.accept.abort();
    }
}

async fn accept(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    let tls = shared
        .config
        .tls
        .clone()
        .map(tokio_rustls::TlsAcceptor::from);
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        shared.connections.fetch_add(1, Ordering::SeqCst);
        // Reap finished connections so a long test does not accumulate them.
        while connections.try_join_next().is_some() {}
        let shared = shared.clone();
        let tls = tls.clone();
        let connection = async move {
            match tls {
                None => conn::serve(tcp, shared).await,
                Some(acceptor) => {
                    if let Ok(stream) = acceptor.accept(tcp).await {
                        conn::serve(stream, shared).await;
                    }
                }
            }
        };
        connections.spawn(async move {
            let _ = tokio::time::timeout(conn::CONNECTION_TIMEOUT, connection).await;
        });
    }
}
