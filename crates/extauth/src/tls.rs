//! The rustls client configuration for the external server, from PEM files.

use std::path::Path;
use std::sync::Arc;

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::ExtAuthError;
use crate::server::ExternalTls;

/// Builds the client configuration: trust exactly the CA file's certificates (not the system's:
/// the external server is a private service), and present the client certificate if one is
/// configured.
pub(crate) fn client_config(
    tls: &ExternalTls,
    host: &str,
) -> Result<Arc<ClientConfig>, ExtAuthError> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs(&tls.ca)? {
        roots
            .add(cert)
            .map_err(|e| file_error(&tls.ca, format!("not a usable CA certificate: {e}")))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ExtAuthError::Tls {
            host: host.to_string(),
            reason: e.to_string(),
        })?
        .with_root_certificates(roots);
    let config = match &tls.client_cert {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = read_certs(cert)?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| file_error(key, format!("no usable private key: {e}")))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| file_error(cert, format!("does not go with its key: {e}")))?
        }
    };
    Ok(Arc::new(config))
}

/// Every certificate in a PEM file; a file with none is an error.
fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, ExtAuthError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(path, e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(path, e.to_string()))?;
    if certs.is_empty() {
        return Err(file_error(path, "holds no PEM certificate".to_string()));
    }
    Ok(certs)
}

fn file_error(path: &Path, reason: String) -> ExtAuthError {
    ExtAuthError::TlsFile {
        path: path.to_path_buf(),
        reason,
    }
}
