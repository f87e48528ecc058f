#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]
//! Property tests: everything the codec encodes decodes back to itself, byte for byte, and no
//! input, however broken, makes a decoder panic.
//!
//! - Round trips: values, every composite (through `FieldValue`), performatives, SASL frames and
//!   whole messages encode to exactly `encoded_size()` bytes, decode to an equal value, and
//!   re-encode to identical bytes.
//! - Frames: performatives and SASL bodies survive framing; transfers split across frames at
//!   any maximum frame size and reassemble.
//! - The section scan agrees with a full decode, and re-encodes a changed header around the
//!   untouched bare message.
//! - Robustness: arbitrary and mutated bytes never panic any decoder, anything a decoder accepts
//!   re-encodes stably, and every strict prefix of a valid encoding is refused (AMQP encodings
//!   are self-delimiting, so a prefix can never be a complete value). Messages are the one
//!   exception: a cut between two sections is the shorter message of the sections before it.
//! - Validation: where the section scan validates a composite in place instead of decoding it,
//!   validation and decoding agree, on valid and on mutated encodings.
//!
//! Strategies live in `support/strategies.rs`. Failures are not persisted to a regression file:
//! proptest prints the minimal failing input, which belongs in a unit test beside the code.

mod support;

use std::fmt::Debug;

use bytes::{Bytes, BytesMut};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use sluice_codec::CodecError;
use sluice_codec::composite::{Composite, FieldValue, read_composite_start};
use sluice_codec::error::{FRAME_SIZE_TOO_SMALL, FRAMING_ERROR};
use sluice_codec::frame::{
    FRAME_HEADER_SIZE, FRAME_TYPE_AMQP, FRAME_TYPE_SASL, FrameBody, decode_frame,
    encode_performative, encode_sasl, encode_transfer,
};
use sluice_codec::messaging::{Body, BodyKind, Message, ScannedMessage};
use sluice_codec::security::SaslFrame;
use sluice_codec::transport::{Performative, Transfer};
use sluice_codec::types::{Decoder, Encode, Str, Value, decode_value};
use support::strategies as st;

/// `cases` per property, unless `PROPTEST_CASES` asks for a different number everywhere.
fn config(cases: u32) -> ProptestConfig {
    let default = ProptestConfig::default();
    ProptestConfig {
        cases: if std::env::var_os("PROPTEST_CASES").is_some() {
            default.cases
        } else {
            cases
        },
        failure_persistence: None,
        ..default
    }
}

/// Random cut points for the truncation properties.
fn cut_picks() -> impl Strategy<Value = Vec<Index>> {
    vec(any::<Index>(), 24)
}

/// Strict prefix lengths to try: every one for a short encoding, else a sample that always
/// includes the empty prefix and the prefix missing only the last byte.
fn cut_points(len: usize, picks: &[Index]) -> Vec<usize> {
    if len <= 200 {
        return (0..len).collect();
    }
    let mut cuts: Vec<usize> = picks.iter().map(|i| i.index(len)).collect();
    cuts.extend([0, 1, len / 2, len - 1]);
    cuts
}

// ---------------------------------------------------------------------------------------------
// Checks shared by the properties
// ---------------------------------------------------------------------------------------------

/// Encodes a value and checks size, decode, and re-encode. Returns the encoding.
fn check_value(v: &Value) -> Result<Bytes, TestCaseError> {
    let bytes = v.to_bytes().freeze();
    prop_assert_eq!(bytes.len(), v.encoded_size());
    let back = decode_value(&bytes);
    prop_assert_eq!(back.as_ref(), Ok(v));
    prop_assert_eq!(back.unwrap().to_bytes().freeze(), bytes.clone());
    Ok(bytes)
}

fn field_bytes<T: FieldValue>(v: &T) -> Bytes {
    let mut out = BytesMut::with_capacity(v.field_size());
    v.encode_field(&mut out);
    out.freeze()
}

/// Encodes a field value and checks size, decode (consuming exactly the encoding), and
/// re-encode. Returns the encoding.
fn check_field<T: FieldValue + PartialEq + Debug>(v: &T) -> Result<Bytes, TestCaseError> {
    let bytes = field_bytes(v);
    prop_assert_eq!(bytes.len(), v.field_size());
    let mut d = Decoder::new(&bytes);
    let back = T::decode_field(&mut d, "roundtrip");
    prop_assert_eq!(back.as_ref().map(Option::as_ref), Ok(Some(v)));
    prop_assert!(d.is_empty(), "{} bytes left over", d.remaining());
    prop_assert_eq!(field_bytes(&back.unwrap().unwrap()), bytes.clone());
    Ok(bytes)
}

/// [`check_field`] for a composite, which also has an [`Encode`] impl that must agree.
fn check_composite<T: FieldValue + Encode + PartialEq + Debug>(
    v: &T,
) -> Result<Bytes, TestCaseError> {
    let bytes = check_field(v)?;
    prop_assert_eq!(v.encoded_size(), bytes.len());
    prop_assert_eq!(v.to_bytes().freeze(), bytes.clone());
    Ok(bytes)
}

/// Every strict prefix of a field's encoding is refused.
fn check_field_prefixes<T: FieldValue + Debug>(
    _: &T,
    bytes: &Bytes,
    picks: &[Index],
) -> Result<(), TestCaseError> {
    for cut in cut_points(bytes.len(), picks) {
        let prefix = bytes.slice(..cut);
        let r = T::decode_field(&mut Decoder::new(&prefix), "truncated");
        prop_assert!(r.is_err(), "prefix of {} bytes decoded: {:?}", cut, r);
    }
    Ok(())
}

/// The section scan checks a composite with `Composite::validate_list` instead of decoding it.
/// On any input the two must agree on whether it is valid and on where it ends.
fn check_validate_agrees<T: Composite + FieldValue + Debug>(
    _: &T,
    bytes: &Bytes,
) -> Result<(), TestCaseError> {
    let mut d = Decoder::new(bytes);
    let decoded = T::decode_field(&mut d, "decode").map(|v| (v.is_some(), d.position()));
    let mut d = Decoder::new(bytes);
    let validated = read_composite_start(&mut d, "validate").map(|start| match start {
        None => Some((false, d.position())),
        Some((code, size, count)) if code == T::CODE => T::validate_list(&mut d, size, count)
            .ok()
            .map(|()| (true, d.position())),
        Some(_) => None,
    });
    prop_assert_eq!(
        decoded.as_ref().ok(),
        validated.as_ref().ok().and_then(Option::as_ref),
        "decode: {:?}, validate: {:?}",
        decoded,
        validated
    );
    Ok(())
}

/// Encodes a performative and checks size, decode, and re-encode.
fn check_performative(p: &Performative) -> Result<Bytes, TestCaseError> {
    let bytes = p.to_bytes().freeze();
    prop_assert_eq!(bytes.len(), p.encoded_size());
    let mut d = Decoder::new(&bytes);
    let back = Performative::decode(&mut d);
    prop_assert_eq!(back.as_ref(), Ok(p));
    prop_assert!(d.is_empty(), "{} bytes left over", d.remaining());
    prop_assert_eq!(back.unwrap().to_bytes().freeze(), bytes.clone());
    Ok(bytes)
}

/// Re-encodes what a decoder accepted from broken input and checks the re-encoding decodes to
/// the same thing. The one tolerated refusal: an array of more zero-width
/// elements than the (possibly shorter) canonical encoding's budget allows, which is the
/// decoder's documented defence, not a codec asymmetry.
fn check_reencodes<T: PartialEq + Debug + Encode>(
    decoded: &T,
    decode: impl Fn(&Bytes) -> Result<T, CodecError>,
) -> Result<(), TestCaseError> {
    let again = decoded.to_bytes().freeze();
    prop_assert_eq!(again.len(), decoded.encoded_size());
    match decode(&again) {
        Ok(back) => prop_assert_eq!(&back, decoded),
        Err(e) if kind(&e) == "ArrayTooLarge" => {}
        Err(e) => prop_assert!(false, "re-encoding of {:?} fails: {}", decoded, e),
    }
    Ok(())
}

/// The name of an error's kind, e.g. `ArrayTooLarge`: its `Debug` form up to the fields.
fn kind(e: &CodecError) -> String {
    let debug = format!("{e:?}");
    debug
        .split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Calls everything a scanned message offers; none of it may panic. The scan checked every
/// field of the properties section, so decoding them must succeed and agree with the scan.
fn exercise_scan(s: &ScannedMessage) -> Result<(), TestCaseError> {
    let properties = s.properties();
    prop_assert!(
        properties.is_ok(),
        "scan accepted properties that fail to decode: {:?}",
        properties
    );
    let properties = properties.unwrap();
    prop_assert_eq!(
        s.to(),
        properties
            .as_ref()
            .and_then(|p| p.to.as_ref())
            .map(Str::as_str)
    );
    prop_assert_eq!(
        s.absolute_expiry_time(),
        properties.as_ref().and_then(|p| p.absolute_expiry_time)
    );
    let _ = s.application_properties();
    let _ = s.footer();
    let _ = s.body();
    let _ = (s.bare(), s.bare_and_footer(), s.body_bytes(), s.body_kind());
    let out = s.to_bytes();
    prop_assert_eq!(out.len(), s.encoded_size());
    Ok(())
}

fn decode_one_performative(b: &Bytes) -> Result<Performative, CodecError> {
    Performative::decode(&mut Decoder::new(b))
}

/// Overwrites bytes of `raw` at the given positions.
fn mutate(raw: &[u8], edits: &[(Index, u8)]) -> Bytes {
    let mut raw = raw.to_vec();
    if !raw.is_empty() {
        for (i, b) in edits {
            let at = i.index(raw.len());
            raw[at] = *b;
        }
    }
    Bytes::from(raw)
}

fn edits() -> impl Strategy<Value = Vec<(Index, u8)>> {
    vec((any::<Index>(), any::<u8>()), 1..4)
}

// ---------------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(256))]

    /// Any value encodes to `encoded_size()` bytes, decodes back, and re-encodes identically.
    #[test]
    fn values_roundtrip(v in st::value()) {
        check_value(&v)?;
    }

    /// No strict prefix of a value's encoding decodes.
    #[test]
    fn truncated_values_are_refused(v in st::value(), picks in cut_picks()) {
        let bytes = v.to_bytes().freeze();
        for cut in cut_points(bytes.len(), &picks) {
            let r = decode_value(&bytes.slice(..cut));
            prop_assert!(r.is_err(), "prefix of {} bytes decoded: {:?}", cut, r);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Composites, each through its `FieldValue` impl
// ---------------------------------------------------------------------------------------------

/// One property per composite: round trip plus truncation. For described-list composites
/// (not the unions of several), also: validating the list agrees with decoding it, on the valid
/// encoding and on a mutated one.
macro_rules! composite_properties {
    (
        composites { $($name:ident: $strategy:expr;)* }
        unions { $($uname:ident: $ustrategy:expr;)* }
    ) => {
        proptest! {
            #![proptest_config(config(256))]
            $(
                #[test]
                fn $name(v in $strategy, picks in cut_picks(), edits in edits()) {
                    let bytes = check_composite(&v)?;
                    check_field_prefixes(&v, &bytes, &picks)?;
                    check_validate_agrees(&v, &bytes)?;
                    check_validate_agrees(&v, &mutate(&bytes, &edits))?;
                }
            )*
            $(
                #[test]
                fn $uname(v in $ustrategy, picks in cut_picks()) {
                    let bytes = check_composite(&v)?;
                    check_field_prefixes(&v, &bytes, &picks)?;
                }
            )*
        }
    };
}

composite_properties! {
    composites {
        error_roundtrips: st::error();
        received_roundtrips: st::received();
        rejected_roundtrips: st::rejected();
        modified_roundtrips: st::modified();
        declared_roundtrips: st::declared();
        transactional_states_roundtrip: st::transactional_state();
        sources_roundtrip: st::source();
        targets_roundtrip: st::target();
        coordinators_roundtrip: st::coordinator();
        declares_roundtrip: st::declare();
        discharges_roundtrip: st::discharge();
        headers_roundtrip: st::header();
        properties_roundtrip: st::properties();
        opens_roundtrip: st::open();
        begins_roundtrip: st::begin();
        attaches_roundtrip: st::attach();
        flows_roundtrip: st::flow();
        transfers_roundtrip: st::transfer();
        dispositions_roundtrip: st::disposition();
        detaches_roundtrip: st::detach();
        ends_roundtrip: st::end();
        closes_roundtrip: st::close();
    }
    unions {
        outcomes_roundtrip: st::outcome();
        delivery_states_roundtrip: st::delivery_state();
        attach_targets_roundtrip: st::attach_target();
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// Message ids of every kind (a field type with no `Encode` of its own).
    #[test]
    fn message_ids_roundtrip(id in st::message_id(), picks in cut_picks()) {
        let bytes = check_field(&id)?;
        check_field_prefixes(&id, &bytes, &picks)?;
    }

    /// `multiple` symbol fields: none, one (bare) or many (an array).
    #[test]
    fn symbol_lists_roundtrip(symbols in st::symbols()) {
        check_field(&symbols)?;
    }

    /// Symbol-keyed fields and any-keyed maps.
    #[test]
    fn maps_roundtrip(fields in st::fields(), map in st::map()) {
        check_field(&fields)?;
        check_field(&map)?;
    }
}

// ---------------------------------------------------------------------------------------------
// Performatives and SASL frames, through their own decoders and through frames
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(256))]

    /// Any performative round-trips through `Performative::decode`; no strict prefix decodes.
    #[test]
    fn performatives_roundtrip(p in st::performative(), picks in cut_picks()) {
        let bytes = check_performative(&p)?;
        for cut in cut_points(bytes.len(), &picks) {
            let r = decode_one_performative(&bytes.slice(..cut));
            prop_assert!(r.is_err(), "prefix of {} bytes decoded: {:?}", cut, r);
        }
    }

    /// Any performative survives a frame; a partial frame asks for more bytes and leaves the
    /// buffer untouched; a frame one byte over the maximum is refused on both sides.
    #[test]
    fn performative_frames_roundtrip(
        p in st::performative(),
        channel in any::<u16>(),
        picks in cut_picks(),
    ) {
        let mut wire = BytesMut::new();
        prop_assert_eq!(encode_performative(&mut wire, channel, &p, u32::MAX), Ok(()));
        let size = FRAME_HEADER_SIZE + p.encoded_size();
        prop_assert_eq!(wire.len(), size);
        prop_assert_eq!(wire[5], FRAME_TYPE_AMQP);

        let too_small = u32::try_from(size - 1).unwrap();
        let refused = encode_performative(&mut BytesMut::new(), channel, &p, too_small);
        let refused = refused.unwrap_err();
        prop_assert_eq!(kind(&refused), "FrameSizeTooSmall");
        prop_assert_eq!(refused.condition(), FRAME_SIZE_TOO_SMALL);
        let too_large = decode_frame(&mut wire.clone(), too_small).unwrap_err();
        prop_assert_eq!(kind(&too_large), "FrameTooLarge");
        prop_assert_eq!(too_large.condition(), FRAMING_ERROR);

        for cut in cut_points(size, &picks) {
            let mut partial = BytesMut::from(&wire[..cut]);
            prop_assert_eq!(decode_frame(&mut partial, u32::MAX), Ok(None));
            prop_assert_eq!(&partial[..], &wire[..cut]);
        }

        let frame = decode_frame(&mut wire, u32::MAX).unwrap().expect("a whole frame");
        prop_assert!(wire.is_empty());
        prop_assert_eq!(frame.channel, channel);
        prop_assert_eq!(frame.body, FrameBody::Amqp { performative: p, payload: Bytes::new() });
    }

    /// Any SASL frame body round-trips through `SaslFrame::decode` and through a SASL frame.
    #[test]
    fn sasl_frames_roundtrip(f in st::sasl_frame(), picks in cut_picks()) {
        let bytes = f.to_bytes().freeze();
        prop_assert_eq!(bytes.len(), f.encoded_size());
        let mut d = Decoder::new(&bytes);
        let back = SaslFrame::decode(&mut d);
        prop_assert_eq!(back.as_ref(), Ok(&f));
        prop_assert!(d.is_empty());
        prop_assert_eq!(back.unwrap().to_bytes().freeze(), bytes.clone());
        for cut in cut_points(bytes.len(), &picks) {
            let r = SaslFrame::decode(&mut Decoder::new(&bytes.slice(..cut)));
            prop_assert!(r.is_err(), "prefix of {} bytes decoded: {:?}", cut, r);
        }

        let mut wire = BytesMut::new();
        prop_assert_eq!(encode_sasl(&mut wire, &f, u32::MAX), Ok(()));
        prop_assert_eq!(wire.len(), FRAME_HEADER_SIZE + bytes.len());
        prop_assert_eq!(wire[5], FRAME_TYPE_SASL);
        let frame = decode_frame(&mut wire, u32::MAX).unwrap().expect("a whole frame");
        prop_assert!(wire.is_empty());
        prop_assert_eq!(frame.channel, 0);
        prop_assert_eq!(frame.body, FrameBody::Sasl(f));
    }

    /// A transfer with any payload at any maximum frame size: every frame fits, the payloads
    /// concatenate to the original, `more` is set on all but the last frame and the last carries
    /// the transfer's own `more`. The first frame is the transfer itself; continuations carry
    /// only handle, `more` and `batchable`. When not even one payload byte fits beside the
    /// transfer, encoding is refused with frame-size-too-small.
    #[test]
    fn transfers_split_into_frames(
        t in st::transfer(),
        payload in vec(any::<u8>(), 0..5000),
        max in 512u32..=8192,
        channel in any::<u16>(),
    ) {
        let max_len = max as usize;
        let single = FRAME_HEADER_SIZE + t.encoded_size() + payload.len() <= max_len;
        let first = Transfer { more: true, ..t.clone() };
        let fits = single || FRAME_HEADER_SIZE + first.encoded_size() < max_len;

        let mut wire = BytesMut::new();
        let result = encode_transfer(&mut wire, channel, &t, &payload, max);
        if !fits {
            let refused = result.unwrap_err();
            prop_assert_eq!(kind(&refused), "FrameSizeTooSmall");
            prop_assert_eq!(refused.condition(), FRAME_SIZE_TOO_SMALL);
            return Ok(());
        }
        prop_assert_eq!(result, Ok(()));

        let mut joined = Vec::with_capacity(payload.len());
        let mut mores = Vec::new();
        let mut index = 0usize;
        while let Some(frame) = decode_frame(&mut wire, max).unwrap() {
            prop_assert_eq!(frame.channel, channel);
            let FrameBody::Amqp { performative: Performative::Transfer(got), payload: part } =
                frame.body
            else {
                return Err(TestCaseError::fail("not a transfer frame"));
            };
            let expected = if index == 0 {
                if single { t.clone() } else { first.clone() }
            } else {
                Transfer {
                    handle: t.handle,
                    more: got.more,
                    batchable: t.batchable,
                    ..Default::default()
                }
            };
            prop_assert_eq!(&got, &expected);
            mores.push(got.more);
            joined.extend_from_slice(&part);
            index += 1;
        }
        prop_assert!(wire.is_empty(), "{} bytes of a partial frame left", wire.len());
        prop_assert_eq!(joined, payload);
        prop_assert_eq!(mores.len() == 1, single);
        let (last, rest) = mores.split_last().expect("at least one frame");
        prop_assert_eq!(*last, t.more);
        prop_assert!(rest.iter().all(|m| *m), "{:?}", mores);
    }
}

// ---------------------------------------------------------------------------------------------
// Messages and the section scan
// ---------------------------------------------------------------------------------------------

/// The encoding of just the given sections of `m`.
fn sections(m: &Message, keep: impl FnOnce(&Message) -> Message) -> Bytes {
    keep(m).to_bytes().freeze()
}

/// The messages made of the first 0, 1, 2, ... sections of `m`, in wire order (each data or
/// amqp-sequence section of the body counts as one).
fn section_prefixes(m: &Message) -> Vec<Message> {
    let mut prefix = Message::default();
    let mut out = vec![prefix.clone()];
    macro_rules! add {
        ($field:ident) => {
            if m.$field.is_some() {
                prefix.$field = m.$field.clone();
                out.push(prefix.clone());
            }
        };
    }
    add!(header);
    add!(delivery_annotations);
    add!(message_annotations);
    add!(properties);
    add!(application_properties);
    match &m.body {
        Body::Empty => {}
        Body::Data(parts) => {
            for n in 1..=parts.len() {
                prefix.body = Body::Data(parts[..n].to_vec());
                out.push(prefix.clone());
            }
        }
        Body::Sequence(sections) => {
            for n in 1..=sections.len() {
                prefix.body = Body::Sequence(sections[..n].to_vec());
                out.push(prefix.clone());
            }
        }
        Body::Value(_) => {
            prefix.body = m.body.clone();
            out.push(prefix.clone());
        }
    }
    add!(footer);
    out
}

proptest! {
    #![proptest_config(config(192))]

    /// Any message round-trips through `Message::decode`. A message is a sequence of
    /// sections, so a strict prefix that ends between two sections is the shorter message of
    /// the sections before the cut; a prefix that ends inside a section is refused.
    #[test]
    fn messages_roundtrip(m in st::message(), picks in cut_picks()) {
        let bytes = m.to_bytes().freeze();
        prop_assert_eq!(bytes.len(), m.encoded_size());
        let back = Message::decode(&bytes);
        prop_assert_eq!(back.as_ref(), Ok(&m));
        prop_assert_eq!(back.unwrap().to_bytes().freeze(), bytes.clone());

        let prefixes = section_prefixes(&m);
        prop_assert_eq!(prefixes.last(), Some(&m));
        let boundaries: Vec<usize> = prefixes.iter().map(Encode::encoded_size).collect();
        let mut cuts = cut_points(bytes.len(), &picks);
        cuts.extend(boundaries.iter().copied().filter(|b| *b < bytes.len()));
        for cut in cuts {
            let decoded = Message::decode(&bytes.slice(..cut));
            match boundaries.iter().position(|b| *b == cut) {
                Some(i) => prop_assert_eq!(decoded.as_ref(), Ok(&prefixes[i]), "cut at {}", cut),
                None => prop_assert!(decoded.is_err(), "cut at {} decoded: {:?}", cut, decoded),
            }
        }
    }

    /// The scan agrees with the message: decoded header, annotations and properties; the bare
    /// message, body and footer as the bytes those sections encode to; lazily decoded
    /// application properties, body and footer. Unchanged, it re-encodes to the input.
    #[test]
    fn scan_agrees_with_message(m in st::message()) {
        let bytes = m.to_bytes().freeze();
        let s = ScannedMessage::scan(bytes.clone()).unwrap();
        prop_assert_eq!(s.raw(), &bytes);
        prop_assert_eq!(&s.header, &m.header);
        prop_assert_eq!(&s.delivery_annotations, &m.delivery_annotations);
        prop_assert_eq!(&s.message_annotations, &m.message_annotations);
        prop_assert_eq!(s.properties(), Ok(m.properties.clone()));
        let to = m.properties.as_ref().and_then(|p| p.to.as_ref()).map(Str::as_str);
        prop_assert_eq!(s.to(), to);
        let expiry = m.properties.as_ref().and_then(|p| p.absolute_expiry_time);
        prop_assert_eq!(s.absolute_expiry_time(), expiry);
        prop_assert_eq!(s.application_properties(), Ok(m.application_properties.clone()));
        prop_assert_eq!(s.body(), Ok(m.body.clone()));
        prop_assert_eq!(s.footer(), Ok(m.footer.clone()));
        let kind = match m.body {
            Body::Empty => BodyKind::None,
            Body::Data(_) => BodyKind::Data,
            Body::Sequence(_) => BodyKind::Sequence,
            Body::Value(_) => BodyKind::Value,
        };
        prop_assert_eq!(s.body_kind(), kind);

        let bare = sections(&m, |m| Message {
            properties: m.properties.clone(),
            application_properties: m.application_properties.clone(),
            body: m.body.clone(),
            ..Default::default()
        });
        prop_assert_eq!(s.bare(), bare);
        let bare_and_footer = sections(&m, |m| Message {
            properties: m.properties.clone(),
            application_properties: m.application_properties.clone(),
            body: m.body.clone(),
            footer: m.footer.clone(),
            ..Default::default()
        });
        prop_assert_eq!(s.bare_and_footer(), bare_and_footer);
        let body = sections(&m, |m| Message { body: m.body.clone(), ..Default::default() });
        prop_assert_eq!(s.body_bytes(), body);

        prop_assert_eq!(s.encoded_size(), bytes.len());
        prop_assert_eq!(s.to_bytes().freeze(), bytes);
    }

    /// Changing the delivery count on a scan (adding a header if there was none) re-encodes to
    /// a message that differs from the original in that field only.
    #[test]
    fn scan_reencodes_a_changed_delivery_count(m in st::message(), count in st::u32s()) {
        let mut s = ScannedMessage::scan(m.to_bytes().freeze()).unwrap();
        s.header.get_or_insert_with(Default::default).delivery_count = count;
        let mut expected = m.clone();
        expected.header.get_or_insert_with(Default::default).delivery_count = count;

        let again = s.to_bytes().freeze();
        prop_assert_eq!(again.len(), s.encoded_size());
        prop_assert_eq!(Message::decode(&again), Ok(expected.clone()));
        prop_assert_eq!(again, expected.to_bytes().freeze());
    }
}

// ---------------------------------------------------------------------------------------------
// Robustness: arbitrary and mutated input never panics
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(512))]

    /// Arbitrary bytes through every decoder: errors, never panics. What decodes re-encodes
    /// stably.
    #[test]
    fn arbitrary_bytes_never_panic(raw in vec(any::<u8>(), 0..512)) {
        let bytes = Bytes::from(raw);
        if let Ok(v) = decode_value(&bytes) {
            check_reencodes(&v, decode_value)?;
        }
        if let Ok(p) = decode_one_performative(&bytes) {
            check_reencodes(&p, decode_one_performative)?;
        }
        let _ = SaslFrame::decode(&mut Decoder::new(&bytes));
        if let Ok(s) = ScannedMessage::scan(bytes.clone()) {
            exercise_scan(&s)?;
        }
        let _ = Message::decode(&bytes);
        let mut buf = BytesMut::from(&bytes[..]);
        while let Ok(Some(_)) = decode_frame(&mut buf, u32::MAX) {}
    }

    /// Arbitrary bytes behind a described-list start, so decoders get past the first byte.
    #[test]
    fn arbitrary_composite_bodies_never_panic(
        code in prop_oneof![0x10u8..=0x18, 0x1du8..=0x34, 0x40u8..=0x44, 0x70u8..=0x78],
        list in prop_oneof![Just(0xc0u8), Just(0xd0), Just(0x45)],
        raw in vec(any::<u8>(), 0..256),
    ) {
        let mut wire = vec![0x00, 0x53, code, list];
        wire.extend_from_slice(&raw);
        let bytes = Bytes::from(wire);
        if let Ok(p) = decode_one_performative(&bytes) {
            check_reencodes(&p, decode_one_performative)?;
        }
        let _ = SaslFrame::decode(&mut Decoder::new(&bytes));
        if let Ok(s) = ScannedMessage::scan(bytes.clone()) {
            exercise_scan(&s)?;
        }
        let _ = Message::decode(&bytes);
    }

    /// Frames with a well-formed header and an arbitrary body of any frame type.
    #[test]
    fn arbitrary_frame_bodies_never_panic(
        frame_type in prop_oneof![Just(0u8), Just(1), any::<u8>()],
        channel in any::<u16>(),
        doff in 2u8..4,
        raw in vec(any::<u8>(), 0..512),
    ) {
        let size = (usize::from(doff) * 4).max(FRAME_HEADER_SIZE) + raw.len();
        let mut wire = BytesMut::new();
        wire.extend_from_slice(&u32::try_from(size).unwrap().to_be_bytes());
        wire.extend_from_slice(&[doff, frame_type]);
        wire.extend_from_slice(&channel.to_be_bytes());
        wire.resize(usize::from(doff) * 4, 0);
        wire.extend_from_slice(&raw);
        prop_assert_eq!(wire.len(), size);
        let _ = decode_frame(&mut wire, u32::MAX);
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// A valid value with a few bytes overwritten: never a panic; what decodes re-encodes
    /// stably.
    #[test]
    fn mutated_values_never_panic(v in st::value(), edits in edits()) {
        let bytes = mutate(&v.to_bytes(), &edits);
        if let Ok(v) = decode_value(&bytes) {
            check_reencodes(&v, decode_value)?;
        }
    }

    /// A valid performative with a few bytes overwritten.
    #[test]
    fn mutated_performatives_never_panic(p in st::performative(), edits in edits()) {
        let bytes = mutate(&p.to_bytes(), &edits);
        if let Ok(p) = decode_one_performative(&bytes) {
            check_reencodes(&p, decode_one_performative)?;
        }
        let mut wire = BytesMut::new();
        encode_performative(&mut wire, 0, &p, u32::MAX).unwrap();
        let mut wire = BytesMut::from(&mutate(&wire, &edits)[..]);
        while let Ok(Some(_)) = decode_frame(&mut wire, u32::MAX) {}
    }

    /// A valid SASL frame with a few bytes overwritten.
    #[test]
    fn mutated_sasl_frames_never_panic(f in st::sasl_frame(), edits in edits()) {
        let bytes = mutate(&f.to_bytes(), &edits);
        let _ = SaslFrame::decode(&mut Decoder::new(&bytes));
    }

    /// A valid message with a few bytes overwritten: the scan, its lazy decoders and a full
    /// decode never panic; a message that decodes re-encodes stably.
    #[test]
    fn mutated_messages_never_panic(m in st::message(), edits in edits()) {
        let bytes = mutate(&m.to_bytes(), &edits);
        if let Ok(s) = ScannedMessage::scan(bytes.clone()) {
            exercise_scan(&s)?;
        }
        if let Ok(m) = Message::decode(&bytes) {
            check_reencodes(&m, Message::decode)?;
        }
    }
}
