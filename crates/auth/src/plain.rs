//! SASL PLAIN's message (RFC 4616): `[authzid] NUL authcid NUL passwd`.

use std::fmt;

use crate::{PASSWORD_BYTES_MAX, USERNAME_BYTES_MAX};

/// The longest PLAIN message: both names, both NULs and the password.
pub(crate) const PLAIN_MESSAGE_BYTES_MAX: usize = 2 * USERNAME_BYTES_MAX + 2 + PASSWORD_BYTES_MAX;

/// A parsed PLAIN message. The authzid, when present, equals the authcid (checked by
/// [`parse`]), so only the authcid is kept.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Plain<'a> {
    pub(crate) authcid: &'a str,
    pub(crate) password: &'a str,
}

impl fmt::Debug for Plain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plain")
            .field("authcid", &self.authcid)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Parses a PLAIN message. The error is a reason for the log and never holds the password.
pub(crate) fn parse(message: &[u8]) -> Result<Plain<'_>, &'static str> {
    if message.len() > PLAIN_MESSAGE_BYTES_MAX {
        return Err("PLAIN message is too long");
    }
    let mut fields = message.splitn(3, |b| *b == 0);
    let (Some(authzid), Some(authcid), Some(password)) =
        (fields.next(), fields.next(), fields.next())
    else {
        return Err("PLAIN message does not have two NUL separators");
    };
    if password.contains(&0) {
        return Err("PLAIN message has more than two NUL separators");
    }
    if authcid.is_empty() || authcid.len() > USERNAME_BYTES_MAX {
        return Err("PLAIN authcid is empty or too long");
    }
    if authzid.len() > USERNAME_BYTES_MAX {
        return Err("PLAIN authzid is too long");
    }
    if password.is_empty() || password.len() > PASSWORD_BYTES_MAX {
        return Err("PLAIN password is empty or too long");
    }
    if !authzid.is_empty() && authzid != authcid {
        return Err("PLAIN authzid differs from authcid");
    }
    let authcid = std::str::from_utf8(authcid).map_err(|_| "PLAIN authcid is not UTF-8")?;
    let password = std::str::from_utf8(password).map_err(|_| "PLAIN password is not UTF-8")?;
    Ok(Plain { authcid, password })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_with_and_without_authzid() {
        let plain = parse(b"\0alice\0secret").unwrap();
        assert_eq!(plain.authcid, "alice");
        assert_eq!(plain.password, "secret");
        let plain = parse(b"alice\0alice\0secret").unwrap();
        assert_eq!(plain.authcid, "alice");
    }

    #[test]
    fn refuses_malformed_messages() {
        for (message, why) in [
            (&b""[..], "empty"),
            (b"alice", "no NUL"),
            (b"\0alice", "one NUL"),
            (b"\0alice\0", "empty password"),
            (b"\0\0secret", "empty authcid"),
            (b"bob\0alice\0secret", "authzid mismatch"),
            (b"\0alice\0sec\0ret", "three NULs"),
            (b"\0al\xffice\0secret", "authcid not UTF-8"),
            (b"\0alice\0\xff", "password not UTF-8"),
        ] {
            assert!(parse(message).is_err(), "{why}");
        }
    }

    #[test]
    fn bounds_every_field() {
        let long_name = "a".repeat(USERNAME_BYTES_MAX + 1);
        assert!(parse(format!("\0{long_name}\0pw").as_bytes()).is_err());
        assert!(parse(format!("{long_name}\0a\0pw").as_bytes()).is_err());
        let name = "a".repeat(USERNAME_BYTES_MAX);
        assert!(parse(format!("\0{name}\0pw").as_bytes()).is_ok());
        let token = "t".repeat(PASSWORD_BYTES_MAX);
        assert!(parse(format!("\0a\0{token}").as_bytes()).is_ok());
        let token = "t".repeat(PASSWORD_BYTES_MAX + 1);
        assert!(parse(format!("\0a\0{token}").as_bytes()).is_err());
    }

    #[test]
    fn debug_hides_the_password() {
        let plain = parse(b"\0alice\0hunter2").unwrap();
        assert!(!format!("{plain:?}").contains("hunter2"));
    }
}
