//! Links (part 2 §2.6): attaching, answering, refusing and detaching, and the state each link
//! keeps.
//!
//! ```text
//!  ours:   attach ──▶ AttachSent ──peer's attach──▶ Attached ──detach──▶ DetachSent ──▶ gone
//!  peer's: attach ──▶ AttachReceived ──accept──▶ Attached       (peer's detach, answered)
//!                                    ──refuse──▶ DetachSent
//! ```

use sluice_codec::transport::{Attach, Detach, Error, ReceiverSettleMode, Role, conditions};
use sluice_codec::types::Str;

use super::incoming::Partial;
use super::{PartialBudget, Session, SessionError, opposite};
use crate::error::ConnectionError;
use crate::event::Event;
use crate::ids::LinkId;
use crate::out::Out;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LinkState {
    AttachSent,
    /// The peer attached first; the caller has not answered yet.
    AttachReceived,
    Attached,
    DetachSent,
}

/// One link's state, from our end.
#[derive(Debug)]
pub(super) struct Link {
    pub(super) name: Str,
    pub(super) role: Role,
    pub(super) state: LinkState,
    pub(super) remote_handle: Option<u32>,
    pub(super) delivery_count: u32,
    pub(super) link_credit: u32,
    pub(super) drain: bool,
    /// The peer's max-message-size when we send; ours when we receive (0: no limit).
    pub(super) message_size_max: u64,
    /// Receiver: the delivery whose transfers are arriving.
    pub(super) partial: Option<Partial>,
    /// Deliveries on this link not yet settled (by the peer when we send, by us when we
    /// receive), bounded by `Config::link_unsettled_max`: as many as the session's map for
    /// this direction holds for the link's handle.
    pub(super) unsettled: u32,
    /// Sender: messages it says it has ready; receiver: what the sender last said.
    pub(super) available: u32,
}

impl Link {
    fn new(attach: &Attach, state: LinkState, remote_handle: Option<u32>) -> Self {
        Link {
            name: attach.name.clone(),
            role: attach.role,
            state,
            remote_handle,
            delivery_count: attach.initial_delivery_count.unwrap_or(0),
            link_credit: 0,
            drain: false,
            message_size_max: attach.max_message_size.unwrap_or(0),
            partial: None,
            unsettled: 0,
            available: 0,
        }
    }

    /// Counts one delivery against the credit, sent or received: the caller has checked that
    /// there is some (part 2 §2.6.7: no transfer without credit).
    pub(super) fn take_credit(&mut self) {
        debug_assert!(
            self.link_credit > 0,
            "link credit: a delivery was counted against no credit"
        );
        self.link_credit = self.link_credit.saturating_sub(1);
        self.delivery_count = self.delivery_count.wrapping_add(1);
    }

    /// Drops the delivery being received, if any, giving its bytes back to `budget`.
    pub(super) fn free_partial(&mut self, budget: &mut PartialBudget) {
        if let Some(partial) = self.partial.take() {
            partial.free(budget);
        }
    }

    /// Bytes the delivery being received holds.
    pub(super) fn partial_bytes(&self) -> usize {
        self.partial.as_ref().map_or(0, Partial::held)
    }
}

impl Session {
    /// Attaches a link; `attach.handle` is chosen here.
    pub(crate) fn attach(
        &mut self,
        mut attach: Attach,
        out: &mut Out<'_>,
    ) -> Result<LinkId, ConnectionError> {
        let handle_max = out.config.link_handle_max.min(self.remote_handle_max);
        let handle = self.links.first_free(handle_max).ok_or_else(|| {
            ConnectionError::new(conditions::RESOURCE_LIMIT_EXCEEDED, "no free link handle")
        })?;
        attach.handle = handle;
        // Part 2 §2.7.3: a sender's attach carries its initial delivery-count.
        if attach.role == Role::Sender && attach.initial_delivery_count.is_none() {
            attach.initial_delivery_count = Some(0);
        }
        self.links
            .insert(handle, Link::new(&attach, LinkState::AttachSent, None));
        out.write(self.channel, &attach.into());
        Ok(self.link_id(handle))
    }

    /// Answers a link the peer attached with our attach, `reply`.
    ///
    /// A peer sender may ask us to settle second (exactly once, part 3 §3.4). Unless
    /// `Config::receiver_settle_second` is set, our reply states `first`: part 2 §2.7.3 lets
    /// the receiver state the mode it uses, and the sender then knows what it gets.
    pub(crate) fn accept_link(&mut self, handle: u32, mut reply: Attach, out: &mut Out<'_>) {
        let limit = out.config.message_size_max;
        let second_allowed = out.config.receiver_settle_second;
        let Some(l) = self.links.get_mut(&handle) else {
            return;
        };
        if l.state != LinkState::AttachReceived {
            return;
        }
        l.state = LinkState::Attached;
        l.role = reply.role;
        match reply.role {
            // Part 2 §2.7.3: a sender's attach carries its initial delivery-count.
            Role::Sender => reply.initial_delivery_count = Some(l.delivery_count),
            Role::Receiver => {
                if !second_allowed {
                    reply.rcv_settle_mode = ReceiverSettleMode::First;
                }
                // Advertise the limit we enforce (the lower of the caller's and the configured
                // one), so that the sender learns it before it is detached for it.
                let asked = reply.max_message_size.unwrap_or(0);
                let max = match (asked, limit) {
                    (0, m) | (m, 0) => m,
                    (a, m) => a.min(m),
                };
                l.message_size_max = max;
                reply.max_message_size = (max > 0).then_some(max);
            }
        }
        reply.handle = handle;
        out.write(self.channel, &reply.into());
    }

    /// Refuses a link the peer attached: part 2 §2.6.3 has us answer with an attach carrying a
    /// null terminus, then a detach with the error.
    pub(crate) fn refuse_link(&mut self, handle: u32, error: Error, out: &mut Out<'_>) {
        let Some(l) = self.links.get_mut(&handle) else {
            return;
        };
        if l.state != LinkState::AttachReceived {
            return;
        }
        l.state = LinkState::DetachSent;
        l.free_partial(out.partials);
        let reply = Attach {
            name: l.name.clone(),
            handle,
            role: l.role,
            ..Default::default()
        };
        out.write(self.channel, &reply.into());
        let detach = Detach {
            handle,
            closed: true,
            error: Some(error),
        };
        out.write(self.channel, &detach.into());
    }

    /// Detaches a link (closing it when `closed`); what it was receiving is freed.
    pub(crate) fn detach(
        &mut self,
        handle: u32,
        closed: bool,
        error: Option<Error>,
        out: &mut Out<'_>,
    ) {
        let Some(l) = self.links.get_mut(&handle) else {
            return;
        };
        if l.state == LinkState::DetachSent {
            return;
        }
        l.state = LinkState::DetachSent;
        l.free_partial(out.partials);
        let detach = Detach {
            handle,
            closed,
            error,
        };
        out.write(self.channel, &detach.into());
    }

    pub(super) fn on_attach(
        &mut self,
        attach: Box<Attach>,
        out: &mut Out<'_>,
    ) -> Result<(), SessionError> {
        let handle_max = out.config.link_handle_max;
        if attach.handle > handle_max {
            // Part 2 §2.7.2: a handle beyond handle-max closes the connection.
            return Err(SessionError::new(
                conditions::FRAMING_ERROR,
                format!("handle {} above handle-max {handle_max}", attach.handle),
            ));
        }
        if self.remote_handles.contains_key(&attach.handle) {
            return Err(SessionError::new(
                conditions::HANDLE_IN_USE,
                format!("handle {} is attached", attach.handle),
            ));
        }
        // The answer to an attach of ours carries the same link name.
        let ours = self
            .links
            .iter()
            .find(|(_, l)| l.state == LinkState::AttachSent && l.name == attach.name)
            .map(|(h, _)| h);
        let remote_first = ours.is_none();
        let handle = match ours {
            Some(h) => h,
            None => self.links.first_free(handle_max).ok_or_else(|| {
                SessionError::new(conditions::RESOURCE_LIMIT_EXCEEDED, "no free link handle")
            })?,
        };
        self.remote_handles.insert(attach.handle, handle);
        if remote_first {
            // Our end has the other role; accept_link may still say otherwise.
            let mut link = Link::new(&attach, LinkState::AttachReceived, Some(attach.handle));
            link.role = opposite(attach.role);
            if link.role == Role::Receiver {
                link.message_size_max = out.config.message_size_max;
            }
            self.links.insert(handle, link);
        } else if let Some(l) = self.links.get_mut(&handle) {
            l.state = LinkState::Attached;
            l.remote_handle = Some(attach.handle);
            if l.role == Role::Sender {
                l.message_size_max = attach.max_message_size.unwrap_or(0);
            } else {
                l.delivery_count = attach.initial_delivery_count.unwrap_or(0);
            }
        }
        out.event(Event::LinkAttached {
            link: self.link_id(handle),
            attach,
            remote_first,
        });
        Ok(())
    }

    pub(super) fn on_detach(
        &mut self,
        detach: Detach,
        out: &mut Out<'_>,
    ) -> Result<(), SessionError> {
        let Some(handle) = self.remote_handles.remove(&detach.handle) else {
            return Err(SessionError::new(
                conditions::UNATTACHED_HANDLE,
                format!("detach of unattached handle {}", detach.handle),
            ));
        };
        let ours_sent = self
            .links
            .get(&handle)
            .is_some_and(|l| l.state == LinkState::DetachSent);
        self.remove_link(handle, out.partials);
        if !ours_sent {
            let reply = Detach {
                handle,
                closed: detach.closed,
                error: None,
            };
            out.write(self.channel, &reply.into());
        }
        out.event(Event::LinkDetached {
            link: self.link_id(handle),
            closed: detach.closed,
            error: detach.error,
        });
        Ok(())
    }

    /// Forgets a link, with its unsettled deliveries and what it was receiving.
    fn remove_link(&mut self, handle: u32, budget: &mut PartialBudget) {
        if let Some(mut l) = self.links.remove(&handle) {
            l.free_partial(budget);
        }
        self.unsettled_in.remove_link(handle);
        self.unsettled_out.remove_link(handle);
    }
}
