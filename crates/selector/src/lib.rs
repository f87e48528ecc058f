//! Message filters for receivers of queues: JMS message selectors
//! (`apache.org:selector-filter:string`) and the legacy AMQP 0-x bindings
//! (`apache.org:legacy-amqp-direct-binding:string`, `…-topic-binding:string`,
//! `…-headers-binding:map`), from the Qpid "AMQP filters" registry.
//!
//! This crate owns the selector language (lexer, parser, evaluator) and the reading of a
//! source's `filter` map into a [`MessageFilter`]. It is sans-IO and depends on nothing but
//! the codec (and `bytes`, `thiserror`): the broker decides what to do with a message that does
//! not match.
//!
//! A selector is compiled once, at attach, and evaluated against every message offered to the
//! receiver. Evaluation reads fields in place from the [`ScannedMessage`]'s bytes
//! ([`ScannedMessage::application_property`], [`ScannedMessage::property_field`]) and never
//! allocates (tests/no_alloc.rs proves it with a counting allocator). A hostile client is held
//! to [`SELECTOR_BYTES_MAX`] bytes of text, [`SELECTOR_DEPTH_MAX`] levels of expression and
//! [`SELECTOR_IN_ITEMS_MAX`] items per `IN` list; LIKE patterns are compiled at parse time
//! and matched in time linear in the text times the pattern.
//!
//! **Identifier mapping** (as Qpid JMS writes JMS messages onto AMQP and Artemis filters them):
//! `JMSMessageID` → properties `message-id`, `JMSCorrelationID` → `correlation-id`,
//! `JMSPriority` → header `priority` (4 without a header), `JMSDeliveryMode` →
//! `'PERSISTENT'` if header `durable` else `'NON_PERSISTENT'`, `JMSTimestamp` →
//! `creation-time`, `JMSExpiration` → `absolute-expiry-time`, `JMSType` → `subject` (Qpid
//! JMS 0.x+ sends JMSType as the subject), `JMSDestination` → `to`, `JMSReplyTo` → `reply-to`,
//! `JMSXGroupID` → `group-id`, `JMSXGroupSeq` → `group-sequence`, `JMSXUserID` → `user-id`
//! (read as UTF-8), `JMSXDeliveryCount` → header `delivery-count` + 1. Every other identifier
//! names the application property of that name (case-sensitive). Message ids that are not
//! strings (ulong reads as a number; uuid and binary read as NULL) are not converted to
//! Artemis's `ID:` text forms. The Artemis-only `AMQ*` names are not supported.
//!
//! Type rules (JMS 2.0 §3.8.1.2): numbers compare across integer and float; strings and
//! booleans compare only with `=` and `<>`; any other pairing, any NULL operand, integer
//! overflow and integer division by zero are unknown; a message matches only when the
//! selector is TRUE.

#![cfg_attr(
    test,
    allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

mod eval;
mod filter;
mod ident;
mod lex;
mod parse;

use sluice_codec::messaging::ScannedMessage;

pub use filter::{
    DIRECT_BINDING, FilterError, HEADERS_BINDING, MessageFilter, NO_LOCAL, SELECTOR_FILTER,
    TOPIC_BINDING, TOPIC_WORDS_MAX,
};
pub use ident::{Fields, HeaderField, Ident};
pub use parse::{SELECTOR_BYTES_MAX, SELECTOR_DEPTH_MAX, SELECTOR_IN_ITEMS_MAX};

/// Why a selector was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// The text is over [`SELECTOR_BYTES_MAX`].
    #[error("selector is {bytes} bytes, over the limit of {SELECTOR_BYTES_MAX}")]
    TooLong {
        /// Length of the text.
        bytes: usize,
    },
    /// The expression nests deeper than [`SELECTOR_DEPTH_MAX`].
    #[error("at column {column}: expression nested deeper than {SELECTOR_DEPTH_MAX}")]
    TooDeep {
        /// Column (1-based byte offset) where the limit was hit.
        column: usize,
    },
    /// An `IN` list has more than [`SELECTOR_IN_ITEMS_MAX`] items.
    #[error("at column {column}: IN list longer than {SELECTOR_IN_ITEMS_MAX} items")]
    TooManyItems {
        /// Column where the limit was hit.
        column: usize,
    },
    /// The text is not a selector.
    #[error("at column {column}: {what}")]
    Syntax {
        /// Column (1-based byte offset) of the offending token.
        column: usize,
        /// What was wrong.
        what: String,
    },
}

impl SelectorError {
    pub(crate) fn syntax(column: usize, what: String) -> Self {
        SelectorError::Syntax { column, what }
    }
}

/// A compiled JMS message selector.
#[derive(Debug, Clone, PartialEq)]
pub struct Selector {
    expr: parse::Expr,
}

impl Selector {
    /// Compiles selector text.
    pub fn parse(text: &str) -> Result<Self, SelectorError> {
        parse::parse(text).map(|expr| Selector { expr })
    }

    /// Whether the message matches (an unknown result does not).
    pub fn matches(&self, message: &ScannedMessage) -> bool {
        self.matches_with(message)
    }

    /// Whether the fields match (an unknown result does not).
    pub fn matches_with<F: Fields + ?Sized>(&self, fields: &F) -> bool {
        self.evaluate(fields) == Some(true)
    }

    /// The three-valued result: `None` is unknown.
    pub fn evaluate<F: Fields + ?Sized>(&self, fields: &F) -> Option<bool> {
        match eval::eval(&self.expr, fields) {
            eval::Val::Bool(b) => Some(b),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
