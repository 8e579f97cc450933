//! LIP, the Location Information Protocol of TETRA (ETSI TS 100 392-18-1): the short location
//! report a handheld sends in an SDS-TL message with protocol identifier 0x0A. Bits after the
//! PI (76 in all; 84 bits, 21 hex digits, with it):
//!
//! | field | bits | encoding |
//! |---|---|---|
//! | PDU type | 2 | 00 short location report |
//! | time elapsed | 2 | 0 < 5 s, 1 < 5 min, 2 < 30 min, 3 unknown |
//! | longitude | 25 | two's complement × 360/2²⁵ |
//! | latitude | 24 | two's complement × 180/2²⁴ |
//! | position error | 3 | 0 < 2 m, 1 < 20 m, 2 < 200 m, 3 < 2 km, 4 < 20 km, 5 ≤ 200 km, 6 > 200 km, 7 unknown |
//! | horizontal velocity | 7 | K ≤ 28: K km/h; above, 16 × 1.038^(K−13) km/h; 127 unknown |
//! | direction of travel | 4 | × 22.5° |
//! | type of additional data | 1 | 0: reason for sending follows |
//! | additional data | 8 | the reason (0 power on, 1 power off, 2 emergency, 3 PTT, 4 status, 12 low battery, …) |
//!
//! The signs matter (SvxLink's decoder drops them; tetra-kit inverts the velocity exponent:
//! docs/PROTOCOLS notes). The long location report (PDU type 01, with its extension PDUs) is
//! not decoded: it is reported as [`LipError::NotShortReport`].

/// Protocol identifier of LIP in SDS-TL.
pub const PROTOCOL_ID: u8 = 0x0A;

#[derive(Debug, Clone, PartialEq)]
pub struct ShortReport {
    /// 0 < 5 s, 1 < 5 min, 2 < 30 min, 3 unknown.
    pub time_elapsed: u8,
    pub lat: f64,
    pub lon: f64,
    /// Upper bound of the position error in metres; None when unknown (or "> 200 km").
    pub position_error_m: Option<u32>,
    /// None when the radio does not know.
    pub speed_kmh: Option<f64>,
    pub heading_deg: f64,
    /// The reason for sending, when the additional data carries one.
    pub reason: Option<u8>,
}

impl ShortReport {
    /// Whether the handheld sent it because its emergency button was pressed.
    pub fn is_emergency(&self) -> bool {
        self.reason == Some(REASON_EMERGENCY)
    }
}

/// Reason for sending: the emergency condition was detected.
pub const REASON_EMERGENCY: u8 = 2;

/// Words for the reason codes the daemon reports (TS 100 392-18-1 table 6.37, as SvxLink's
/// TetraLib.h lists them).
pub fn reason_name(code: u8) -> &'static str {
    match code {
        0 => "power_on",
        1 => "power_off",
        2 => "emergency",
        3 => "ptt",
        4 => "status",
        5 => "transmit_inhibit_on",
        6 => "transmit_inhibit_off",
        7 => "tmo_on",
        8 => "dmo_on",
        9 => "enter_service",
        10 => "service_loss",
        11 => "cell_reselection",
        12 => "low_battery",
        13 => "car_kit_connected",
        14 => "car_kit_disconnected",
        15 => "ask_how_to_send",
        _ => "other",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LipError {
    #[error("not a LIP PDU (protocol identifier 0x{0:02X})")]
    NotLip(u8),
    #[error("LIP PDU of {bits} bits, a short location report needs 84")]
    TooShort { bits: usize },
    #[error("LIP PDU type {0} is not a short location report (long reports are not decoded)")]
    NotShortReport(u8),
}

/// Reads bits most significant first.
struct Bits<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Bits<'_> {
    fn take(&mut self, n: usize) -> u32 {
        let mut v = 0u32;
        for _ in 0..n {
            let byte = self.bytes[self.at / 8];
            let bit = (byte >> (7 - self.at % 8)) & 1;
            v = (v << 1) | u32::from(bit);
            self.at += 1;
        }
        v
    }
}

fn signed(v: u32, bits: u32) -> i32 {
    let shift = 32 - bits;
    ((v << shift) as i32) >> shift
}

/// Decodes a LIP PDU (starting with its protocol identifier 0x0A) of `bits` bits.
pub fn decode(pdu: &[u8], bits: usize) -> Result<ShortReport, LipError> {
    let bits = bits.min(pdu.len() * 8);
    match pdu.first() {
        Some(&PROTOCOL_ID) => {}
        Some(&other) => return Err(LipError::NotLip(other)),
        None => return Err(LipError::TooShort { bits }),
    }
    let mut r = Bits { bytes: pdu, at: 8 };
    if bits < 10 {
        return Err(LipError::TooShort { bits });
    }
    let pdu_type = r.take(2) as u8;
    if pdu_type != 0 {
        return Err(LipError::NotShortReport(pdu_type));
    }
    if bits < 84 {
        return Err(LipError::TooShort { bits });
    }
    let time_elapsed = r.take(2) as u8;
    let lon = f64::from(signed(r.take(25), 25)) * 360.0 / f64::from(1u32 << 25);
    let lat = f64::from(signed(r.take(24), 24)) * 180.0 / f64::from(1u32 << 24);
    let position_error_m = match r.take(3) {
        0 => Some(2),
        1 => Some(20),
        2 => Some(200),
        3 => Some(2_000),
        4 => Some(20_000),
        5 => Some(200_000),
        _ => None,
    };
    let speed_kmh = match r.take(7) {
        127 => None,
        k if k <= 28 => Some(f64::from(k)),
        k => Some(16.0 * 1.038f64.powi(k as i32 - 13)),
    };
    let heading_deg = f64::from(r.take(4)) * 22.5;
    let reason_follows = r.take(1) == 0;
    let data = r.take(8) as u8;
    Ok(ShortReport {
        time_elapsed,
        lat,
        lon,
        position_error_m,
        speed_kmh,
        heading_deg,
        reason: reason_follows.then_some(data),
    })
}

/// Encodes a short location report (the radio's side: simulators and tests). `speed_kmh`
/// None is "unknown"; `error_code` is the 3-bit position error.
pub fn encode(
    lat: f64,
    lon: f64,
    error_code: u8,
    speed_kmh: Option<f64>,
    heading_deg: f64,
    reason: u8,
) -> Vec<u8> {
    let mut out: Vec<(u32, usize)> = vec![(u32::from(PROTOCOL_ID), 8), (0, 2), (0, 2)];
    let lon_raw = (lon * f64::from(1u32 << 25) / 360.0).round() as i64;
    let lat_raw = (lat * f64::from(1u32 << 24) / 180.0).round() as i64;
    out.push(((lon_raw & 0x1FF_FFFF) as u32, 25));
    out.push(((lat_raw & 0xFF_FFFF) as u32, 24));
    out.push((u32::from(error_code & 7), 3));
    let k = match speed_kmh {
        None => 127,
        Some(v) if v <= 28.0 => v.round().max(0.0) as u32,
        // The inverse of 16 × 1.038^(K−13), rounded, within 29..=126.
        Some(v) => (((v / 16.0).ln() / 1.038f64.ln()).round() as i64 + 13).clamp(29, 126) as u32,
    };
    out.push((k, 7));
    out.push((
        ((heading_deg.rem_euclid(360.0) / 22.5).round() as u32) % 16,
        4,
    ));
    out.push((0, 1));
    out.push((u32::from(reason), 8));
    let mut bytes = Vec::new();
    let (mut acc, mut n) = (0u64, 0usize);
    for (v, bits) in out {
        acc = (acc << bits) | u64::from(v);
        n += bits;
        while n >= 8 {
            bytes.push((acc >> (n - 8)) as u8);
            n -= 8;
            acc &= (1 << n) - 1;
        }
    }
    if n > 0 {
        bytes.push((acc << (8 - n)) as u8);
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        crate::tetra::from_hex(s).unwrap()
    }

    #[test]
    fn a_hand_encoded_report_south_and_east_above_28_kmh_in_an_emergency() {
        // Bit by bit (a script independent of `encode`): Sydney, -33.8568 / 151.2153, time
        // elapsed 1, error code 2, velocity K = 40, direction 5, reason 2; 84 bits.
        let r = decode(&hex("0A16B87E867EC8F250A020"), 84).unwrap();
        assert!((r.lat - -33.8568).abs() < 2e-5, "{}", r.lat);
        assert!((r.lon - 151.2153).abs() < 2e-5, "{}", r.lon);
        assert_eq!(r.time_elapsed, 1);
        assert_eq!(r.position_error_m, Some(200));
        let v = r.speed_kmh.unwrap();
        assert!(
            (v - 16.0 * 1.038f64.powi(27)).abs() < 1e-9 && (43.0..44.0).contains(&v),
            "{v}"
        );
        assert_eq!(r.heading_deg, 112.5);
        assert!(r.is_emergency());
        assert_eq!(reason_name(r.reason.unwrap()), "emergency");
    }

    #[test]
    fn a_hand_encoded_report_north_and_west_with_unknowns() {
        // London, 51.5007 / -0.1246, error 7 (unknown), velocity 127 (unknown), reason 0.
        let r = decode(&hex("0A0FFE951249F6AFFE0000"), 84).unwrap();
        assert!(
            (r.lat - 51.5007).abs() < 2e-5 && (r.lon - -0.1246).abs() < 2e-5,
            "{r:?}"
        );
        assert_eq!((r.position_error_m, r.speed_kmh), (None, None));
        assert_eq!(r.reason, Some(0));
    }

    #[test]
    fn encoding_and_decoding_agree_across_the_globe_and_the_speed_scale() {
        for (lat, lon) in [
            (0.0, 0.0),
            (36.66, 117.02),
            (-89.99, -179.99),
            (89.99, 179.99),
            (-0.0001, -0.0001),
        ] {
            for speed in [
                None,
                Some(0.0),
                Some(28.0),
                Some(29.5),
                Some(120.0),
                Some(300.0),
            ] {
                let r = decode(&encode(lat, lon, 1, speed, 270.0, 3), 84).unwrap();
                assert!(
                    (r.lat - lat).abs() < 1.1e-5 && (r.lon - lon).abs() < 1.1e-5,
                    "{lat},{lon}: {r:?}"
                );
                match (speed, r.speed_kmh) {
                    (None, None) => {}
                    (Some(s), Some(d)) if s <= 28.0 => assert_eq!(s, d),
                    (Some(s), Some(d)) => {
                        assert!((d / s - 1.0).abs() < 0.02 || s > 500.0, "{s} -> {d}")
                    }
                    other => panic!("{other:?}"),
                }
                assert_eq!((r.heading_deg, r.reason), (270.0, Some(3)));
            }
        }
    }

    #[test]
    fn other_pdus_and_short_ones_are_refused_not_misread() {
        assert_eq!(decode(&[0x02, 0x01], 16), Err(LipError::NotLip(0x02)));
        assert_eq!(decode(&[], 0), Err(LipError::TooShort { bits: 0 }));
        let r = encode(1.0, 1.0, 0, None, 0.0, 0);
        assert_eq!(decode(&r[..6], 48), Err(LipError::TooShort { bits: 48 }));
        assert_eq!(decode(&r, 60), Err(LipError::TooShort { bits: 60 }));
        assert_eq!(
            decode(&[0x0A, 0x40, 0, 0], 32),
            Err(LipError::NotShortReport(1))
        );
    }
}
