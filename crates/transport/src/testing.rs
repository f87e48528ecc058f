//! Test support (feature `testing`): a generated PKI written to PEM files, and rustls client
//! configurations that trust it. Nothing here is for production: keys are written unprotected.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::{ClientConfig, RootCertStore, SupportedProtocolVersion};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::tls::{PROTOCOL_VERSIONS, provider};
use crate::{CertSource, TlsSettings, TransportError, pem, pki};

/// The DNS name the test server certificate is for (clients verify against it).
pub const SERVER_DNS_NAME: &str = "localhost";

/// The names the test server certificate is for.
pub const SERVER_NAMES: [&str; 2] = [SERVER_DNS_NAME, "127.0.0.1"];

/// A CA, a server certificate for "localhost" and 127.0.0.1, and a client certificate, all
/// written as PEM files into one directory.
pub struct TestPki {
    /// The CA certificate.
    pub ca_cert: PathBuf,
    /// The server chain (server certificate, then the CA).
    pub server_cert: PathBuf,
    /// The server key.
    pub server_key: PathBuf,
    /// The client chain (client certificate, then the CA).
    pub client_cert: PathBuf,
    /// The client key.
    pub client_key: PathBuf,
    ca: CertificateDer<'static>,
    client_chain: Vec<CertificateDer<'static>>,
    client_private_key: PrivateKeyDer<'static>,
}

impl std::fmt::Debug for TestPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestPki")
            .field("ca_cert", &self.ca_cert)
            .field("server_cert", &self.server_cert)
            .finish_non_exhaustive()
    }
}

impl TestPki {
    /// Generates a fresh PKI (a new CA each time) whose client certificate has subject CN
    /// `client_cn`, writing `ca.pem`, `server.pem`, `server.key`, `client.pem` and
    /// `client.key` into `dir` (which must exist).
    pub fn generate(dir: &Path, client_cn: &str) -> Result<TestPki, TransportError> {
        let ca = pki::Ca::generate("Sluice test CA")?;
        let names = SERVER_NAMES.map(str::to_owned);
        let server = ca.issue_server(&names)?;
        let client = ca.issue_client(client_cn)?;
        let write = |name: &str, content: String| -> Result<PathBuf, TransportError> {
            let path = dir.join(name);
            std::fs::write(&path, content).map_err(|source| {
                TransportError::CertificateFileWrite {
                    path: path.clone(),
                    source,
                }
            })?;
            Ok(path)
        };
        Ok(TestPki {
            ca_cert: write("ca.pem", ca.cert_pem())?,
            server_cert: write(
                "server.pem",
                format!("{}{}", server.cert_pem, ca.cert_pem()),
            )?,
            server_key: write("server.key", server.key_pem.clone())?,
            client_cert: write(
                "client.pem",
                format!("{}{}", client.cert_pem, ca.cert_pem()),
            )?,
            client_key: write("client.key", client.key_pem.clone())?,
            ca: ca.cert(),
            client_chain: vec![client.cert.clone(), ca.cert()],
            client_private_key: client.private_key(),
        })
    }

    /// Server settings using this PKI's server certificate files and no client certificates.
    pub fn server_settings(&self) -> TlsSettings {
        TlsSettings {
            cert: CertSource::Files {
                cert: self.server_cert.clone(),
                key: self.server_key.clone(),
            },
            client_ca: None,
            client_cert_required: false,
        }
    }

    /// [`TestPki::server_settings`] verifying client certificates against this CA.
    pub fn server_settings_with_client_ca(&self, required: bool) -> TlsSettings {
        TlsSettings {
            client_ca: Some(self.ca_cert.clone()),
            client_cert_required: required,
            ..self.server_settings()
        }
    }

    /// A client configuration (TLS 1.2 and 1.3) trusting this CA, presenting the client
    /// certificate if `with_client_cert`.
    pub fn client_config(&self, with_client_cert: bool) -> Result<ClientConfig, TransportError> {
        self.client_config_with_versions(PROTOCOL_VERSIONS, with_client_cert)
    }

    /// [`TestPki::client_config`] offering only `versions`.
    pub fn client_config_with_versions(
        &self,
        versions: &[&'static SupportedProtocolVersion],
        with_client_cert: bool,
    ) -> Result<ClientConfig, TransportError> {
        let mut roots = RootCertStore::empty();
        roots
            .add(self.ca.clone())
            .map_err(|error| bad(&self.ca_cert, error))?;
        let client_auth = with_client_cert.then(|| {
            (
                self.client_chain.clone(),
                self.client_private_key.clone_key(),
            )
        });
        build_client(roots, versions, client_auth).map_err(|error| bad(&self.client_cert, error))
    }
}

/// A client configuration (TLS 1.2 and 1.3, no client certificate) trusting the CA
/// certificates in the PEM file `ca_pem`, such as the one the `selfsigned` provider writes.
pub fn client_config_trusting(ca_pem: &Path) -> Result<ClientConfig, TransportError> {
    let roots = pem::roots(ca_pem, &pem::read(ca_pem)?)?;
    build_client(roots, PROTOCOL_VERSIONS, None).map_err(|error| bad(ca_pem, error))
}

fn build_client(
    roots: RootCertStore,
    versions: &[&'static SupportedProtocolVersion],
    client_auth: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<ClientConfig, rustls::Error> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)?
        .with_root_certificates(Arc::new(roots));
    match client_auth {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key),
        None => Ok(builder.with_no_client_auth()),
    }
}

fn bad(path: &Path, error: impl std::fmt::Display) -> TransportError {
    TransportError::BadCertificateFile {
        path: path.to_path_buf(),
        reason: error.to_string(),
    }
}
