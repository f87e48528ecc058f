//! Shared access signatures, as Azure SDKs send them in a `$cbs` put-token.
//!
//! `SharedAccessSignature sr=<resource>&sig=<signature>&se=<expiry>&skn=<key name>`, fields in
//! any order. The signature is base64 of HMAC-SHA256, keyed with the key string's UTF-8 bytes,
//! over `<resource>` + `"\n"` + `<expiry>`, where `<resource>` is the URL-encoded form the
//! token carries (Azure's `quote_plus(audience)`) and `<expiry>` is Unix seconds. So the
//! signature is checked over the `sr` field exactly as it arrived, and only the returned
//! resource is decoded.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use percent_encoding::percent_decode_str;
use sha2::Sha256;

use crate::error::AuthError;
use crate::rights::Rights;

/// Longest SAS token accepted, in bytes.
pub const SAS_TOKEN_BYTES_MAX: usize = 4096;

const PREFIX: &str = "SharedAccessSignature ";

/// The error of [`verify_sas`]: the crate's one error type.
pub type SasError = AuthError;

/// A shared access key: its name (`skn`), its secret and what a token signed with it grants.
#[derive(Clone)]
pub struct SasKey {
    /// The key name (`skn`).
    pub name: String,
    /// The key's bytes (Azure uses the key string's UTF-8 bytes).
    pub key: Vec<u8>,
    /// What a token signed with this key may do.
    pub rights: Rights,
}

impl fmt::Debug for SasKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SasKey")
            .field("name", &self.name)
            .field("key", &"<redacted>")
            .field("rights", &self.rights)
            .finish()
    }
}

/// A verified token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SasGrant {
    /// The `sr` URI, decoded.
    pub resource: String,
    /// The key that signed it.
    pub key_name: String,
    /// Its expiry, Unix milliseconds.
    pub expires_at_ms: i64,
    /// The signing key's rights; the broker may narrow them to `resource`.
    pub rights: Rights,
}

/// Verifies `token` against `keys` at `now_ms`: refuses oversized, malformed and expired
/// tokens, unknown key names and bad signatures (compared in constant time).
pub fn verify_sas(token: &str, keys: &[SasKey], now_ms: i64) -> Result<SasGrant, SasError> {
    if token.len() > SAS_TOKEN_BYTES_MAX {
        return Err(AuthError::SasTooLong {
            bytes: token.len(),
            max: SAS_TOKEN_BYTES_MAX,
        });
    }
    let fields = Fields::parse(token)?;
    let key_name = decode(fields.skn, true)?;
    let key = keys
        .iter()
        .find(|k| k.name == key_name)
        .ok_or_else(|| AuthError::SasUnknownKey(key_name.clone()))?;
    // '+' is a base64 character, so the signature is percent-decoded without form decoding.
    let signature = STANDARD
        .decode(decode(fields.sig, false)?)
        .map_err(|_| AuthError::SasMalformed("sig is not base64"))?;
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&key.key)
        .map_err(|_| AuthError::SasBadSignature(key_name.clone()))?;
    mac.update(fields.sr.as_bytes());
    mac.update(b"\n");
    mac.update(fields.se.as_bytes());
    mac.verify_slice(&signature)
        .map_err(|_| AuthError::SasBadSignature(key_name.clone()))?;
    let expires_at_ms = fields
        .se
        .parse::<i64>()
        .ok()
        .and_then(|seconds| seconds.checked_mul(1000))
        .ok_or(AuthError::SasMalformed("se is not a time in Unix seconds"))?;
    if expires_at_ms <= now_ms {
        return Err(AuthError::SasExpired {
            expires_at_ms,
            now_ms,
        });
    }
    Ok(SasGrant {
        resource: decode(fields.sr, true)?,
        key_name,
        expires_at_ms,
        rights: key.rights.clone(),
    })
}

/// The four fields as they appear in the token (still URL-encoded).
struct Fields<'a> {
    sr: &'a str,
    sig: &'a str,
    se: &'a str,
    skn: &'a str,
}

impl<'a> Fields<'a> {
    fn parse(token: &'a str) -> Result<Fields<'a>, AuthError> {
        let query = token.strip_prefix(PREFIX).ok_or(AuthError::SasMalformed(
            "it does not start with \"SharedAccessSignature \"",
        ))?;
        let (mut sr, mut sig, mut se, mut skn) = (None, None, None, None);
        for pair in query.split('&') {
            let (name, value) = pair
                .split_once('=')
                .ok_or(AuthError::SasMalformed("a field has no '='"))?;
            let slot = match name {
                "sr" => &mut sr,
                "sig" => &mut sig,
                "se" => &mut se,
                "skn" => &mut skn,
                // Other fields (none are signed) are ignored, as the service does.
                _ => continue,
            };
            if slot.replace(value).is_some() {
                return Err(AuthError::SasMalformed("a field appears twice"));
            }
        }
        Ok(Fields {
            sr: sr.ok_or(AuthError::SasMalformed("sr is missing"))?,
            sig: sig.ok_or(AuthError::SasMalformed("sig is missing"))?,
            se: se.ok_or(AuthError::SasMalformed("se is missing"))?,
            skn: skn.ok_or(AuthError::SasMalformed("skn is missing"))?,
        })
    }
}

/// URL-decodes `value`; `form` also reads `+` as a space (Python's `quote_plus`).
fn decode(value: &str, form: bool) -> Result<String, AuthError> {
    let spaced;
    let value = if form && value.contains('+') {
        spaced = value.replace('+', " ");
        spaced.as_str()
    } else {
        value
    };
    percent_decode_str(value)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| AuthError::SasMalformed("a field is not UTF-8 once decoded"))
}

#[cfg(test)]
mod tests;
