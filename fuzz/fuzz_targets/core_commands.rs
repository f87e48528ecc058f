//! Arbitrary command sequences fed to the broker core (as a connection would send them): no
//! accounting invariant breaks (they are `debug_assert!`s, on in fuzz builds), and nothing a
//! client published is held once every client has gone.
#![no_main]

mod alloc_limit;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // What the core may hold is bounded by its nodes' limits (a topic buffers up to 64 MiB),
    // not by the input.
    alloc_limit::limited(96 << 20, data.len(), || {
        sluice_broker::fuzzing::drive_core(data);
    });
});
