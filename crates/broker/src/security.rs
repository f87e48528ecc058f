//! Who may connect and what they may do: everything the connection tasks need to
//! authenticate a peer and authorize its links, built by the binary from the address space
//! and the command line, and shared by every connection.
//!
//! The rights live in a [`watch`] channel of immutable [`Users`] snapshots: a reload sends a
//! new one, and every connection checks its links against it (detaching those that lost their
//! right) and authorizes new attaches with it.

use std::sync::Arc;
use std::time::Duration;

use sluice_auth::{AuthSettings, SasKey, Users};
use sluice_config::resources::AddressSpaceType;
use sluice_extauth::ExternalServer;
use sluice_tokenreview::Reviewer;
use tokio::sync::watch;

/// How long a failed authentication waits before its outcome: each attempt of a password
/// guesser costs it this much (per connection; other connections are not slowed).
pub const AUTH_FAILURE_DELAY: Duration = Duration::from_secs(1);

/// How often the external authentication server's mechanisms are asked again.
pub const EXTERNAL_PROBE_INTERVAL: Duration = Duration::from_secs(60);

/// The address space's authentication and authorization, for every connection.
#[derive(Clone)]
pub struct Security {
    /// The authentication service and its settings.
    pub settings: AuthSettings,
    /// The users and their rights; a reload sends a new snapshot.
    pub users: watch::Receiver<Arc<Users>>,
    /// Checks service-account tokens; without it, service-account users cannot log in.
    pub reviewer: Option<Reviewer>,
    /// The external authentication server (service `external`).
    pub external: Option<ExternalServer>,
    /// Keys that sign SAS tokens for `$cbs` put-token.
    pub sas_keys: Arc<Vec<SasKey>>,
    /// The wait before a failed authentication's outcome.
    pub failure_delay: Duration,
    /// The space's type, which decides how address patterns match.
    pub space_type: AddressSpaceType,
}

impl std::fmt::Debug for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Security")
            .field("users", &self.users.borrow().len())
            .field("reviewer", &self.reviewer.is_some())
            .field(
                "external",
                &self.external.as_ref().map(|e| (&e.host, e.port)),
            )
            .field("sas_keys", &self.sas_keys.len())
            .finish_non_exhaustive()
    }
}

/// The mechanisms offered when the external server has not answered a probe yet: PLAIN,
/// which every external server EnMasse documented takes.
const EXTERNAL_FALLBACK_MECHANISMS: [&str; 1] = ["PLAIN"];

/// For service `external`: asks the server for its mechanisms now and then every
/// [`EXTERNAL_PROBE_INTERVAL`], in a task; connections offer the latest answer.
pub(crate) async fn probe_external(
    security: &Security,
    ready: prometheus_client::metrics::gauge::Gauge,
) -> watch::Receiver<Arc<Vec<String>>> {
    let fallback = || Arc::new(EXTERNAL_FALLBACK_MECHANISMS.map(String::from).to_vec());
    let Some(server) = security.external.clone() else {
        let (_tx, rx) = watch::channel(Arc::new(Vec::new()));
        return rx;
    };
    let first = match sluice_extauth::probe_mechanisms(&server).await {
        Ok(m) => {
            tracing::info!(host = %server.host, port = server.port, mechanisms = ?m, "external authentication server");
            ready.set(1);
            Arc::new(m)
        }
        Err(e) => {
            tracing::warn!(host = %server.host, port = server.port, error = %e, "the external authentication server does not answer: offering PLAIN until it does");
            ready.set(0);
            fallback()
        }
    };
    let (tx, rx) = watch::channel(first);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(EXTERNAL_PROBE_INTERVAL).await;
            match sluice_extauth::probe_mechanisms(&server).await {
                Ok(m) => {
                    ready.set(1);
                    if tx.send(Arc::new(m)).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    ready.set(0);
                    tracing::warn!(host = %server.host, error = %e, "probing the external authentication server")
                }
            }
        }
    });
    rx
}
