//! Authorization: may this principal do this operation on this address?

use std::fmt;

use crate::principal::{Grants, Principal};
use crate::rights::{Operation, Rights};
use crate::users::Users;

/// Longest address a [`Denied`] message repeats, in characters.
const ADDRESS_LOGGED_CHARS_MAX: usize = 200;

/// May `principal` do `op` on `address`? `extra` holds rights the connection gained since
/// (CBS tokens). The anonymous relay checks each message's `to` with this too.
///
/// For [`Grants::User`] the user is looked up in `users`, the current snapshot, so a reload
/// that changes or removes the user applies to the next check.
pub fn authorize(
    users: &Users,
    principal: &Principal,
    extra: Option<&Rights>,
    op: Operation,
    address: &str,
) -> Result<(), Denied> {
    let mut why = Why::NoRight;
    let granted = match &principal.grants {
        Grants::All => true,
        Grants::Explicit(rights) => rights.allows(op, address),
        Grants::User => match users.get(&principal.username) {
            Some(user) => user.rights().allows(op, address),
            None => {
                why = Why::UserGone;
                false
            }
        },
    };
    if granted || extra.is_some_and(|rights| rights.allows(op, address)) {
        return Ok(());
    }
    Err(Denied {
        username: principal.username.to_string(),
        op,
        address: address.chars().take(ADDRESS_LOGGED_CHARS_MAX).collect(),
        why,
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Why {
    NoRight,
    UserGone,
}

/// A refused operation. Its `Display` says who may not do what, e.g.
/// `user 'alice' may not send to 'orders'`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denied {
    username: String,
    op: Operation,
    address: String,
    why: Why,
}

impl Denied {
    /// The refused operation.
    pub fn operation(&self) -> Operation {
        self.op
    }

    /// The user refused.
    pub fn username(&self) -> &str {
        &self.username
    }
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Addresses come from the peer: escape them so a log line cannot be forged.
        write!(
            f,
            "user '{}' may not {} '{}'",
            self.username.escape_debug(),
            self.op.phrase(),
            self.address.escape_debug()
        )?;
        if self.why == Why::UserGone {
            f.write_str(": the MessagingUser no longer exists")?;
        }
        Ok(())
    }
}

impl std::error::Error for Denied {}

#[cfg(test)]
mod tests;
