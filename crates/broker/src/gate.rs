//! Admission: how many connections the broker holds, in all, per source host, per user and
//! still authenticating, against the address space's [`ConnectionLimits`]. Every connection
//! holds an [`Admission`] from accept to its end; dropping it gives its places back, so a
//! connection that ends in any way (closed, reset, timed out, its task cancelled) is counted
//! out.
//!
//! One mutex guards the counts: each connection takes it twice or three times in its life,
//! for a few map operations, never across an await.

use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use rustc_hash::FxHashMap;
use sluice_config::ConnectionLimits;

/// Why a connection is not admitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refused {
    /// The broker holds its most connections.
    #[error("the broker already has its limit of {max} connections")]
    Connections {
        /// The limit.
        max: u32,
    },
    /// The source host holds its most connections.
    #[error("{host} already has its limit of {max} connections")]
    Host {
        /// The peer's address.
        host: IpAddr,
        /// The limit.
        max: u32,
    },
    /// Too many connections are authenticating at once.
    #[error("{max} connections are already authenticating; retry later")]
    Unauthenticated {
        /// The limit.
        max: u32,
    },
    /// The user holds its most connections.
    #[error("user '{user}' already has its limit of {max} connections")]
    User {
        /// The user.
        user: Arc<str>,
        /// The limit.
        max: u32,
    },
}

impl Refused {
    /// Which limit refused it, as the metrics label it.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            Refused::Connections { .. } => "total",
            Refused::Host { .. } => "host",
            Refused::Unauthenticated { .. } => "unauthenticated",
            Refused::User { .. } => "user",
        }
    }
}

#[derive(Debug, Default)]
struct Counts {
    total: u32,
    unauthenticated: u32,
    hosts: FxHashMap<IpAddr, u32>,
    users: FxHashMap<Arc<str>, u32>,
}

/// The broker's connection counts, shared by the accept loops and every connection.
#[derive(Debug)]
pub(crate) struct Gate {
    limits: ConnectionLimits,
    counts: Mutex<Counts>,
}

/// One admitted connection's places; given back on drop.
#[derive(Debug)]
pub(crate) struct Admission {
    gate: Arc<Gate>,
    host: IpAddr,
    /// The user it counts against once authenticated; until then it counts as
    /// authenticating.
    user: Option<Arc<str>>,
}

impl Gate {
    pub(crate) fn new(limits: ConnectionLimits) -> Arc<Gate> {
        Arc::new(Gate {
            limits,
            counts: Mutex::new(Counts::default()),
        })
    }

    pub(crate) fn limits(&self) -> &ConnectionLimits {
        &self.limits
    }

    fn counts(&self) -> MutexGuard<'_, Counts> {
        // A panic elsewhere while holding it leaves plain counters, still usable.
        self.counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Admits a new connection from `host`, counted as authenticating.
    pub(crate) fn admit(self: &Arc<Self>, host: IpAddr) -> Result<Admission, Refused> {
        let mut c = self.counts();
        let l = &self.limits;
        if c.total >= l.connections_max {
            return Err(Refused::Connections {
                max: l.connections_max,
            });
        }
        let from_host = c.hosts.get(&host).copied().unwrap_or(0);
        if from_host >= l.connections_per_host_max {
            return Err(Refused::Host {
                host,
                max: l.connections_per_host_max,
            });
        }
        if c.unauthenticated >= l.unauthenticated_max {
            return Err(Refused::Unauthenticated {
                max: l.unauthenticated_max,
            });
        }
        c.total += 1;
        c.unauthenticated += 1;
        *c.hosts.entry(host).or_insert(0) += 1;
        Ok(Admission {
            gate: Arc::clone(self),
            host,
            user: None,
        })
    }

    /// Connections in all, and those authenticating (for tests and status).
    #[cfg(test)]
    pub(crate) fn totals(&self) -> (u32, u32) {
        let c = self.counts();
        (c.total, c.unauthenticated)
    }
}

impl Admission {
    /// The connection authenticated as `user`: it stops counting as authenticating and counts
    /// against the user's limit. Refused when the user holds its most connections; the
    /// connection still counts as authenticating until it is dropped.
    pub(crate) fn authenticated(&mut self, user: Arc<str>) -> Result<(), Refused> {
        if self.user.is_some() {
            return Ok(());
        }
        let max = self.gate.limits.connections_per_user_max;
        let mut c = self.gate.counts();
        let held = c.users.get(&user).copied().unwrap_or(0);
        if held >= max {
            return Err(Refused::User { user, max });
        }
        c.unauthenticated = c.unauthenticated.saturating_sub(1);
        *c.users.entry(Arc::clone(&user)).or_insert(0) += 1;
        drop(c);
        self.user = Some(user);
        Ok(())
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut c = self.gate.counts();
        c.total = c.total.saturating_sub(1);
        match self.user.take() {
            Some(user) => decrement(&mut c.users, &user),
            None => c.unauthenticated = c.unauthenticated.saturating_sub(1),
        }
        decrement(&mut c.hosts, &self.host);
    }
}

/// Counts one out, and forgets a key at zero so the maps hold only live hosts and users.
fn decrement<K: std::hash::Hash + Eq>(map: &mut FxHashMap<K, u32>, key: &K) {
    if let Some(n) = map.get_mut(key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            map.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn limits() -> ConnectionLimits {
        ConnectionLimits {
            connections_max: 4,
            connections_per_host_max: 3,
            connections_per_user_max: 2,
            unauthenticated_max: 2,
            ..ConnectionLimits::default()
        }
    }

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn each_limit_refuses_the_connection_past_it_and_dropping_gives_places_back() {
        let gate = Gate::new(limits());
        let mut a1 = gate.admit(A).unwrap();
        let a2 = gate.admit(A).unwrap();
        // Two are authenticating: a third must wait for one to finish.
        assert_eq!(
            gate.admit(B).unwrap_err(),
            Refused::Unauthenticated { max: 2 }
        );
        a1.authenticated("alice".into()).unwrap();
        let mut a3 = gate.admit(A).unwrap();
        a3.authenticated("alice".into()).unwrap();
        // Host A has its three.
        assert_eq!(
            gate.admit(A).unwrap_err(),
            Refused::Host { host: A, max: 3 }
        );
        let mut b1 = gate.admit(B).unwrap();
        // alice has her two.
        assert_eq!(
            b1.authenticated("alice".into()).unwrap_err(),
            Refused::User {
                user: "alice".into(),
                max: 2
            }
        );
        assert_eq!(gate.totals(), (4, 2));
        // Every limit is reached at once; the total is checked first.
        assert_eq!(gate.admit(B).unwrap_err(), Refused::Connections { max: 4 });
        drop(a2);
        drop(b1);
        b1 = gate.admit(B).unwrap();
        b1.authenticated("bob".into()).unwrap();
        let _b2 = gate.admit(B).unwrap();
        assert_eq!(gate.admit(B).unwrap_err(), Refused::Connections { max: 4 });
        drop((a1, a3, b1, _b2));
        assert_eq!(gate.totals(), (0, 0));
        let c = gate.counts();
        assert!(c.hosts.is_empty() && c.users.is_empty(), "{c:?}");
    }
}
