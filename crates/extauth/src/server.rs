//! Where the external authentication server is and how to reach it.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::ExtAuthError;
use crate::{REALM_BYTES_MAX, TIMEOUT_DEFAULT};

/// An external authentication server (EnMasse `AuthenticationService` of `type: external`,
/// with an address space's `overrides` applied by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalServer {
    /// Host name or IP address; with TLS, also the name its certificate must carry.
    pub host: String,
    /// Port.
    pub port: u16,
    /// SASL hostname sent to the server (EnMasse: the realm, default
    /// `<namespace>-<addressspace>`). `None` sends none.
    pub realm: Option<String>,
    /// TLS to the server: CA bundle file to trust, optional client cert+key files. None: plain
    /// TCP.
    pub tls: Option<ExternalTls>,
    /// Deadline for the whole delegated exchange (default [`TIMEOUT_DEFAULT`], 10 s): connect,
    /// TLS, every round of SASL including the time the client takes to answer a challenge, and
    /// the open exchange.
    pub timeout: Duration,
}

/// TLS settings for the connection to the external server. The files are read at each
/// connection, so a renewed certificate (a Kubernetes secret updated in place) is picked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalTls {
    /// PEM file of the CA certificates the server's certificate must chain to.
    pub ca: PathBuf,
    /// PEM files of our client certificate chain and its private key, when the server asks
    /// for one.
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

impl ExternalServer {
    /// A plain-TCP server at `host:port` with no realm and the default timeout.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        ExternalServer {
            host: host.into(),
            port,
            realm: None,
            tls: None,
            timeout: TIMEOUT_DEFAULT,
        }
    }

    /// The realm, checked to fit a SASL hostname.
    pub(crate) fn checked_realm(&self) -> Result<Option<String>, ExtAuthError> {
        match &self.realm {
            Some(realm) if realm.len() > REALM_BYTES_MAX => Err(ExtAuthError::InvalidRealm(
                format!("{} bytes, at most {REALM_BYTES_MAX}", realm.len()),
            )),
            other => Ok(other.clone()),
        }
    }
}
