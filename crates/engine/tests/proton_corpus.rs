//! Qpid Proton's connection-driver corpus (raw streams a server reads) fed to a server engine:
//! every stream is served or refused with an error, never a panic; what the engine writes is
//! always well-formed; reading a stream in pieces gives the same events as reading it whole; and
//! every connection ends once its timers have run.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::path::PathBuf;

use bytes::BytesMut;
use sluice_codec::frame::{ProtocolHeader, decode_frame};
use sluice_engine::Event;
use sluice_engine::testing::serve_recording;

fn corpus_files() -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fuzz-corpus/proton/connection-driver");
    let mut files = Vec::new();
    for sub in ["corpus", "crash"] {
        let dir = root.join(sub);
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; the corpus lives in ../shared beside the repository",
                dir.display()
            )
        });
        files.extend(entries.map(|e| e.unwrap().path()));
    }
    files.sort();
    files
}

/// Our output must be protocol headers and frames our own decoder accepts.
fn assert_well_formed(name: &str, output: &[u8]) {
    let mut buf = BytesMut::from(output);
    while !buf.is_empty() {
        if buf.starts_with(b"AMQP") {
            assert!(
                ProtocolHeader::decode(&buf).unwrap().is_some(),
                "{name}: partial header"
            );
            let _ = buf.split_to(8);
            continue;
        }
        match decode_frame(&mut buf, u32::MAX) {
            Ok(Some(_)) => {}
            other => panic!("{name}: the engine wrote an undecodable frame: {other:?}"),
        }
    }
}

#[test]
fn every_proton_stream_is_served_or_refused_and_ends() {
    let files = corpus_files();
    assert!(files.len() >= 540, "only {} corpus files", files.len());
    let (mut opened, mut failed) = (0, 0);
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let input = std::fs::read(path).unwrap();
        let whole = serve_recording(&input, input.len().max(1));
        assert_well_formed(&name, &whole.output);
        assert!(whole.done, "{name}: still running after every timer fired");
        let pieces = serve_recording(&input, 7);
        assert_eq!(
            pieces.events, whole.events,
            "{name}: events differ when read in 7-byte pieces"
        );
        assert_eq!(
            pieces.output, whole.output,
            "{name}: output differs when read in pieces"
        );
        opened += usize::from(
            whole
                .events
                .iter()
                .any(|e| matches!(e, Event::Opened { .. })),
        );
        let read = &whole.events[..whole.input_events];
        // Many of these streams are a server's side of a conversation (begins answering ours),
        // which a server engine rightly refuses once open.
        failed += usize::from(read.iter().any(|e| matches!(e, Event::Failed(_))));
    }
    println!(
        "{} streams: {opened} opened a connection, {failed} were refused with an error while being read",
        files.len()
    );
    assert!(
        opened >= 10,
        "only {opened} streams opened: the engine refuses what Proton accepts"
    );
}
