//! Arbitrary bytes fed to a server-side connection engine (SASL accepted whenever asked): no
//! panic, the same events and output however the bytes are split, and every connection ends
//! once its timers have run.
#![no_main]

mod alloc_limit;

use libfuzzer_sys::fuzz_target;
use sluice_engine::testing::serve_recording;

fuzz_target!(|data: &[u8]| {
    // The engine buffers at most one partial frame (64 KiB by default) beyond the input.
    alloc_limit::limited(1 << 20, data.len(), || {
        let Some((&split, stream)) = data.split_first() else { return };
        let whole = serve_recording(stream, stream.len().max(1));
        let pieces = serve_recording(stream, usize::from(split % 16) + 1);
        assert_eq!(whole.events, pieces.events, "events depend on how the input was split");
        assert_eq!(whole.output, pieces.output, "output depends on how the input was split");
        assert!(whole.done, "the connection did not end after every timer fired");
    });
});
