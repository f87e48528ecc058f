//! Described composite types (part 1 §1.4): typed fields read straight from the wire.
//!
//! Performatives, terminii, delivery states and message sections are described lists. The
//! [`crate::composite!`] macro declares one from its field list; each field names its type and whether
//! it is `required`, `optional`, `kept` (optional, but never trimmed: see below), or has a
//! `default(value)`. Decoding reads each field with its [`FieldValue`] impl directly from the
//! buffer (no intermediate [`Value`] tree), and encoding trims trailing null fields and writes
//! fields at their default as null, which is the most compact encoding and the one Proton
//! produces for message headers. A `kept` field is written, as null when absent, even when
//! nothing follows it, so the list never ends before it: a terminus keeps its address, since
//! pyamqp (the Azure SDKs' Python stack) reads an empty terminus list as no terminus at all.

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{CodecError, ErrorKind, Result};
use crate::types::{self, Decoder, Encode, Str, Symbol, Timestamp, Uuid, Value, codes};

/// A type that can be a field of a composite.
pub trait FieldValue: Sized {
    /// Decodes the field; `Ok(None)` when it is encoded as null. `field` names it in errors.
    fn decode_field(d: &mut Decoder<'_>, field: &'static str) -> Result<Option<Self>>;
    /// The exact encoded size.
    fn field_size(&self) -> usize;
    /// Appends the encoding.
    fn encode_field(&self, out: &mut BytesMut);
    /// Checks the field as `decode_field` would, without keeping it. Variable-width types
    /// override this to check their bytes in place instead of taking a reference-counted slice.
    fn validate_field(d: &mut Decoder<'_>, field: &'static str) -> Result<()> {
        Self::decode_field(d, field).map(drop)
    }
    /// Whether the value means the same as null: a null `*` value, or an empty `multiple` field
    /// (part 1 §1.3: "a null value and a zero-length array ... MUST be treated as semantically
    /// identical"). A mandatory field holding one is missing; an optional one is encoded as null.
    fn is_absent(&self) -> bool {
        false
    }
}

fn unexpected(field: &'static str, expected: &'static str, found: u8) -> CodecError {
    ErrorKind::UnexpectedType {
        field,
        expected,
        found,
    }
    .into()
}

impl FieldValue for bool {
    #[inline(always)]
    fn decode_field(d: &mut Decoder<'_>, field: &'static str) -> Result<Option<Self>> {
        match d.byte()? {
            codes::NULL => Ok(None),
            codes::TRUE => Ok(Some(true)),
            codes::FALSE => Ok(Some(false)),
            codes::BOOLEAN => match d.byte()? {
                0 => Ok(Some(false)),
                1 => Ok(Some(true)),
                _ => Err(ErrorKind::InvalidValue {
                    field,
                    reason: "boolean must be 0 or 1",
                }
                .into()),
            },
            other => Err(unexpected(field, "boolean", other)),
        }
    }
    fn field_size(&self) -> usize {
        1
    }
    fn encode_field(&self, out: &mut BytesMut) {
        out.put_u8(if *self { codes::TRUE } else { codes::FALSE });
    }
}

impl FieldValue for u8 {
    #[inline(always)]
    fn decode_field(d: &mut Decoder<'_>, field: &'static str) -> Result<Option<Self>> {
        match d.byte()? {
            codes::NULL => Ok(None),
            codes::UBYTE => Ok(Some(d.byte()?)),
            other => Err(unexpected(field, "ubyte", other)),
        }
    }
    fn field_size(&self) -> usize {
        2
    }
    fn encode_field(&self, out: &mut BytesMut) {
        out.put_u8(codes::UBYTE);
        out.put_u8(*self);
    }
}

impl FieldValue for u16 {
    #[inline(always)]
    fn decode_field(d: &mut Decoder<'_>, field: &'static str) -> Result<Option<Self>> {
        match d.byte()? {
            codes::NULL => Ok(None),
            codes::USHORT => Ok(Some(u16::from_be_bytes(d.array()?))),
            other => Err(unexpected(field, "ushort", other)),
        }
    }
    fn field_size(&self) -> usize {
        3
    }
    fn encode_field(&self, out: &mut BytesMut) {
        out.put_u8(codes::USHORT);
        out.put_u16(*self);
    }
}

impl FieldValue for u32 {
    #[inline(always)]
    fn decode_field(d: &mut Decoder<'_>, field: &'static str) -> Result<Option<Self>> {
        match d.byte()? {
            codes::NULL => Ok(None),
            codes::UINT0 => Ok(Some(0)),
            codes::SMALLUINT => Ok(Some(u32::from(d.byte()?))),
            codes::UINT => Ok(Some(u32::from_be_bytes(d.array()?))),
            other => Err(unexpected(field, "uint", other)),
        }
    }
    fn field_size(&self) -> usize {
        types::uint_size(*self)
    }
    fn encode_field(&self, out: &mut BytesMut) {
        types::put_uint(out, *self);
    }
}

impl FieldValue for u64 {
    #[inline(always)]
    fn decode_field(d: &mut Decoder<'_>, field: &'static str) -> Result<Option<Self>> {
        match d.byte()? {
            codes::NULL => Ok(None),
            codes::ULONG0 => Ok(Some(0)),
            codes::SMALLULONG => Ok(Some(u64::from(d.byte()?))),
            codes::ULONG => Ok(Some(u64::from_be_bytes(d.array()?))),
            other => Err(unexpected(field, "ulong", other)),
        }
    }
    fn field_size(&self) -> usize {
        types::ulong_size(*self)
    }
    fn encode_field(&self, out: &mut BytesMut) {
        types::put_ulong(out, *self);
    }
}

impl FieldValue for Timestamp {
    #[inline(always)]
    fn decode_field(d: &mut Decoder<'_>, field: &'static str) -> Result<Option<Self>> {
        match d.byte()? {
            codes::NULL => Ok(None),
            codes::TIMESTAMP => Ok(Some(Timestamp(i64::from_be_bytes(d.array()?)))),
            other => Err(unexpected(field, "timestamp", other)),
        }
    }
    fn field_size(&self) -> usize {
        9
    }
    fn encode_field(&self, out: &mut BytesMut) {
        out.put_u8(codes::TIMESTAMP);
        out.put_i64(self.0);
    }
}

impl FieldValue for Uuid {
    #[inline(always)]
    fn decode_field(d: &mut Decoder<'_>, field: &'static str) -> Result<Option<Self>> {
        match d.byte()? {
            codes::NULL => Ok(None),
            codes::UUID => Ok(Some(Uuid(d.array()?))),
            other => Err(unexpected(field, "uuid", other)),
        }
    }
    fn field_size(&self) -> usize {
        17
    }
    fn encode_field(&self, out: &mut BytesMut) {
        out.put_u8(codes::UUID);
        out.put_slice(&self.0);
    }
}

/// `binary` fields (delivery tags, SASL responses, transaction ids).
impl FieldValue for Bytes {
    #[inline(always)]
    fn decode_field(d: &mut Decoder<'_>, field: &'static str) -> Result<Option<Self>> {
        match d.byte()? {
            codes::NULL => Ok(None),
            code @ (codes::VBIN8 | codes::VBIN32) => Ok(Some(d.variable(code)?)),
            other => Err(unexpected(field, "binary", other)),
        }
    }
    fn field_size(&self) -> usize {
        types::variable_size(self.len())
    }
    fn encode_field(&self, out: &mut BytesMut) {
        types::put_variable(out, codes::VBIN8, codes::VBIN32, self);
    }
    fn validate_field(d: &mut Decoder<'_>, field: &'static str) -> Result<()> {
        match d.byte()? {
            codes::NULL => Ok(()),
            code @ (codes::VBIN8 | codes::VBIN32) => d.variable_slice(code).map(drop),
            other => Err(unexpected(field, "binary", other)),
        }
    }
}

impl FieldValue for Str {
    #[inline(always)]
    fn decode_field(d: &mut Decoder<'_>, field: &'static str) -> Result<Option<Self>> {
        match d.byte()? {
            codes::NULL => Ok(None),
            code @ (codes::STR8 | codes::STR32) => Ok(Some(Str::from_utf8(d.variable(code)?)?)),
            other => Err(unexpected(field, "string", other)),
        }
    }
    fn field_size(&self) -> usize {
        types::variable_size(self.as_bytes().len())
    }
    fn encode_field(&self, out: &mut BytesMut) {
        types::put_variable(out, codes::STR8, codes::STR32, self.as_bytes());
    }
    fn validate_field(d: &mut Decoder<'_>, field: &'static str) -> Result<()> {
        match d.byte()? {
            codes::NULL => Ok(()),
            code @ (codes::STR8 | codes::STR32) => {
                if types::is_utf8(d.variable_slice(code)?) {
                    Ok(())
                } else {
                    Err(ErrorKind::InvalidValue {
                        field,
                        reason: "not valid UTF-8",
                    }
                    .into())
                }
            }
            other => Err(unexpected(field, "string", other)),
        }
    }
}

impl FieldValue for Symbol {
    #[inline(always)]
    fn decode_field(d: &mut Decoder<'_>, field: &'static str) -> Result<Option<Self>> {
        match d.byte()? {
            codes::NULL => Ok(None),
            code @ (codes::SYM8 | codes::SYM32) => Ok(Some(Symbol::from_ascii(d.variable(code)?)?)),
            other => Err(unexpected(field, "symbol", other)),
        }
    }
    fn field_size(&self) -> usize {
        types::variable_size(self.as_bytes().len())
    }
    fn encode_field(&self, out: &mut BytesMut) {
        types::put_variable(out, codes::SYM8, codes::SYM32, self.as_bytes());
    }
    fn validate_field(d: &mut Decoder<'_>, field: &'static str) -> Result<()> {
        match d.byte()? {
            codes::NULL => Ok(()),
            code @ (codes::SYM8 | codes::SYM32) if d.variable_slice(code)?.is_ascii() => Ok(()),
            codes::SYM8 | codes::SYM32 => Err(ErrorKind::InvalidValue {
                field,
                reason: "not ASCII",
            }
            .into()),
            other => Err(unexpected(field, "symbol", other)),
        }
    }
}

/// A field of type `*` (any AMQP value). Null decodes as absent.
impl FieldValue for Value {
    fn decode_field(d: &mut Decoder<'_>, _field: &'static str) -> Result<Option<Self>> {
        match d.read_value()? {
            Value::Null => Ok(None),
            v => Ok(Some(v)),
        }
    }
    fn field_size(&self) -> usize {
        self.encoded_size()
    }
    fn encode_field(&self, out: &mut BytesMut) {
        self.encode(out);
    }
    fn is_absent(&self) -> bool {
        matches!(self, Value::Null)
    }
}

/// A `multiple="true"` symbol field (capabilities, outcomes, mechanisms, locales): on the wire
/// either one symbol or an array of them (part 1 §1.3). One symbol is encoded bare, which is
/// shorter; an empty list is null.
impl FieldValue for Vec<Symbol> {
    #[inline(always)]
    fn decode_field(d: &mut Decoder<'_>, field: &'static str) -> Result<Option<Self>> {
        match d.byte()? {
            codes::NULL => Ok(None),
            code @ (codes::SYM8 | codes::SYM32) => {
                Ok(Some(vec![Symbol::from_ascii(d.variable(code)?)?]))
            }
            code @ (codes::ARRAY8 | codes::ARRAY32) => {
                let array = d.array_body(code)?;
                if array.descriptor().is_some() {
                    return Err(unexpected(field, "symbol array", codes::DESCRIBED));
                }
                let mut out = Vec::with_capacity(array.items().len());
                for item in array.into_items() {
                    match item {
                        Value::Symbol(s) => out.push(s),
                        // An empty array of another element type is still an empty set.
                        _ => return Err(unexpected(field, "symbol array", codes::ARRAY8)),
                    }
                }
                Ok(Some(out))
            }
            other => Err(unexpected(field, "symbol or symbol array", other)),
        }
    }
    fn field_size(&self) -> usize {
        match self.as_slice() {
            [one] => one.field_size(),
            many => Value::Array(types::Array::of_symbols(many.iter().cloned())).encoded_size(),
        }
    }
    fn encode_field(&self, out: &mut BytesMut) {
        match self.as_slice() {
            [one] => one.encode_field(out),
            many => Value::Array(types::Array::of_symbols(many.iter().cloned())).encode(out),
        }
    }
    fn is_absent(&self) -> bool {
        self.is_empty()
    }
}

/// A boxed field: used where a rarely present field would otherwise make a hot type large
/// (a rejected outcome's error inside every delivery state, for instance).
impl<T: FieldValue> FieldValue for Box<T> {
    #[inline]
    fn decode_field(d: &mut Decoder<'_>, field: &'static str) -> Result<Option<Self>> {
        T::decode_field(d, field).map(|v| v.map(Box::new))
    }
    fn field_size(&self) -> usize {
        (**self).field_size()
    }
    fn encode_field(&self, out: &mut BytesMut) {
        (**self).encode_field(out)
    }
    fn validate_field(d: &mut Decoder<'_>, field: &'static str) -> Result<()> {
        T::validate_field(d, field)
    }
    fn is_absent(&self) -> bool {
        (**self).is_absent()
    }
}

/// `fields` and `annotations`-style maps keyed by symbols (part 2 §2.8.11).
pub type Fields = Vec<(Symbol, Value)>;

impl FieldValue for Fields {
    fn decode_field(d: &mut Decoder<'_>, field: &'static str) -> Result<Option<Self>> {
        let code = d.byte()?;
        match code {
            codes::NULL => Ok(None),
            codes::MAP8 | codes::MAP32 => {
                let pairs = d.map_body(code)?;
                let mut out = Vec::with_capacity(pairs.len());
                for (k, v) in pairs {
                    match k {
                        Value::Symbol(s) => out.push((s, v)),
                        _ => {
                            return Err(ErrorKind::InvalidValue {
                                field,
                                reason: "keys must be symbols",
                            }
                            .into());
                        }
                    }
                }
                Ok(Some(out))
            }
            other => Err(unexpected(field, "map", other)),
        }
    }
    fn field_size(&self) -> usize {
        let body: usize = self
            .iter()
            .map(|(k, v)| k.field_size() + v.encoded_size())
            .sum();
        types::compound_header_size(self.len() * 2, body) + body
    }
    fn encode_field(&self, out: &mut BytesMut) {
        let body: usize = self
            .iter()
            .map(|(k, v)| k.field_size() + v.encoded_size())
            .sum();
        types::put_compound_header(out, codes::MAP8, codes::MAP32, self.len() * 2, body);
        for (k, v) in self {
            k.encode_field(out);
            v.encode(out);
        }
    }
}

/// Maps with keys of any type: annotations (symbol or ulong keys) and application properties.
pub type Map = Vec<(Value, Value)>;

impl FieldValue for Map {
    fn decode_field(d: &mut Decoder<'_>, field: &'static str) -> Result<Option<Self>> {
        let code = d.byte()?;
        match code {
            codes::NULL => Ok(None),
            codes::MAP8 | codes::MAP32 => Ok(Some(d.map_body(code)?)),
            other => Err(unexpected(field, "map", other)),
        }
    }
    fn field_size(&self) -> usize {
        let body: usize = self
            .iter()
            .map(|(k, v)| k.encoded_size() + v.encoded_size())
            .sum();
        types::compound_header_size(self.len() * 2, body) + body
    }
    fn encode_field(&self, out: &mut BytesMut) {
        let body: usize = self
            .iter()
            .map(|(k, v)| k.encoded_size() + v.encoded_size())
            .sum();
        types::put_compound_header(out, codes::MAP8, codes::MAP32, self.len() * 2, body);
        for (k, v) in self {
            k.encode(out);
            v.encode(out);
        }
    }
}

/// A composite's descriptor as read from the wire: a code, or a symbolic name (part 1 §1.5).
#[derive(Debug, Clone, PartialEq)]
pub enum Descriptor {
    /// A numeric descriptor, `domain-id << 32 | descriptor-id`.
    Code(u64),
    /// A symbolic descriptor such as `amqp:open:list`.
    Name(Symbol),
}

/// Reads a descriptor: the `0x00` format code must already have been consumed.
pub fn read_descriptor(d: &mut Decoder<'_>) -> Result<Descriptor> {
    let code = d.byte()?;
    match code {
        codes::ULONG0 => Ok(Descriptor::Code(0)),
        codes::SMALLULONG => Ok(Descriptor::Code(u64::from(d.byte()?))),
        codes::ULONG => Ok(Descriptor::Code(u64::from_be_bytes(d.array()?))),
        codes::SYM8 | codes::SYM32 => Ok(Descriptor::Name(Symbol::from_ascii(d.variable(code)?)?)),
        other => Err(unexpected("descriptor", "ulong or symbol", other)),
    }
}

/// The numeric code of a descriptor, resolving the standard symbolic names (part 1 §1.5 allows
/// either form). `None` for a name this codec does not know.
pub fn descriptor_code(descriptor: &Descriptor) -> Option<u64> {
    match descriptor {
        Descriptor::Code(code) => Some(*code),
        Descriptor::Name(name) => crate::descriptors::code_of(name.as_str()),
    }
}

/// Reads a descriptor (the `0x00` already consumed) and resolves it to a code; `None` for a
/// symbolic name this codec does not know. Reads the common `smallulong` form without building
/// a [`Descriptor`].
#[inline]
pub fn read_descriptor_code(d: &mut Decoder<'_>) -> Result<Option<u64>> {
    // Every implementation we know writes standard descriptors as `smallulong`.
    if d.peek()? == codes::SMALLULONG {
        d.advance(1)?;
        return Ok(Some(u64::from(d.byte()?)));
    }
    read_descriptor_code_other(d)
}

#[inline(never)]
fn read_descriptor_code_other(d: &mut Decoder<'_>) -> Result<Option<u64>> {
    match d.byte()? {
        codes::SMALLULONG => Ok(Some(u64::from(d.byte()?))),
        codes::ULONG0 => Ok(Some(0)),
        codes::ULONG => Ok(Some(u64::from_be_bytes(d.array()?))),
        code @ (codes::SYM8 | codes::SYM32) => {
            let name = d.variable_slice(code)?;
            Ok(std::str::from_utf8(name)
                .ok()
                .and_then(crate::descriptors::code_of))
        }
        other => Err(unexpected("descriptor", "ulong or symbol", other)),
    }
}

/// Reads `0x00`, a descriptor, and the list header of a composite, returning its code and the
/// list's `(size, count)`. `Ok(None)` when the value is null.
pub fn read_composite_start(
    d: &mut Decoder<'_>,
    field: &'static str,
) -> Result<Option<(u64, usize, usize)>> {
    match d.byte()? {
        codes::NULL => return Ok(None),
        codes::DESCRIBED => {}
        other => return Err(unexpected(field, "described list", other)),
    }
    let code = read_descriptor_code(d)?.ok_or_else(|| {
        CodecError::from(ErrorKind::InvalidValue {
            field,
            reason: "unknown descriptor",
        })
    })?;
    let list_code = d.byte()?;
    if !matches!(list_code, codes::LIST0 | codes::LIST8 | codes::LIST32) {
        return Err(unexpected(field, "list", list_code));
    }
    let (size, count) = d.compound_header(list_code)?;
    if count > size {
        return Err(ErrorKind::InvalidValue {
            field,
            reason: "count exceeds the bytes present",
        }
        .into());
    }
    Ok(Some((code, size, count)))
}

/// Size of a composite given its descriptor code, field count and fields' bytes.
pub fn composite_size(code: u64, count: usize, body: usize) -> usize {
    let list_header = if count == 0 {
        1
    } else {
        types::compound_header_size(count, body)
    };
    types::descriptor_size(code) + list_header + body
}

/// Writes a composite's descriptor and list header.
pub fn put_composite_header(out: &mut BytesMut, code: u64, count: usize, body: usize) {
    types::put_descriptor(out, code);
    if count == 0 {
        out.put_u8(codes::LIST0);
    } else {
        types::put_compound_header(out, codes::LIST8, codes::LIST32, count, body);
    }
}

/// What a composite's definition says about one of its fields.
#[derive(Debug, Clone, Copy)]
pub struct FieldInfo {
    /// The Rust field name (the spec's name with `_` for `-`).
    pub name: &'static str,
    /// `Composite.field`, as errors name it.
    pub path: &'static str,
    /// Whether the spec makes it mandatory.
    pub required: bool,
}

/// Validates a mandatory field: like [`FieldValue::validate_field`], but null, or a value that
/// means null ([`FieldValue::is_absent`]), is an error.
pub fn validate_required<T: FieldValue>(d: &mut Decoder<'_>, field: &'static str) -> Result<()> {
    T::decode_field(d, field)?
        .filter(|v| !v.is_absent())
        .ok_or_else(|| CodecError::from(ErrorKind::MissingField(field)))
        .map(drop)
}

/// A composite type declared with [`crate::composite!`].
pub trait Composite: Sized {
    /// The numeric descriptor.
    const CODE: u64;
    /// The symbolic descriptor.
    const NAME: &'static str;
    /// The fields in wire order.
    const FIELDS: &'static [FieldInfo];
    /// Decodes the fields of the list whose header has been read: `count` elements in `size`
    /// bytes.
    fn decode_list(d: &mut Decoder<'_>, size: usize, count: usize) -> Result<Self>;
    /// Checks the fields of the list whose header has been read, as `decode_list` would,
    /// without building the value.
    fn validate_list(d: &mut Decoder<'_>, size: usize, count: usize) -> Result<()> {
        d.nested(size, Self::NAME, |d| {
            for index in 0..count {
                Self::validate_field_at(index, d)?;
            }
            match Self::FIELDS.iter().skip(count).find(|f| f.required) {
                Some(missing) => Err(ErrorKind::MissingField(missing.path).into()),
                None => Ok(()),
            }
        })
    }
    /// Checks the encoded field at `index` in place, as decoding would (a field past the
    /// definition, from a later version of the spec, is skipped).
    fn validate_field_at(index: usize, d: &mut Decoder<'_>) -> Result<()>;
    /// `(field count after trimming trailing nulls, bytes of those fields)`.
    fn list_layout(&self) -> (usize, usize);
    /// Writes the fields counted by `list_layout`.
    fn encode_fields(&self, out: &mut BytesMut, count: usize);
}

/// Decodes a composite of type `T` (or null), checking its descriptor.
pub fn decode_composite<T: Composite>(
    d: &mut Decoder<'_>,
    field: &'static str,
) -> Result<Option<T>> {
    let Some((code, size, count)) = read_composite_start(d, field)? else {
        return Ok(None);
    };
    if code != T::CODE {
        return Err(ErrorKind::InvalidValue {
            field,
            reason: "unexpected descriptor",
        }
        .into());
    }
    T::decode_list(d, size, count).map(Some)
}

/// Decodes one field of a composite: the next list element when `present`, else absent.
#[inline(always)]
pub fn decode_present<T: FieldValue>(
    d: &mut Decoder<'_>,
    present: bool,
    field: &'static str,
) -> Result<Option<T>> {
    if present {
        T::decode_field(d, field)
    } else {
        Ok(None)
    }
}

/// Declares a described-list composite type with typed fields.
///
/// ```text
/// composite! {
///     /// Doc.
///     pub struct Flow = ("amqp:flow:list", 0x13) {
///         next_incoming_id: u32 => optional,
///         incoming_window: u32 => required,
///         drain: bool => default(false),
///     }
/// }
/// ```
#[macro_export]
#[doc(hidden)]
macro_rules! composite {
    (
        $(#[$meta:meta])*
        pub struct $name:ident = ($sym:literal, $code:literal) {
            $( $(#[$fmeta:meta])* $field:ident : $fty:ty => $kind:ident $(($default:expr))? ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $crate::composite_field_type!($kind, $fty), )*
        }

        impl Default for $name {
            fn default() -> Self {
                $name { $( $field: $crate::composite_field_default!($kind, $fty $(, $default)?), )* }
            }
        }

        impl $crate::composite::Composite for $name {
            const CODE: u64 = $code;
            const NAME: &'static str = $sym;
            const FIELDS: &'static [$crate::composite::FieldInfo] = &[$(
                $crate::composite::FieldInfo {
                    name: stringify!($field),
                    path: concat!(stringify!($name), ".", stringify!($field)),
                    required: $crate::composite_field_required!($kind),
                }
            ),*];

            #[inline]
            #[allow(unused_assignments, unused_mut, unused_variables)]
            fn validate_field_at(index: usize, d: &mut $crate::types::Decoder<'_>) -> $crate::Result<()> {
                let mut at = 0usize;
                $(
                    if index == at {
                        const FIELD: &str = concat!(stringify!($name), ".", stringify!($field));
                        return $crate::composite_field_validate!($kind, $fty, d, FIELD);
                    }
                    at += 1;
                )*
                d.skip_value()
            }

            #[allow(unused_assignments, unused_mut, unused_variables)]
            fn decode_list(d: &mut $crate::types::Decoder<'_>, size: usize, count: usize) -> $crate::Result<Self> {
                d.nested(size, $sym, |d| {
                    let mut index = 0usize;
                    $(
                        let $field = {
                            const FIELD: &str = concat!(stringify!($name), ".", stringify!($field));
                            let present = index < count;
                            index += 1;
                            let value = $crate::composite::decode_present::<$fty>(d, present, FIELD)?;
                            $crate::composite_field_resolve!($kind, value, FIELD $(, $default)?)
                        };
                    )*
                    // Fields added by a later version of the spec are skipped (part 1 §1.4).
                    while index < count {
                        d.skip_value()?;
                        index += 1;
                    }
                    Ok($name { $($field),* })
                })
            }

            #[allow(unused_assignments, unused_mut, unused_variables)]
            fn list_layout(&self) -> (usize, usize) {
                let (mut count, mut size, mut index, mut pending_nulls) = (0usize, 0usize, 0usize, 0usize);
                $(
                    index += 1;
                    match $crate::composite_field_encoded!($kind, $fty, &self.$field $(, $default)?) {
                        None if $crate::composite_field_kept!($kind) => {
                            size += pending_nulls + 1;
                            pending_nulls = 0;
                            count = index;
                        }
                        None => pending_nulls += 1,
                        Some(v) => {
                            size += pending_nulls + $crate::composite::FieldValue::field_size(v);
                            pending_nulls = 0;
                            count = index;
                        }
                    }
                )*
                (count, size)
            }

            #[allow(unused_assignments, unused_mut, unused_variables)]
            fn encode_fields(&self, out: &mut ::bytes::BytesMut, count: usize) {
                let mut index = 0usize;
                $(
                    if index < count {
                        match $crate::composite_field_encoded!($kind, $fty, &self.$field $(, $default)?) {
                            None => ::bytes::BufMut::put_u8(out, $crate::types::codes::NULL),
                            Some(v) => $crate::composite::FieldValue::encode_field(v, out),
                        }
                    }
                    index += 1;
                )*
            }
        }

        impl $crate::composite::FieldValue for $name {
            fn decode_field(d: &mut $crate::types::Decoder<'_>, field: &'static str) -> $crate::Result<Option<Self>> {
                $crate::composite::decode_composite(d, field)
            }
            fn field_size(&self) -> usize {
                $crate::types::Encode::encoded_size(self)
            }
            fn encode_field(&self, out: &mut ::bytes::BytesMut) {
                $crate::types::Encode::encode(self, out)
            }
        }

        impl $crate::types::Encode for $name {
            fn encoded_size(&self) -> usize {
                let (count, body) = $crate::composite::Composite::list_layout(self);
                $crate::composite::composite_size($code, count, body)
            }
            fn encode(&self, out: &mut ::bytes::BytesMut) {
                let (count, body) = $crate::composite::Composite::list_layout(self);
                $crate::composite::put_composite_header(out, $code, count, body);
                $crate::composite::Composite::encode_fields(self, out, count);
            }
        }
    };
}

#[macro_export]
#[doc(hidden)]
macro_rules! composite_field_type {
    (required, $t:ty) => { $t };
    (optional, $t:ty) => { Option<$t> };
    (kept, $t:ty) => { Option<$t> };
    (default, $t:ty) => { $t };
}

#[macro_export]
#[doc(hidden)]
macro_rules! composite_field_validate {
    (required, $t:ty, $d:expr, $field:expr) => {
        $crate::composite::validate_required::<$t>($d, $field)
    };
    ($kind:ident, $t:ty, $d:expr, $field:expr) => {
        <$t as $crate::composite::FieldValue>::validate_field($d, $field)
    };
}

#[macro_export]
#[doc(hidden)]
macro_rules! composite_field_required {
    (required) => {
        true
    };
    (optional) => {
        false
    };
    (kept) => {
        false
    };
    (default) => {
        false
    };
}

/// Whether a field of this kind is written (as null when absent) even when it is the last.
#[macro_export]
#[doc(hidden)]
macro_rules! composite_field_kept {
    (kept) => {
        true
    };
    ($kind:ident) => {
        false
    };
}

#[macro_export]
#[doc(hidden)]
macro_rules! composite_field_default {
    (required, $t:ty) => {
        <$t as Default>::default()
    };
    (optional, $t:ty) => {
        None
    };
    (kept, $t:ty) => {
        None
    };
    (default, $t:ty, $default:expr) => {
        $default
    };
}

#[macro_export]
#[doc(hidden)]
macro_rules! composite_field_resolve {
    (required, $v:expr, $field:expr) => {
        $v.filter(|v| !$crate::composite::FieldValue::is_absent(v))
            .ok_or_else(|| {
                $crate::CodecError::from($crate::error::ErrorKind::MissingField($field))
            })?
    };
    (optional, $v:expr, $field:expr) => {
        $v
    };
    (kept, $v:expr, $field:expr) => {
        $v
    };
    (default, $v:expr, $field:expr, $default:expr) => {
        $v.unwrap_or_else(|| $default)
    };
}

/// The field as it should be encoded, or `None` to encode null.
#[macro_export]
#[doc(hidden)]
macro_rules! composite_field_encoded {
    (required, $t:ty, $v:expr) => {
        Some($v)
    };
    (optional, $t:ty, $v:expr) => {
        $v.as_ref()
            .filter(|v| !$crate::composite::FieldValue::is_absent(*v))
    };
    (kept, $t:ty, $v:expr) => {
        $crate::composite_field_encoded!(optional, $t, $v)
    };
    (default, $t:ty, $v:expr, $default:expr) => {{
        let default: $t = $default;
        if *$v == default { None } else { Some($v) }
    }};
}
