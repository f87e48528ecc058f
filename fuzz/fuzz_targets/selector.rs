//! `Selector::parse` on any text, and a parsed selector evaluated on any message that scans.
//!
//! Input: the selector's text up to the first zero byte, then an encoded message. Besides
//! "never a panic, a hang or an unbounded allocation" (a deep expression must be refused by the
//! depth limit, not overflow the stack), the three-valued logic must hold: `matches` is exactly
//! `evaluate == Some(true)`, `NOT (s)` is the negation of `s` (unknown staying unknown), and
//! `(s) OR NOT (s)` is true exactly when `s` is known, unknown otherwise.
#![no_main]

mod alloc_limit;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sluice_codec::messaging::ScannedMessage;
use sluice_selector::Selector;

fuzz_target!(|data: &[u8]| {
    alloc_limit::limited(1 << 20, data.len(), || check(data));
});

fn check(data: &[u8]) {
    let split = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let (text, rest) = data.split_at(split);
    let text = String::from_utf8_lossy(text);
    let Ok(selector) = Selector::parse(&text) else {
        return;
    };
    let raw = Bytes::copy_from_slice(rest.get(1..).unwrap_or_default());
    let Ok(message) = ScannedMessage::scan(raw) else {
        return;
    };
    let value = selector.evaluate(&message);
    assert_eq!(selector.matches(&message), value == Some(true), "{text}");
    // The derived selectors nest one level deeper: past the depth limit they are refused,
    // which is fine; what parses must agree.
    if let Ok(negated) = Selector::parse(&format!("NOT ({text})")) {
        assert_eq!(negated.evaluate(&message), value.map(|v| !v), "NOT ({text})");
    }
    if let Ok(either) = Selector::parse(&format!("({text}) OR NOT ({text})")) {
        let known = value.is_some();
        assert_eq!(either.evaluate(&message), known.then_some(true), "({text}) OR NOT ...");
    }
}
