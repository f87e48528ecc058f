//! Decoding AMQP values from a [`Bytes`] buffer, defensively.
//!
//! The input comes from unauthenticated peers, so the decoder:
//! - checks every declared size and count against the bytes actually present before it slices
//!   or allocates (a list declaring 2^32 elements in 10 bytes is refused, not reserved);
//! - bounds nesting at [`NESTING_DEPTH_MAX`], so recursion cannot exhaust the stack;
//! - charges array elements of zero width (`null`, `true`, `uint0`, `list0`, ...) against a
//!   budget proportional to the input, since those are the one construct whose count the bytes
//!   present do not bound;
//! - does constant work per byte: skipping a value reads its size and jumps, never rescans.

use bytes::Bytes;

use super::codes::{self, Width};
use super::value::{Array, Described, ElementType, Str, Symbol, Timestamp, Uuid, Value};
use crate::error::{CodecError, ErrorKind, Result};

/// Deepest nesting of lists, maps, arrays and described values the decoder accepts. Real
/// performatives nest about six levels (attach, source, filter set, filter, value); 64 leaves
/// room for application data while bounding recursion.
pub const NESTING_DEPTH_MAX: usize = 64;

/// Zero-width array elements allowed beyond one per input byte. Keeps legitimate small arrays of
/// `true` or `null` decodable while capping what a short hostile input can make us allocate.
pub const ZERO_WIDTH_ELEMENTS_SLACK: usize = 4096;

/// Most elements a list, map or array reserves room for before reading them; a larger one grows
/// as its elements are actually read. A declared count is only bounded by the bytes left, and
/// every enclosing compound is still holding its own reservation, so reserving it whole let a
/// chain of 64 nested lists, each declaring as many elements as the rest of the input could hold,
/// reserve 64 × 40 bytes per input byte (2.5 GB for a 1 MiB frame) before failing.
const PREALLOCATE_MAX: usize = 256;

/// A cursor over a [`Bytes`] buffer that decodes AMQP values.
///
/// Decoded binaries, strings and symbols are slices of the same buffer: no payload is copied.
#[derive(Debug)]
pub struct Decoder<'a> {
    buf: &'a Bytes,
    /// `buf` up to the end of the value being read: every read is one bounds check against it.
    data: &'a [u8],
    pos: usize,
    depth: usize,
    zero_width_budget: usize,
}

impl<'a> Decoder<'a> {
    /// A decoder reading `buf` from its start.
    #[inline]
    pub fn new(buf: &'a Bytes) -> Self {
        Decoder {
            buf,
            data: buf.as_ref(),
            pos: 0,
            depth: 0,
            zero_width_budget: buf.len().saturating_add(ZERO_WIDTH_ELEMENTS_SLACK),
        }
    }

    /// Bytes left before the end of the current value or buffer.
    #[inline]
    pub fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    /// Whether everything has been read.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    /// Offset of the next byte to read, from the start of the buffer.
    #[inline]
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The buffer being decoded.
    pub fn buffer(&self) -> &'a Bytes {
        self.buf
    }

    #[cold]
    #[inline(never)]
    fn truncated(&self, needed: usize) -> CodecError {
        ErrorKind::Truncated {
            needed,
            available: self.remaining(),
        }
        .into()
    }

    /// The next byte, without consuming it.
    #[inline]
    pub fn peek(&self) -> Result<u8> {
        match self.data.get(self.pos) {
            Some(b) => Ok(*b),
            None => Err(self.truncated(1)),
        }
    }

    /// Consumes one byte.
    #[inline]
    pub fn byte(&mut self) -> Result<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Ok(b)
    }

    /// Consumes `N` bytes into an array.
    #[inline]
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let slice = self.slice(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(slice);
        Ok(out)
    }

    /// Consumes `n` bytes and borrows them.
    #[inline]
    pub fn slice(&mut self, n: usize) -> Result<&'a [u8]> {
        let data: &'a [u8] = self.data;
        match self
            .pos
            .checked_add(n)
            .and_then(|end| data.get(self.pos..end))
        {
            Some(out) => {
                self.pos += n;
                Ok(out)
            }
            None => Err(self.truncated(n)),
        }
    }

    /// Consumes `n` bytes as a zero-copy slice of the buffer.
    #[inline]
    pub fn take(&mut self, n: usize) -> Result<Bytes> {
        if n > self.remaining() {
            return Err(self.truncated(n));
        }
        let out = self.buf.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(out)
    }

    /// Skips `n` bytes.
    #[inline]
    pub fn advance(&mut self, n: usize) -> Result<()> {
        if n > self.remaining() {
            return Err(self.truncated(n));
        }
        self.pos += n;
        Ok(())
    }

    /// Reads a size or count of 1 or 4 bytes.
    #[inline]
    fn read_len(&mut self, len_bytes: usize) -> Result<usize> {
        Ok(if len_bytes == 1 {
            usize::from(self.byte()?)
        } else {
            u32::from_be_bytes(self.array()?) as usize
        })
    }

    /// Runs `f` on the next `size` bytes as if they were the whole input, one nesting level
    /// deeper, and requires `f` to consume exactly those bytes.
    #[inline]
    pub fn nested<T>(
        &mut self,
        size: usize,
        what: &'static str,
        f: impl FnOnce(&mut Self) -> Result<T>,
    ) -> Result<T> {
        if size > self.remaining() {
            return Err(self.truncated(size));
        }
        self.enter()?;
        let outer = self.data;
        let inner_end = self.pos + size;
        let buf: &'a Bytes = self.buf;
        self.data = buf.get(..inner_end).unwrap_or_default();
        let result = f(self);
        self.data = outer;
        self.depth -= 1;
        let value = result?;
        if self.pos != inner_end {
            return Err(ErrorKind::InvalidValue {
                field: what,
                reason: "declared size does not match the elements",
            }
            .into());
        }
        Ok(value)
    }

    /// Goes one nesting level deeper; callers that use this directly decrement with `leave`.
    fn enter(&mut self) -> Result<()> {
        if self.depth >= NESTING_DEPTH_MAX {
            return Err(ErrorKind::NestingTooDeep(NESTING_DEPTH_MAX).into());
        }
        self.depth += 1;
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    /// Reads the size and count of a compound (list, map or array) whose format code was just
    /// read, checking the count against the bytes present. Returns `(size, count)` where `size`
    /// covers what follows the count.
    #[inline]
    pub fn compound_header(&mut self, code: u8) -> Result<(usize, usize)> {
        let (size, count, len_bytes) = match code {
            codes::LIST8 | codes::MAP8 | codes::ARRAY8 => {
                let [size, count] = self.array()?;
                (usize::from(size), usize::from(count), 1)
            }
            codes::LIST32 | codes::MAP32 | codes::ARRAY32 => {
                let [s0, s1, s2, s3, c0, c1, c2, c3] = self.array()?;
                let size = u32::from_be_bytes([s0, s1, s2, s3]) as usize;
                (size, u32::from_be_bytes([c0, c1, c2, c3]) as usize, 4)
            }
            codes::LIST0 => return Ok((0, 0)),
            _ => return Err(ErrorKind::InvalidFormatCode(code).into()),
        };
        // The size covers the count field, which has been read, and what follows it.
        if size < len_bytes {
            return Err(ErrorKind::InvalidValue {
                field: "compound",
                reason: "size is smaller than its count field",
            }
            .into());
        }
        let body = size - len_bytes;
        if body > self.remaining() {
            return Err(self.truncated(body));
        }
        Ok((body, count))
    }

    /// Decodes the next value.
    pub fn read_value(&mut self) -> Result<Value> {
        let code = self.byte()?;
        if code == codes::DESCRIBED {
            self.enter()?;
            let described = self.read_value().and_then(|descriptor| {
                let value = self.read_value()?;
                Ok(Described { descriptor, value })
            });
            self.leave();
            return Ok(Value::Described(Box::new(described?)));
        }
        self.read_body(code)
    }

    /// Decodes the bytes after the format code `code`.
    pub fn read_body(&mut self, code: u8) -> Result<Value> {
        use codes::*;
        Ok(match code {
            NULL => Value::Null,
            TRUE => Value::Boolean(true),
            FALSE => Value::Boolean(false),
            BOOLEAN => Value::Boolean(self.boolean_byte()?),
            UBYTE => Value::Ubyte(self.byte()?),
            USHORT => Value::Ushort(u16::from_be_bytes(self.array()?)),
            UINT0 => Value::Uint(0),
            SMALLUINT => Value::Uint(u32::from(self.byte()?)),
            UINT => Value::Uint(u32::from_be_bytes(self.array()?)),
            ULONG0 => Value::Ulong(0),
            SMALLULONG => Value::Ulong(u64::from(self.byte()?)),
            ULONG => Value::Ulong(u64::from_be_bytes(self.array()?)),
            BYTE => Value::Byte(i8::from_be_bytes(self.array()?)),
            SHORT => Value::Short(i16::from_be_bytes(self.array()?)),
            SMALLINT => Value::Int(i32::from(i8::from_be_bytes(self.array()?))),
            INT => Value::Int(i32::from_be_bytes(self.array()?)),
            SMALLLONG => Value::Long(i64::from(i8::from_be_bytes(self.array()?))),
            LONG => Value::Long(i64::from_be_bytes(self.array()?)),
            FLOAT => Value::Float(f32::from_be_bytes(self.array()?)),
            DOUBLE => Value::Double(f64::from_be_bytes(self.array()?)),
            DECIMAL32 => Value::Decimal32(self.array()?),
            DECIMAL64 => Value::Decimal64(self.array()?),
            DECIMAL128 => Value::Decimal128(self.array()?),
            CHAR => Value::Char(self.char_body()?),
            TIMESTAMP => Value::Timestamp(Timestamp(i64::from_be_bytes(self.array()?))),
            UUID => Value::Uuid(Uuid(self.array()?)),
            VBIN8 | VBIN32 => Value::Binary(self.variable(code)?),
            STR8 | STR32 => Value::String(Str::from_utf8(self.variable(code)?)?),
            SYM8 | SYM32 => Value::Symbol(Symbol::from_ascii(self.variable(code)?)?),
            LIST0 | LIST8 | LIST32 => Value::List(self.list_body(code)?),
            MAP8 | MAP32 => Value::Map(self.map_body(code)?),
            ARRAY8 | ARRAY32 => Value::Array(self.array_body(code)?),
            other => return Err(ErrorKind::InvalidFormatCode(other).into()),
        })
    }

    fn boolean_byte(&mut self) -> Result<bool> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(ErrorKind::InvalidValue {
                field: "boolean",
                reason: "must be 0x00 or 0x01",
            }
            .into()),
        }
    }

    fn char_body(&mut self) -> Result<char> {
        char::from_u32(u32::from_be_bytes(self.array()?)).ok_or_else(|| {
            CodecError::from(ErrorKind::InvalidValue {
                field: "char",
                reason: "not a Unicode scalar value",
            })
        })
    }

    /// The data of a binary, string or symbol whose format code was just read.
    #[inline]
    pub fn variable(&mut self, code: u8) -> Result<Bytes> {
        let len_bytes = match codes::width(code) {
            Some(Width::Variable(n)) => n,
            _ => return Err(ErrorKind::InvalidFormatCode(code).into()),
        };
        let len = self.read_len(len_bytes)?;
        self.take(len)
    }

    /// The data of a binary, string or symbol whose format code was just read, borrowed.
    #[inline]
    pub fn variable_slice(&mut self, code: u8) -> Result<&'a [u8]> {
        let len_bytes = match codes::width(code) {
            Some(Width::Variable(n)) => n,
            _ => return Err(ErrorKind::InvalidFormatCode(code).into()),
        };
        let len = self.read_len(len_bytes)?;
        self.slice(len)
    }

    /// The elements of a list whose format code was just read.
    pub fn list_body(&mut self, code: u8) -> Result<Vec<Value>> {
        let (size, count) = self.compound_header(code)?;
        // Every element takes at least its one-byte constructor.
        if count > size {
            return Err(ErrorKind::InvalidValue {
                field: "list",
                reason: "count exceeds the bytes present",
            }
            .into());
        }
        self.nested(size, "list", |d| {
            let mut items = Vec::with_capacity(count.min(PREALLOCATE_MAX));
            for _ in 0..count {
                items.push(d.read_value()?);
            }
            Ok(items)
        })
    }

    /// The pairs of a map whose format code was just read.
    pub fn map_body(&mut self, code: u8) -> Result<Vec<(Value, Value)>> {
        let (size, count) = self.compound_header(code)?;
        if count % 2 != 0 {
            return Err(ErrorKind::InvalidValue {
                field: "map",
                reason: "odd element count",
            }
            .into());
        }
        if count > size {
            return Err(ErrorKind::InvalidValue {
                field: "map",
                reason: "count exceeds the bytes present",
            }
            .into());
        }
        self.nested(size, "map", |d| {
            let mut pairs = Vec::with_capacity((count / 2).min(PREALLOCATE_MAX));
            for _ in 0..count / 2 {
                let key = d.read_value()?;
                let value = d.read_value()?;
                pairs.push((key, value));
            }
            Ok(pairs)
        })
    }

    /// An array whose format code was just read.
    pub fn array_body(&mut self, code: u8) -> Result<Array> {
        let (size, count) = self.compound_header(code)?;
        self.nested(size, "array", |d| {
            let mut ctor = d.byte()?;
            let descriptor = if ctor == codes::DESCRIBED {
                let descriptor = d.read_value()?;
                ctor = d.byte()?;
                if ctor == codes::DESCRIBED {
                    return Err(ErrorKind::InvalidValue {
                        field: "array",
                        reason: "nested descriptors in an array constructor are not supported",
                    }
                    .into());
                }
                Some(Box::new(descriptor))
            } else {
                None
            };
            let element_type = element_type_of(ctor)?;
            if matches!(codes::width(ctor), Some(Width::Fixed(0))) {
                if count > d.zero_width_budget {
                    return Err(ErrorKind::ArrayTooLarge(count).into());
                }
                d.zero_width_budget -= count;
            } else if count > d.remaining() {
                return Err(ErrorKind::InvalidValue {
                    field: "array",
                    reason: "count exceeds the bytes present",
                }
                .into());
            }
            let mut items = Vec::with_capacity(count.min(PREALLOCATE_MAX));
            for _ in 0..count {
                items.push(d.read_body(ctor)?);
            }
            Ok(Array::from_decoded(element_type, descriptor, items))
        })
    }

    /// Skips the next value, reading only sizes: constant work for any primitive or compound.
    pub fn skip_value(&mut self) -> Result<()> {
        let code = self.byte()?;
        if code == codes::DESCRIBED {
            self.enter()?;
            let skipped = self.skip_value().and_then(|()| self.skip_value());
            self.leave();
            return skipped;
        }
        self.skip_body(code)
    }

    /// Skips the bytes after format code `code`.
    #[inline]
    pub fn skip_body(&mut self, code: u8) -> Result<()> {
        match codes::width(code) {
            Some(Width::Fixed(n)) => self.advance(n),
            Some(Width::Variable(n) | Width::Compound(n)) => {
                let len = self.read_len(n)?;
                self.advance(len)
            }
            None => Err(ErrorKind::InvalidFormatCode(code).into()),
        }
    }
}

/// The element type an array constructor denotes.
fn element_type_of(code: u8) -> Result<ElementType> {
    use ElementType as T;
    use codes::*;
    Ok(match code {
        NULL => T::Null,
        TRUE | FALSE | BOOLEAN => T::Boolean,
        UBYTE => T::Ubyte,
        USHORT => T::Ushort,
        UINT0 | SMALLUINT | UINT => T::Uint,
        ULONG0 | SMALLULONG | ULONG => T::Ulong,
        BYTE => T::Byte,
        SHORT => T::Short,
        SMALLINT | INT => T::Int,
        SMALLLONG | LONG => T::Long,
        FLOAT => T::Float,
        DOUBLE => T::Double,
        DECIMAL32 => T::Decimal32,
        DECIMAL64 => T::Decimal64,
        DECIMAL128 => T::Decimal128,
        CHAR => T::Char,
        TIMESTAMP => T::Timestamp,
        UUID => T::Uuid,
        VBIN8 | VBIN32 => T::Binary,
        STR8 | STR32 => T::String,
        SYM8 | SYM32 => T::Symbol,
        LIST0 | LIST8 | LIST32 => T::List,
        MAP8 | MAP32 => T::Map,
        ARRAY8 | ARRAY32 => T::Array,
        other => return Err(ErrorKind::InvalidFormatCode(other).into()),
    })
}

/// Decodes exactly one value from `buf`; trailing bytes are an error.
pub fn decode_value(buf: &Bytes) -> Result<Value> {
    let mut d = Decoder::new(buf);
    let value = d.read_value()?;
    if !d.is_empty() {
        return Err(ErrorKind::InvalidValue {
            field: "value",
            reason: "trailing bytes",
        }
        .into());
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8]) -> Result<Value> {
        decode_value(&Bytes::copy_from_slice(bytes))
    }

    #[test]
    fn compact_and_wide_encodings_decode_alike() {
        assert_eq!(decode(&[0x43]).ok(), Some(Value::Uint(0)));
        assert_eq!(decode(&[0x52, 7]).ok(), Some(Value::Uint(7)));
        assert_eq!(decode(&[0x70, 0, 0, 0, 7]).ok(), Some(Value::Uint(7)));
        assert_eq!(decode(&[0x54, 0xff]).ok(), Some(Value::Int(-1)));
        assert_eq!(decode(&[0xa1, 2, b'h', b'i']).ok(), Some(Value::from("hi")));
        assert_eq!(
            decode(&[0xb1, 0, 0, 0, 2, b'h', b'i']).ok(),
            Some(Value::from("hi"))
        );
        assert_eq!(decode(&[0x45]).ok(), Some(Value::List(vec![])));
        assert_eq!(decode(&[0xc0, 1, 0]).ok(), Some(Value::List(vec![])));
    }

    #[test]
    fn declared_counts_beyond_the_input_are_refused_before_allocating() {
        // list32 claiming 4 billion elements in a 4-byte body.
        let err = decode(&[0xd0, 0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff]).unwrap_err();
        assert_eq!(err.condition(), crate::error::DECODE_ERROR);
        // array32 of 4 billion uints.
        assert!(decode(&[0xf0, 0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff, 0x70]).is_err());
        // array32 of 4 billion nulls: zero-width, so the element budget stops it.
        let err = decode(&[0xf0, 0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff, 0x40]).unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::ArrayTooLarge(_)), "{err}");
        // A size past the end of the input.
        assert!(matches!(
            decode(&[0xb0, 0, 0, 1, 0, 1]).map_err(|e| e.kind().clone()),
            Err(ErrorKind::Truncated { .. })
        ));
    }

    #[test]
    fn small_arrays_of_zero_width_elements_still_decode() {
        let v = decode(&[0xe0, 2, 3, 0x41]).ok();
        let expected = Array::new(ElementType::Boolean, vec![Value::Boolean(true); 3]).ok();
        assert_eq!(v, expected.map(Value::Array));
    }

    #[test]
    fn nesting_is_bounded() {
        let mut deep = Vec::new();
        for _ in 0..NESTING_DEPTH_MAX + 1 {
            deep.extend_from_slice(&[0x00, 0x53, 0x01]);
        }
        deep.push(0x40);
        assert!(matches!(
            decode(&deep).map_err(|e| e.kind().clone()),
            Err(ErrorKind::NestingTooDeep(_))
        ));
    }

    #[test]
    fn size_and_count_must_agree() {
        // list8 of size 3 holding one 1-byte element: two bytes left over.
        assert!(decode(&[0xc0, 3, 1, 0x40, 0x40]).is_err());
        assert!(decode(&[0xc1, 2, 1, 0x40]).is_err(), "odd map count");
        assert!(decode(&[0x56, 2]).is_err(), "boolean byte must be 0 or 1");
        assert!(
            decode(&[0x73, 0, 0, 0xd8, 0]).is_err(),
            "surrogate is no char"
        );
    }

    #[test]
    fn skipping_reads_sizes_only() {
        let buf = Bytes::from_static(&[0x00, 0x53, 0x75, 0xa0, 3, 1, 2, 3, 0x41]);
        let mut d = Decoder::new(&buf);
        d.skip_value().ok();
        assert_eq!(d.position(), 8);
        assert_eq!(d.read_value().ok(), Some(Value::Boolean(true)));
    }

    #[test]
    fn decoded_binaries_share_the_input_buffer() {
        let buf = Bytes::from(vec![0xa0, 3, 1, 2, 3]);
        let Ok(Value::Binary(b)) = decode_value(&buf) else {
            panic!("not binary")
        };
        assert_eq!(b.as_ptr(), buf[2..].as_ptr());
    }
}
