//! Incoming transfers (part 2 §2.6.12 to §2.6.14): the receiving end of a link.
//!
//! Each transfer frame goes through the same steps, each a function below: it is counted
//! against the session window; its link is found and must be receiving; it starts a delivery
//! (taking credit) or continues the one in progress; what it says about the delivery is folded
//! into the delivery's [`Header`]; its bytes are checked against the limits and kept, or, on
//! the last transfer, joined with the rest and handed to the caller.

use bytes::Bytes;
use sluice_codec::transport::{DeliveryState, DeliveryTag, Error, Role, Transfer, conditions};

use super::link::LinkState;
use super::reassembly::Reassembly;
use super::{PartialBudget, Payload, Session, SessionError};
use crate::event::Event;
use crate::out::Out;

/// A delivery whose transfers are arriving: what they have said and the bytes so far. A
/// delivery in one transfer (the usual case) never becomes one.
#[derive(Debug)]
pub(crate) struct Partial {
    header: Header,
    data: Reassembly,
}

/// What the transfers of a delivery say about it, other than its bytes and its state (which
/// is the last transfer's).
#[derive(Debug, Clone, Copy)]
struct Header {
    delivery_id: u32,
    tag: Option<DeliveryTag>,
    settled: bool,
}

impl Header {
    /// Folds in what a transfer of the delivery says about it. Every such field is read here:
    /// the delivery is settled once any transfer says so. A transactional state (part 4
    /// §4.4.1: a txn-id with an outcome) arrives in `t.state`: recording its txn-id on the
    /// delivery, or refusing one no transaction has declared, belongs here.
    fn absorb(&mut self, t: &Transfer) {
        self.settled |= t.settled.unwrap_or(false);
    }
}

impl Partial {
    /// Memory held, as charged to the connection's budget.
    pub(crate) fn held(&self) -> usize {
        self.data.held()
    }

    pub(crate) fn free(self, budget: &mut PartialBudget) {
        self.data.free(budget);
    }
}

impl Session {
    /// A transfer frame arrived on this session.
    pub(super) fn on_transfer(
        &mut self,
        t: Transfer,
        payload: Payload,
        out: &mut Out<'_>,
    ) -> Result<(), SessionError> {
        self.take_incoming_window()?;
        let Some(handle) = self.receiving_link(&t, out)? else {
            return Ok(());
        };
        let Some(mut header) = self.delivery_header(handle, &t, out)? else {
            return Ok(());
        };
        header.absorb(&t);
        if let Some(error) = self.over_message_size(handle, payload.bytes.len()) {
            self.detach(handle, true, Some(error), out);
        } else if t.aborted {
            self.free_partial(handle, out.partials);
            out.event(Event::Aborted {
                link: self.link_id(handle),
                delivery_id: header.delivery_id,
            });
        } else if t.more {
            self.hold(handle, header, payload, out);
        } else {
            let message = self.take_message(handle, payload.bytes, out.partials);
            self.deliver(handle, header, t.state, message, out);
        }
        Ok(())
    }

    /// Counts a transfer against our incoming window: part 2 §2.5.6 makes one beyond it a
    /// session error.
    fn take_incoming_window(&mut self) -> Result<(), SessionError> {
        if self.incoming_window == 0 {
            return Err(SessionError::new(
                conditions::WINDOW_VIOLATION,
                "transfer beyond the incoming window",
            ));
        }
        self.incoming_window -= 1;
        self.next_incoming_id = self.next_incoming_id.wrapping_add(1);
        self.remote_outgoing_window = self.remote_outgoing_window.saturating_sub(1);
        Ok(())
    }

    /// Our handle for the transfer's link, if the transfer is to be taken: `None` when it is
    /// dropped (the link is gone or detaching, or the transfer resumes a delivery, which
    /// detaches the link).
    fn receiving_link(
        &mut self,
        t: &Transfer,
        out: &mut Out<'_>,
    ) -> Result<Option<u32>, SessionError> {
        let handle = self.local_handle(t.handle, "transfer")?;
        let Some(l) = self.links.get_mut(&handle) else {
            return Ok(None);
        };
        if l.role != Role::Receiver {
            return Err(SessionError::new(
                conditions::NOT_ALLOWED,
                "transfer to a sending link",
            ));
        }
        if l.state == LinkState::DetachSent {
            // What the sender had in flight before our detach reached it (the rest of an
            // oversized delivery, say): counted against the window, otherwise dropped.
            l.free_partial(out.partials);
            return Ok(None);
        }
        if t.resume {
            let error = Error::new(
                conditions::NOT_IMPLEMENTED,
                "resumed deliveries are not supported",
            );
            self.detach(handle, true, Some(error), out);
            return Ok(None);
        }
        Ok(Some(handle))
    }

    /// What is known of the delivery this transfer belongs to: the one in progress on the
    /// link, or a new one, which takes a unit of credit. `None` when the link had no credit to
    /// give (and is detached for it).
    fn delivery_header(
        &mut self,
        handle: u32,
        t: &Transfer,
        out: &mut Out<'_>,
    ) -> Result<Option<Header>, SessionError> {
        let Some(l) = self.links.get_mut(&handle) else {
            return Ok(None);
        };
        if let Some(partial) = &l.partial {
            return Ok(Some(partial.header));
        }
        let Some(delivery_id) = t.delivery_id else {
            return Err(SessionError::new(
                conditions::INVALID_FIELD,
                "first transfer of a delivery without delivery-id",
            ));
        };
        // Part 2 §2.6.7: a sender may not send without credit.
        if l.link_credit == 0 {
            let error = Error::new(
                conditions::TRANSFER_LIMIT_EXCEEDED,
                "transfer without link credit",
            );
            if l.state == LinkState::AttachReceived {
                // Sent before we even answered its attach: answer it as a refusal, so our
                // detach follows our attach (part 2 §2.6.3), and the caller's later answer
                // finds the link gone.
                self.refuse_link(handle, error, out);
            } else {
                self.detach(handle, true, Some(error), out);
            }
            return Ok(None);
        }
        l.take_credit();
        Ok(Some(Header {
            delivery_id,
            tag: t.delivery_tag,
            settled: false,
        }))
    }

    /// The error to detach with when `more` bytes would take the link's delivery past its
    /// largest message (the limit its attach advertised).
    fn over_message_size(&self, handle: u32, more: usize) -> Option<Error> {
        let l = self.links.get(&handle)?;
        let so_far = l.partial.as_ref().map_or(0, |p| p.data.size());
        let max = l.message_size_max;
        (max > 0 && (so_far + more) as u64 > max).then(|| {
            Error::new(
                conditions::MESSAGE_SIZE_EXCEEDED,
                format!("message exceeds {max} bytes"),
            )
        })
    }

    /// Keeps a transfer's bytes until the delivery's last one, within the connection's budget
    /// for unfinished deliveries: past it, the link is detached and its delivery dropped, and
    /// the other links go on.
    fn hold(&mut self, handle: u32, header: Header, payload: Payload, out: &mut Out<'_>) {
        let Some(l) = self.links.get_mut(&handle) else {
            return;
        };
        let partial = l.partial.get_or_insert_with(|| Partial {
            header,
            data: Reassembly::default(),
        });
        partial.header = header;
        if let Err(exceeded) = partial.data.push(payload, out.partials) {
            self.detach(handle, true, Some(exceeded.to_error()), out);
        }
    }

    /// The whole message: the delivery's bytes so far, if it had more than one transfer,
    /// joined with the `last` transfer's.
    fn take_message(&mut self, handle: u32, last: Bytes, budget: &mut PartialBudget) -> Bytes {
        match self.links.get_mut(&handle).and_then(|l| l.partial.take()) {
            Some(partial) => partial.data.finish(last, budget),
            None => last,
        }
    }

    fn free_partial(&mut self, handle: u32, budget: &mut PartialBudget) {
        if let Some(l) = self.links.get_mut(&handle) {
            l.free_partial(budget);
        }
    }

    /// Hands a whole delivery to the caller, recording it as unsettled unless the sender
    /// settled it; a link past `Config::link_unsettled_max` is detached instead.
    fn deliver(
        &mut self,
        handle: u32,
        header: Header,
        state: Option<DeliveryState>,
        payload: Bytes,
        out: &mut Out<'_>,
    ) {
        let Header {
            delivery_id,
            tag,
            settled,
        } = header;
        if !settled {
            let unsettled_max = out.config.link_unsettled_max;
            if self
                .links
                .get(&handle)
                .is_some_and(|l| l.unsettled >= unsettled_max)
            {
                let error = Error::new(
                    conditions::RESOURCE_LIMIT_EXCEEDED,
                    format!("more than {unsettled_max} unsettled deliveries on the link"),
                );
                self.detach(handle, true, Some(error), out);
                return;
            }
            self.record_unsettled(true, delivery_id, handle);
        }
        out.event(Event::Delivery {
            link: self.link_id(handle),
            delivery_id,
            tag,
            settled,
            state,
            payload,
        });
    }
}
