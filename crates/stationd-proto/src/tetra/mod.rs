//! TETRA for the station's base radio, without I/O: the PEI lines a radio sends over its
//! serial port ([`pei`]), the SDS user data they carry ([`sds`]), and LIP location reports
//! ([`lip`]), and the session that drives a radio ([`session`]: init, polls, one command in
//! flight, SDS sends, a hung radio initialised again). The daemon's `tetra` driver does the I/O.

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

/// The short subscriber identity of a TETRA address as the PEI gives it: an ISSI as it is
/// (`"1001"`, `"00001001"`), or the ISSI inside a full TSI (17 digits: MCC 4, MNC 5, ISSI 8),
/// without leading zeros; `None` for anything but digits. Config keys, events and the
/// `radio.text` command all use this form.
pub fn issi(address: &str) -> Option<String> {
    if address.is_empty() || address.len() > 24 || !address.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let short = if address.len() > 8 {
        &address[address.len() - 8..]
    } else {
        address
    };
    let trimmed = short.trim_start_matches('0');
    Some(if trimmed.is_empty() { "0" } else { trimmed }.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_issi_is_read_from_short_and_full_addresses() {
        assert_eq!(super::issi("1001").as_deref(), Some("1001"));
        assert_eq!(super::issi("00001001").as_deref(), Some("1001"));
        assert_eq!(super::issi("09011638300023404").as_deref(), Some("23404"));
        assert_eq!(super::issi("12a"), None);
        assert_eq!(super::issi(""), None);
    }
}
