//! Not a target: a counting global allocator the targets share (`mod alloc_limit;`), so a target
//! fails on an input whose decoding holds more memory at once than a fixed allowance plus a
//! multiple of the input's length. libFuzzer's own `-rss_limit_mb` only sees pages that were
//! touched, and an over-large reservation that is never filled (`Vec::with_capacity(count)` with
//! a hostile `count`) is exactly what it misses.
//!
//! A decoded value costs 40 bytes per input byte at most (one `Value` per byte), doubled while a
//! vector grows, and the checks keep the original, its encoding and the re-decoded copy alive;
//! 512 bytes per input byte leaves room for that and nothing like a per-nesting-level multiple.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// Bytes a check may hold at once per input byte, beyond its allowance.
pub const PER_INPUT_BYTE: usize = 512;

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = CURRENT.fetch_add(by, Relaxed) + by;
    PEAK.fetch_max(now, Relaxed);
}

// SAFETY: every call is forwarded to the system allocator unchanged; only sizes are counted.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        CURRENT.fetch_sub(layout.size(), Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size >= layout.size() {
            grew(new_size - layout.size());
        } else {
            CURRENT.fetch_sub(layout.size() - new_size, Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `check` on an input of `input_len` bytes and panics if it held more than
/// `allowance + PER_INPUT_BYTE * input_len` bytes at any one time.
pub fn limited<R>(allowance: usize, input_len: usize, check: impl FnOnce() -> R) -> R {
    let base = CURRENT.load(Relaxed);
    PEAK.store(base, Relaxed);
    let result = check();
    let peak = PEAK.load(Relaxed).saturating_sub(base);
    let limit = allowance + PER_INPUT_BYTE * input_len;
    assert!(
        peak <= limit,
        "checking {input_len} input bytes held {peak} bytes at once (limit {limit})"
    );
    result
}
