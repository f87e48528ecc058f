#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]
//! Replays Qpid Proton's fuzzing corpora (`../shared/fuzz-corpus/proton`, beside the repository)
//! and our own fuzzers' crash inputs (`tests/regressions/`) through the decoders: every file
//! must be decoded or refused with an error, never panic, and whatever decodes must round-trip.
//!
//! The checks are the fuzz targets' own, from `fuzz/src/lib.rs`, so a corpus file and a fuzzer
//! input are held to the same rules.

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use bytes::Bytes;

#[allow(unreachable_pub, dead_code)]
#[path = "../../../fuzz/src/lib.rs"]
mod harness;

use harness::{
    MAX_FRAME_SIZE, check_everything, check_message_roundtrip, check_scan, check_skip_agreement,
    check_value, drive_stream,
};

/// Proton's corpora hold 505 + 39 connection-driver and 312 + 6 + 2 message-decode files.
const MIN_CONNECTION_DRIVER_FILES: usize = 540;
const MIN_MESSAGE_DECODE_FILES: usize = 315;
const MIN_FILES: usize = 850;
/// What the codec reads from them today (511 headers, 598 frames, 37 whole streams), less a
/// margin: a drop means the codec started refusing traffic it used to accept.
const MIN_HEADERS: usize = 480;
const MIN_FRAMES: usize = 550;
const MIN_STREAMS_READ: usize = 30;

fn proton_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fuzz-corpus/proton");
    assert!(
        dir.is_dir(),
        "Proton's fuzz corpus is missing: expected it at {} (shared/fuzz-corpus/proton beside the \
         repository, as CI provides it). This test must not pass without it.",
        dir.display()
    );
    dir
}

/// Every regular file under `dir`, recursively, sorted.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap_or_else(|e| panic!("reading {}: {e}", d.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.is_file() {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Runs `check` on every file, catching panics so that all failures are listed at once.
fn replay<T>(files: &[PathBuf], mut check: impl FnMut(&[u8]) -> T) -> (Vec<T>, Vec<String>) {
    let mut results = Vec::new();
    let mut failures = Vec::new();
    for path in files {
        let data = fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        match catch_unwind(AssertUnwindSafe(|| check(&data))) {
            Ok(r) => results.push(r),
            Err(panic) => {
                let why = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                failures.push(format!("{}: {why}", path.display()));
            }
        }
    }
    (results, failures)
}

#[test]
fn proton_corpora_decode_or_refuse_and_roundtrip() {
    let proton = proton_dir();
    let stream_files = files_under(&proton.join("connection-driver"));
    let message_files = files_under(&proton.join("message-decode"));

    let (streams, mut failures) = replay(&stream_files, |data| {
        let report = drive_stream(data, MAX_FRAME_SIZE);
        // A stream is also arbitrary bytes to the value decoder.
        check_skip_agreement(&Bytes::copy_from_slice(data));
        report
    });
    let (messages, message_failures) = replay(&message_files, |data| {
        let bytes = Bytes::copy_from_slice(data);
        let scan = check_scan(&bytes);
        let message = check_message_roundtrip(&bytes).is_ok();
        assert_eq!(message, scan.decoded);
        let value = check_value(&bytes).is_ok();
        check_skip_agreement(&bytes);
        (scan.scanned, message, value)
    });
    failures.extend(message_failures);

    let accepted = streams.iter().filter(|r| r.accepted()).count();
    let frames: usize = streams.iter().map(|r| r.frames).sum();
    let headers: usize = streams.iter().map(|r| r.headers).sum();
    let scanned = messages.iter().filter(|m| m.0).count();
    let decoded = messages.iter().filter(|m| m.1).count();
    let values = messages.iter().filter(|m| m.2).count();
    println!(
        "connection-driver: {} files, {accepted} read to the end, {} refused; {headers} protocol \
         headers and {frames} frames decoded and round-tripped",
        stream_files.len(),
        streams.len() - accepted
    );
    println!(
        "message-decode: {} files, {decoded} decoded as messages and round-tripped, {} refused \
         ({scanned} scanned); {values} decoded as a single value",
        message_files.len(),
        messages.len() - decoded
    );

    assert!(
        failures.is_empty(),
        "{} corpus files broke the codec:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        stream_files.len() >= MIN_CONNECTION_DRIVER_FILES,
        "only {} connection-driver files found under {}",
        stream_files.len(),
        proton.display()
    );
    assert!(
        message_files.len() >= MIN_MESSAGE_DECODE_FILES,
        "only {} message-decode files found under {}",
        message_files.len(),
        proton.display()
    );
    assert!(stream_files.len() + message_files.len() >= MIN_FILES);
    // Most of Proton's corpora are fuzzer mutations that a strict decoder refuses (Proton's own
    // is lenient about types), but the valid traffic in them must keep decoding, or this test
    // would only be proving that errors are errors.
    assert!(
        headers >= MIN_HEADERS,
        "only {headers} protocol headers read"
    );
    assert!(frames >= MIN_FRAMES, "only {frames} frames decoded");
    assert!(
        accepted >= MIN_STREAMS_READ,
        "only {accepted} streams read to the end"
    );
    assert!(decoded >= 1, "no message decoded");
}

#[test]
fn every_check_on_every_corpus_file() {
    let files = files_under(&proton_dir());
    let (_, failures) = replay(&files, check_everything);
    assert!(
        failures.is_empty(),
        "{} corpus files broke the codec:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(files.len() >= MIN_FILES, "only {} files found", files.len());
}

#[test]
fn regression_inputs_decode_or_refuse_and_roundtrip() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/regressions");
    let files: Vec<PathBuf> = files_under(&dir)
        .into_iter()
        .filter(|p| p.extension().is_none_or(|e| e != "md"))
        .collect();
    let (_, failures) = replay(&files, check_everything);
    println!("regressions: {} files replayed", files.len());
    assert!(
        failures.is_empty(),
        "{} regression inputs broke the codec:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
