//! `decode_value` on arbitrary bytes, and `Decoder::skip_value` agreeing with
//! `Decoder::read_value` on where each value ends.
#![no_main]

mod alloc_limit;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sluice_codec::types::decode_value;
use sluice_codec_fuzz::check_skip_agreement;

fuzz_target!(|data: &[u8]| {
    let bytes = Bytes::copy_from_slice(data);
    alloc_limit::limited(1 << 20, data.len(), || {
        let _ = decode_value(&bytes);
        check_skip_agreement(&bytes);
    });
});
