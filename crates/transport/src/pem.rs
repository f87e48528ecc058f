//! Reading PEM files for the server's TLS configuration: certificate chains, private keys and
//! CA bundles. Every error names the file.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::TransportError;

/// The largest PEM file we read. A chain of a dozen certificates is well under 64 KiB; the
/// bound stops a wrong path (a device, a log file) from being read into memory whole.
pub const PEM_FILE_BYTES_MAX: u64 = 1024 * 1024;

/// Reads `path` whole, refusing files over [`PEM_FILE_BYTES_MAX`].
pub(crate) fn read(path: &Path) -> Result<Vec<u8>, TransportError> {
    let read_error = |source| TransportError::CertificateFileRead {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(read_error)?;
    let mut bytes = Vec::new();
    file.take(PEM_FILE_BYTES_MAX + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > PEM_FILE_BYTES_MAX {
        return Err(bad(
            path,
            format!("larger than {PEM_FILE_BYTES_MAX} bytes, not a PEM certificate file"),
        ));
    }
    Ok(bytes)
}

/// The certificates in a PEM chain file, end-entity first as rustls wants them.
pub(crate) fn chain(
    path: &Path,
    bytes: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TransportError> {
    let chain = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| bad(path, format!("not a PEM certificate chain: {error}")))?;
    if chain.is_empty() {
        return Err(bad(path, "no CERTIFICATE block in the file".to_owned()));
    }
    Ok(chain)
}

/// The (first) private key in a PEM file: PKCS#8, PKCS#1 (RSA) or SEC1 (EC).
pub(crate) fn private_key(
    path: &Path,
    bytes: &[u8],
) -> Result<PrivateKeyDer<'static>, TransportError> {
    PrivateKeyDer::from_pem_slice(bytes).map_err(|error| match error {
        rustls_pki_types::pem::Error::NoItemsFound => bad(
            path,
            "no PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block in the file".to_owned(),
        ),
        other => bad(path, format!("not a PEM private key: {other}")),
    })
}

/// A trust store of every certificate in a PEM CA bundle.
pub(crate) fn roots(path: &Path, bytes: &[u8]) -> Result<RootCertStore, TransportError> {
    let mut roots = RootCertStore::empty();
    for cert in chain(path, bytes)? {
        roots
            .add(cert)
            .map_err(|error| bad(path, format!("a CA certificate is not usable: {error}")))?;
    }
    Ok(roots)
}

fn bad(path: &Path, reason: String) -> TransportError {
    TransportError::BadCertificateFile {
        path: PathBuf::from(path),
        reason,
    }
}
