//! Fuzzes the snapshot check with arbitrary bytes: no panic, no read past the input, and a
//! size only for what starts like a JPEG.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stationd_proto::camera::jpeg::{dimensions, is_jpeg};

fuzz_target!(|data: &[u8]| {
    if dimensions(data).is_some() {
        assert!(is_jpeg(data));
    }
});
