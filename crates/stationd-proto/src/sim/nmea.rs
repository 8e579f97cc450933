//! Sentences a GNSS receiver sends (NMEA 0183), with their checksums.

/// `$body*hh\r\n`.
pub fn sentence(body: &str) -> String {
    let sum = body.bytes().fold(0u8, |a, b| a ^ b);
    format!("${body}*{sum:02X}\r\n")
}

/// `ddmm.mmmm,N` / `dddmm.mmmm,E`.
pub fn coord(v: f64, lat: bool) -> String {
    let hemi = match (lat, v >= 0.0) {
        (true, true) => "N",
        (true, false) => "S",
        (false, true) => "E",
        (false, false) => "W",
    };
    let a = v.abs();
    let deg = a.trunc();
    let min = (a - deg) * 60.0;
    if lat {
        format!("{:02}{:07.4},{hemi}", deg as u32, min)
    } else {
        format!("{:03}{:07.4},{hemi}", deg as u32, min)
    }
}

/// One epoch of a multi-constellation receiver with a 3D fix: RMC, GGA, GSA and a BeiDou GSV,
/// stamped `unix_ms` (UTC, whole seconds).
pub fn fix_epoch(unix_ms: i64, lat: f64, lon: f64, speed_kn: f64, course_deg: f64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(unix_ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let hms = format!("{:02}{:02}{:02}.00", t.hour(), t.minute(), t.second());
    let date = format!("{:02}{:02}{:02}", t.day(), t.month() as u8, t.year() % 100);
    let (la, lo) = (coord(lat, true), coord(lon, false));
    let mut out = sentence(&format!(
        "GNRMC,{hms},A,{la},{lo},{speed_kn:.2},{course_deg:.1},{date},,,A"
    ));
    out += &sentence(&format!("GNGGA,{hms},{la},{lo},1,12,0.8,48.5,M,-4.2,M,,"));
    out += &sentence("GNGSA,A,3,02,07,14,15,17,20,,,,,,,1.4,0.8,1.1,1");
    out += &sentence("BDGSV,1,1,03,13,19,043,17,27,38,127,33,37,36,091,24,0");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::nmea::{parse, EpochAssembler, EpochOutcome, Frame, SentenceFramer};

    #[test]
    fn a_simulated_epoch_is_a_fix_for_the_codec() {
        let text = fix_epoch(1_795_940_102_000, 36.6650, -117.0150, 20.0, 181.5);
        let (mut framer, mut epochs, mut fixes) =
            (SentenceFramer::new(), EpochAssembler::new(), Vec::new());
        framer.push(text.as_bytes(), |f| {
            let Frame::Sentence(s) = f else {
                panic!("rejected: {f:?}")
            };
            if let Some(EpochOutcome::Fix(fix)) = epochs.push(&parse(s).unwrap().sentence) {
                fixes.push(fix);
            }
        });
        if let Some(EpochOutcome::Fix(fix)) = epochs.finish() {
            fixes.push(fix);
        }
        assert_eq!(fixes.len(), 1, "{text}");
        assert_eq!(fixes[0].utc_ms, Some(1_795_940_102_000));
        assert!((fixes[0].lon + 117.0150).abs() < 1e-4);
    }
}
