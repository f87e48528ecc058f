//! A connection's sessions by channel (part 2 §2.5.1): ours, and the peer's channels mapped to
//! ours. Begin and end are handled here; every other frame on a channel goes to its session.

use sluice_codec::transport::{Begin, End, Error, Performative, conditions};

use super::{PartialBudget, Payload, Session, SessionError, SessionState};
use crate::config::Config;
use crate::error::ConnectionError;
use crate::event::Event;
use crate::ids::SessionId;
use crate::out::Out;
use crate::slots::Slots;

/// The sessions of one connection.
#[derive(Debug)]
pub(crate) struct Sessions {
    /// Sessions by local channel.
    by_channel: Slots<u16, Session>,
    /// The peer's channel numbers mapped to ours.
    remote_channels: Slots<u16, u16>,
    /// The peer's channel-max.
    remote_channel_max: u16,
}

impl Sessions {
    pub(crate) fn new() -> Self {
        Sessions {
            by_channel: Slots::new(),
            remote_channels: Slots::new(),
            remote_channel_max: 0,
        }
    }

    /// Takes the channel-max of the peer's open.
    pub(crate) fn set_remote_channel_max(&mut self, channel_max: u16) {
        self.remote_channel_max = channel_max;
    }

    pub(crate) fn get(&self, id: SessionId) -> Option<&Session> {
        self.by_channel.get(&id.0)
    }

    pub(crate) fn get_mut(&mut self, id: SessionId) -> Option<&mut Session> {
        self.by_channel.get_mut(&id.0)
    }

    /// Begins a session on the lowest free channel.
    pub(crate) fn begin(&mut self, out: &mut Out<'_>) -> Result<SessionId, ConnectionError> {
        let channel = self.free_channel(out.config)?;
        let session = Session::new(channel, None, out.config);
        out.write(channel, &session.local_begin(out.config).into());
        self.by_channel.insert(channel, session);
        Ok(SessionId(channel))
    }

    /// Handles a frame on the peer's `channel`.
    pub(crate) fn on_frame(
        &mut self,
        channel: u16,
        performative: Performative,
        payload: Payload,
        out: &mut Out<'_>,
    ) -> Result<(), ConnectionError> {
        if let Performative::Begin(begin) = performative {
            return self.on_begin(channel, begin, out);
        }
        let Some(&local) = self.remote_channels.get(&channel) else {
            // Part 2 §2.5.5: frames on a channel with no session are a connection error.
            return Err(ConnectionError::not_allowed(format!(
                "{} on unmapped channel {channel}",
                performative.name()
            )));
        };
        if let Performative::End(end) = performative {
            self.on_end(local, end, out);
            return Ok(());
        }
        let Some(session) = self.by_channel.get_mut(&local) else {
            return Ok(());
        };
        if session.state == SessionState::EndSent {
            return Ok(()); // Part 2 §2.5.5: ignore frames until the peer's end.
        }
        match session.on_frame(performative, payload, out) {
            Ok(()) => {}
            Err(e) if e.0 == conditions::FRAMING_ERROR => return Err(e.into()),
            Err(SessionError(condition, description)) => {
                session.end(Some(Error::new(condition, description)), out);
            }
        }
        if cfg!(debug_assertions) {
            session.check_invariants(out.config);
        }
        Ok(())
    }

    fn on_begin(
        &mut self,
        channel: u16,
        begin: Box<Begin>,
        out: &mut Out<'_>,
    ) -> Result<(), ConnectionError> {
        if self.remote_channels.contains_key(&channel) {
            return Err(ConnectionError::not_allowed(format!(
                "begin on channel {channel}, already in use"
            )));
        }
        let local = match begin.remote_channel {
            // The answer to a begin of ours.
            Some(ours) => {
                let s = self
                    .by_channel
                    .get_mut(&ours)
                    .filter(|s| s.state == SessionState::BeginSent && s.remote_channel.is_none())
                    .ok_or_else(|| {
                        ConnectionError::not_allowed(format!(
                            "begin answers unknown channel {ours}"
                        ))
                    })?;
                s.remote_channel = Some(channel);
                ours
            }
            None => {
                let local = self.free_channel(out.config)?;
                let session = Session::new(local, Some(channel), out.config);
                out.write(local, &session.local_begin(out.config).into());
                self.by_channel.insert(local, session);
                local
            }
        };
        self.remote_channels.insert(channel, local);
        if let Some(s) = self.by_channel.get_mut(&local) {
            s.map(&begin);
        }
        out.event(Event::SessionBegun {
            session: SessionId(local),
            remote: begin,
        });
        Ok(())
    }

    /// The peer ended the session on our channel `local`: we answer unless we ended it first,
    /// and forget it with its links.
    fn on_end(&mut self, local: u16, end: End, out: &mut Out<'_>) {
        let ended_by_us = self
            .by_channel
            .get(&local)
            .is_some_and(|s| s.state == SessionState::EndSent);
        if !ended_by_us {
            out.write(local, &End::default().into());
        }
        if let Some(mut ended) = self.by_channel.remove(&local) {
            ended.free_partials(out.partials);
            if let Some(remote) = ended.remote_channel {
                self.remote_channels.remove(&remote);
            }
        }
        out.event(Event::SessionEnded {
            session: SessionId(local),
            error: end.error,
        });
    }

    /// After a read: reopens every session window that has fallen below half.
    pub(crate) fn refill_windows(&mut self, out: &mut Out<'_>) {
        for (_, session) in self.by_channel.iter_mut() {
            session.refill_window(out);
        }
    }

    /// Frees what every link of every session is receiving (the connection is closing).
    pub(crate) fn free_partials(&mut self, budget: &mut PartialBudget) {
        for (_, session) in self.by_channel.iter_mut() {
            session.free_partials(budget);
        }
    }

    /// Checks the accounting that could drift, across the connection (debug builds).
    pub(crate) fn check_invariants(&self, budget: &PartialBudget, config: &Config) {
        let mut partial_bytes = 0;
        for (_, session) in self.by_channel.iter() {
            session.check_invariants(config);
            partial_bytes += session.partial_bytes();
        }
        debug_assert_eq!(
            partial_bytes,
            budget.held(),
            "partial bytes: the links' unfinished deliveries and the connection's budget differ"
        );
        debug_assert!(
            budget.held() <= config.partial_bytes_max,
            "partial bytes: {} held, over partial_bytes_max",
            budget.held()
        );
    }

    fn free_channel(&self, config: &Config) -> Result<u16, ConnectionError> {
        self.by_channel
            .first_free(config.channel_max.min(self.remote_channel_max))
            .ok_or_else(|| {
                ConnectionError::new(conditions::RESOURCE_LIMIT_EXCEEDED, "no free channel")
            })
    }
}
