//! Fuzzes the TETRA PEI line decoder with arbitrary bytes in arbitrary chunks (a radio's serial
//! port): no panic, memory bounded by the line limit, every location inside the globe.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stationd_proto::tetra::pei::{Line, PeiDecoder, MAX_LINE};
use stationd_proto::tetra::sds::Sds;

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, stream)) = data.split_first() else { return };
    let chunk = (chunk as usize % 64) + 1;
    let mut d = PeiDecoder::new();
    let check = |l: Line| {
        if let Line::Sds { sds: Sds::Location(r), .. } = l {
            assert!((-90.0..=90.0).contains(&r.lat) && (-180.0..=180.0).contains(&r.lon), "{r:?}");
            assert!(r.speed_kmh.is_none_or(|v| v.is_finite() && v >= 0.0));
        }
    };
    for piece in stream.chunks(chunk) {
        d.push(piece, check);
        assert!(d.buffered() <= MAX_LINE);
    }
});
