//! Restricted types with a closed set of values (roles, settle modes, terminus durability and
//! expiry, SASL codes), each a Rust enum with its wire representation.
//!
//! A value outside the spec's choices is a decode error: the engine must not guess what a peer
//! meant by settle mode 7.

use bytes::BytesMut;

use crate::composite::FieldValue;
use crate::error::{CodecError, ErrorKind, Result};
use crate::types::{Decoder, Symbol};

/// Declares an enum restricted from a primitive `FieldValue` type.
macro_rules! restricted {
    (
        $(#[$meta:meta])*
        pub enum $name:ident: $repr:ty = $what:literal { $( $(#[$vmeta:meta])* $variant:ident = $value:expr ),* $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub enum $name { $( $(#[$vmeta])* $variant ),* }

        impl $name {
            /// The wire value.
            pub fn to_wire(self) -> $repr {
                match self { $( $name::$variant => $value ),* }
            }
            /// The variant for a wire value, if the spec defines one.
            pub fn from_wire(v: &$repr) -> Option<Self> {
                $( if *v == $value { return Some($name::$variant); } )*
                None
            }
        }

        impl FieldValue for $name {
            fn decode_field(d: &mut Decoder<'_>, field: &'static str) -> Result<Option<Self>> {
                match <$repr as FieldValue>::decode_field(d, field)? {
                    None => Ok(None),
                    Some(v) => $name::from_wire(&v)
                        .map(Some)
                        .ok_or_else(|| CodecError::from(ErrorKind::InvalidValue { field, reason: concat!("not a valid ", $what) })),
                }
            }
            fn field_size(&self) -> usize {
                self.to_wire().field_size()
            }
            fn encode_field(&self, out: &mut BytesMut) {
                self.to_wire().encode_field(out)
            }
        }
    };
}

restricted! {
    /// Link endpoint role (part 2 §2.8.1).
    pub enum Role: bool = "role" {
        /// The sending end of a link.
        #[default]
        Sender = false,
        /// The receiving end of a link.
        Receiver = true,
    }
}

restricted! {
    /// How the sender settles (part 2 §2.8.2).
    pub enum SenderSettleMode: u8 = "sender-settle-mode" {
        /// Deliveries are sent unsettled.
        Unsettled = 0,
        /// Deliveries are sent settled (at most once).
        Settled = 1,
        /// Either, per delivery.
        #[default]
        Mixed = 2,
    }
}

restricted! {
    /// How the receiver settles (part 2 §2.8.3).
    pub enum ReceiverSettleMode: u8 = "receiver-settle-mode" {
        /// The receiver settles first (at least once).
        #[default]
        First = 0,
        /// The receiver settles only after the sender has (exactly once).
        Second = 1,
    }
}

restricted! {
    /// What terminus state is durable (part 3 §3.5.5).
    pub enum TerminusDurability: u32 = "terminus-durability" {
        /// No terminus state is retained durably.
        #[default]
        None = 0,
        /// Only the existence and configuration of the terminus.
        Configuration = 1,
        /// Configuration and unsettled state.
        UnsettledState = 2,
    }
}

restricted! {
    /// When the expiry timer of a terminus starts (part 3 §3.5.6).
    pub enum TerminusExpiryPolicy: Symbol = "terminus-expiry-policy" {
        /// When the link is detached.
        LinkDetach = Symbol::from_static("link-detach"),
        /// When the session ends.
        #[default]
        SessionEnd = Symbol::from_static("session-end"),
        /// When the connection closes.
        ConnectionClose = Symbol::from_static("connection-close"),
        /// Never.
        Never = Symbol::from_static("never"),
    }
}

restricted! {
    /// The outcome of a SASL exchange (part 5 §5.3.3.6).
    pub enum SaslCode: u8 = "sasl-code" {
        /// Authentication succeeded.
        #[default]
        Ok = 0,
        /// Bad credentials.
        Auth = 1,
        /// A system error.
        Sys = 2,
        /// A permanent system error.
        SysPerm = 3,
        /// A transient system error.
        SysTemp = 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn values_outside_the_spec_are_refused() {
        let buf = Bytes::from_static(&[0x50, 7]);
        let err = SenderSettleMode::decode_field(&mut Decoder::new(&buf), "attach.snd_settle_mode");
        assert!(matches!(
            err.map_err(|e| e.kind().clone()),
            Err(ErrorKind::InvalidValue { .. })
        ));
        let buf = Bytes::from_static(&[0xa3, 5, b'n', b'e', b'v', b'e', b'r']);
        let policy =
            TerminusExpiryPolicy::decode_field(&mut Decoder::new(&buf), "source.expiry_policy");
        assert_eq!(policy, Ok(Some(TerminusExpiryPolicy::Never)));
    }
}
