use super::*;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn frames(wire: &[u8]) -> Vec<Result<Frame, FrameError>> {
    let mut d = FrameDecoder::new();
    let mut out = Vec::new();
    d.push(wire, |f| out.push(f));
    out
}

fn one(wire: &[u8]) -> Frame {
    let mut f = frames(wire);
    assert_eq!(f.len(), 1, "{f:?}");
    f.remove(0).unwrap()
}

#[test]
fn escaping_matches_the_standard_example() {
    // Body 30 7E 08 7D 55 → 7E 30 7D 02 08 7D 01 55 7E.
    let wire = encode(
        0x0002,
        Edition::V2013,
        "013912345678",
        1,
        &[0x30, 0x7E, 0x08, 0x7D, 0x55],
    );
    let inner = &wire[1..wire.len() - 1];
    let body_on_wire = &inner[12..inner.len() - 1];
    assert_eq!(body_on_wire, [0x30, 0x7D, 0x02, 0x08, 0x7D, 0x01, 0x55]);
    let f = one(&wire);
    assert_eq!(f.body, [0x30, 0x7E, 0x08, 0x7D, 0x55]);
    assert_eq!(f.header.phone, "013912345678");
}

#[test]
fn reference_2013_platform_frames_decode_and_reencode_byte_for_byte() {
    for (wire, id, serial) in [
        ("7E80010005012345678900000A0064020000617E", 0x8001, 10),
        (
            "7E81000009012345678900000A006400313233343536687E",
            0x8100,
            10,
        ),
        ("7E81000003012345678900000A006404617E", 0x8100, 10),
    ] {
        let bytes = hex(wire);
        let f = one(&bytes);
        assert_eq!(
            (f.header.msg_id, f.header.serial, f.header.edition),
            (id, serial, Edition::V2013)
        );
        assert_eq!(f.header.phone, "012345678900");
        assert_eq!(
            encode(id, Edition::V2013, &f.header.phone, serial, &f.body),
            bytes,
            "{wire}"
        );
    }
    let f = one(&hex("7E81000009012345678900000A006400313233343536687E"));
    assert_eq!(f.body, register_response(0x0064, 0, "123456"));
    assert_eq!(
        one(&hex("7E81000003012345678900000A006404617E")).body,
        register_response(0x0064, 4, "ignored")
    );
    assert_eq!(
        one(&hex("7E80010005012345678900000A0064020000617E")).body,
        general_response(0x0064, 0x0200, 0)
    );
}

#[test]
fn terminal_general_response_2013() {
    let f = one(&hex("7E0001000501234567890004B303E8000200D37E"));
    assert_eq!(
        decode_body(&f.header, &f.body).unwrap(),
        Message::TerminalResponse {
            serial: 1000,
            msg_id: 0x0002,
            result: 0
        }
    );
}

#[test]
fn location_2019_with_the_stated_values() {
    let f = one(&hex("7e02004026010000000001391234432900000000006f0000001601dc9a0707456246007b004200032501292233440202006401040000000c417e"));
    assert_eq!(f.header.edition, Edition::V2019(1));
    assert_eq!(f.header.phone, "00000000013912344329");
    let Message::Location(l) = decode_body(&f.header, &f.body).unwrap() else {
        panic!()
    };
    assert_eq!((l.alarm, l.status), (111, 22));
    // The raw values are 31.234567 / 121.987654; status 22 = 0b10110 has bit 2 (south) set,
    // so the latitude is southern. (The sample's author states the raw values.)
    assert!(
        (l.lat + 31.234567).abs() < 1e-9 && (l.lon - 121.987654).abs() < 1e-9,
        "{l:?}"
    );
    assert_eq!((l.altitude_m, l.speed_kmh, l.direction_deg), (123, 6.6, 3));
    // 2025-01-29 22:33:44 GMT+8 = 14:33:44 UTC.
    assert_eq!(
        l.time_ms.map(crate::event::format_ts_ms).as_deref(),
        Some("2025-01-29T14:33:44.000Z")
    );
    assert_eq!((l.mileage_km, l.fuel_l), (Some(1.2), Some(10.0)));
    assert!(
        l.positioned() && l.emergency(),
        "status bit 1 and alarm bit 0 are set in 22 and 111"
    );
}

#[test]
fn reference_2019_platform_frames() {
    let f = one(&hex("7e8001400501000000000139123443290000006f020000dc7e"));
    assert_eq!(f.header.edition, Edition::V2019(1));
    assert_eq!(f.body, general_response(0x006f, 0x0200, 0));
    let f = one(&hex(
        "7e8100400d01000000000139123443290000006f006f6b2e2e6f6b2e2e6f6bd27e",
    ));
    assert_eq!(f.body, register_response(0x006f, 0, "ok..ok..ok"));
    assert_eq!(
        encode(
            0x8100,
            Edition::V2019(1),
            "00000000013912344329",
            0,
            &f.body
        ),
        hex("7e8100400d01000000000139123443290000006f006f6b2e2e6f6b2e2e6f6bd27e")
    );
}

fn location_body(lat: f64, lon: f64, alarm: u32, extra: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend(alarm.to_be_bytes());
    let mut status: u32 = 0x2; // positioned
    if lat < 0.0 {
        status |= 0x4;
    }
    if lon < 0.0 {
        status |= 0x8;
    }
    b.extend(status.to_be_bytes());
    b.extend(((lat.abs() * 1e6).round() as u32).to_be_bytes());
    b.extend(((lon.abs() * 1e6).round() as u32).to_be_bytes());
    b.extend(50u16.to_be_bytes());
    b.extend(423u16.to_be_bytes()); // 42.3 km/h
    b.extend(270u16.to_be_bytes());
    b.extend([0x26, 0x11, 0x29, 0x16, 0x15, 0x02]); // 2026-11-29 16:15:02 +08
    b.extend(extra);
    b
}

#[test]
fn location_items_signs_and_unknown_vendor_items() {
    let extra = [
        0x30, 1, 25, 0x31, 1, 11, 0xEB, 3, 1, 2, 3, 0x03, 2, 0x01, 0xA4,
    ];
    let body = location_body(-33.5, -70.25, 0, &extra);
    let l = parse_location(&body).unwrap();
    assert_eq!((l.lat, l.lon), (-33.5, -70.25));
    assert_eq!(
        (l.signal, l.satellites, l.recorder_speed_kmh),
        (Some(25), Some(11), Some(42.0))
    );
    assert_eq!(l.speed_kmh, 42.3);
    assert_eq!(
        l.time_ms.map(crate::event::format_ts_ms).as_deref(),
        Some("2026-11-29T08:15:02.000Z")
    );
    // A truncated item list ends the list, it does not fail the report.
    let l = parse_location(&location_body(1.0, 2.0, 0, &[0x30, 5, 1])).unwrap();
    assert_eq!(l.signal, None);
    assert!(parse_location(&body[..27]).is_none());
}

#[test]
fn register_2013_and_2019_with_a_gbk_plate() {
    let plate_gbk = encoding_rs::GBK.encode("鲁A12345").0.to_vec();
    let mut b2013 = vec![0x00, 0x25, 0x01, 0x00];
    b2013.extend(b"MAKER");
    b2013.extend([b'M'; 20]);
    b2013.extend(b"T000001");
    b2013.push(1);
    b2013.extend(&plate_gbk);
    let h = Header {
        msg_id: 0x0100,
        edition: Edition::V2013,
        phone: "013912345678".into(),
        serial: 1,
        packet: None,
        encryption: 0,
    };
    let Message::Register(r) = decode_body(&h, &b2013).unwrap() else {
        panic!()
    };
    assert_eq!(
        (
            r.province,
            r.city,
            r.maker.as_str(),
            r.terminal_id.as_str(),
            r.plate.as_str()
        ),
        (37, 256, "MAKER", "T000001", "鲁A12345")
    );
    let mut b2019 = vec![0x00, 0x25, 0x01, 0x00];
    b2019.extend(b"MAKER\0\0\0\0\0\0");
    b2019.extend([b'M'; 30]);
    b2019.extend(b"T000001\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0");
    b2019.push(1);
    b2019.extend(&plate_gbk);
    let h = Header {
        edition: Edition::V2019(1),
        ..h
    };
    let Message::Register(r) = decode_body(&h, &b2019).unwrap() else {
        panic!()
    };
    assert_eq!(
        (r.maker.as_str(), r.terminal_id.as_str(), r.plate.as_str()),
        ("MAKER", "T000001", "鲁A12345")
    );
}

#[test]
fn authenticate_both_editions() {
    let h = Header {
        msg_id: 0x0102,
        edition: Edition::V2013,
        phone: "1".into(),
        serial: 1,
        packet: None,
        encryption: 0,
    };
    assert_eq!(
        decode_body(&h, b"AUTH123").unwrap(),
        Message::Authenticate {
            code: "AUTH123".into()
        }
    );
    let h = Header {
        edition: Edition::V2019(1),
        ..h
    };
    let mut b = vec![7];
    b.extend(b"AUTH123");
    b.extend(b"123456789012345");
    b.extend(b"V1.0");
    assert_eq!(
        decode_body(&h, &b).unwrap(),
        Message::Authenticate {
            code: "AUTH123".into()
        }
    );
}

#[test]
fn batch_upload_of_stored_locations() {
    let a = location_body(36.1, 117.1, 0, &[]);
    let b = location_body(36.2, 117.2, 1, &[0x31, 1, 9]);
    let mut body = vec![0, 2, 1];
    for item in [&a, &b] {
        body.extend((item.len() as u16).to_be_bytes());
        body.extend(item.iter());
    }
    let h = Header {
        msg_id: 0x0704,
        edition: Edition::V2013,
        phone: "1".into(),
        serial: 1,
        packet: None,
        encryption: 0,
    };
    let Message::BatchLocation { backfill, items } = decode_body(&h, &body).unwrap() else {
        panic!()
    };
    assert!(backfill);
    assert_eq!(items.len(), 2);
    assert!(items[1].emergency() && items[1].satellites == Some(9));
    body[1] = 3; // claims 3 items
    assert!(decode_body(&h, &body).is_err());
}

#[test]
fn bad_frames_are_rejected_without_losing_sync() {
    let good = encode(0x0002, Edition::V2013, "013912345678", 7, &[]);
    let mut bad_check = good.clone();
    let n = bad_check.len();
    bad_check[n - 2] ^= 0xFF;
    let mut stream = b"garbage before".to_vec();
    stream.extend(&bad_check);
    stream.extend([0x7E, 0x7D, 0x03, 0x7E]); // bad escape
    stream.extend(&good);
    let got = frames(&stream);
    let kinds: Vec<String> = got
        .iter()
        .map(|f| match f {
            Ok(f) => format!("ok {}", f.header.serial),
            Err(e) => format!("{e:?}"),
        })
        .collect();
    assert_eq!(kinds, ["BadCheckCode", "BadEscape", "ok 7"]);
}

#[test]
fn body_length_must_match() {
    // Hand-built: header says 2 bytes of body, 3 follow; check code correct.
    let mut content = vec![
        0x02, 0x00, 0x00, 0x02, 0x01, 0x39, 0x12, 0x34, 0x56, 0x78, 0x00, 0x01, 0xAA, 0xBB, 0xCC,
    ];
    let check = content.iter().fold(0u8, |a, b| a ^ b);
    content.push(check);
    let mut wire = vec![0x7E];
    wire.extend(&content);
    wire.push(0x7E);
    assert_eq!(frames(&wire), vec![Err(FrameError::LengthMismatch)]);
}

#[test]
fn an_endless_frame_is_discarded_as_it_streams() {
    let mut d = FrameDecoder::new();
    let mut out = Vec::new();
    d.push(&[0x7E], |f| out.push(f));
    for _ in 0..100 {
        d.push(&[0x11; 1000], |f| out.push(f));
        assert!(d.buffered() <= MAX_FRAME);
    }
    d.push(&[0x7E], |f| out.push(f));
    d.push(&encode(0x0002, Edition::V2013, "1", 1, &[]), |f| {
        out.push(f)
    });
    assert_eq!(out.len(), 2);
    assert_eq!(out[0], Err(FrameError::TooLong));
    assert!(out[1].is_ok());
}

#[test]
fn sub_packages_are_reassembled_within_bounds() {
    let mk = |serial: u16, total: u16, number: u16, body: &[u8]| Frame {
        header: Header {
            msg_id: 0x0704,
            edition: Edition::V2013,
            phone: "1".into(),
            serial,
            packet: Some((total, number)),
            encryption: 0,
        },
        body: body.to_vec(),
    };
    let mut r = Reassembler::default();
    assert_eq!(r.push(mk(11, 3, 2, b"BB")), Reassembled::Pending);
    assert_eq!(r.push(mk(10, 3, 1, b"AA")), Reassembled::Pending);
    assert_eq!(
        r.push(mk(12, 3, 3, b"C")),
        Reassembled::Whole(b"AABBC".to_vec())
    );
    assert_eq!(r.held_bytes(), 0);
    assert_eq!(
        r.push(mk(1, 2, 3, b"x")),
        Reassembled::Dropped("packet number out of range")
    );
    // Many incomplete messages: memory stays bounded.
    for i in 0..1000u16 {
        r.push(mk(i * 10, 2, 1, &[0u8; 1000]));
        assert!(r.held_bytes() <= 64 * 1024);
    }
}

#[test]
fn text_message_gbk() {
    let b = text_message(Edition::V2013, 0x0C, "请到万达广场");
    assert_eq!(b[0], 0x0C);
    assert_eq!(gbk(&b[1..]), "请到万达广场");
    assert_eq!(text_message(Edition::V2019(1), 0x0C, "x"), [0x0C, 1, b'x']);
}

#[test]
fn driver_card_inserted_read_and_removed() {
    let h = Header {
        msg_id: 0x0702,
        edition: Edition::V2013,
        phone: "1".into(),
        serial: 1,
        packet: None,
        encryption: 0,
    };
    // 2026-12-02 08:30:00 at GMT+8 is 00:30 UTC.
    let at = 1_796_171_400_000;
    let body = crate::sim::jt808::driver_card(Some("440301198001"), "张三", at);
    let Message::DriverCard(c) = decode_body(&h, &body).unwrap() else {
        panic!("not a driver card");
    };
    assert!(c.inserted);
    assert_eq!(c.read_result_name(), "ok");
    assert_eq!(c.name, "张三");
    assert_eq!(c.certificate, "440301198001");
    assert_eq!(c.issuer, "济南市交通运输局");
    assert_eq!(c.valid_until.as_deref(), Some("20300630"));
    // 2026-12-02 08:30:00 at GMT+8 is 00:30 UTC.
    assert_eq!(c.time_ms, Some(1_796_171_400_000));
    // Removed: status and time only.
    let Message::DriverCard(c) = decode_body(
        &h,
        &body[..7]
            .iter()
            .copied()
            .enumerate()
            .map(|(i, b)| if i == 0 { 2 } else { b })
            .collect::<Vec<_>>(),
    )
    .unwrap() else {
        panic!("not a driver card");
    };
    assert!(!c.inserted && c.read_result.is_none() && c.certificate.is_empty());
    // Inserted but unreadable: the result, nothing more.
    let mut locked = body[..7].to_vec();
    locked.push(2);
    let Message::DriverCard(c) = decode_body(&h, &locked).unwrap() else {
        panic!("not a driver card");
    };
    assert_eq!(c.read_result_name(), "card_locked");
    // A body cut inside the certificate, and an unknown status, are errors, not panics.
    assert!(decode_body(&h, &body[..20]).is_err());
    let mut odd = body.clone();
    odd[0] = 7;
    assert!(decode_body(&h, &odd)
        .unwrap_err()
        .to_string()
        .contains("neither 1"));
}
