//! AMQP 1.0 codec for Sluice: the type system, frames, performatives and message sections.
//!
//! Owns: turning bytes into AMQP values and back, exactly as OASIS AMQP 1.0 parts 1 to 5
//! define them, cheaply and safely against hostile input.
//!
//! Must not depend on: any IO, runtime, clock or other Sluice crate. Everything here is a pure
//! function of its input, so it runs deterministically under tests and fuzzing.
//!
//! Layout mirrors the spec:
//! - [`types`]: part 1, the type system ([`Value`], [`types::Decoder`], [`Encode`]).
//! - [`transport`]: part 2, performatives, definitions and delivery states.
//! - [`messaging`]: part 3, message sections, the section scan, source and target.
//! - [`transactions`]: part 4. [`security`]: part 5, SASL.
//! - [`frame`]: frame and protocol headers, the frame decoder and encoders.
//!
//! Zero copy: binaries, strings and symbols are slices of the buffer they were decoded from; a
//! scanned message keeps its bare message as the [`bytes::Bytes`] it arrived in.

#![cfg_attr(
    test,
    allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

pub mod composite;
pub mod descriptors;
mod enums;
pub mod error;
pub mod frame;
pub mod messaging;
pub mod security;
pub mod transactions;
pub mod transport;
pub mod types;

pub use enums::SaslCode;
pub use error::{CodecError, ErrorKind, Result};
pub use types::{Encode, Value};
