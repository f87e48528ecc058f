//! Outgoing transfers (part 2 §2.6.12, §2.7.5): a delivery on a sending link, split into as
//! many transfer frames as the peer's frame size needs, within the link's credit and the
//! session's window.

use sluice_codec::frame::encode_transfer;
use sluice_codec::transport::{DeliveryState, DeliveryTag, Role, Transfer};

use super::Session;
use super::link::{Link, LinkState};
use crate::out::Out;

/// Why a delivery could not be sent now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// No such link, or it is not an attached sender.
    #[error("not an attached sending link")]
    NotSender,
    /// The receiver has granted no credit.
    #[error("no link credit")]
    NoCredit,
    /// The session's outgoing window is closed: the peer takes no more transfers for now.
    #[error("the session window is full")]
    WindowFull,
    /// The peer has left `Config::link_unsettled_max` of this link's deliveries unsettled: a
    /// consumer that never acknowledges must not make us hold unbounded state.
    #[error("too many unsettled deliveries on the link")]
    TooManyUnsettled,
    /// The peer's max-frame-size cannot hold even the transfer performative.
    #[error("the peer's frame size cannot hold a transfer")]
    FrameTooSmall,
    /// The message exceeds the peer's max-message-size.
    #[error("message of {size} bytes exceeds the link's limit of {max}")]
    TooLarge {
        /// The message size.
        size: usize,
        /// The peer's limit.
        max: u64,
    },
}

impl Session {
    /// Sends one delivery on the link `handle`; returns its delivery id.
    pub(crate) fn send(
        &mut self,
        handle: u32,
        tag: DeliveryTag,
        payload: &[u8],
        settled: bool,
        state: Option<DeliveryState>,
        out: &mut Out<'_>,
    ) -> Result<u32, SendError> {
        let l = self.links.get(&handle).ok_or(SendError::NotSender)?;
        check_sendable(l, payload.len(), settled, out.config.link_unsettled_max)?;
        if self.remote_incoming_window == 0 {
            return Err(SendError::WindowFull);
        }
        let delivery_id = self.next_delivery_id;
        let transfer = Transfer {
            handle,
            delivery_id: Some(delivery_id),
            delivery_tag: Some(tag),
            message_format: Some(0),
            settled: Some(settled),
            state,
            ..Default::default()
        };
        let frames = self.encode(&transfer, payload, out)?;
        self.count_sent(handle, frames);
        if !settled {
            self.record_unsettled(false, delivery_id, handle);
        }
        out.writer.last_sent = out.now;
        Ok(delivery_id)
    }

    /// How many unsettled deliveries `send` would take now on the link `handle`: the credit,
    /// bounded by the room under `Config::link_unsettled_max`, and 0 while the window is shut.
    pub(crate) fn sendable(&self, handle: u32, unsettled_max: u32) -> u32 {
        match self.links.get(&handle) {
            Some(l) if l.role == Role::Sender && l.state == LinkState::Attached => {
                if self.remote_incoming_window == 0 {
                    0
                } else {
                    l.link_credit.min(unsettled_max.saturating_sub(l.unsettled))
                }
            }
            _ => 0,
        }
    }

    /// Encodes the delivery's transfer frames into the output; returns how many there are.
    /// Each frame is one transfer against the session window (part 2 §2.5.6): a message that
    /// needs more frames than the peer's window has left is taken back out, to wait for the
    /// next flow.
    fn encode(
        &self,
        transfer: &Transfer,
        payload: &[u8],
        out: &mut Out<'_>,
    ) -> Result<u32, SendError> {
        let output = &mut out.writer.output;
        let before = output.len();
        if encode_transfer(
            output,
            self.channel,
            transfer,
            payload,
            out.writer.frame_max,
        )
        .is_err()
        {
            output.truncate(before);
            return Err(SendError::FrameTooSmall);
        }
        let frames = count_frames(output.get(before..).unwrap_or_default());
        if frames > self.remote_incoming_window {
            output.truncate(before);
            return Err(SendError::WindowFull);
        }
        Ok(frames)
    }

    /// Counts a delivery of `frames` transfer frames sent on the link `handle`.
    fn count_sent(&mut self, handle: u32, frames: u32) {
        debug_assert!(
            frames <= self.remote_incoming_window,
            "session window: sent {frames} frames into a window of {}",
            self.remote_incoming_window
        );
        self.next_delivery_id = self.next_delivery_id.wrapping_add(1);
        self.next_outgoing_id = self.next_outgoing_id.wrapping_add(frames);
        self.remote_incoming_window = self.remote_incoming_window.saturating_sub(frames);
        if let Some(l) = self.links.get_mut(&handle) {
            l.take_credit();
        }
    }
}

/// Whether the link may send a delivery of `size` bytes now, as far as the link is concerned.
fn check_sendable(
    l: &Link,
    size: usize,
    settled: bool,
    unsettled_max: u32,
) -> Result<(), SendError> {
    if l.role != Role::Sender || l.state != LinkState::Attached {
        return Err(SendError::NotSender);
    }
    if l.link_credit == 0 {
        return Err(SendError::NoCredit);
    }
    if !settled && l.unsettled >= unsettled_max {
        return Err(SendError::TooManyUnsettled);
    }
    if l.message_size_max > 0 && size as u64 > l.message_size_max {
        return Err(SendError::TooLarge {
            size,
            max: l.message_size_max,
        });
    }
    Ok(())
}

/// How many frames `bytes` holds (they were just encoded, so every header is whole).
fn count_frames(mut bytes: &[u8]) -> u32 {
    let mut n = 0;
    while let Some(&[a, b, c, d]) = bytes.get(..4) {
        let size = u32::from_be_bytes([a, b, c, d]) as usize;
        bytes = bytes.get(size.max(8)..).unwrap_or_default();
        n += 1;
    }
    n
}
