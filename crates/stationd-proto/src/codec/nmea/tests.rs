use super::*;

fn frames(input: &[u8]) -> Vec<Result<String, Reject>> {
    let mut f = SentenceFramer::new();
    let mut out = Vec::new();
    f.push(input, |fr| {
        out.push(match fr {
            Frame::Sentence(s) => Ok(s.to_string()),
            Frame::Rejected(r) => Err(r),
        })
    });
    out
}

#[test]
fn checksums_are_verified_and_noise_is_skipped() {
    let got = frames(
        b"\x00\xff garbage $GPGGA,030719.000,3747.0873,S,17518.8938,E,1,08,1.1,59.9,M,23.7,M,,0000*7D\r\n\
          $GPGGA,030719.000,3747.0873,S,17518.8938,E,1,08,1.1,59.9,M,23.7,M,,0000*7E\r\n\
          $POLYN,TIME,RESTART_OCCURRED\r\n\
          $GPRMC,03\x01\x02*00\n\
          $GPGSA,A,3,17,28,06,01,30,20,26,13,,,,,1.8,1.1,1.5*33\n",
    );
    assert_eq!(
        got,
        vec![
            Ok(
                "GPGGA,030719.000,3747.0873,S,17518.8938,E,1,08,1.1,59.9,M,23.7,M,,0000"
                    .to_string()
            ),
            Err(Reject::BadChecksum),
            Err(Reject::NoChecksum),
            Err(Reject::Garbage),
            Ok("GPGSA,A,3,17,28,06,01,30,20,26,13,,,,,1.8,1.1,1.5".to_string()),
        ]
    );
}

#[test]
fn a_truncated_sentence_is_rejected_and_the_next_one_recovers() {
    let got = frames(
        b"$GPRMC,030719.000,A,3747.08$GPGSA,A,3,17,28,06,01,30,20,26,13,,,,,1.8,1.1,1.5*33\r\n",
    );
    assert_eq!(got.len(), 2);
    assert!(got[0].is_err());
    assert!(got[1].is_ok());
}

#[test]
fn an_endless_line_is_capped() {
    let mut input = b"$GPGSV,".to_vec();
    input.extend(std::iter::repeat_n(b'1', 10_000));
    input.extend(b"\r\n$GPGSA,A,3,17,28,06,01,30,20,26,13,,,,,1.8,1.1,1.5*33\r\n");
    let mut f = SentenceFramer::new();
    let mut out = Vec::new();
    f.push(&input, |fr| out.push(format!("{fr:?}")));
    assert!(
        f.buf.capacity() <= 4 * MAX_SENTENCE,
        "the framer must not grow with the line"
    );
    assert_eq!(out.len(), 2);
    assert!(out[0].contains("TooLong"));
}

#[test]
fn rmc_fields() {
    let p =
        parse("GNRMC,055234.000,A,4739.71890,N,12219.58362,W,0.00,286.35,050826,,,A,V").unwrap();
    assert_eq!(p.talker, "GN");
    let Sentence::Rmc(r) = p.sentence else {
        panic!()
    };
    assert!(r.valid);
    assert_eq!(r.time, Some(((5 * 60 + 52) * 60 + 34) * 1000));
    assert!((r.lat.unwrap() - 47.661981667).abs() < 1e-8);
    assert!((r.lon.unwrap() + 122.326393667).abs() < 1e-8);
    assert_eq!(r.date, Some((2026, 8, 5)));
    assert_eq!(r.course_deg, Some(286.35));
}

#[test]
fn beidou_talkers_and_short_gsv() {
    let p = parse("GBGSV,2,2,05,209,07,033").unwrap();
    assert_eq!(p.talker, "GB");
    assert_eq!(
        p.sentence,
        Sentence::Gsv(Gsv {
            total: 2,
            number: 2,
            in_view: 5
        })
    );
    assert_eq!(
        parse("BDGSV,1,1,03,13,19,043,17,27,38,127,33,37,36,091,24,0")
            .unwrap()
            .talker,
        "BD"
    );
}

#[test]
fn vtg_old_and_new_layouts() {
    let new = parse("GNVTG,286.35,T,,M,0.50,N,0.93,K,A").unwrap().sentence;
    assert_eq!(
        new,
        Sentence::Vtg(Vtg {
            course_deg: Some(286.35),
            speed_kmh: Some(0.93)
        })
    );
    let old = parse("GPVTG,054.7,034.4,005.5,010.2").unwrap().sentence;
    assert_eq!(
        old,
        Sentence::Vtg(Vtg {
            course_deg: Some(54.7),
            speed_kmh: Some(10.2)
        })
    );
}

#[test]
fn malformed_fields_are_errors_not_panics() {
    for bad in [
        "GPRMC,99x000,A,4739.71890,N,12219.58362,W,0.00,286.35,050826",
        "GPRMC,055234.000,A,4799.71890,N,12219.58362,W,0.00,286.35,050826",
        "GPRMC,055234.000,A,4739.71890,Q,12219.58362,W,0.00,286.35,050826",
        "GPGGA,055234.000,4739.7,N,12219.5,W,1,14,x,76.5",
        "GPRMC,055234",
        "gprmc,1",
    ] {
        assert!(parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn no_fix_epochs_and_a_bogus_power_up_position_give_no_position() {
    let mut a = EpochAssembler::new();
    let mut outs = Vec::new();
    for s in [
        "GPGGA,235946.005,8960.000000,N,00000.000000,E,0,0,,137.000,M,13.000,M,,",
        "GPRMC,235946.005,V,8960.000000,N,00000.000000,E,0.000,0.00,050180,,,N",
    ] {
        // 8960.000000 is not a valid latitude: a parse error, so nothing reaches the assembler.
        if let Ok(p) = parse(s) {
            outs.extend(a.push(&p.sentence));
        }
    }
    outs.extend(a.finish());
    assert!(outs.iter().all(|o| *o == EpochOutcome::NoFix), "{outs:?}");
}

/// The captures are the repository's tests/data (shared with the integration tests).
/// Replays a capture through framer, parser and assembler.
fn replay(name: &str) -> (Vec<Fix>, usize, usize, usize) {
    let bytes = std::fs::read(format!(
        "{}/../../tests/data/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let text: Vec<u8> = bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.starts_with(b"#"))
        .flat_map(|l| l.iter().copied().chain([b'\n']))
        .collect();
    let mut framer = SentenceFramer::new();
    let mut asm = EpochAssembler::new();
    let (mut fixes, mut nofix, mut rejected, mut malformed) = (Vec::new(), 0, 0, 0);
    let mut sentences = Vec::new();
    // Fed in odd-sized chunks, as a serial port delivers them.
    for chunk in text.chunks(37) {
        framer.push(chunk, |f| match f {
            Frame::Sentence(s) => sentences.push(s.to_string()),
            Frame::Rejected(_) => rejected += 1,
        });
    }
    for s in sentences {
        match parse(&s) {
            Ok(p) => match asm.push(&p.sentence) {
                Some(EpochOutcome::Fix(f)) => fixes.push(f),
                Some(EpochOutcome::NoFix) => nofix += 1,
                None => {}
            },
            Err(_) => malformed += 1,
        }
    }
    match asm.finish() {
        Some(EpochOutcome::Fix(f)) => fixes.push(f),
        Some(EpochOutcome::NoFix) => nofix += 1,
        None => {}
    }
    (fixes, nofix, rejected, malformed)
}

/// gpsd's decoded positions (TPV with mode 2 or 3) from its expected-output file.
fn gpsd_positions(name: &str) -> Vec<(f64, f64)> {
    let text = std::fs::read_to_string(format!(
        "{}/../../tests/data/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["class"] == "TPV" && v["mode"].as_u64().unwrap_or(0) >= 2)
        .filter_map(|v| Some((v["lat"].as_f64()?, v["lon"].as_f64()?)))
        .collect()
}

fn assert_agrees_with_gpsd(fixes: &[Fix], chk: &str) {
    let reference = gpsd_positions(chk);
    assert!(!reference.is_empty());
    for f in fixes {
        assert!(
            reference
                .iter()
                .any(|(lat, lon)| (lat - f.lat).abs() < 1e-6 && (lon - f.lon).abs() < 1e-6),
            "{:?} is not a position gpsd decoded from {chk}",
            (f.lat, f.lon)
        );
    }
}

#[test]
fn replay_bu353s4_southern_hemisphere() {
    let (fixes, nofix, rejected, malformed) = replay("gpsd-bu353s4.log");
    assert_eq!((rejected, malformed, nofix), (0, 0, 0));
    assert!(fixes.len() >= 15, "{}", fixes.len());
    let first = &fixes[0];
    assert!((first.lat + 37.784788333).abs() < 1e-8 && (first.lon - 175.314896667).abs() < 1e-8);
    assert_eq!(first.altitude_m, Some(59.9));
    assert_eq!(
        (first.quality, first.satellites, first.hdop, first.fix_type),
        (1, Some(8), Some(1.1), Some(3))
    );
    assert_eq!(
        first.utc_ms.map(crate::event::format_ts_ms).as_deref(),
        Some("2014-12-31T03:07:19.000Z")
    );
    assert!((first.speed_kmh.unwrap() - 0.69 * 1.852).abs() < 1e-9);
    assert_agrees_with_gpsd(&fixes, "gpsd-bu353s4.log.chk");
}

#[test]
fn replay_beidou_gb_starts_without_a_fix() {
    let (fixes, nofix, rejected, malformed) = replay("gpsd-beidou-gb.log");
    assert_eq!((rejected, malformed), (0, 0));
    assert!(nofix >= 1, "the capture starts before the first fix");
    assert!(!fixes.is_empty());
    assert!(
        (fixes[0].lat - 31.248).abs() < 0.01 && (fixes[0].lon - 121.587).abs() < 0.01,
        "Shanghai: {:?}",
        fixes[0]
    );
    assert_agrees_with_gpsd(&fixes, "gpsd-beidou-gb.log.chk");
}

#[test]
fn replay_mtk_3301_power_up_to_first_fix() {
    let (fixes, nofix, rejected, _malformed) = replay("gpsd-mtk-3301.log");
    assert_eq!(rejected, 3, "the three $POLYN lines carry no checksum");
    assert!(nofix >= 2, "invalid RMCs before the fix");
    let first = fixes.first().expect("a fix");
    // The first RMC with status A (3 satellites, 2D) in the capture.
    assert_eq!(
        first.utc_ms.map(crate::event::format_ts_ms).as_deref(),
        Some("2008-08-23T08:14:36.000Z")
    );
    assert!(
        (first.lat - (52.0 + 12.982135 / 60.0)).abs() < 1e-9
            && (first.lon - (6.0 + 53.101394 / 60.0)).abs() < 1e-9,
        "{first:?}"
    );
    assert_eq!((first.quality, first.satellites), (1, Some(3)));
    assert_agrees_with_gpsd(&fixes, "gpsd-mtk-3301.log.chk");
}

#[test]
fn replay_quectel_l76k_beidou_multi_constellation() {
    let (fixes, _nofix, rejected, malformed) = replay("gpsd-quectel-l76k-nmea.log");
    assert_eq!((rejected, malformed), (0, 0));
    assert!(
        (140..=160).contains(&fixes.len()),
        "one fix per epoch: {}",
        fixes.len()
    );
    let first = &fixes[0];
    assert_eq!(
        first.utc_ms.map(crate::event::format_ts_ms).as_deref(),
        Some("2026-08-05T05:52:34.000Z")
    );
    assert!((first.lat - 47.661981667).abs() < 1e-8 && (first.lon + 122.326393667).abs() < 1e-8);
    assert_eq!(
        (first.satellites, first.altitude_m, first.fix_type),
        (Some(14), Some(76.5), Some(3))
    );
}
