//! Authorization on a connection: whether the peer may use an address, and what happens when
//! its rights change under it (a reload sends new ones, a token or a `$cbs` grant expires):
//! every link is checked again, and those that lost their right are detached with
//! `amqp:unauthorized-access`, while the rest of the connection goes on.

use std::sync::Arc;
use std::time::Instant;

use sluice_auth::{Operation, Users};
use sluice_router::Direction;

use super::State;
use super::sasl::now_ms;
use crate::error::Refusal;

impl State {
    /// Whether the peer may use `address` in `direction`: its own rights, or a `$cbs` grant
    /// still in force.
    pub(super) fn authorize(&self, address: &str, direction: Direction) -> Result<(), Refusal> {
        let Some(principal) = &self.auth.principal else {
            return Err(Refusal::Unauthorized("not authenticated".into()));
        };
        let op = match direction {
            Direction::Send => Operation::Send,
            Direction::Receive => Operation::Recv,
        };
        let users = &self.auth.users;
        match sluice_auth::authorize(users, principal, None, op, address) {
            Ok(()) => Ok(()),
            Err(denied) => {
                let now = now_ms();
                let granted = self.cbs.grants(now).any(|rights| {
                    sluice_auth::authorize(users, principal, Some(rights), op, address).is_ok()
                });
                if granted {
                    Ok(())
                } else {
                    Err(Refusal::Unauthorized(denied.to_string()))
                }
            }
        }
    }

    /// The next time rights expire: the principal's token, or a `$cbs` grant.
    pub(super) fn next_expiry(&self) -> Option<i64> {
        [self.auth.expires_at_ms(), self.cbs.next_expiry()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Something expired: a principal whose token ran out is closed; grants that ran out are
    /// dropped and the links that needed them detached.
    pub(super) fn on_expiry(&mut self, now: Instant) {
        let at = now_ms();
        if self.auth.expires_at_ms().is_some_and(|e| e <= at) {
            let user = self
                .auth
                .principal
                .as_ref()
                .map_or_else(String::new, |p| p.username.to_string());
            tracing::info!(conn = self.conn, %user, "credentials expired: closing the connection");
            self.engine
                .close(Some(Refusal::Expired(user).to_amqp()), now);
            // Nothing more to wait for.
            if let Some(p) = self.auth.principal.as_mut() {
                p.expires_at_ms = None;
            }
            return;
        }
        if self.cbs.expire(at) {
            self.recheck_links(now);
        }
    }

    /// A reload sent new rights.
    pub(super) fn on_rights_changed(&mut self, users: Arc<Users>, now: Instant) {
        self.auth.users = users;
        self.recheck_links(now);
    }

    /// Detaches every link whose address the peer may no longer use.
    fn recheck_links(&mut self, now: Instant) {
        for (link, authorized) in self.links.authorized() {
            let Some(address) = authorized.address else {
                continue;
            };
            let direction = if authorized.send {
                Direction::Send
            } else {
                Direction::Receive
            };
            if let Err(refusal) = self.authorize(&address, direction) {
                tracing::info!(conn = self.conn, %address, "a link lost its right: detached ({refusal})");
                self.engine.detach(link, true, Some(refusal.to_amqp()), now);
                self.unbind(link);
            }
        }
    }
}
