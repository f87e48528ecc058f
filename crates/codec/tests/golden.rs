//! Golden vectors: the codec against bytes produced by an independent implementation.
//!
//! `tests/golden/vectors.json` holds AMQP values and whole messages encoded by Apache Qpid
//! Proton (see `tests/golden/generate.py` for how and for the JSON contract), each with the
//! typed form Proton decodes them to. For every vector we decode Proton's bytes and compare with
//! that typed form, then re-encode and check our encoding is equivalent and never longer.
//!
//! Every vector is checked even when an earlier one fails (panics included), and the failures
//! are reported together, each naming its vector.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::panic::{AssertUnwindSafe, catch_unwind};

use bytes::Bytes;
use serde_json::Value as Json;
use sluice_codec::messaging::{BodyKind, Message, MessageId, ScannedMessage};
use sluice_codec::types::{
    Array, Decoder, ElementType, Encode, Str, Symbol, Timestamp, Uuid, Value, decode_value,
};

/// Fewer vectors than this means the file was truncated or regenerated badly.
const MIN_VECTORS: usize = 150;
/// Fewer message vectors than this means the message half of the file went missing.
const MIN_MESSAGE_VECTORS: usize = 25;

type Check<T> = Result<T, String>;

// ---------------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------------

struct Vectors {
    generator: String,
    vectors: Vec<Json>,
}

fn load() -> Vectors {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/vectors.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let json: Json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {path}: {e}"));
    let generator = json["generator"]
        .as_str()
        .expect("`generator` is a string")
        .to_owned();
    let vectors = json["vectors"]
        .as_array()
        .expect("`vectors` is an array")
        .clone();
    Vectors { generator, vectors }
}

fn name_of(vector: &Json) -> String {
    vector["name"].as_str().unwrap_or("<unnamed>").to_owned()
}

fn kind_of(vector: &Json) -> &str {
    vector["kind"].as_str().unwrap_or("")
}

fn hex_decode(hex: &str) -> Check<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return Err(format!("odd-length hex {hex:?}"));
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(|| format!("bad hex {hex:?}"))
        })
        .collect()
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hex_field(vector: &Json, key: &str) -> Check<Bytes> {
    let hex = vector[key]
        .as_str()
        .ok_or_else(|| format!("`{key}` is not a string"))?;
    hex_decode(hex).map(Bytes::from)
}

/// Runs one vector's check, turning a panic inside the codec into a reported failure.
fn run<T>(name: &str, failures: &mut Vec<String>, check: impl FnOnce() -> Check<T>) -> Option<T> {
    match catch_unwind(AssertUnwindSafe(check)) {
        Ok(Ok(t)) => Some(t),
        Ok(Err(e)) => {
            failures.push(format!("{name}: {e}"));
            None
        }
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "<non-string panic>".to_owned());
            failures.push(format!("{name}: panicked: {msg}"));
            None
        }
    }
}

fn report(what: &str, failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{} {what} failed:\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}

// ---------------------------------------------------------------------------------------------
// `<typed>` JSON -> Value
// ---------------------------------------------------------------------------------------------

fn element_type(name: &str) -> Check<ElementType> {
    use ElementType as T;
    Ok(match name {
        "null" => T::Null,
        "boolean" => T::Boolean,
        "ubyte" => T::Ubyte,
        "ushort" => T::Ushort,
        "uint" => T::Uint,
        "ulong" => T::Ulong,
        "byte" => T::Byte,
        "short" => T::Short,
        "int" => T::Int,
        "long" => T::Long,
        "float" => T::Float,
        "double" => T::Double,
        "decimal32" => T::Decimal32,
        "decimal64" => T::Decimal64,
        "decimal128" => T::Decimal128,
        "char" => T::Char,
        "timestamp" => T::Timestamp,
        "uuid" => T::Uuid,
        "binary" => T::Binary,
        "string" => T::String,
        "symbol" => T::Symbol,
        "list" => T::List,
        "map" => T::Map,
        "array" => T::Array,
        other => return Err(format!("unknown array element type {other:?}")),
    })
}

fn int<T: TryFrom<i64>>(payload: &Json, ty: &str) -> Check<T> {
    payload
        .as_i64()
        .and_then(|n| T::try_from(n).ok())
        .ok_or_else(|| format!("{ty} payload {payload} out of range"))
}

fn decimal<T: std::str::FromStr>(payload: &Json, ty: &str) -> Check<T> {
    payload
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("{ty} payload {payload} is not a decimal string"))
}

fn fixed_hex<const N: usize>(payload: &Json, ty: &str) -> Check<[u8; N]> {
    let bytes = hex_decode(payload.as_str().unwrap_or(""))?;
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| format!("{ty} payload has {} bytes, not {N}", b.len()))
}

fn text<'a>(payload: &'a Json, ty: &str) -> Check<&'a str> {
    payload
        .as_str()
        .ok_or_else(|| format!("{ty} payload {payload} is not a string"))
}

fn items(payload: &Json, ty: &str) -> Check<Vec<Value>> {
    payload
        .as_array()
        .ok_or_else(|| format!("{ty} payload is not a JSON array"))?
        .iter()
        .map(typed)
        .collect()
}

/// Converts `[type, payload]` into the Value the codec should decode.
fn typed(json: &Json) -> Check<Value> {
    let (ty, p) = match json.as_array().map(Vec::as_slice) {
        Some([Json::String(ty), p]) => (ty.as_str(), p),
        _ => return Err(format!("not a [type, payload] pair: {json}")),
    };
    Ok(match ty {
        "null" => Value::Null,
        "boolean" => Value::Boolean(p.as_bool().ok_or("boolean payload")?),
        "ubyte" => Value::Ubyte(int(p, ty)?),
        "ushort" => Value::Ushort(int(p, ty)?),
        "uint" => Value::Uint(int(p, ty)?),
        "byte" => Value::Byte(int(p, ty)?),
        "short" => Value::Short(int(p, ty)?),
        "int" => Value::Int(int(p, ty)?),
        "ulong" => Value::Ulong(decimal(p, ty)?),
        "long" => Value::Long(decimal(p, ty)?),
        "timestamp" => Value::Timestamp(Timestamp(decimal(p, ty)?)),
        "float" => Value::Float(f32::from_be_bytes(fixed_hex(p, ty)?)),
        "double" => Value::Double(f64::from_be_bytes(fixed_hex(p, ty)?)),
        "decimal32" => Value::Decimal32(fixed_hex(p, ty)?),
        "decimal64" => Value::Decimal64(fixed_hex(p, ty)?),
        "decimal128" => Value::Decimal128(fixed_hex(p, ty)?),
        "uuid" => Value::Uuid(Uuid(fixed_hex(p, ty)?)),
        "char" => {
            let s = text(p, ty)?;
            let mut chars = s.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Value::Char(c),
                _ => return Err(format!("char payload {s:?} is not one character")),
            }
        }
        "binary" => Value::Binary(hex_decode(text(p, ty)?)?.into()),
        "string" => Value::String(Str::from(text(p, ty)?)),
        "symbol" => Value::Symbol(Symbol::try_from(text(p, ty)?).map_err(|e| e.to_string())?),
        "list" => Value::List(items(p, ty)?),
        "map" => {
            let pairs = p.as_array().ok_or("map payload is not a JSON array")?;
            let mut out = Vec::with_capacity(pairs.len());
            for pair in pairs {
                match pair.as_array().map(Vec::as_slice) {
                    Some([k, v]) => out.push((typed(k)?, typed(v)?)),
                    _ => return Err(format!("map entry is not a [key, value] pair: {pair}")),
                }
            }
            Value::Map(out)
        }
        "array" => {
            let element = element_type(text(&p["type"], "array type")?)?;
            let elements = items(&p["items"], ty)?;
            let array = match &p["descriptor"] {
                Json::Null => Array::new(element, elements),
                descriptor => Array::described(typed(descriptor)?, element, elements),
            };
            Value::Array(array.map_err(|e| format!("building array: {e}"))?)
        }
        "described" => Value::Described(Box::new(sluice_codec::types::Described {
            descriptor: typed(&p["descriptor"])?,
            value: typed(&p["value"])?,
        })),
        other => return Err(format!("unknown type {other:?}")),
    })
}

fn is_compound(ty: &str) -> bool {
    matches!(ty, "list" | "map" | "array" | "described")
}

// ---------------------------------------------------------------------------------------------
// The vector file itself
// ---------------------------------------------------------------------------------------------

#[test]
fn the_vector_file_is_complete() {
    let file = load();
    assert!(
        file.generator.contains("Proton"),
        "vectors must come from Proton, not from us: {:?}",
        file.generator
    );
    let count = |kind: &str| file.vectors.iter().filter(|v| kind_of(v) == kind).count();
    let (values, messages) = (count("value"), count("message"));
    assert!(
        file.vectors.len() >= MIN_VECTORS,
        "only {} vectors (at least {MIN_VECTORS} expected): truncated file?",
        file.vectors.len()
    );
    assert!(
        messages >= MIN_MESSAGE_VECTORS,
        "only {messages} message vectors (at least {MIN_MESSAGE_VECTORS} expected)"
    );
    assert_eq!(
        values + messages,
        file.vectors.len(),
        "every vector is a value or a message"
    );
    let mut names: Vec<String> = file.vectors.iter().map(name_of).collect();
    names.sort();
    let before = names.len();
    names.dedup();
    assert_eq!(names.len(), before, "vector names are unique");
}

// ---------------------------------------------------------------------------------------------
// Value vectors
// ---------------------------------------------------------------------------------------------

/// Checks one value vector; `Ok(true)` when we re-encode Proton's bytes exactly.
fn check_value(vector: &Json) -> Check<bool> {
    let wire = hex_field(vector, "hex")?;
    let expected = typed(&vector["expected"])?;

    let decoded = decode_value(&wire).map_err(|e| format!("decode failed: {e}"))?;
    if decoded != expected {
        return Err(format!("decoded {decoded:?}\n    expected {expected:?}"));
    }

    let ours = decoded.to_bytes().freeze();
    if ours.len() != decoded.encoded_size() {
        return Err(format!(
            "encoded {} bytes but encoded_size() says {}",
            ours.len(),
            decoded.encoded_size()
        ));
    }
    let again = decode_value(&ours)
        .map_err(|e| format!("our re-encoding {} does not decode: {e}", hex_encode(&ours)))?;
    if again != expected {
        return Err(format!(
            "our re-encoding {} decodes to {again:?}",
            hex_encode(&ours)
        ));
    }
    if ours == wire {
        return Ok(true);
    }
    if ours.len() >= wire.len() {
        return Err(format!(
            "our encoding differs from Proton's and is not shorter:\n    ours   {}\n    proton {}",
            hex_encode(&ours),
            hex_encode(&wire)
        ));
    }
    Ok(false)
}

#[test]
fn value_vectors_match_proton() {
    let file = load();
    let mut failures = Vec::new();
    let (mut checked, mut exact, mut shorter, mut scalars) = (0usize, 0usize, 0usize, 0usize);
    for vector in file.vectors.iter().filter(|v| kind_of(v) == "value") {
        let name = name_of(vector);
        let ty = vector["expected"][0].as_str().unwrap_or("").to_owned();
        checked += 1;
        if !is_compound(&ty) {
            scalars += 1;
        }
        let Some(byte_exact) = run(&name, &mut failures, || check_value(vector)) else {
            continue;
        };
        if byte_exact {
            exact += 1;
        } else if is_compound(&ty) {
            shorter += 1;
        } else {
            // Proton writes every scalar in its most compact form, and so must we.
            failures.push(format!(
                "{name}: scalar {ty} does not re-encode byte for byte (only shorter)"
            ));
        }
    }
    println!(
        "{checked} value vectors: {exact} re-encode byte for byte, {shorter} more compactly \
         than Proton ({scalars} scalars, all of which must be exact)"
    );
    assert!(
        checked > 0 && scalars > 0,
        "no value vectors at all: the byte-exact check would be vacuous"
    );
    report("value vectors", &failures);
    assert!(exact >= scalars, "{exact} byte-exact < {scalars} scalars");
}

// ---------------------------------------------------------------------------------------------
// Message vectors
// ---------------------------------------------------------------------------------------------

/// Collects mismatches between a field of the scan and the vector's `fields`.
struct Fields<'a> {
    json: &'a serde_json::Map<String, Json>,
    errors: Vec<String>,
}

impl Fields<'_> {
    fn expect<T: PartialEq + std::fmt::Debug>(&mut self, key: &str, got: T, expected: T) {
        if got != expected {
            self.errors
                .push(format!("{key}: scan has {got:?}, Proton says {expected:?}"));
        }
    }

    fn get(&self, key: &str) -> Option<&Json> {
        self.json.get(key)
    }

    fn bool_or(&self, key: &str, default: bool) -> Check<bool> {
        self.get(key).map_or(Ok(default), |j| {
            j.as_bool().ok_or_else(|| format!("field {key} not a bool"))
        })
    }

    fn int_or<T: TryFrom<i64>>(&self, key: &str, default: T) -> Check<T> {
        self.get(key).map_or(Ok(default), |j| int(j, key))
    }

    fn opt_int<T: TryFrom<i64>>(&self, key: &str) -> Check<Option<T>> {
        self.get(key).map(|j| int(j, key)).transpose()
    }

    fn opt_str(&self, key: &str) -> Check<Option<&str>> {
        self.get(key)
            .map(|j| {
                j.as_str()
                    .ok_or_else(|| format!("field {key} not a string"))
            })
            .transpose()
    }

    fn opt_typed(&self, key: &str) -> Check<Option<Value>> {
        self.get(key).map(typed).transpose()
    }
}

fn id_value(id: &MessageId) -> Value {
    match id {
        MessageId::Ulong(n) => Value::Ulong(*n),
        MessageId::Uuid(u) => Value::Uuid(*u),
        MessageId::Binary(b) => Value::Binary(b.clone()),
        MessageId::String(s) => Value::String(s.clone()),
    }
}

/// Descriptor code of a top-level section as decoded by `read_value`.
fn section_code(section: &Value) -> Option<u64> {
    match section {
        Value::Described(d) => match d.descriptor {
            Value::Ulong(code) => Some(code),
            _ => None,
        },
        _ => None,
    }
}

/// (a) Walks the sections with the generic decoder. Returns the offset of the bare message
/// (the first section from properties on), as the section boundaries say.
fn check_sections(wire: &Bytes, vector: &Json) -> Check<usize> {
    let expected = vector["sections"]
        .as_array()
        .ok_or("`sections` is not an array")?
        .iter()
        .map(typed)
        .collect::<Check<Vec<Value>>>()?;
    let mut d = Decoder::new(wire);
    let mut got = Vec::new();
    let mut bare_start = None;
    while !d.is_empty() {
        let start = d.position();
        let section = d
            .read_value()
            .map_err(|e| format!("section {} at offset {start}: {e}", got.len()))?;
        if bare_start.is_none() && section_code(&section).is_some_and(|c| c >= 0x73) {
            bare_start = Some(start);
        }
        got.push(section);
    }
    if got.len() != expected.len() {
        return Err(format!(
            "{} sections decoded, Proton has {}",
            got.len(),
            expected.len()
        ));
    }
    for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
        if g != e {
            return Err(format!("section {i}: decoded {g:?}\n    expected {e:?}"));
        }
    }
    Ok(bare_start.unwrap_or(wire.len()))
}

/// (b) The scan's header, properties and body kind against `fields`.
fn check_scan(wire: &Bytes, vector: &Json, bare_start: usize) -> Check<()> {
    let json = vector["fields"]
        .as_object()
        .ok_or("`fields` is not an object")?;
    let scanned = ScannedMessage::scan(wire.clone()).map_err(|e| format!("scan failed: {e}"))?;
    let mut f = Fields {
        json,
        errors: Vec::new(),
    };

    let header = scanned.header.clone().unwrap_or_default();
    f.expect("durable", header.durable, f.bool_or("durable", false)?);
    f.expect("priority", header.priority, f.int_or("priority", 4u8)?);
    f.expect("ttl_ms", header.ttl.unwrap_or(0), f.int_or("ttl_ms", 0u32)?);
    let first_acquirer = f.bool_or("first_acquirer", false)?;
    f.expect("first_acquirer", header.first_acquirer, first_acquirer);
    let delivery_count = f.int_or("delivery_count", 0u32)?;
    f.expect("delivery_count", header.delivery_count, delivery_count);

    let props = scanned
        .properties()
        .map_err(|e| format!("properties() failed: {e}"))?
        .unwrap_or_default();
    // The scan decodes these two eagerly; they must agree with the lazily decoded section.
    f.expect(
        "to (eager)",
        scanned.to(),
        props.to.as_ref().map(Str::as_str),
    );
    let eager_expiry = scanned.absolute_expiry_time();
    f.expect(
        "expiry_time_ms (eager)",
        eager_expiry,
        props.absolute_expiry_time,
    );
    let as_str = |s: &Option<Str>| s.as_ref().map(|s| s.as_str().to_owned());
    let as_sym = |s: &Option<Symbol>| s.as_ref().map(|s| s.as_str().to_owned());
    let owned = |s: Option<&str>| s.map(str::to_owned);
    f.expect(
        "message_id",
        props.message_id.as_ref().map(id_value),
        f.opt_typed("message_id")?,
    );
    let correlation_id = f.opt_typed("correlation_id")?;
    f.expect(
        "correlation_id",
        props.correlation_id.as_ref().map(id_value),
        correlation_id,
    );
    let user_id = f.opt_str("user_id")?.map(hex_decode).transpose()?;
    f.expect(
        "user_id",
        props.user_id.as_ref().map(|b| b.to_vec()),
        user_id,
    );
    f.expect("to", as_str(&props.to), owned(f.opt_str("to")?));
    f.expect(
        "subject",
        as_str(&props.subject),
        owned(f.opt_str("subject")?),
    );
    f.expect(
        "reply_to",
        as_str(&props.reply_to),
        owned(f.opt_str("reply_to")?),
    );
    let content_type = owned(f.opt_str("content_type")?);
    f.expect("content_type", as_sym(&props.content_type), content_type);
    let content_encoding = owned(f.opt_str("content_encoding")?);
    f.expect(
        "content_encoding",
        as_sym(&props.content_encoding),
        content_encoding,
    );
    let expiry = f.opt_int("expiry_time_ms")?.map(Timestamp);
    f.expect("expiry_time_ms", props.absolute_expiry_time, expiry);
    let creation = f.opt_int("creation_time_ms")?.map(Timestamp);
    f.expect("creation_time_ms", props.creation_time, creation);
    f.expect(
        "group_id",
        as_str(&props.group_id),
        owned(f.opt_str("group_id")?),
    );
    f.expect(
        "group_sequence",
        props.group_sequence,
        f.opt_int("group_sequence")?,
    );
    let reply_to_group_id = owned(f.opt_str("reply_to_group_id")?);
    f.expect(
        "reply_to_group_id",
        as_str(&props.reply_to_group_id),
        reply_to_group_id,
    );

    let body_kind = match f.opt_str("body_kind")? {
        Some("none") => BodyKind::None,
        Some("data") => BodyKind::Data,
        Some("sequence") => BodyKind::Sequence,
        Some("value") => BodyKind::Value,
        other => return Err(format!("bad body_kind {other:?}")),
    };
    f.expect("body_kind", scanned.body_kind(), body_kind);

    // Zero copy: the bare message is the tail of the buffer it arrived in (Proton writes no
    // footer), starting where the properties section does.
    let bare = scanned.bare();
    let Some(expected_bare) = wire.get(bare_start..) else {
        return Err(format!("bare message offset {bare_start} past the end"));
    };
    if bare != expected_bare {
        f.errors.push(format!(
            "bare(): {} bytes, expected the last {} of the input",
            bare.len(),
            expected_bare.len()
        ));
    } else if !bare.is_empty() && bare.as_ptr() != expected_bare.as_ptr() {
        f.errors
            .push("bare(): equal bytes but a copy, not a slice of the input".to_owned());
    }

    if f.errors.is_empty() {
        Ok(())
    } else {
        Err(f.errors.join("; "))
    }
}

/// (c) Message::decode, re-encode, decode again. Returns our encoding.
fn check_message_roundtrip(wire: &Bytes) -> Check<Bytes> {
    let message = Message::decode(wire).map_err(|e| format!("Message::decode failed: {e}"))?;
    let ours = message.to_bytes().freeze();
    if ours.len() != message.encoded_size() {
        return Err(format!(
            "message encoded to {} bytes but encoded_size() says {}",
            ours.len(),
            message.encoded_size()
        ));
    }
    let again = Message::decode(&ours)
        .map_err(|e| format!("our re-encoding {} does not decode: {e}", hex_encode(&ours)))?;
    if again != message {
        return Err(format!(
            "re-encoded message differs:\n    first  {message:?}\n    second {again:?}"
        ));
    }
    Ok(ours)
}

/// Checks one message vector; returns Proton's length and ours (after a full decode).
fn check_message(vector: &Json) -> Check<(Bytes, Bytes)> {
    let wire = hex_field(vector, "hex")?;
    let mut errors = Vec::new();
    let bare_start = match check_sections(&wire, vector) {
        Ok(offset) => Some(offset),
        Err(e) => {
            errors.push(format!("sections: {e}"));
            None
        }
    };
    if let Some(bare_start) = bare_start
        && let Err(e) = check_scan(&wire, vector, bare_start)
    {
        errors.push(format!("scan: {e}"));
    }
    let ours = match check_message_roundtrip(&wire) {
        Ok(ours) => ours,
        Err(e) => {
            errors.push(format!("roundtrip: {e}"));
            Bytes::new()
        }
    };
    if errors.is_empty() {
        Ok((wire, ours))
    } else {
        Err(errors.join("\n    "))
    }
}

#[test]
fn message_vectors_match_proton() {
    let file = load();
    let mut failures = Vec::new();
    let (mut checked, mut exact, mut shorter, mut longer) = (0usize, 0usize, 0usize, Vec::new());
    for vector in file.vectors.iter().filter(|v| kind_of(v) == "message") {
        checked += 1;
        let name = name_of(vector);
        let Some((proton, ours)) = run(&name, &mut failures, || check_message(vector)) else {
            continue;
        };
        match ours.len().cmp(&proton.len()) {
            _ if ours == proton => exact += 1,
            std::cmp::Ordering::Less => shorter += 1,
            _ => longer.push(name),
        }
    }
    println!(
        "{checked} message vectors: {exact} re-encode byte for byte, {shorter} more compactly, \
         {} not (informational): {longer:?}",
        longer.len()
    );
    assert!(checked > 0, "no message vectors");
    report("message vectors", &failures);
}
