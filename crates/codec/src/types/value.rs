//! The AMQP 1.0 type system as Rust values (part 1 §1.6).
//!
//! Variable-width data (binary, string, symbol) is a [`Bytes`] slice of the buffer it was decoded
//! from, so decoding never copies payload; [`Str`] and [`Symbol`] are that slice plus a check,
//! done once at decode time, that it is UTF-8 or ASCII.

use bytes::Bytes;
use std::fmt;

use crate::error::{CodecError, ErrorKind, Result};

/// Whether `bytes` are UTF-8. Addresses and names are nearly always ASCII and short, where a
/// plain ASCII check is several times cheaper than the general validator's setup.
#[inline]
pub fn is_utf8(bytes: &[u8]) -> bool {
    bytes.is_ascii() || std::str::from_utf8(bytes).is_ok()
}

/// A UTF-8 string: an AMQP `string`, held as the bytes it arrived in.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Str(Bytes);

impl Str {
    /// A string from a static literal, without allocating.
    pub const fn from_static(s: &'static str) -> Self {
        Str(Bytes::from_static(s.as_bytes()))
    }

    /// Wraps bytes that must be valid UTF-8.
    pub fn from_utf8(bytes: Bytes) -> Result<Self> {
        if is_utf8(&bytes) {
            Ok(Str(bytes))
        } else {
            Err(ErrorKind::InvalidValue {
                field: "string",
                reason: "not valid UTF-8",
            }
            .into())
        }
    }

    /// The text. Construction checked the bytes are UTF-8, so this never fails.
    #[inline]
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The UTF-8 bytes.
    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }
}

impl From<&str> for Str {
    fn from(s: &str) -> Self {
        Str(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl From<String> for Str {
    fn from(s: String) -> Self {
        Str(Bytes::from(s.into_bytes()))
    }
}

impl fmt::Debug for Str {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Str {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An AMQP `symbol`: ASCII text naming a well-known thing (a condition, a capability).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Symbol(Bytes);

impl Symbol {
    /// A symbol from a static literal, without allocating. The literal must be ASCII; a
    /// non-ASCII literal is a bug in the caller, caught at compile time in const contexts.
    pub const fn from_static(s: &'static str) -> Self {
        assert!(s.is_ascii(), "symbols are ASCII");
        Symbol(Bytes::from_static(s.as_bytes()))
    }

    /// Wraps bytes that must be ASCII (part 1 §1.6.21).
    pub fn from_ascii(bytes: Bytes) -> Result<Self> {
        if bytes.is_ascii() {
            Ok(Symbol(bytes))
        } else {
            Err(ErrorKind::InvalidValue {
                field: "symbol",
                reason: "not ASCII",
            }
            .into())
        }
    }

    /// The text; construction checked it is ASCII.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The ASCII bytes.
    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }
}

impl TryFrom<&str> for Symbol {
    type Error = CodecError;
    fn try_from(s: &str) -> Result<Self> {
        Symbol::from_ascii(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl PartialEq<str> for Symbol {
    fn eq(&self, other: &str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<&str> for Symbol {
    fn eq(&self, other: &&str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl fmt::Debug for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, ":{}", self.as_str())
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An AMQP `timestamp`: milliseconds since the Unix epoch, signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

/// An AMQP `uuid`: 16 bytes in network order (RFC 4122).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Uuid(pub [u8; 16]);

/// A described value: a descriptor (by the spec a `ulong` code or a `symbol` name) and the value
/// it describes.
#[derive(Debug, Clone, PartialEq)]
pub struct Described {
    /// The descriptor.
    pub descriptor: Value,
    /// The described value.
    pub value: Value,
}

/// Any AMQP 1.0 value.
#[derive(Debug, Clone)]
#[allow(missing_docs)] // each variant is the AMQP type of the same name
pub enum Value {
    Null,
    Boolean(bool),
    Ubyte(u8),
    Ushort(u16),
    Uint(u32),
    Ulong(u64),
    Byte(i8),
    Short(i16),
    Int(i32),
    Long(i64),
    Float(f32),
    Double(f64),
    /// IEEE 754-2008 decimal32, in wire order.
    Decimal32([u8; 4]),
    /// IEEE 754-2008 decimal64, in wire order.
    Decimal64([u8; 8]),
    /// IEEE 754-2008 decimal128, in wire order.
    Decimal128([u8; 16]),
    Char(char),
    Timestamp(Timestamp),
    Uuid(Uuid),
    Binary(Bytes),
    String(Str),
    Symbol(Symbol),
    List(Vec<Value>),
    /// Key/value pairs in wire order (AMQP maps are ordered on the wire).
    Map(Vec<(Value, Value)>),
    Array(Array),
    Described(Box<Described>),
}

impl PartialEq for Value {
    /// Structural equality. Floats compare by bit pattern, so a decoded NaN equals the NaN that
    /// was encoded: this is a codec, and what matters is that the same bits come back.
    fn eq(&self, other: &Self) -> bool {
        use Value::*;
        match (self, other) {
            (Null, Null) => true,
            (Boolean(a), Boolean(b)) => a == b,
            (Ubyte(a), Ubyte(b)) => a == b,
            (Ushort(a), Ushort(b)) => a == b,
            (Uint(a), Uint(b)) => a == b,
            (Ulong(a), Ulong(b)) => a == b,
            (Byte(a), Byte(b)) => a == b,
            (Short(a), Short(b)) => a == b,
            (Int(a), Int(b)) => a == b,
            (Long(a), Long(b)) => a == b,
            (Float(a), Float(b)) => a.to_bits() == b.to_bits(),
            (Double(a), Double(b)) => a.to_bits() == b.to_bits(),
            (Decimal32(a), Decimal32(b)) => a == b,
            (Decimal64(a), Decimal64(b)) => a == b,
            (Decimal128(a), Decimal128(b)) => a == b,
            (Char(a), Char(b)) => a == b,
            (Timestamp(a), Timestamp(b)) => a == b,
            (Uuid(a), Uuid(b)) => a == b,
            (Binary(a), Binary(b)) => a == b,
            (String(a), String(b)) => a == b,
            (Symbol(a), Symbol(b)) => a == b,
            (List(a), List(b)) => a == b,
            (Map(a), Map(b)) => a == b,
            (Array(a), Array(b)) => a == b,
            (Described(a), Described(b)) => a == b,
            _ => false,
        }
    }
}

impl Value {
    /// The element type this value would have inside an array; `None` for a described value,
    /// whose descriptor an array carries once for all its elements.
    pub fn element_type(&self) -> Option<ElementType> {
        use ElementType as T;
        Some(match self {
            Value::Null => T::Null,
            Value::Boolean(_) => T::Boolean,
            Value::Ubyte(_) => T::Ubyte,
            Value::Ushort(_) => T::Ushort,
            Value::Uint(_) => T::Uint,
            Value::Ulong(_) => T::Ulong,
            Value::Byte(_) => T::Byte,
            Value::Short(_) => T::Short,
            Value::Int(_) => T::Int,
            Value::Long(_) => T::Long,
            Value::Float(_) => T::Float,
            Value::Double(_) => T::Double,
            Value::Decimal32(_) => T::Decimal32,
            Value::Decimal64(_) => T::Decimal64,
            Value::Decimal128(_) => T::Decimal128,
            Value::Char(_) => T::Char,
            Value::Timestamp(_) => T::Timestamp,
            Value::Uuid(_) => T::Uuid,
            Value::Binary(_) => T::Binary,
            Value::String(_) => T::String,
            Value::Symbol(_) => T::Symbol,
            Value::List(_) => T::List,
            Value::Map(_) => T::Map,
            Value::Array(_) => T::Array,
            Value::Described(_) => return None,
        })
    }

    /// The string inside a `string` value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s.as_str()),
            _ => None,
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(Str::from(s))
    }
}

impl From<Symbol> for Value {
    fn from(s: Symbol) -> Self {
        Value::Symbol(s)
    }
}

/// The type shared by all elements of an array.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum ElementType {
    Null,
    Boolean,
    Ubyte,
    Ushort,
    Uint,
    Ulong,
    Byte,
    Short,
    Int,
    Long,
    Float,
    Double,
    Decimal32,
    Decimal64,
    Decimal128,
    Char,
    Timestamp,
    Uuid,
    Binary,
    String,
    Symbol,
    List,
    Map,
    Array,
}

/// An AMQP array: elements of one type behind one constructor, optionally all described by one
/// descriptor. The fields are private so an array is always homogeneous.
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    element_type: ElementType,
    descriptor: Option<Box<Value>>,
    items: Vec<Value>,
}

impl Array {
    /// An array of `items`, each of which must have `element_type`.
    pub fn new(element_type: ElementType, items: Vec<Value>) -> Result<Self> {
        if items.iter().any(|v| v.element_type() != Some(element_type)) {
            return Err(ErrorKind::InvalidValue {
                field: "array",
                reason: "every element must have the array's element type",
            }
            .into());
        }
        Ok(Array {
            element_type,
            descriptor: None,
            items,
        })
    }

    /// An array of described values sharing `descriptor`; `items` are the undescribed values.
    pub fn described(
        descriptor: Value,
        element_type: ElementType,
        items: Vec<Value>,
    ) -> Result<Self> {
        let mut array = Array::new(element_type, items)?;
        array.descriptor = Some(Box::new(descriptor));
        Ok(array)
    }

    /// An array of symbols (the `multiple` encoding of capabilities and outcomes).
    pub fn of_symbols(symbols: impl IntoIterator<Item = Symbol>) -> Self {
        let items = symbols.into_iter().map(Value::Symbol).collect();
        Array {
            element_type: ElementType::Symbol,
            descriptor: None,
            items,
        }
    }

    /// Built by the decoder, which has already checked every element.
    pub(crate) fn from_decoded(
        element_type: ElementType,
        descriptor: Option<Box<Value>>,
        items: Vec<Value>,
    ) -> Self {
        Array {
            element_type,
            descriptor,
            items,
        }
    }

    /// The elements' type.
    pub fn element_type(&self) -> ElementType {
        self.element_type
    }

    /// The shared descriptor of an array of described values.
    pub fn descriptor(&self) -> Option<&Value> {
        self.descriptor.as_deref()
    }

    /// The elements (undescribed, when the array has a descriptor).
    pub fn items(&self) -> &[Value] {
        &self.items
    }

    /// Takes the elements out.
    pub fn into_items(self) -> Vec<Value> {
        self.items
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_refuse_mixed_elements() {
        assert!(Array::new(ElementType::Uint, vec![Value::Uint(1), Value::Ulong(2)]).is_err());
        assert!(Array::new(ElementType::Uint, vec![Value::Uint(1), Value::Uint(2)]).is_ok());
    }

    #[test]
    fn strings_and_symbols_check_their_bytes() {
        assert!(Str::from_utf8(Bytes::from_static(b"\xff")).is_err());
        assert!(Symbol::from_ascii(Bytes::from_static("é".as_bytes())).is_err());
        assert_eq!(Symbol::from_static("amqp:not-found"), "amqp:not-found");
    }

    #[test]
    fn nan_equals_itself_by_bits() {
        assert_eq!(Value::Double(f64::NAN), Value::Double(f64::NAN));
        assert_ne!(Value::Double(0.0), Value::Double(-0.0));
    }
}
