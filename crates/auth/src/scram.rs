//! SCRAM (RFC 5802) with SHA-256 (RFC 7677) and SHA-512, server side: the salted
//! credential, the client's messages, and the proof check.
//!
//! ```text
//! client-first   n,[a=authzid],n=user,r=cnonce[,ext]          -> server-first
//! server-first   r=cnonce+snonce,s=salt,i=iterations
//! client-final   c=base64(gs2 header),r=cnonce+snonce[,ext],p=proof -> server-final
//! server-final   v=server signature
//! ```
//!
//! SASLprep (RFC 4013) is not applied: usernames are MessagingUser names (lower-case ASCII),
//! and a password is hashed as its bytes. For printable ASCII SASLprep is the identity, so
//! every client agrees with us there; a client that SASLpreps a non-ASCII password may derive
//! a different key and then fails cleanly with a wrong proof.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

use crate::{SCRAM_MESSAGE_BYTES_MAX, SCRAM_NONCE_BYTES_MAX, USERNAME_BYTES_MAX};

/// The hash a SCRAM mechanism is built on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Hash {
    Sha256,
    Sha512,
}

impl Hash {
    pub(crate) fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => Sha256::digest(data).to_vec(),
            Hash::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    /// HMAC of the concatenation of `parts`. HMAC takes keys of any length, so the key is
    /// never refused; should it be, the empty result fails every comparison.
    pub(crate) fn hmac(self, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        fn run<M: Mac + KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
            match <M as KeyInit>::new_from_slice(key) {
                Ok(mut mac) => {
                    for part in parts {
                        mac.update(part);
                    }
                    mac.finalize().into_bytes().to_vec()
                }
                Err(_) => Vec::new(),
            }
        }
        match self {
            Hash::Sha256 => run::<Hmac<Sha256>>(key, parts),
            Hash::Sha512 => run::<Hmac<Sha512>>(key, parts),
        }
    }

    /// `Hi(password, salt, iterations)`: PBKDF2 with HMAC, one output block.
    pub(crate) fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            Hash::Sha256 => {
                let mut out = [0u8; 32];
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
                out.to_vec()
            }
            Hash::Sha512 => {
                let mut out = [0u8; 64];
                pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out);
                out.to_vec()
            }
        }
    }
}

/// What the server keeps of a password (RFC 5802 §3): never the password itself.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct ScramCredential {
    pub(crate) salt: Vec<u8>,
    pub(crate) iterations: u32,
    pub(crate) stored_key: Vec<u8>,
    pub(crate) server_key: Vec<u8>,
}

impl std::fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramCredential")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl ScramCredential {
    pub(crate) fn derive(hash: Hash, password: &[u8], salt: &[u8], iterations: u32) -> Self {
        let salted = hash.salted_password(password, salt, iterations);
        let client_key = hash.hmac(&salted, &[b"Client Key"]);
        ScramCredential {
            salt: salt.to_vec(),
            iterations,
            stored_key: hash.digest(&client_key),
            server_key: hash.hmac(&salted, &[b"Server Key"]),
        }
    }

    /// Whether `password` derives this credential's StoredKey (the PLAIN check), compared in
    /// constant time.
    pub(crate) fn verify_password(&self, hash: Hash, password: &[u8]) -> bool {
        let derived = ScramCredential::derive(hash, password, &self.salt, self.iterations);
        derived.stored_key.ct_eq(&self.stored_key).into()
    }
}

/// A parsed client-first message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientFirst {
    /// `n,,` or `y,,` or with an authzid: what `c=` must carry in client-final.
    pub(crate) gs2_header: String,
    pub(crate) authzid: Option<String>,
    pub(crate) username: String,
    pub(crate) nonce: String,
    /// client-first-message-bare, part of the AuthMessage.
    pub(crate) bare: String,
}

/// Parses a client-first message. The error is a reason for the log.
pub(crate) fn parse_client_first(message: &[u8]) -> Result<ClientFirst, &'static str> {
    let text = bounded_text(message)?;
    let (cbind, rest) = text
        .split_once(',')
        .ok_or("client-first has no gs2 header")?;
    match cbind {
        "n" | "y" => {}
        flag if flag.starts_with("p=") => {
            return Err("client asked for channel binding, which is not supported");
        }
        _ => return Err("client-first has a bad channel-binding flag"),
    }
    let (authz, bare) = rest
        .split_once(',')
        .ok_or("client-first has no gs2 header")?;
    let authzid = match authz {
        "" => None,
        _ => Some(decode_saslname(
            authz
                .strip_prefix("a=")
                .ok_or("client-first has a bad authzid")?,
        )?),
    };
    let mut fields = bare.split(',');
    let user_field = fields.next().unwrap_or_default();
    if user_field.starts_with("m=") {
        return Err("client-first has a mandatory extension");
    }
    let username = decode_saslname(
        user_field
            .strip_prefix("n=")
            .ok_or("client-first has no username")?,
    )?;
    let nonce = fields
        .next()
        .and_then(|f| f.strip_prefix("r="))
        .ok_or("client-first has no nonce")?;
    check_nonce(nonce)?;
    Ok(ClientFirst {
        gs2_header: format!("{cbind},{authz},"),
        authzid,
        username,
        nonce: nonce.to_owned(),
        bare: bare.to_owned(),
    })
}

fn bounded_text(message: &[u8]) -> Result<&str, &'static str> {
    if message.len() > SCRAM_MESSAGE_BYTES_MAX {
        return Err("SCRAM message is too long");
    }
    std::str::from_utf8(message).map_err(|_| "SCRAM message is not UTF-8")
}

/// RFC 5802 `saslname`: `,` is sent as `=2C` and `=` as `=3D`; any other `=` is an error.
fn decode_saslname(name: &str) -> Result<String, &'static str> {
    if name.is_empty() {
        return Err("SCRAM username is empty");
    }
    let mut decoded = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(at) = rest.find('=') {
        let (head, tail) = rest.split_at(at);
        decoded.push_str(head);
        if let Some(after) = tail.strip_prefix("=2C") {
            decoded.push(',');
            rest = after;
        } else if let Some(after) = tail.strip_prefix("=3D") {
            decoded.push('=');
            rest = after;
        } else {
            return Err("SCRAM username has a bad '=' escape");
        }
    }
    decoded.push_str(rest);
    if decoded.len() > USERNAME_BYTES_MAX {
        return Err("SCRAM username is too long");
    }
    Ok(decoded)
}

/// RFC 5802 `printable`: %x21-2B / %x2D-7E (no comma).
fn check_nonce(nonce: &str) -> Result<(), &'static str> {
    if nonce.is_empty() || nonce.len() > SCRAM_NONCE_BYTES_MAX {
        return Err("SCRAM nonce is empty or too long");
    }
    if nonce
        .bytes()
        .all(|b| (0x21..=0x7e).contains(&b) && b != b',')
    {
        Ok(())
    } else {
        Err("SCRAM nonce has a character that is not printable")
    }
}

/// The server between server-first and client-final.
#[derive(Debug, Clone)]
pub(crate) struct ScramServer {
    hash: Hash,
    credential: ScramCredential,
    /// Why this exchange fails whatever the proof (unknown user, no password), so that it
    /// fails at the same step, after the same work, as a wrong password.
    refusal: Option<&'static str>,
    gs2_header: String,
    client_first_bare: String,
    server_first: String,
    nonce: String,
}

impl ScramServer {
    /// Answers `first` with server-first, using `server_nonce` (printable, no comma).
    pub(crate) fn start(
        hash: Hash,
        first: ClientFirst,
        credential: ScramCredential,
        refusal: Option<&'static str>,
        server_nonce: &str,
    ) -> (ScramServer, String) {
        let nonce = format!("{}{server_nonce}", first.nonce);
        let server_first = format!(
            "r={nonce},s={},i={}",
            STANDARD.encode(&credential.salt),
            credential.iterations
        );
        let server = ScramServer {
            hash,
            credential,
            refusal,
            gs2_header: first.gs2_header,
            client_first_bare: first.bare,
            server_first: server_first.clone(),
            nonce,
        };
        (server, server_first)
    }

    /// Verifies client-final; on success the server-final message.
    pub(crate) fn finish(&self, message: &[u8]) -> Result<String, &'static str> {
        let text = bounded_text(message)?;
        let (without_proof, proof) = text.rsplit_once(",p=").ok_or("client-final has no proof")?;
        let mut fields = without_proof.split(',');
        let binding = fields
            .next()
            .and_then(|f| f.strip_prefix("c="))
            .ok_or("client-final has no channel binding")?;
        let binding = STANDARD
            .decode(binding)
            .map_err(|_| "client-final channel binding is not base64")?;
        if binding != self.gs2_header.as_bytes() {
            return Err("client-final channel binding does not match the gs2 header");
        }
        let nonce = fields
            .next()
            .and_then(|f| f.strip_prefix("r="))
            .ok_or("client-final has no nonce")?;
        if nonce != self.nonce {
            return Err("client-final nonce does not match");
        }
        let proof = STANDARD
            .decode(proof)
            .map_err(|_| "client-final proof is not base64")?;
        let auth_message = [
            self.client_first_bare.as_bytes(),
            b",",
            self.server_first.as_bytes(),
            b",",
            without_proof.as_bytes(),
        ];
        let stored_key = &self.credential.stored_key;
        let client_signature = self.hash.hmac(stored_key, &auth_message);
        if proof.len() != client_signature.len() {
            return Err("client-final proof has the wrong length");
        }
        let client_key: Vec<u8> = proof
            .iter()
            .zip(&client_signature)
            .map(|(p, s)| p ^ s)
            .collect();
        let matches: bool = self.hash.digest(&client_key).ct_eq(stored_key).into();
        if let Some(refusal) = self.refusal {
            return Err(refusal);
        }
        if !matches {
            return Err("wrong password");
        }
        let server_signature = self.hash.hmac(&self.credential.server_key, &auth_message);
        Ok(format!("v={}", STANDARD.encode(server_signature)))
    }
}

#[cfg(test)]
mod tests;
