//! Message bodies a JT/T 808 terminal sends (JT/T 808-2013 and -2019), to be framed with
//! [`crate::codec::jt808::encode`].

use crate::codec::jt808::Edition;

/// Terminal registration (0x0100).
#[derive(Debug, Clone)]
pub struct Registration<'a> {
    pub province: u16,
    pub city: u16,
    pub maker: &'a [u8],
    pub model: &'a [u8],
    pub terminal_id: &'a [u8],
    /// 0 = no plate (VIN follows), 1 blue, 2 yellow, …
    pub plate_colour: u8,
    /// The plate, GBK-encoded on the wire (`鲁A12345`).
    pub plate: &'a str,
}

impl Default for Registration<'_> {
    /// Shandong (37), Jinan (0100), a simulated terminal with plate `A`.
    fn default() -> Self {
        Registration {
            province: 37,
            city: 0x0100,
            maker: b"MAKER",
            model: b"",
            terminal_id: b"T000001",
            plate_colour: 1,
            plate: "A",
        }
    }
}

impl Registration<'_> {
    /// The body, with the edition's field widths (2013: maker 5, model 20, id 7 bytes; 2019:
    /// 11, 30, 30), zero-padded.
    pub fn body(&self, edition: Edition) -> Vec<u8> {
        let (maker, model, id) = match edition {
            Edition::V2013 => (5, 20, 7),
            Edition::V2019(_) => (11, 30, 30),
        };
        let mut b = Vec::with_capacity(64);
        b.extend(self.province.to_be_bytes());
        b.extend(self.city.to_be_bytes());
        b.extend(padded(self.maker, maker));
        b.extend(padded(self.model, model));
        b.extend(padded(self.terminal_id, id));
        b.push(self.plate_colour);
        b.extend(encoding_rs::GBK.encode(self.plate).0.iter());
        b
    }
}

fn padded(bytes: &[u8], len: usize) -> Vec<u8> {
    let mut v = bytes[..bytes.len().min(len)].to_vec();
    v.resize(len, 0);
    v
}

/// Authentication (0x0102) with the code the platform issued; the 2019 edition adds the
/// code's length, an IMEI and a software version.
pub fn authentication(edition: Edition, code: &[u8]) -> Vec<u8> {
    match edition {
        Edition::V2013 => code.to_vec(),
        Edition::V2019(_) => {
            let mut b = vec![code.len() as u8];
            b.extend(code);
            b.extend(b"860000000000001");
            b.extend(padded(b"V1.0", 20));
            b
        }
    }
}

/// A location report (0x0200 body; also one item of a 0x0704 batch).
#[derive(Debug, Clone, PartialEq)]
pub struct Location {
    /// Alarm word: bit 0 emergency (SOS), …
    pub alarm: u32,
    /// Status word: bit 0 ACC on, bit 1 positioned, bit 2 south, bit 3 west.
    pub status: u32,
    pub lat: f64,
    pub lon: f64,
    pub altitude_m: u16,
    pub speed_kmh: f64,
    pub course_deg: u16,
    /// The terminal's clock, in its own form: `YYMMDDhhmmss` of Beijing time (GMT+8) in BCD.
    pub time_bcd: [u8; 6],
    /// Additional items, already encoded (id, length, value …).
    pub extra: Vec<u8>,
}

impl Default for Location {
    /// Positioned, north-east, at rest, 2026-11-29 16:15:02 Beijing time, no extra items.
    fn default() -> Self {
        Location {
            alarm: 0,
            status: 0x2,
            lat: 36.66,
            lon: 117.02,
            altitude_m: 45,
            speed_kmh: 0.0,
            course_deg: 90,
            time_bcd: [0x26, 0x11, 0x29, 0x16, 0x15, 0x02],
            extra: Vec::new(),
        }
    }
}

impl Location {
    pub fn body(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(28 + self.extra.len());
        b.extend(self.alarm.to_be_bytes());
        b.extend(self.status.to_be_bytes());
        b.extend(((self.lat.abs() * 1e6).round() as u32).to_be_bytes());
        b.extend(((self.lon.abs() * 1e6).round() as u32).to_be_bytes());
        b.extend(self.altitude_m.to_be_bytes());
        b.extend(((self.speed_kmh * 10.0).round() as u16).to_be_bytes());
        b.extend(self.course_deg.to_be_bytes());
        b.extend(self.time_bcd);
        b.extend(&self.extra);
        b
    }
}

/// A batch of stored locations (0x0704 body): `kind` 0 = normal back-fill, 1 = blind-area
/// back-fill, each item as [`Location::body`].
pub fn batch(kind: u8, items: &[Vec<u8>]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend((items.len() as u16).to_be_bytes());
    b.push(kind);
    for item in items {
        b.extend((item.len() as u16).to_be_bytes());
        b.extend(item);
    }
    b
}

/// An event report (0x0301 body, JT/T 808-2013): the driver pressed preset event `event_id`.
pub fn event_report(event_id: u8) -> Vec<u8> {
    vec![event_id]
}

/// A driver's IC card (0x0702 body): inserted and read (`Some(certificate)`, with the name in
/// GBK), or removed (`None`), at `unix_ms` on the terminal's clock.
pub fn driver_card(certificate: Option<&str>, name: &str, unix_ms: i64) -> Vec<u8> {
    let mut b = vec![if certificate.is_some() { 0x01 } else { 0x02 }];
    b.extend(bcd_time(unix_ms));
    let Some(certificate) = certificate else {
        return b;
    };
    b.push(0x00);
    let (name, _, _) = encoding_rs::GBK.encode(name);
    b.push(name.len() as u8);
    b.extend(name.iter());
    let mut cert = certificate.as_bytes().to_vec();
    cert.resize(20, 0);
    b.extend(cert);
    let issuer = "济南市交通运输局";
    let (issuer, _, _) = encoding_rs::GBK.encode(issuer);
    b.push(issuer.len() as u8);
    b.extend(issuer.iter());
    b.extend([0x20, 0x30, 0x06, 0x30]);
    b
}

/// A terminal's clock reading for `unix_ms`: Beijing time (GMT+8) as BCD `YYMMDDhhmmss`.
pub fn bcd_time(unix_ms: i64) -> [u8; 6] {
    let t = time::OffsetDateTime::from_unix_timestamp(unix_ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .to_offset(time::macros::offset!(+8));
    let bcd = |v: u8| ((v / 10) << 4) | (v % 10);
    [
        bcd((t.year() % 100) as u8),
        bcd(t.month() as u8),
        bcd(t.day()),
        bcd(t.hour()),
        bcd(t.minute()),
        bcd(t.second()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::jt808::{decode_body, encode, FrameDecoder, Message};

    fn decoded(msg_id: u16, edition: Edition, body: &[u8]) -> Message {
        let mut out = None;
        FrameDecoder::new().push(&encode(msg_id, edition, "013912345678", 1, body), |f| {
            let f = f.unwrap();
            out = Some(decode_body(&f.header, &f.body).unwrap());
        });
        out.unwrap()
    }

    #[test]
    fn what_the_simulator_sends_the_codec_reads_back() {
        for edition in [Edition::V2013, Edition::V2019(1)] {
            let reg = Registration {
                plate: "鲁A12345",
                ..Default::default()
            };
            let Message::Register(r) = decoded(0x0100, edition, &reg.body(edition)) else {
                panic!("not a registration")
            };
            assert_eq!((r.plate.as_str(), r.maker.as_str()), ("鲁A12345", "MAKER"));
            let Message::Authenticate { code } =
                decoded(0x0102, edition, &authentication(edition, b"c0de"))
            else {
                panic!("not an authentication")
            };
            assert_eq!(code, "c0de");
        }
        let l = Location {
            lat: 36.661234,
            time_bcd: bcd_time(1_795_940_102_000),
            ..Default::default()
        };
        let Message::Location(got) = decoded(0x0200, Edition::V2013, &l.body()) else {
            panic!("not a location")
        };
        assert_eq!(got.time_ms, Some(1_795_940_102_000));
        assert!((got.lat - 36.661234).abs() < 1e-6);
        let Message::BatchLocation { items, .. } =
            decoded(0x0704, Edition::V2013, &batch(1, &[l.body(), l.body()]))
        else {
            panic!("not a batch")
        };
        assert_eq!(items.len(), 2);
    }
}
