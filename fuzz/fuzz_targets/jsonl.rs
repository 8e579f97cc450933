//! Fuzzes the `jsonl` input: arbitrary bytes, split into arbitrary chunks, through the line
//! framer and the line parser. Invariants: no panic, the framer never holds more than the line
//! limit, and every accepted line yields an event that serialises to a valid envelope.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stationd_proto::codec::jsonl::{parse_line, Frame, LineFramer};
use stationd_proto::event::ClockQuality;

const LIMIT: usize = 256; // small, so the fuzzer reaches the oversized paths quickly

fuzz_target!(|data: &[u8]| {
    // First byte chooses the chunk size, the rest is the stream.
    let Some((&chunk, stream)) = data.split_first() else { return };
    let chunk = (chunk as usize % 64) + 1;
    let mut framer = LineFramer::new(LIMIT);
    let mut check = |f: Frame<'_>| {
        if let Frame::Line(line) = f {
            assert!(line.len() <= LIMIT);
            if let Ok(ev) = parse_line(line, "fuzz0", (0, ClockQuality::Unsynced)) {
                let json = ev.to_envelope_json("st", 1);
                let v: serde_json::Value = serde_json::from_slice(&json).expect("envelope is JSON");
                assert!(v["data"].is_object());
            }
        }
    };
    for piece in stream.chunks(chunk) {
        framer.push(piece, &mut check);
        assert!(framer.buffered() <= LIMIT + 1);
    }
    framer.finish(&mut check);
});
