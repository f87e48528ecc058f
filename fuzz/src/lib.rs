//! The checks behind Sluice's codec fuzz targets, shared with the `proton_corpus` integration
//! test of `sluice-codec` (which includes this file with `#[path]`), so the corpus replay and the
//! fuzzers hold the codec to exactly the same rules.
//!
//! Every function here takes arbitrary bytes and either returns what it decoded or panics on a
//! broken invariant. "Refused with an error" is always a fine outcome; what must never happen:
//! - a panic, a hang or an unbounded allocation inside the codec;
//! - a decoded value, message or frame that does not survive encode-then-decode unchanged, whose
//!   `encoded_size()` is not the length `to_bytes()` writes, or whose second encoding differs
//!   from the first;
//! - `Decoder::skip_value` disagreeing with `Decoder::read_value` about where a value ends;
//! - a byte stream decoding differently when it arrives in pieces.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use sluice_codec::frame::{
    FRAME_HEADER_SIZE, FRAME_TYPE_AMQP, FRAME_TYPE_SASL, Frame, FrameBody, ProtocolHeader,
    decode_frame, encode_performative, encode_sasl,
};
use sluice_codec::messaging::{Message, ScannedMessage};
use sluice_codec::security::SaslFrame;
use sluice_codec::transport::Performative;
use sluice_codec::types::{Decoder, Encode, decode_value};
use sluice_codec::{CodecError, Value};

/// The maximum frame size the stream driver accepts: a broker's usual order of magnitude.
pub const MAX_FRAME_SIZE: u32 = 1 << 20;

/// What the stream driver read, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// A protocol header (`AMQP` + id + version).
    Header(ProtocolHeader),
    /// A whole frame.
    Frame(Frame),
}

/// Why the stream driver stopped.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEnd {
    /// Everything was read, or the rest is an incomplete header or frame awaiting more bytes.
    NeedMore,
    /// A protocol header of a protocol or version AMQP 1.0 does not define: a server answers
    /// with its own header and closes.
    Unsupported(ProtocolHeader),
    /// The codec refused the bytes.
    Refused(CodecError),
}

/// A connection's read side as a server sees it: a protocol header, then frames; a SASL layer's
/// frames are followed by another protocol header, so at a frame boundary the next 4 bytes being
/// `AMQP` means a header (no frame can start so: its size would be over 1 GiB).
#[derive(Debug)]
pub struct StreamDriver {
    buf: BytesMut,
    max_frame_size: u32,
    expect_header: bool,
    events: Vec<StreamEvent>,
    end: Option<StreamEnd>,
}

impl StreamDriver {
    /// A driver expecting a protocol header first.
    pub fn new(max_frame_size: u32) -> Self {
        StreamDriver {
            buf: BytesMut::new(),
            max_frame_size,
            expect_header: true,
            events: Vec::new(),
            end: None,
        }
    }

    /// Feeds bytes as they arrive and decodes whatever became whole. Ignored after the stream
    /// was refused.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.end.is_some() {
            return;
        }
        self.buf.extend_from_slice(bytes);
        self.end = self.run();
    }

    fn run(&mut self) -> Option<StreamEnd> {
        loop {
            if self.expect_header || self.buf.starts_with(b"AMQP") {
                match ProtocolHeader::decode(&self.buf) {
                    Ok(Some(header)) => {
                        self.buf.advance(8);
                        self.expect_header = false;
                        self.events.push(StreamEvent::Header(header));
                        if !header.is_supported() {
                            return Some(StreamEnd::Unsupported(header));
                        }
                    }
                    Ok(None) => return None,
                    Err(e) => return Some(StreamEnd::Refused(e)),
                }
            } else {
                match decode_frame(&mut self.buf, self.max_frame_size) {
                    Ok(Some(frame)) => self.events.push(StreamEvent::Frame(frame)),
                    Ok(None) => return None,
                    Err(e) => return Some(StreamEnd::Refused(e)),
                }
            }
        }
    }

    /// What was read and why reading stopped.
    pub fn finish(self) -> (Vec<StreamEvent>, StreamEnd) {
        (self.events, self.end.unwrap_or(StreamEnd::NeedMore))
    }
}

/// What [`drive_stream`] found in one byte stream.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamReport {
    /// Protocol headers read.
    pub headers: usize,
    /// Frames read (each one round-tripped).
    pub frames: usize,
    /// Why reading stopped.
    pub end: StreamEnd,
}

impl StreamReport {
    /// Whether the whole stream was accepted (nothing refused).
    pub fn accepted(&self) -> bool {
        self.end == StreamEnd::NeedMore
    }
}

/// Fixed, irregular piece sizes for feeding a stream in pieces.
const PIECES: [usize; 7] = [1, 3, 8, 2, 13, 64, 5];

/// Reads `bytes` as a server-side connection stream: headers and frames until the first error
/// or until more bytes are needed. Every frame is round-tripped ([`check_frame_roundtrip`]), and
/// the same stream fed in small irregular pieces must read exactly the same.
pub fn drive_stream(bytes: &[u8], max_frame_size: u32) -> StreamReport {
    let mut whole = StreamDriver::new(max_frame_size);
    whole.push(bytes);
    let (events, end) = whole.finish();

    let mut pieces = StreamDriver::new(max_frame_size);
    let mut rest = bytes;
    for n in PIECES.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (piece, tail) = rest.split_at((*n).min(rest.len()));
        pieces.push(piece);
        rest = tail;
    }
    let (piece_events, piece_end) = pieces.finish();
    assert_eq!(piece_end, end, "stream fed in pieces ends differently");
    assert!(
        piece_events == events,
        "stream fed in pieces reads differently"
    );

    let mut report = StreamReport {
        headers: 0,
        frames: 0,
        end,
    };
    for event in &events {
        match event {
            StreamEvent::Header(h) => {
                assert_eq!(ProtocolHeader::decode(&h.to_bytes()), Ok(Some(*h)));
                report.headers += 1;
            }
            StreamEvent::Frame(frame) => {
                check_frame_roundtrip(frame);
                report.frames += 1;
            }
        }
    }
    report
}

/// Reads frames (no protocol header) from the start of `bytes` until the first error or until
/// more bytes are needed, round-tripping each. Returns how many were read.
pub fn drive_frames(bytes: &[u8], max_frame_size: u32) -> usize {
    let mut buf = BytesMut::from(bytes);
    let mut frames = 0;
    while let Ok(Some(frame)) = decode_frame(&mut buf, max_frame_size) {
        check_frame_roundtrip(&frame);
        frames += 1;
    }
    frames
}

/// Checks `to_bytes()` writes exactly `encoded_size()` bytes, and returns them.
pub fn encode_checked<T: Encode + std::fmt::Debug>(value: &T) -> Bytes {
    let bytes = value.to_bytes();
    assert_eq!(
        bytes.len(),
        value.encoded_size(),
        "encoded_size() is not the length to_bytes() writes, for {value:?}"
    );
    bytes.freeze()
}

/// The wire form of a frame with a 2-word data offset.
fn frame_bytes(channel: u16, frame_type: u8, body: &[u8], payload: &[u8]) -> Bytes {
    let size = FRAME_HEADER_SIZE + body.len() + payload.len();
    let size = u32::try_from(size).expect("a re-encoded frame fits in 4 GiB");
    let mut out = BytesMut::with_capacity(size as usize);
    out.put_u32(size);
    out.put_u8(2);
    out.put_u8(frame_type);
    out.put_u16(channel);
    out.put_slice(body);
    out.put_slice(payload);
    out.freeze()
}

/// Encodes a decoded frame again (data offset 2, compact encodings).
fn encode_frame(frame: &Frame) -> Bytes {
    match &frame.body {
        FrameBody::Empty => frame_bytes(frame.channel, FRAME_TYPE_AMQP, &[], &[]),
        FrameBody::Amqp {
            performative,
            payload,
        } => {
            let body = encode_checked(performative);
            frame_bytes(frame.channel, FRAME_TYPE_AMQP, &body, payload)
        }
        FrameBody::Sasl(sasl) => {
            let body = encode_checked(sasl);
            frame_bytes(frame.channel, FRAME_TYPE_SASL, &body, &[])
        }
    }
}

/// A decoded frame, encoded again, must decode to the same frame, and encoding that must give
/// the same bytes. The codec's own frame encoders must agree with the plain encoding.
pub fn check_frame_roundtrip(frame: &Frame) {
    let wire = encode_frame(frame);
    let mut buf = BytesMut::from(&wire[..]);
    let again = match decode_frame(&mut buf, u32::MAX) {
        Ok(Some(again)) => again,
        Err(e) if is_null_array_budget(&e, frame) => return,
        other => panic!("re-encoded frame does not decode: {other:?}\nframe: {frame:?}"),
    };
    assert!(buf.is_empty(), "re-encoded frame leaves bytes behind");
    assert_eq!(&again, frame, "frame changed in a round trip");
    assert_eq!(
        encode_frame(&again),
        wire,
        "second encoding of a frame differs"
    );

    let mut ours = BytesMut::new();
    match &frame.body {
        FrameBody::Amqp {
            performative,
            payload,
        } if payload.is_empty() => {
            encode_performative(&mut ours, frame.channel, performative, u32::MAX)
                .expect("encode_performative with no size limit");
            assert_eq!(ours, wire, "encode_performative differs");
        }
        FrameBody::Sasl(sasl) if frame.channel == 0 => {
            encode_sasl(&mut ours, sasl, u32::MAX).expect("encode_sasl with no size limit");
            assert_eq!(ours, wire, "encode_sasl differs");
        }
        _ => {}
    }
}

/// Whether a re-encoding failed to decode only because of the decoder's budget for zero-width
/// array elements: the one known asymmetry between encoder and decoder.
///
/// The decoder allows at most `input length + ZERO_WIDTH_ELEMENTS_SLACK` zero-width array
/// elements, to bound what a short hostile input can make it allocate. The encoder writes no
/// zero-width elements except in arrays of nulls (null has no other encoding), and re-encoding a
/// decoded value compactly can shrink the input (wide `uint`s become `smalluint`s, `list32`
/// becomes `list8`), so a value with a large array of nulls can decode from its original bytes
/// and be refused, with `ArrayTooLarge`, from its compact re-encoding. Anything else failing to
/// decode again is a bug. (`crates/codec/tests/regressions/roundtrip-null-array-over-budget`.)
fn is_null_array_budget<T: std::fmt::Debug>(err: &CodecError, decoded: &T) -> bool {
    // By its Debug form, which names the kind the same way whether `CodecError` is the kind
    // itself or wraps it.
    format!("{err:?}").starts_with("ArrayTooLarge(")
        && format!("{decoded:?}").contains("element_type: Null")
}

/// A decoded value must survive encode-then-decode, and encode to the same bytes twice.
pub fn check_value_roundtrip(value: &Value) {
    let bytes = encode_checked(value);
    match decode_value(&bytes) {
        Ok(again) => {
            assert_eq!(&again, value, "value changed in a round trip");
            assert_eq!(
                encode_checked(&again),
                bytes,
                "second encoding of a value differs"
            );
        }
        Err(e) if is_null_array_budget(&e, value) => {}
        Err(e) => panic!("re-encoded value does not decode: {e}\nvalue: {value:?}"),
    }
}

/// `decode_value` on the whole input; a decoded value is round-tripped.
pub fn check_value(bytes: &Bytes) -> Result<Value, CodecError> {
    let value = decode_value(bytes)?;
    check_value_roundtrip(&value);
    Ok(value)
}

/// Reads values one after another from `bytes` with `read_value`, and skips them alongside with
/// `skip_value`: wherever a read succeeds, the skip must succeed too and end at the same byte.
/// Returns how many values were read.
pub fn check_skip_agreement(bytes: &Bytes) -> usize {
    let mut reader = Decoder::new(bytes);
    let mut skipper = Decoder::new(bytes);
    let mut values = 0;
    while !reader.is_empty() {
        let start = reader.position();
        let read = reader.read_value();
        let skipped = skipper.skip_value();
        match read {
            Ok(_) => {
                assert_eq!(
                    skipped,
                    Ok(()),
                    "read_value succeeded but skip_value failed at byte {start}"
                );
                assert_eq!(
                    skipper.position(),
                    reader.position(),
                    "read_value and skip_value end at different bytes for the value at {start}"
                );
                values += 1;
            }
            Err(_) => break,
        }
    }
    values
}

/// What [`check_scan`] found in one encoded message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScanReport {
    /// `ScannedMessage::scan` accepted it.
    pub scanned: bool,
    /// `Message::decode` accepted it (every section decoded).
    pub decoded: bool,
}

/// Scans a message and decodes its lazy sections (properties, application properties, footer,
/// body); the properties the scan keeps for routing must match the decoded properties. The scanned message, encoded (new prefix,
/// untouched bare message and footer), must scan again to the same sections. `Message::decode`
/// must succeed exactly when the scan and all lazy accessors do.
pub fn check_scan(raw: &Bytes) -> ScanReport {
    let message = Message::decode(raw);
    let Ok(scanned) = ScannedMessage::scan(raw.clone()) else {
        assert!(
            message.is_err(),
            "Message::decode accepted what scan refused"
        );
        return ScanReport::default();
    };
    // The scan checks every properties field, so decoding them afterwards cannot fail.
    let properties = scanned.properties();
    assert!(
        properties.is_ok(),
        "the scan accepted properties that properties() refuses: {properties:?}"
    );
    if let Ok(Some(p)) = &properties {
        assert_eq!(
            scanned.to(),
            p.to.as_ref().map(|s| s.as_str()),
            "scan's `to` differs from properties()"
        );
        assert_eq!(
            scanned.absolute_expiry_time(),
            p.absolute_expiry_time,
            "scan's `absolute-expiry-time` differs from properties()"
        );
    }
    let application_properties = scanned.application_properties();
    let footer = scanned.footer();
    let body = scanned.body();
    let _ = (
        scanned.bare(),
        scanned.bare_and_footer(),
        scanned.body_bytes(),
    );
    let _ = (scanned.body_kind(), scanned.raw());
    let all_ok =
        properties.is_ok() && application_properties.is_ok() && footer.is_ok() && body.is_ok();
    assert_eq!(
        message.is_ok(),
        all_ok,
        "Message::decode disagrees with scan and its accessors: {message:?}"
    );
    let report = ScanReport {
        scanned: true,
        decoded: message.is_ok(),
    };

    // Encoded (header and annotations anew, the rest as received), it must scan the same.
    let encoded = encode_checked(&scanned);
    let rescanned = match ScannedMessage::scan(encoded.clone()) {
        Ok(rescanned) => rescanned,
        Err(e) if is_null_array_budget(&e, &scanned) => return report,
        Err(e) => panic!("a scanned message, encoded, does not scan: {e}\n{scanned:?}"),
    };
    assert_eq!(rescanned.header, scanned.header);
    assert_eq!(rescanned.delivery_annotations, scanned.delivery_annotations);
    assert_eq!(rescanned.message_annotations, scanned.message_annotations);
    assert_eq!(rescanned.properties(), properties);
    assert_eq!(rescanned.to(), scanned.to());
    assert_eq!(
        rescanned.absolute_expiry_time(),
        scanned.absolute_expiry_time()
    );
    assert_eq!(rescanned.bare_and_footer(), scanned.bare_and_footer());
    assert_eq!(rescanned.bare(), scanned.bare());
    assert_eq!(rescanned.body_bytes(), scanned.body_bytes());
    assert_eq!(rescanned.body_kind(), scanned.body_kind());
    assert_eq!(rescanned.application_properties(), application_properties);
    assert_eq!(rescanned.footer(), footer);
    assert_eq!(rescanned.body(), body);
    assert_eq!(encode_checked(&rescanned), encoded);
    report
}

/// `Message::decode`; a decoded message must survive encode-then-decode and encode to the same
/// bytes twice.
pub fn check_message_roundtrip(raw: &Bytes) -> Result<Message, CodecError> {
    let message = Message::decode(raw)?;
    let bytes = encode_checked(&message);
    match Message::decode(&bytes) {
        Ok(again) => {
            assert_eq!(again, message, "message changed in a round trip");
            assert_eq!(
                encode_checked(&again),
                bytes,
                "second encoding of a message differs"
            );
        }
        Err(e) if is_null_array_budget(&e, &message) => {}
        Err(e) => panic!("re-encoded message does not decode: {e}\nmessage: {message:?}"),
    }
    Ok(message)
}

/// Decodes the input as a performative and as a SASL frame body (with no frame header) and
/// round-trips whatever decodes, as a frame on channel 0.
pub fn check_frame_bodies(bytes: &Bytes) {
    let mut d = Decoder::new(bytes);
    if let Ok(performative) = Performative::decode(&mut d) {
        let payload = bytes.slice(d.position()..);
        check_frame_roundtrip(&Frame {
            channel: 0,
            body: FrameBody::Amqp {
                performative,
                payload,
            },
        });
    }
    let mut d = Decoder::new(bytes);
    if let Ok(sasl) = SaslFrame::decode(&mut d)
        && d.is_empty()
    {
        check_frame_roundtrip(&Frame {
            channel: 0,
            body: FrameBody::Sasl(sasl),
        });
    }
}

/// Every check, on any input: what the corpus test runs on regression files, whichever target
/// found them.
pub fn check_everything(data: &[u8]) {
    let bytes = Bytes::copy_from_slice(data);
    drive_stream(data, MAX_FRAME_SIZE);
    drive_frames(data, MAX_FRAME_SIZE);
    check_skip_agreement(&bytes);
    let _ = check_value(&bytes);
    check_scan(&bytes);
    let _ = check_message_roundtrip(&bytes);
    check_frame_bodies(&bytes);
}
