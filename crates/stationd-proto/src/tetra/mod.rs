//! TETRA for the station's base radio, without I/O: the PEI lines a radio sends over its
//! serial port ([`pei`]), the SDS user data they carry ([`sds`]), and LIP location reports
//! ([`lip`]), and the session that drives a radio ([`session`]: init, polls, one command in
//! flight, a hung radio initialised again). The driver comes with the rest of issue #11.

pub mod lip;
pub mod pei;
pub mod sds;
pub mod session;

/// Bytes of a line of hex digits (the PEI's user data; an odd count is padded with 0), or None
/// for anything else.
pub fn from_hex(line: &str) -> Option<Vec<u8>> {
    if line.is_empty() || !line.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let padded = if line.len() % 2 == 1 {
        format!("{line}0")
    } else {
        line.to_string()
    };
    (0..padded.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&padded[i..i + 2], 16).ok())
        .collect()
}
