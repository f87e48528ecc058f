//! Reading the small files configuration points at, with a size limit.

use std::io::Read;
use std::path::Path;

use crate::ReviewError;

/// Largest kubeconfig, CA bundle, certificate or key file read.
pub(crate) const CONFIG_FILE_BYTES_MAX: u64 = 1024 * 1024;

/// Largest file our own bearer token is read from (projected tokens are ~1 KiB).
pub(crate) const CREDENTIAL_TOKEN_FILE_BYTES_MAX: u64 = 64 * 1024;

/// Reads at most `bytes_max` bytes of `path`; a longer file is an error naming `field`.
pub(crate) fn read_bounded(
    path: &Path,
    field: &str,
    bytes_max: u64,
) -> Result<Vec<u8>, ReviewError> {
    let file = std::fs::File::open(path)
        .map_err(|error| ReviewError::config(path, field, format!("cannot open: {error}")))?;
    let mut contents = Vec::new();
    file.take(bytes_max.saturating_add(1))
        .read_to_end(&mut contents)
        .map_err(|error| ReviewError::config(path, field, format!("cannot read: {error}")))?;
    if contents.len() as u64 > bytes_max {
        return Err(ReviewError::config(
            path,
            field,
            format!("the file is larger than {bytes_max} bytes"),
        ));
    }
    Ok(contents)
}

/// Reads a bearer token from `path`, without surrounding whitespace (files end in a newline).
pub(crate) fn read_token_file(path: &Path, field: &str) -> Result<String, ReviewError> {
    let contents = read_bounded(path, field, CREDENTIAL_TOKEN_FILE_BYTES_MAX)?;
    let text = String::from_utf8(contents)
        .map_err(|_| ReviewError::config(path, field, "the token is not UTF-8"))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(ReviewError::config(path, field, "the token file is empty"));
    }
    Ok(token.to_owned())
}
