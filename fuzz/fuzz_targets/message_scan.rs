//! `ScannedMessage::scan` and its lazy accessors (`application_properties()`, `footer()`,
//! `body()`), and re-scanning a scanned message after encoding it.
#![no_main]

mod alloc_limit;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sluice_codec_fuzz::check_scan;

fuzz_target!(|data: &[u8]| {
    let bytes = Bytes::copy_from_slice(data);
    alloc_limit::limited(1 << 20, data.len(), || check_scan(&bytes));
});
