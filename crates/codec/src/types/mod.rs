//! The AMQP 1.0 type system (part 1): values, their format codes, and how they are decoded and
//! encoded.

pub mod codes;
mod decode;
mod encode;
mod value;

pub use decode::{Decoder, NESTING_DEPTH_MAX, ZERO_WIDTH_ELEMENTS_SLACK, decode_value};
pub use encode::{
    Encode, compound_header_size, descriptor_size, fits_8bit, put_compound_header, put_descriptor,
    put_uint, put_ulong, put_variable, uint_size, ulong_size, variable_size,
};
pub use value::{Array, Described, ElementType, Str, Symbol, Timestamp, Uuid, Value, is_utf8};
