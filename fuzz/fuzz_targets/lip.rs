//! Fuzzes the LIP decoder: any bytes and bit length; a decoded short report lies on the globe,
//! and encoding it again decodes to the same place.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stationd_proto::tetra::lip::{decode, encode};

fuzz_target!(|data: &[u8]| {
    let Some((&bits, pdu)) = data.split_first() else { return };
    let mut pdu = pdu.to_vec();
    if let Some(first) = pdu.first_mut() {
        *first = 0x0A; // mostly LIP, so the fuzzer explores the fields
    }
    if let Ok(r) = decode(&pdu, bits as usize) {
        assert!((-90.0..=90.0).contains(&r.lat) && (-180.0..=180.0).contains(&r.lon), "{r:?}");
        let again = decode(&encode(r.lat, r.lon, 0, r.speed_kmh, r.heading_deg, r.reason.unwrap_or(0)), 84).unwrap();
        assert!((again.lat - r.lat).abs() < 1e-5 && (again.lon - r.lon).abs() < 1e-5, "{r:?} -> {again:?}");
    }
});
