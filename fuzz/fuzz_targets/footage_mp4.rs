//! Fuzzes the MP4 header reader with arbitrary bytes as a `moov` payload and as a box header:
//! no panic, no overflow, and a creation time only after 1970.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stationd_proto::footage::mp4::{box_header, created_ms};

fuzz_target!(|data: &[u8]| {
    if let Some(ms) = created_ms(data) {
        assert!(ms > 0);
    }
    if let Some(h) = box_header(data) {
        assert!(h.header_len == 8 || h.header_len == 16);
    }
});
