//! Decode as a value, a message, a performative or SASL frame body, and as frames; whatever
//! decodes is encoded (checking `to_bytes().len() == encoded_size()`), decoded again (must be
//! equal) and encoded again (must give identical bytes).
#![no_main]

mod alloc_limit;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sluice_codec_fuzz::{
    MAX_FRAME_SIZE, check_frame_bodies, check_message_roundtrip, check_value, drive_frames,
};

fuzz_target!(|data: &[u8]| {
    let bytes = Bytes::copy_from_slice(data);
    let allowance = 2 * MAX_FRAME_SIZE as usize + (1 << 20);
    alloc_limit::limited(allowance, data.len(), || {
        let _ = check_value(&bytes);
        let _ = check_message_roundtrip(&bytes);
        check_frame_bodies(&bytes);
        drive_frames(data, MAX_FRAME_SIZE);
    });
});
