//! Fuzzes the JT/T 808 codec: arbitrary bytes in arbitrary chunks through the frame decoder,
//! the reassembler and the body decoder. Invariants: no panic, bounded buffers, and every
//! frame re-encodes to bytes that decode to the same frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stationd_proto::codec::jt808::{decode_body, encode, FrameDecoder, Reassembled, Reassembler, MAX_FRAME};

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, stream)) = data.split_first() else { return };
    let chunk = (chunk as usize % 64) + 1;
    let mut decoder = FrameDecoder::new();
    let mut parts = Reassembler::default();
    for piece in stream.chunks(chunk) {
        decoder.push(piece, |f| {
            let Ok(frame) = f else { return };
            if frame.header.packet.is_none() && frame.header.phone.bytes().all(|b| b.is_ascii_digit()) {
                let wire = encode(frame.header.msg_id, frame.header.edition, &frame.header.phone, frame.header.serial, &frame.body);
                let mut again = FrameDecoder::new();
                let mut n = 0;
                again.push(&wire, |g| {
                    n += 1;
                    if frame.body.len() < 1024 {
                        assert_eq!(g.as_ref().ok().map(|g| &g.body), Some(&frame.body));
                    }
                });
                assert!(n >= 1);
            }
            let header = frame.header.clone();
            if let Reassembled::Whole(body) = parts.push(frame) {
                let _ = decode_body(&header, &body);
            }
        });
        assert!(decoder.buffered() <= MAX_FRAME);
        assert!(parts.held_bytes() <= 64 * 1024);
    }
});
