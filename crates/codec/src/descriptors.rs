//! Descriptor names and codes of every composite type in the AMQP 1.0 spec.
//!
//! Generated from the spec's XML (Debian package `amqp-specs`, /usr/share/amqp/specs/1-0); the
//! test `descriptor_table_matches_the_spec_xml` regenerates the list and compares.

/// `(code, symbolic name)` for every descriptor the spec defines, sorted by code.
pub const DESCRIPTORS: &[(u64, &str)] = &[
    (0x10, "amqp:open:list"),
    (0x11, "amqp:begin:list"),
    (0x12, "amqp:attach:list"),
    (0x13, "amqp:flow:list"),
    (0x14, "amqp:transfer:list"),
    (0x15, "amqp:disposition:list"),
    (0x16, "amqp:detach:list"),
    (0x17, "amqp:end:list"),
    (0x18, "amqp:close:list"),
    (0x1d, "amqp:error:list"),
    (0x23, "amqp:received:list"),
    (0x24, "amqp:accepted:list"),
    (0x25, "amqp:rejected:list"),
    (0x26, "amqp:released:list"),
    (0x27, "amqp:modified:list"),
    (0x28, "amqp:source:list"),
    (0x29, "amqp:target:list"),
    (0x2b, "amqp:delete-on-close:list"),
    (0x2c, "amqp:delete-on-no-links:list"),
    (0x2d, "amqp:delete-on-no-messages:list"),
    (0x2e, "amqp:delete-on-no-links-or-messages:list"),
    (0x30, "amqp:coordinator:list"),
    (0x31, "amqp:declare:list"),
    (0x32, "amqp:discharge:list"),
    (0x33, "amqp:declared:list"),
    (0x34, "amqp:transactional-state:list"),
    (0x40, "amqp:sasl-mechanisms:list"),
    (0x41, "amqp:sasl-init:list"),
    (0x42, "amqp:sasl-challenge:list"),
    (0x43, "amqp:sasl-response:list"),
    (0x44, "amqp:sasl-outcome:list"),
    (0x70, "amqp:header:list"),
    (0x71, "amqp:delivery-annotations:map"),
    (0x72, "amqp:message-annotations:map"),
    (0x73, "amqp:properties:list"),
    (0x74, "amqp:application-properties:map"),
    (0x75, "amqp:data:binary"),
    (0x76, "amqp:amqp-sequence:list"),
    (0x77, "amqp:amqp-value:*"),
    (0x78, "amqp:footer:map"),
];

/// The code of a standard symbolic descriptor.
pub fn code_of(name: &str) -> Option<u64> {
    DESCRIPTORS
        .iter()
        .find(|(_, n)| *n == name)
        .map(|(c, _)| *c)
}

/// The symbolic name of a standard descriptor code.
pub fn name_of(code: u64) -> Option<&'static str> {
    DESCRIPTORS
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, n)| *n)
}
