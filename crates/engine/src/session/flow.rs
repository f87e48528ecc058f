//! Flow control (part 2 §2.5.6 session windows, §2.6.7 link credit): the flows we send and the
//! peer's flows we act on.

use sluice_codec::transport::{Flow, Role};

use super::{Session, SessionError, SessionState};
use crate::config::Config;
use crate::event::Event;
use crate::out::Out;

impl Session {
    /// Receiver: sets the link credit to `credit` (and asks the sender to use it up or return
    /// it when `drain`), sending a flow.
    pub(crate) fn grant_credit(
        &mut self,
        handle: u32,
        credit: u32,
        drain: bool,
        out: &mut Out<'_>,
    ) {
        let Some(l) = self.links.get_mut(&handle) else {
            return;
        };
        if l.role != Role::Receiver {
            return;
        }
        l.link_credit = credit;
        l.drain = drain;
        self.write_link_flow(handle, false, out);
    }

    /// Sender: tells the receiver how many messages are ready to send, in a flow.
    pub(crate) fn set_available(&mut self, handle: u32, available: u32, out: &mut Out<'_>) {
        let Some(l) = self.links.get_mut(&handle) else {
            return;
        };
        if l.role != Role::Sender {
            return;
        }
        l.available = available;
        self.write_link_flow(handle, false, out);
    }

    /// Sender: after a drain request, gives back the remaining credit (part 2 §2.6.7: advance
    /// delivery-count, credit to zero, then flow).
    pub(crate) fn drained(&mut self, handle: u32, out: &mut Out<'_>) {
        let Some(l) = self.links.get_mut(&handle) else {
            return;
        };
        if l.role != Role::Sender || !l.drain {
            return;
        }
        l.delivery_count = l.delivery_count.wrapping_add(l.link_credit);
        l.link_credit = 0;
        self.write_link_flow(handle, false, out);
    }

    /// Sender: spends the remaining credit (advance delivery-count, credit to zero, then
    /// flow), drain or not.
    pub(crate) fn spend_credit(&mut self, handle: u32, out: &mut Out<'_>) {
        let Some(l) = self.links.get_mut(&handle) else {
            return;
        };
        if l.role != Role::Sender || l.link_credit == 0 {
            return;
        }
        l.delivery_count = l.delivery_count.wrapping_add(l.link_credit);
        l.link_credit = 0;
        self.write_link_flow(handle, false, out);
    }

    /// Receiver: what the sender last said it has ready.
    pub(crate) fn available(&self, handle: u32) -> u32 {
        self.links.get(&handle).map_or(0, |l| l.available)
    }

    /// Sender: the credit the receiver has granted.
    pub(crate) fn credit(&self, handle: u32) -> u32 {
        self.links.get(&handle).map_or(0, |l| l.link_credit)
    }

    pub(super) fn on_flow(&mut self, flow: Flow, out: &mut Out<'_>) -> Result<(), SessionError> {
        // Part 2 §2.5.6: the peer's incoming window, counted from our next-outgoing-id.
        let base = flow.next_incoming_id.unwrap_or(0);
        self.remote_incoming_window = base
            .wrapping_add(flow.incoming_window)
            .wrapping_sub(self.next_outgoing_id);
        self.remote_outgoing_window = flow.outgoing_window;
        let Some(remote_handle) = flow.handle else {
            if flow.echo {
                let reply = self.session_flow(out.config);
                out.write(self.channel, &reply.into());
            }
            return Ok(());
        };
        let handle = self.local_handle(remote_handle, "flow")?;
        let link = self.link_id(handle);
        let Some(l) = self.links.get_mut(&handle) else {
            return Ok(());
        };
        match l.role {
            Role::Sender => {
                // Part 2 §2.6.7: link-credit(snd) = delivery-count(rcv) + link-credit(rcv) -
                // delivery-count(snd); a receiver that has not heard from us counts from ours.
                let rcv_count = flow.delivery_count.unwrap_or(l.delivery_count);
                l.link_credit = rcv_count
                    .wrapping_add(flow.link_credit.unwrap_or(0))
                    .wrapping_sub(l.delivery_count);
                l.drain = flow.drain;
                out.event(Event::Credit {
                    link,
                    credit: l.link_credit,
                    drain: l.drain,
                });
            }
            Role::Receiver => {
                if let Some(available) = flow.available {
                    l.available = available;
                }
                if let Some(count) = flow.delivery_count {
                    // The sender advanced its count (a drain): the credit it consumed is gone.
                    let consumed = count.wrapping_sub(l.delivery_count);
                    l.link_credit = l.link_credit.saturating_sub(consumed);
                    l.delivery_count = count;
                }
                if l.drain && l.link_credit == 0 {
                    l.drain = false;
                    out.event(Event::Drained { link });
                }
            }
        }
        if flow.echo {
            self.write_link_flow(handle, false, out);
        }
        Ok(())
    }

    /// Writes a flow carrying the session's windows and the link's state.
    fn write_link_flow(&self, handle: u32, echo: bool, out: &mut Out<'_>) {
        let mut flow = self.session_flow(out.config);
        if let Some(l) = self.links.get(&handle) {
            flow.handle = Some(handle);
            flow.delivery_count = Some(l.delivery_count);
            flow.link_credit = Some(l.link_credit);
            flow.drain = l.drain;
            flow.echo = echo;
            if l.role == Role::Sender {
                flow.available = Some(l.available);
            }
        }
        out.write(self.channel, &flow.into());
    }

    /// A flow carrying the session's windows.
    fn session_flow(&self, config: &Config) -> Flow {
        Flow {
            next_incoming_id: self.remote_channel.map(|_| self.next_incoming_id),
            incoming_window: self.incoming_window,
            next_outgoing_id: self.next_outgoing_id,
            outgoing_window: config.session_window,
            ..Default::default()
        }
    }

    /// After a read: reopens the incoming window if it has fallen below half, with one flow.
    /// Refilling only between reads keeps violations detectable: a transfer in this read was
    /// sent before the peer could have seen a flow we have not written yet, so one past the
    /// window we last advertised is the peer's fault (part 2 §2.5.6).
    pub(super) fn refill_window(&mut self, out: &mut Out<'_>) {
        let window = out.config.session_window;
        // Rounded up, so that a window of one is refilled too rather than staying shut.
        if self.state == SessionState::Mapped && self.incoming_window < window.div_ceil(2) {
            self.incoming_window = window;
            let flow = self.session_flow(out.config);
            out.write(self.channel, &flow.into());
        }
    }
}
