//! The credentials and rights of one address space's MessagingUsers.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::{DecodeError, Engine};
use sluice_config::ResolvedAddressSpace;
use sluice_config::resources::{AddressSpaceType, MessagingUser, UserAuthenticationType};

use crate::PASSWORD_BYTES_MAX;
use crate::error::AuthError;
use crate::rights::Rights;
use crate::scram::{Hash, ScramCredential};
use crate::settings::{AuthSettings, Service};

/// Bytes of random salt per SCRAM credential (RFC 5802 leaves it open; 16 is common).
const SALT_BYTES: usize = 16;
/// Bytes of the per-snapshot secret that makes fake salts for unknown users.
const SECRET_BYTES: usize = 32;

/// How a user proves who it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserKind {
    /// A password: PLAIN or SCRAM.
    Password,
    /// A Kubernetes service-account token: PLAIN, checked by TokenReview.
    ServiceAccount,
}

/// One MessagingUser: its name, how it authenticates and its rights.
#[derive(Clone)]
pub struct User {
    username: String,
    resource_name: String,
    kind: UserKind,
    rights: Rights,
    credentials: Option<Credentials>,
}

impl User {
    /// `spec.username`.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The MessagingUser's `metadata.name`, for messages.
    pub fn resource_name(&self) -> &str {
        &self.resource_name
    }

    /// How it authenticates.
    pub fn kind(&self) -> UserKind {
        self.kind
    }

    /// Its messaging rights.
    pub fn rights(&self) -> &Rights {
        &self.rights
    }
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("username", &self.username)
            .field("resource_name", &self.resource_name)
            .field("kind", &self.kind)
            .field("rights", &self.rights)
            .field(
                "credentials",
                &self.credentials.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// A password's salted credentials, one per SCRAM hash. PLAIN is checked against SHA-256's.
#[derive(Clone)]
struct Credentials {
    sha256: ScramCredential,
    sha512: ScramCredential,
}

impl Credentials {
    fn derive(password: &[u8], iterations: u32, random: &mut dyn FnMut(&mut [u8])) -> Self {
        let mut salt = [0u8; SALT_BYTES];
        random(&mut salt);
        let sha256 = ScramCredential::derive(Hash::Sha256, password, &salt, iterations);
        random(&mut salt);
        let sha512 = ScramCredential::derive(Hash::Sha512, password, &salt, iterations);
        Credentials { sha256, sha512 }
    }

    fn get(&self, hash: Hash) -> &ScramCredential {
        match hash {
            Hash::Sha256 => &self.sha256,
            Hash::Sha512 => &self.sha512,
        }
    }
}

/// The credentials and rights of one address space, built once per configuration load and
/// shared (`Arc`) by every connection; a reload builds a new one.
///
/// Clear passwords are not kept: at load each password user gets SCRAM-SHA-256 and
/// SCRAM-SHA-512 salted credentials, and PLAIN is checked against the SHA-256 one. Credentials
/// are derived only for the `standard` service, the only one where MessagingUsers take effect
/// (anchors/enmasse.md §3.1). `federated` users are left out: EnMasse 0.31+ ignored them and
/// no mechanism here can authenticate them.
pub struct Users {
    by_username: HashMap<String, User>,
    space_type: AddressSpaceType,
    iterations: u32,
    /// Keys the fake SCRAM salt of an unknown user, so that it is stable across attempts and
    /// cannot be told from a real one.
    secret: [u8; SECRET_BYTES],
    /// Checked by PLAIN for an unknown user, so that it costs what a wrong password costs.
    dummy: ScramCredential,
}

impl fmt::Debug for Users {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&str> = self.by_username.keys().map(String::as_str).collect();
        names.sort_unstable();
        f.debug_struct("Users")
            .field("usernames", &names)
            .field("space_type", &self.space_type)
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl Users {
    /// From the space's MessagingUsers. `spec.authentication.password` is base64 (EnMasse's
    /// manifest form); a bad value is an error naming the user and the field. `random` fills
    /// buffers with random bytes (salts and the fake-salt secret); tests pass a repeatable one.
    pub fn from_space(
        space: &ResolvedAddressSpace,
        settings: &AuthSettings,
        random: &mut dyn FnMut(&mut [u8]),
    ) -> Result<Users, AuthError> {
        let resources: Vec<&MessagingUser> = space.users.iter().map(|u| &u.resource).collect();
        Users::from_users(&resources, space.space_type, settings, random)
    }

    /// [`Users::from_space`] with the operating system's random bytes.
    pub fn from_space_os_random(
        space: &ResolvedAddressSpace,
        settings: &AuthSettings,
    ) -> Result<Users, AuthError> {
        let mut failure = None;
        let mut random = |buf: &mut [u8]| {
            if let Err(error) = getrandom::fill(buf) {
                failure = Some(error.to_string());
            }
        };
        let users = Users::from_space(space, settings, &mut random)?;
        match failure {
            Some(error) => Err(AuthError::Random(error)),
            None => Ok(users),
        }
    }

    /// From MessagingUser resources of a space of type `space_type`.
    pub fn from_users(
        resources: &[&MessagingUser],
        space_type: AddressSpaceType,
        settings: &AuthSettings,
        random: &mut dyn FnMut(&mut [u8]),
    ) -> Result<Users, AuthError> {
        settings.validate()?;
        let iterations = settings.scram_iterations;
        let derive = settings.service == Service::Standard;
        let mut secret = [0u8; SECRET_BYTES];
        random(&mut secret);
        let mut dummy_password = [0u8; SALT_BYTES];
        random(&mut dummy_password);
        let mut salt = [0u8; SALT_BYTES];
        random(&mut salt);
        let dummy = if derive {
            ScramCredential::derive(Hash::Sha256, &dummy_password, &salt, iterations)
        } else {
            ScramCredential::derive(Hash::Sha256, &dummy_password, &salt, 1)
        };
        let mut by_username: HashMap<String, User> = HashMap::new();
        for resource in resources {
            let Some(user) = load_user(resource, space_type, iterations, derive, random)? else {
                continue;
            };
            match by_username.entry(user.username.clone()) {
                Entry::Occupied(earlier) => {
                    return Err(AuthError::DuplicateUsername {
                        user: user.resource_name,
                        username: user.username,
                        other: earlier.get().resource_name.clone(),
                    });
                }
                Entry::Vacant(slot) => {
                    slot.insert(user);
                }
            }
        }
        Ok(Users {
            by_username,
            space_type,
            iterations,
            secret,
            dummy,
        })
    }

    /// The user whose `spec.username` is `username`.
    pub fn get(&self, username: &str) -> Option<&User> {
        self.by_username.get(username)
    }

    /// How many users there are.
    pub fn len(&self) -> usize {
        self.by_username.len()
    }

    /// Whether there is no user.
    pub fn is_empty(&self) -> bool {
        self.by_username.is_empty()
    }

    /// The address space type whose pattern rules the users' rights follow.
    pub fn space_type(&self) -> AddressSpaceType {
        self.space_type
    }

    /// PLAIN: whether `password` is `username`'s. An unknown user, or one without a
    /// password, is checked against a dummy credential so that it costs the same.
    pub(crate) fn check_password(
        &self,
        username: &str,
        password: &[u8],
    ) -> Result<(), &'static str> {
        let (credential, refusal) = match self.get(username) {
            None => (&self.dummy, Some("unknown user")),
            Some(user) => match &user.credentials {
                Some(credentials) => (credentials.get(Hash::Sha256), None),
                None => (&self.dummy, Some("user has no password")),
            },
        };
        let matches = credential.verify_password(Hash::Sha256, password);
        match refusal {
            Some(refusal) => Err(refusal),
            None if matches => Ok(()),
            None => Err("wrong password"),
        }
    }

    /// SCRAM: the credential to challenge `username` with, and why the exchange must fail
    /// whatever the proof (unknown user, no password). Users without a credential get a fake
    /// one whose salt is stable per username, so that repeated attempts cannot tell them
    /// from a real user.
    pub(crate) fn scram_credential(
        &self,
        hash: Hash,
        username: &str,
    ) -> (ScramCredential, Option<&'static str>) {
        match self.get(username) {
            Some(User {
                credentials: Some(credentials),
                ..
            }) => (credentials.get(hash).clone(), None),
            Some(user) if user.kind == UserKind::ServiceAccount => (
                self.fake_credential(hash, username),
                Some("service-account user tried SCRAM"),
            ),
            Some(_) => (
                self.fake_credential(hash, username),
                Some("user has no password"),
            ),
            None => (self.fake_credential(hash, username), Some("unknown user")),
        }
    }

    fn fake_credential(&self, hash: Hash, username: &str) -> ScramCredential {
        let label: &[u8] = match hash {
            Hash::Sha256 => b"sha256",
            Hash::Sha512 => b"sha512",
        };
        let name = username.as_bytes();
        let mut salt = Hash::Sha256.hmac(&self.secret, &[b"salt\0", label, b"\0", name]);
        salt.truncate(SALT_BYTES);
        ScramCredential {
            salt,
            iterations: self.iterations,
            stored_key: hash.hmac(&self.secret, &[b"stored-key\0", label, b"\0", name]),
            server_key: hash.hmac(&self.secret, &[b"server-key\0", label, b"\0", name]),
        }
    }
}

/// One MessagingUser, or `None` for one that cannot authenticate here (federated).
fn load_user(
    resource: &MessagingUser,
    space_type: AddressSpaceType,
    iterations: u32,
    derive: bool,
    random: &mut dyn FnMut(&mut [u8]),
) -> Result<Option<User>, AuthError> {
    let name = &resource.metadata.name;
    let authentication = &resource.spec.authentication;
    let (kind, credentials) = match authentication.auth_type {
        UserAuthenticationType::Federated => return Ok(None),
        UserAuthenticationType::Serviceaccount => (UserKind::ServiceAccount, None),
        // Without a password (as EnMasse's API showed users) the user cannot log in, but its
        // rights still apply to EXTERNAL; `sluice check` warns.
        UserAuthenticationType::Password => match authentication.password.as_deref() {
            None => (UserKind::Password, None),
            Some(encoded) => {
                let password = decode_password(name, encoded)?;
                let credentials =
                    derive.then(|| Credentials::derive(&password, iterations, random));
                (UserKind::Password, credentials)
            }
        },
    };
    Ok(Some(User {
        username: resource.spec.username.clone(),
        resource_name: name.clone(),
        kind,
        rights: Rights::from_rules(&resource.spec.authorization, space_type),
        credentials,
    }))
}

fn decode_password(user: &str, encoded: &str) -> Result<Vec<u8>, AuthError> {
    let password = STANDARD
        .decode(encoded.trim())
        .map_err(|error| AuthError::PasswordBase64 {
            user: user.to_owned(),
            reason: describe(&error),
        })?;
    if password.is_empty() || password.len() > PASSWORD_BYTES_MAX {
        return Err(AuthError::PasswordLength {
            user: user.to_owned(),
            bytes: password.len(),
            max: PASSWORD_BYTES_MAX,
        });
    }
    Ok(password)
}

/// The decoder's complaint without the offending byte, which is part of the secret.
fn describe(error: &DecodeError) -> String {
    match error {
        DecodeError::InvalidByte(offset, _) => format!("invalid character at offset {offset}"),
        DecodeError::InvalidLength(length) => format!("invalid length {length}"),
        DecodeError::InvalidLastSymbol { offset, .. } => {
            format!("invalid last character at offset {offset}")
        }
        DecodeError::InvalidPadding => "invalid padding".to_owned(),
    }
}

#[cfg(test)]
mod tests;
