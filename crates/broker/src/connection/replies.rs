//! The answers of a connection-level request/response node (`$cbs`, `$management`): the
//! receiver they go to, and those waiting for its credit, bounded (past the bound the oldest
//! is dropped: a client that grants no credit has stopped reading them).

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;
use sluice_codec::transport::Attach;
use sluice_engine::LinkId;

use super::State;
use super::attach::reply_to;
use super::links::{Authorized, Binding, LinkEntry};

/// A node's receiver and its waiting answers.
#[derive(Debug)]
pub(super) struct Replies {
    link: Option<LinkId>,
    waiting: VecDeque<Bytes>,
    waiting_max: usize,
}

impl Replies {
    pub(super) fn new(waiting_max: usize) -> Self {
        Replies {
            link: None,
            waiting: VecDeque::new(),
            waiting_max,
        }
    }

    pub(super) fn link(&self) -> Option<LinkId> {
        self.link
    }

    /// Queues `answer` for `link`, if it is still the receiver.
    pub(super) fn push(&mut self, link: LinkId, answer: Bytes) {
        if self.link != Some(link) {
            return;
        }
        if self.waiting.len() >= self.waiting_max {
            self.waiting.pop_front();
        }
        self.waiting.push_back(answer);
    }

    /// `link` went: if it was the receiver, its answers go with it.
    pub(super) fn forget(&mut self, link: LinkId) {
        if self.link == Some(link) {
            self.link = None;
            self.waiting.clear();
        }
    }
}

impl State {
    /// Accepts the sender `link` of a node's requests, with `credit` for them.
    pub(super) fn attach_requests(
        &mut self,
        link: LinkId,
        attach: &Attach,
        binding: Binding,
        credit: u32,
        now: Instant,
    ) {
        self.engine.accept_link(link, reply_to(attach, false), now);
        if credit > 0 {
            self.engine.grant_credit(link, credit, false, now);
        }
        let authorized = Authorized {
            address: None,
            send: true,
        };
        self.links.insert(link, LinkEntry::new(binding, authorized));
    }

    /// Accepts the receiver `link` as the one `replies` (picked from the state) go to.
    pub(super) fn attach_replies(
        &mut self,
        link: LinkId,
        attach: &Attach,
        binding: Binding,
        replies: fn(&mut State) -> &mut Replies,
        now: Instant,
    ) {
        self.engine.accept_link(link, reply_to(attach, true), now);
        let authorized = Authorized {
            address: None,
            send: false,
        };
        self.links.insert(link, LinkEntry::new(binding, authorized));
        replies(self).link = Some(link);
    }

    /// Sends the waiting answers of `replies` while their receiver has credit.
    pub(super) fn send_replies(&mut self, replies: fn(&mut State) -> &mut Replies, now: Instant) {
        while let Some(link) = replies(self).link {
            if self.engine.sendable(link) == 0 {
                return;
            }
            let Some(answer) = replies(self).waiting.pop_front() else {
                return;
            };
            if self.send_settled(link, &answer, now).is_err() {
                return;
            }
        }
    }
}
