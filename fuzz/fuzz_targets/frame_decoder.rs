//! A server-side connection's byte stream: protocol header(s), SASL frames, AMQP frames. Every
//! frame read must round-trip, and feeding the stream in pieces must read the same.
#![no_main]

mod alloc_limit;

use libfuzzer_sys::fuzz_target;
use sluice_codec_fuzz::{MAX_FRAME_SIZE, drive_frames, drive_stream};

fuzz_target!(|data: &[u8]| {
    // The decoder may reserve a whole frame (up to the maximum frame size) as soon as its header
    // arrives; the stream is read twice (whole and in pieces).
    let allowance = 4 * MAX_FRAME_SIZE as usize + (1 << 20);
    alloc_limit::limited(allowance, data.len(), || {
        drive_stream(data, MAX_FRAME_SIZE);
        // The same bytes as bare frames (no protocol header first), under the smallest limit a
        // peer may impose before open.
        drive_frames(data, sluice_codec::frame::MIN_MAX_FRAME_SIZE);
    });
});
