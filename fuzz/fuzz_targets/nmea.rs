//! Fuzzes the NMEA codec: arbitrary bytes in arbitrary chunks through framer, parser and
//! epoch assembler. Invariants: no panic; every fix has a latitude in [-90, 90] and a
//! longitude in [-180, 180].
#![no_main]

use libfuzzer_sys::fuzz_target;
use stationd_proto::codec::nmea::{parse, EpochAssembler, EpochOutcome, Frame, SentenceFramer};

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, stream)) = data.split_first() else { return };
    let chunk = (chunk as usize % 64) + 1;
    let mut framer = SentenceFramer::new();
    let mut epochs = EpochAssembler::new();
    let check = |o: Option<EpochOutcome>| {
        if let Some(EpochOutcome::Fix(f)) = o {
            assert!((-90.0..=90.0).contains(&f.lat) && (-180.0..=180.0).contains(&f.lon), "{f:?}");
        }
    };
    for piece in stream.chunks(chunk) {
        framer.push(piece, |f| {
            if let Frame::Sentence(s) = f {
                if let Ok(p) = parse(s) {
                    check(epochs.push(&p.sentence));
                }
            }
        });
    }
    check(epochs.finish());
});
