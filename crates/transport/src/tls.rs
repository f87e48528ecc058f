//! The server TLS configuration: where the certificate comes from, client certificate
//! verification, and swapping the configuration while serving when the files change.

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::{TransportError, pem, pki};

/// The shortest interval [`Tls::watch`] polls at; a shorter one (or zero) is raised to it.
pub const RELOAD_INTERVAL_MIN: Duration = Duration::from_millis(100);

/// Where the server certificate comes from (EnMasse endpoint `cert.provider`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertSource {
    /// `certBundle`: PEM files (chain, end-entity first; key). Re-read when either file
    /// changes.
    Files {
        /// The certificate chain.
        cert: PathBuf,
        /// The private key (PKCS#8, PKCS#1 or SEC1).
        key: PathBuf,
    },
    /// `selfsigned`: a CA and a server certificate for `hostnames` generated at start
    /// (rcgen); the CA certificate is written as PEM to `ca_out` so clients can trust it.
    SelfSigned {
        /// DNS names or IP addresses the server certificate is for (at least one).
        hostnames: Vec<String>,
        /// Where the CA certificate is written.
        ca_out: PathBuf,
    },
}

/// What [`Tls::load`] builds a server configuration from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// The server certificate.
    pub cert: CertSource,
    /// Verify client certificates against this CA bundle (for SASL EXTERNAL). Without it no
    /// client certificate is asked for.
    pub client_ca: Option<PathBuf>,
    /// With `client_ca`: refuse clients without a certificate (otherwise optional). Ignored
    /// without `client_ca`.
    pub client_cert_required: bool,
}

/// A server TLS configuration that can be swapped while serving (TLS 1.2 and 1.3 only, no
/// ALPN, the `ring` provider). Cheap to clone (Arc inside); connections accepted after a
/// reload use the new configuration, established ones keep theirs.
#[derive(Clone)]
pub struct Tls {
    inner: Arc<Inner>,
}

struct Inner {
    settings: TlsSettings,
    server_cert: ServerCert,
    current: RwLock<Current>,
}

/// Where the server's chain and key come from after `load`.
enum ServerCert {
    /// Read from these files on every load and reload.
    Files { cert: PathBuf, key: PathBuf },
    /// Generated once by the `selfsigned` provider, never re-read.
    Generated {
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    },
}

/// The configuration in use and the file contents it was built from.
struct Current {
    config: Arc<ServerConfig>,
    files: FileContents,
}

/// The bytes of every file the configuration depends on, to tell whether any changed. The
/// content is compared, not the mtime: a Kubernetes Secret swaps a `..data` symlink, which
/// leaves the mtime the path reports unchanged or older.
#[derive(PartialEq, Eq)]
struct FileContents {
    /// The chain file (empty for a generated certificate).
    cert: Vec<u8>,
    /// The key file (empty for a generated certificate).
    key: Vec<u8>,
    client_ca: Option<Vec<u8>>,
}

impl Tls {
    /// Builds the configuration: reads the certificate files (or generates the self-signed
    /// CA and server certificate and writes the CA to `ca_out`) and the client CA bundle.
    /// Errors name the file and what is wrong with it.
    pub fn load(settings: TlsSettings) -> Result<Tls, TransportError> {
        let server_cert = match &settings.cert {
            CertSource::Files { cert, key } => ServerCert::Files {
                cert: cert.clone(),
                key: key.clone(),
            },
            CertSource::SelfSigned { hostnames, ca_out } => self_signed(hostnames, ca_out)?,
        };
        let files = read_files(&server_cert, &settings)?;
        let config = build(&server_cert, &settings, &files)?;
        Ok(Tls {
            inner: Arc::new(Inner {
                settings,
                server_cert,
                current: RwLock::new(Current {
                    config: Arc::new(config),
                    files,
                }),
            }),
        })
    }

    /// Re-reads the certificate, key and client CA files and, if any content changed,
    /// builds and installs a new configuration (`Ok(true)`). If the new files are invalid
    /// the old configuration stays in use and the error is returned. Reads files
    /// synchronously; call it from a blocking context (as [`Tls::watch`] does).
    pub fn reload_if_changed(&self) -> Result<bool, TransportError> {
        let files = read_files(&self.inner.server_cert, &self.inner.settings)?;
        if self.current().files == files {
            return Ok(false);
        }
        let config = build(&self.inner.server_cert, &self.inner.settings, &files)?;
        let mut current = self
            .inner
            .current
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        *current = Current {
            config: Arc::new(config),
            files,
        };
        Ok(true)
    }

    /// Spawns a task that calls [`Tls::reload_if_changed`] every `interval` (at least
    /// [`RELOAD_INTERVAL_MIN`]) and logs what happened: a reload at info, a failure at warn
    /// (once per distinct error, not every tick). Must be called inside a tokio runtime.
    pub fn watch(&self, interval: Duration) -> tokio::task::JoinHandle<()> {
        let tls = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval.max(RELOAD_INTERVAL_MIN));
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            // The first tick is immediate, and `load` has just read the files.
            ticks.tick().await;
            let mut last_error: Option<String> = None;
            loop {
                ticks.tick().await;
                let attempt = tls.clone();
                match tokio::task::spawn_blocking(move || attempt.reload_if_changed()).await {
                    Ok(Ok(true)) => {
                        last_error = None;
                        tracing::info!(source = ?tls.inner.settings.cert, "TLS certificate reloaded");
                    }
                    Ok(Ok(false)) => last_error = None,
                    Ok(Err(error)) => {
                        let message = error.to_string();
                        if last_error.as_deref() != Some(message.as_str()) {
                            tracing::warn!(%error, "TLS reload failed; the previous certificate stays in use");
                            last_error = Some(message);
                        }
                    }
                    Err(join) => tracing::warn!(error = %join, "TLS reload task failed"),
                }
            }
        })
    }

    /// The configuration in use now.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.current().config)
    }

    /// An acceptor for one connection, with the configuration in use now.
    pub(crate) fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.server_config())
    }

    fn current(&self) -> std::sync::RwLockReadGuard<'_, Current> {
        // A panic elsewhere cannot leave `Current` half-written: it is replaced whole.
        self.inner
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

/// The crypto provider of every configuration here: `ring`, chosen explicitly so that no
/// process-wide default is needed.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The protocol versions offered: TLS 1.3 and 1.2 (rustls has nothing older).
pub(crate) const PROTOCOL_VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

fn read_files(
    server_cert: &ServerCert,
    settings: &TlsSettings,
) -> Result<FileContents, TransportError> {
    let (cert, key) = match server_cert {
        ServerCert::Files { cert, key } => (pem::read(cert)?, pem::read(key)?),
        ServerCert::Generated { .. } => (Vec::new(), Vec::new()),
    };
    let client_ca = settings.client_ca.as_deref().map(pem::read).transpose()?;
    Ok(FileContents {
        cert,
        key,
        client_ca,
    })
}

fn build(
    server_cert: &ServerCert,
    settings: &TlsSettings,
    files: &FileContents,
) -> Result<ServerConfig, TransportError> {
    let (chain, key, cert_path, key_path) = match server_cert {
        ServerCert::Files { cert, key } => (
            pem::chain(cert, &files.cert)?,
            pem::private_key(key, &files.key)?,
            cert.clone(),
            key.clone(),
        ),
        ServerCert::Generated { chain, key } => (
            chain.clone(),
            key.clone_key(),
            PathBuf::from("<self-signed>"),
            PathBuf::from("<self-signed>"),
        ),
    };
    let rejected = |source| TransportError::CertificateRejected {
        cert: cert_path.clone(),
        key: key_path.clone(),
        source,
    };
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(PROTOCOL_VERSIONS)
        .map_err(rejected)?;
    let builder = match (&settings.client_ca, &files.client_ca) {
        (Some(path), Some(bytes)) => {
            let roots = pem::roots(path, bytes)?;
            builder.with_client_cert_verifier(client_verifier(
                path,
                roots,
                settings.client_cert_required,
            )?)
        }
        _ => builder.with_no_client_auth(),
    };
    builder.with_single_cert(chain, key).map_err(rejected)
}

fn client_verifier(
    path: &Path,
    roots: RootCertStore,
    required: bool,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, TransportError> {
    let mut builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider());
    if !required {
        builder = builder.allow_unauthenticated();
    }
    builder
        .build()
        .map_err(|error| TransportError::ClientCaRejected {
            path: path.to_path_buf(),
            reason: error.to_string(),
        })
}

/// The `selfsigned` provider: a fresh CA and a server certificate for `hostnames`; the CA
/// certificate goes to `ca_out` for clients to trust.
fn self_signed(hostnames: &[String], ca_out: &Path) -> Result<ServerCert, TransportError> {
    if hostnames.is_empty() {
        return Err(TransportError::SelfSignedNoHostnames);
    }
    let ca = pki::Ca::generate("Sluice self-signed CA")?;
    let server = ca.issue_server(hostnames)?;
    std::fs::write(ca_out, ca.cert_pem()).map_err(|source| {
        TransportError::CertificateFileWrite {
            path: ca_out.to_path_buf(),
            source,
        }
    })?;
    Ok(ServerCert::Generated {
        chain: vec![server.cert.clone(), ca.cert()],
        key: server.private_key(),
    })
}
