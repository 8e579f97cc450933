//! JT/T 808 (2013 and 2019 editions), the protocol of Chinese vehicle terminals, sans I/O.
//!
//! - [`FrameDecoder`]: bytes → frames. `0x7E` delimits; `7D 02`/`7D 01` are unescaped; the
//!   XOR check code is verified; the header's body length must match the body. A bad frame is
//!   reported and skipped without losing sync (the next `0x7E` starts over); a frame longer
//!   than [`MAX_FRAME`] is discarded as it streams in.
//! - [`Header`] / [`Message`]: the header (message id, body properties with the sub-package
//!   bit and the 2019 version flag, BCD phone of 6 or 10 bytes, serial, packet item) and the
//!   bodies stationd handles: 0x0001, 0x0002, 0x0003, 0x0100, 0x0102, 0x0200 (with its
//!   additional items), 0x0704. Anything else is `Other`, answered with "unsupported".
//! - [`Reassembler`]: sub-packaged messages, with a bound on what it holds.
//! - [`encode`] and the platform messages 0x8001, 0x8100, 0x8300.
//!
//! Sources: PROTOCOLS.md §1 (the standard's tables as quoted by several implementations).

use std::collections::HashMap;

/// Largest frame accepted on the wire, escaped, delimiters excluded. A body is at most 1023
/// bytes and the 2019 header 21, so an unescaped frame is at most ~1050 bytes; escaping can
/// double it.
pub const MAX_FRAME: usize = 2 * 1024 + 128;

/// Which edition a terminal speaks (replies copy it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edition {
    V2013,
    /// 2019, with the protocol version byte.
    V2019(u8),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub msg_id: u16,
    pub edition: Edition,
    /// Digits of the BCD phone number (12 in 2013, 20 in 2019); hex if not BCD.
    pub phone: String,
    pub serial: u16,
    /// (total, number from 1) when the message is sub-packaged.
    pub packet: Option<(u16, u16)>,
    /// Encryption bits (10-12) of the body properties; 0 = plain.
    pub encryption: u8,
}

/// A verified, unescaped frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub header: Header,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("check code mismatch")]
    BadCheckCode,
    #[error("frame longer than {MAX_FRAME} bytes")]
    TooLong,
    #[error("bad escape sequence")]
    BadEscape,
    #[error("header too short or malformed")]
    BadHeader,
    #[error("body length in the header does not match the frame")]
    LengthMismatch,
}

/// Splits a TCP byte stream into frames.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    in_frame: bool,
    too_long: bool,
}

impl FrameDecoder {
    pub fn new() -> FrameDecoder {
        FrameDecoder::default()
    }

    /// Bytes held for an incomplete frame (never more than [`MAX_FRAME`]).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    pub fn push(&mut self, input: &[u8], mut on_frame: impl FnMut(Result<Frame, FrameError>)) {
        for &b in input {
            if b == 0x7E {
                if self.in_frame && (self.too_long || !self.buf.is_empty()) {
                    if self.too_long {
                        on_frame(Err(FrameError::TooLong));
                    } else {
                        on_frame(decode_frame(&self.buf));
                    }
                    self.buf.clear();
                    self.too_long = false;
                    // `7E` closes this frame; the next byte after it may start the next one
                    // (some terminals share delimiters), so stay "in frame" with an empty buffer.
                }
                self.in_frame = true;
            } else if self.in_frame {
                if self.buf.len() >= MAX_FRAME {
                    self.too_long = true;
                    self.buf.clear();
                } else if !self.too_long {
                    self.buf.push(b);
                }
            }
            // Bytes before the first 7E are noise.
        }
    }
}

fn unescape(raw: &[u8]) -> Result<Vec<u8>, FrameError> {
    let mut out = Vec::with_capacity(raw.len());
    let mut it = raw.iter();
    while let Some(&b) = it.next() {
        if b == 0x7D {
            match it.next() {
                Some(0x01) => out.push(0x7D),
                Some(0x02) => out.push(0x7E),
                _ => return Err(FrameError::BadEscape),
            }
        } else {
            out.push(b);
        }
    }
    Ok(out)
}

fn decode_frame(raw: &[u8]) -> Result<Frame, FrameError> {
    let data = unescape(raw)?;
    let (&check, content) = data.split_last().ok_or(FrameError::BadHeader)?;
    if content.iter().fold(0u8, |a, b| a ^ b) != check {
        return Err(FrameError::BadCheckCode);
    }
    let (header, header_len, body_len) = parse_header(content)?;
    if content.len() != header_len + body_len {
        return Err(FrameError::LengthMismatch);
    }
    Ok(Frame {
        header,
        body: content[header_len..].to_vec(),
    })
}

fn bcd_or_hex(bytes: &[u8]) -> String {
    let is_bcd = bytes.iter().all(|b| b >> 4 < 10 && b & 0x0F < 10);
    bytes
        .iter()
        .map(|b| {
            if is_bcd {
                format!("{}{}", b >> 4, b & 0x0F)
            } else {
                format!("{b:02x}")
            }
        })
        .collect()
}

fn parse_header(c: &[u8]) -> Result<(Header, usize, usize), FrameError> {
    let word = |i: usize| -> Result<u16, FrameError> {
        Ok(u16::from_be_bytes([
            *c.get(i).ok_or(FrameError::BadHeader)?,
            *c.get(i + 1).ok_or(FrameError::BadHeader)?,
        ]))
    };
    let msg_id = word(0)?;
    let props = word(2)?;
    let body_len = (props & 0x03FF) as usize;
    let encryption = ((props >> 10) & 0x07) as u8;
    let sub = props & 0x2000 != 0;
    let v2019 = props & 0x4000 != 0;
    let (edition, phone_at, phone_len) = if v2019 {
        (
            Edition::V2019(*c.get(4).ok_or(FrameError::BadHeader)?),
            5,
            10,
        )
    } else {
        (Edition::V2013, 4, 6)
    };
    let phone = c
        .get(phone_at..phone_at + phone_len)
        .ok_or(FrameError::BadHeader)?;
    let serial = word(phone_at + phone_len)?;
    let mut len = phone_at + phone_len + 2;
    let packet = if sub {
        let p = (word(len)?, word(len + 2)?);
        len += 4;
        Some(p)
    } else {
        None
    };
    Ok((
        Header {
            msg_id,
            edition,
            phone: bcd_or_hex(phone),
            serial,
            packet,
            encryption,
        },
        len,
        body_len,
    ))
}

/// Reads big-endian fields from a body, failing cleanly when it is short.
struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("message 0x{msg_id:04X}: {why}")]
pub struct BodyError {
    pub msg_id: u16,
    pub why: &'static str,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.at..self.at + n)?;
        self.at += n;
        Some(s)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|s| s[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|s| u16::from_be_bytes([s[0], s[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn rest(&mut self) -> &'a [u8] {
        let s = &self.b[self.at.min(self.b.len())..];
        self.at = self.b.len();
        s
    }
}

/// GBK text, with NUL padding removed.
pub fn gbk(bytes: &[u8]) -> String {
    let trimmed: &[u8] = match bytes.iter().rposition(|&b| b != 0) {
        Some(i) => &bytes[..=i],
        None => &[],
    };
    let (text, _, _) = encoding_rs::GBK.decode(trimmed);
    text.trim_matches(char::from(0)).trim().to_string()
}

/// A location report (0x0200 body, also the items of 0x0704).
#[derive(Debug, Clone, PartialEq)]
pub struct Location {
    pub alarm: u32,
    pub status: u32,
    pub lat: f64,
    pub lon: f64,
    pub altitude_m: i32,
    pub speed_kmh: f64,
    pub direction_deg: u16,
    /// UTC, ms since the epoch (the terminal's BCD time is GMT+8); None when not a valid time.
    pub time_ms: Option<i64>,
    pub mileage_km: Option<f64>,
    pub fuel_l: Option<f64>,
    pub recorder_speed_kmh: Option<f64>,
    /// CSQ 0-31 (item 0x30).
    pub signal: Option<u8>,
    /// GNSS satellites (item 0x31).
    pub satellites: Option<u8>,
}

impl Location {
    /// Status bit 1: the position is valid.
    pub fn positioned(&self) -> bool {
        self.status & 0x2 != 0
    }
    /// Alarm bit 0.
    pub fn emergency(&self) -> bool {
        self.alarm & 1 != 0
    }
}

/// Names of the alarm bits (2013 edition; bits that 2019 and vendors reuse keep these names
/// and the raw bit number is always reported too).
pub const ALARM_BITS: [&str; 32] = [
    "emergency",
    "overspeed",
    "fatigue",
    "danger",
    "gnss_fault",
    "gnss_antenna_cut",
    "gnss_antenna_short",
    "power_undervoltage",
    "power_off",
    "lcd_fault",
    "tts_fault",
    "camera_fault",
    "ic_card_fault",
    "overspeed_warning",
    "fatigue_warning",
    "bit15",
    "bit16",
    "bit17",
    "driving_overtime",
    "parking_overtime",
    "area",
    "route",
    "segment_time",
    "route_deviation",
    "vss_fault",
    "fuel_abnormal",
    "stolen",
    "illegal_ignition",
    "illegal_displacement",
    "collision",
    "rollover",
    "illegal_door",
];

/// BCD `YYMMDDhhmmss` in GMT+8 → UTC ms.
fn bcd_time(b: &[u8]) -> Option<i64> {
    let d: Vec<u8> = b.iter().map(|x| (x >> 4) * 10 + (x & 0x0F)).collect();
    if b.iter().any(|x| x >> 4 > 9 || x & 0x0F > 9) {
        return None;
    }
    let date =
        time::Date::from_calendar_date(2000 + d[0] as i32, time::Month::try_from(d[1]).ok()?, d[2])
            .ok()?;
    let t = time::Time::from_hms(d[3], d[4], d[5]).ok()?;
    let local = time::PrimitiveDateTime::new(date, t)
        .assume_offset(time::UtcOffset::from_hms(8, 0, 0).ok()?);
    Some(local.unix_timestamp() * 1000)
}

pub fn parse_location(body: &[u8]) -> Option<Location> {
    let mut r = Reader { b: body, at: 0 };
    let alarm = r.u32()?;
    let status = r.u32()?;
    let lat_raw = r.u32()? as f64 / 1e6;
    let lon_raw = r.u32()? as f64 / 1e6;
    let altitude_m = r.u16()? as i16 as i32;
    let speed_kmh = r.u16()? as f64 / 10.0;
    let direction_deg = r.u16()?;
    let time_ms = bcd_time(r.take(6)?);
    let mut loc = Location {
        alarm,
        status,
        lat: if status & 0x4 != 0 { -lat_raw } else { lat_raw },
        lon: if status & 0x8 != 0 { -lon_raw } else { lon_raw },
        altitude_m,
        speed_kmh,
        direction_deg,
        time_ms,
        mileage_km: None,
        fuel_l: None,
        recorder_speed_kmh: None,
        signal: None,
        satellites: None,
    };
    // Additional items: id BYTE, length BYTE, value. Unknown and vendor items are skipped; a
    // truncated item ends the list.
    while let (Some(id), Some(len)) = (r.u8(), r.u8()) {
        let Some(v) = r.take(len as usize) else { break };
        let be = |v: &[u8]| v.iter().fold(0u64, |a, &b| (a << 8) | b as u64);
        match (id, len) {
            (0x01, 4) => loc.mileage_km = Some(be(v) as f64 / 10.0),
            (0x02, 2) => loc.fuel_l = Some(be(v) as f64 / 10.0),
            (0x03, 2) => loc.recorder_speed_kmh = Some(be(v) as f64 / 10.0),
            (0x30, 1) => loc.signal = Some(v[0]),
            (0x31, 1) => loc.satellites = Some(v[0]),
            _ => {}
        }
    }
    Some(loc)
}

#[derive(Debug, Clone, PartialEq)]
pub struct Register {
    pub province: u16,
    pub city: u16,
    pub maker: String,
    pub model: String,
    pub terminal_id: String,
    pub plate_color: u8,
    pub plate: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// 0x0001: the terminal's answer to a platform message.
    TerminalResponse {
        serial: u16,
        msg_id: u16,
        result: u8,
    },
    /// 0x0002.
    Heartbeat,
    /// 0x0003.
    Deregister,
    /// 0x0100.
    Register(Register),
    /// 0x0102 (both editions).
    Authenticate { code: String },
    /// 0x0200.
    Location(Location),
    /// 0x0704: `backfill` is type 1 (blind-area back-fill).
    BatchLocation {
        backfill: bool,
        items: Vec<Location>,
    },
    /// 0x0702: a driver's IC card (qualification certificate) inserted or removed at the
    /// terminal's card reader: the driver signing in or out of the car.
    DriverCard(DriverCard),
    /// 0x0301 (JT/T 808-2013 §8.28; deleted in the 2019 edition): the driver pressed one of the
    /// events the platform preset on the terminal (0x8301), e.g. "order received".
    EventReport { event_id: u8 },
    /// Anything else (answered "unsupported").
    Other(u16),
}

/// The 0x0702 body (JT/T 808-2013 §8.47; 2019 adds the ID card number).
#[derive(Debug, Clone, PartialEq)]
pub struct DriverCard {
    /// Status 0x01: inserted (driver on duty); 0x02: removed (off duty).
    pub inserted: bool,
    /// When the card went in or out (terminal time, GMT+8 → UTC ms), if readable.
    pub time_ms: Option<i64>,
    /// With a card inserted: 0 read, 1 key authentication failed, 2 card locked, 3 card pulled
    /// out, 4 checksum error. None when removed.
    pub read_result: Option<u8>,
    /// The driver's name, certificate code (20 characters), issuing body and validity
    /// (`YYYYMMDD`), when the card was read.
    pub name: String,
    pub certificate: String,
    pub issuer: String,
    pub valid_until: Option<String>,
}

impl DriverCard {
    /// The read result in words.
    pub fn read_result_name(&self) -> &'static str {
        match self.read_result {
            None => "removed",
            Some(0) => "ok",
            Some(1) => "key_authentication_failed",
            Some(2) => "card_locked",
            Some(3) => "card_pulled_out",
            Some(4) => "checksum_error",
            Some(_) => "unknown",
        }
    }
}

fn parse_driver_card(r: &mut Reader<'_>) -> Result<DriverCard, &'static str> {
    let status = r.u8().ok_or("short body")?;
    let inserted = match status {
        1 => true,
        2 => false,
        _ => return Err("IC card status is neither 1 (inserted) nor 2 (removed)"),
    };
    let time_ms = bcd_time(r.take(6).ok_or("short card time")?);
    let mut card = DriverCard {
        inserted,
        time_ms,
        read_result: None,
        name: String::new(),
        certificate: String::new(),
        issuer: String::new(),
        valid_until: None,
    };
    if !inserted {
        return Ok(card);
    }
    let result = r.u8().ok_or("no IC card read result")?;
    card.read_result = Some(result);
    if result != 0 {
        return Ok(card);
    }
    let n = r.u8().ok_or("no driver name length")? as usize;
    card.name = gbk(r.take(n).ok_or("short driver name")?);
    card.certificate = gbk(r.take(20).ok_or("short certificate code")?);
    let m = r.u8().ok_or("no issuer length")? as usize;
    card.issuer = gbk(r.take(m).ok_or("short issuer")?);
    let v = r.take(4).ok_or("short validity date")?;
    card.valid_until = v
        .iter()
        .all(|b| b >> 4 <= 9 && b & 0x0F <= 9)
        .then(|| v.iter().map(|b| format!("{b:02X}")).collect());
    Ok(card)
}

/// Decodes the body of a (reassembled) message.
pub fn decode_body(header: &Header, body: &[u8]) -> Result<Message, BodyError> {
    let bad = |why| BodyError {
        msg_id: header.msg_id,
        why,
    };
    let mut r = Reader { b: body, at: 0 };
    Ok(match header.msg_id {
        0x0001 => Message::TerminalResponse {
            serial: r.u16().ok_or(bad("short body"))?,
            msg_id: r.u16().ok_or(bad("short body"))?,
            result: r.u8().ok_or(bad("short body"))?,
        },
        0x0002 => Message::Heartbeat,
        0x0003 => Message::Deregister,
        0x0100 => {
            let (maker, model, id) = match header.edition {
                Edition::V2013 => (5, 20, 7),
                Edition::V2019(_) => (11, 30, 30),
            };
            let province = r.u16().ok_or(bad("short body"))?;
            let city = r.u16().ok_or(bad("short body"))?;
            // 2011 terminals send 5/8/7: fall back when the body is too short for 2013.
            let (maker, model, id) =
                if header.edition == Edition::V2013 && body.len() < 4 + 5 + 20 + 7 + 1 {
                    (5, 8, 7)
                } else {
                    (maker, model, id)
                };
            Message::Register(Register {
                province,
                city,
                maker: gbk(r.take(maker).ok_or(bad("short maker id"))?),
                model: gbk(r.take(model).ok_or(bad("short model"))?),
                terminal_id: gbk(r.take(id).ok_or(bad("short terminal id"))?),
                plate_color: r.u8().ok_or(bad("no plate colour"))?,
                plate: gbk(r.rest()),
            })
        }
        0x0102 => {
            let code = match header.edition {
                Edition::V2013 => gbk(r.rest()),
                Edition::V2019(_) => {
                    let n = r.u8().ok_or(bad("no code length"))? as usize;
                    gbk(r.take(n).ok_or(bad("short code"))?)
                }
            };
            Message::Authenticate { code }
        }
        0x0200 => Message::Location(
            parse_location(body).ok_or(bad("location body shorter than 28 bytes"))?,
        ),
        0x0704 => {
            let count = r.u16().ok_or(bad("short body"))?;
            let backfill = r.u8().ok_or(bad("short body"))? == 1;
            let mut items = Vec::with_capacity(count.min(64) as usize);
            for _ in 0..count {
                let len = r.u16().ok_or(bad("item count exceeds the body"))? as usize;
                let item = r.take(len).ok_or(bad("item length exceeds the body"))?;
                items.push(parse_location(item).ok_or(bad("item shorter than a location"))?);
            }
            Message::BatchLocation { backfill, items }
        }
        0x0702 => Message::DriverCard(parse_driver_card(&mut r).map_err(bad)?),
        0x0301 => Message::EventReport {
            event_id: r.u8().ok_or(bad("empty event report"))?,
        },
        other => Message::Other(other),
    })
}

/// Bounds of the sub-package reassembler, per connection.
const MAX_PENDING_MESSAGES: usize = 4;
const MAX_PENDING_BYTES: usize = 64 * 1024;
const MAX_PACKETS: u16 = 256;

/// (msg_id, total, serial of packet 1): one sub-packaged message.
type PartsKey = (u16, u16, u16);

/// The packets of one message received so far, and when it started (arrival order).
#[derive(Debug)]
struct Parts {
    started: u64,
    parts: Vec<Option<Vec<u8>>>,
}

/// Collects sub-packages until a message is whole. Holds at most a few messages and 64 KiB;
/// beyond that the oldest incomplete message is dropped (and counted by the caller).
#[derive(Debug, Default)]
pub struct Reassembler {
    /// (msg_id, total, serial of packet 1) → parts by number.
    pending: HashMap<PartsKey, Parts>,
    bytes: usize,
    arrivals: u64,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Reassembled {
    /// Not sub-packaged, or the last missing part arrived: the whole body.
    Whole(Vec<u8>),
    Pending,
    /// Nonsense packet numbers, or bounds exceeded.
    Dropped(&'static str),
}

impl Reassembler {
    pub fn push(&mut self, frame: Frame) -> Reassembled {
        let Some((total, number)) = frame.header.packet else {
            return Reassembled::Whole(frame.body);
        };
        if total == 0 || number == 0 || number > total || total > MAX_PACKETS {
            return Reassembled::Dropped("packet number out of range");
        }
        let first_serial = frame.header.serial.wrapping_sub(number - 1);
        let key = (frame.header.msg_id, total, first_serial);
        if !self.pending.contains_key(&key) {
            while self.pending.len() >= MAX_PENDING_MESSAGES
                || self.bytes + frame.body.len() > MAX_PENDING_BYTES
            {
                let Some(oldest) = self
                    .pending
                    .iter()
                    .min_by_key(|(_, p)| p.started)
                    .map(|(k, _)| *k)
                else {
                    break;
                };
                self.remove(&oldest);
            }
            if self.bytes + frame.body.len() > MAX_PENDING_BYTES {
                return Reassembled::Dropped("sub-packaged message larger than 64 KiB");
            }
            self.arrivals += 1;
            self.pending.insert(
                key,
                Parts {
                    started: self.arrivals,
                    parts: vec![None; total as usize],
                },
            );
        }
        let parts = &mut self.pending.get_mut(&key).expect("inserted above").parts;
        let slot = &mut parts[(number - 1) as usize];
        if slot.is_none() {
            self.bytes += frame.body.len();
            *slot = Some(frame.body);
        }
        if parts.iter().all(Option::is_some) {
            let parts = self.pending.remove(&key).expect("present").parts;
            let body: Vec<u8> = parts.into_iter().flatten().flatten().collect();
            self.bytes -= body.len();
            return Reassembled::Whole(body);
        }
        Reassembled::Pending
    }

    fn remove(&mut self, key: &PartsKey) {
        if let Some(p) = self.pending.remove(key) {
            self.bytes -= p.parts.iter().flatten().map(Vec::len).sum::<usize>();
        }
    }

    pub fn held_bytes(&self) -> usize {
        self.bytes
    }
}

fn bcd_phone(phone: &str, len: usize) -> Vec<u8> {
    let digits: Vec<u8> = phone
        .bytes()
        .filter(u8::is_ascii_digit)
        .map(|d| d - b'0')
        .collect();
    let mut padded = vec![0u8; (len * 2).saturating_sub(digits.len())];
    padded.extend(digits.iter().rev().take(len * 2).rev());
    padded.chunks(2).map(|p| (p[0] << 4) | p[1]).collect()
}

/// Builds a complete wire frame (header, body, check code, escaping, delimiters).
pub fn encode(msg_id: u16, edition: Edition, phone: &str, serial: u16, body: &[u8]) -> Vec<u8> {
    let mut content = Vec::with_capacity(body.len() + 24);
    content.extend(msg_id.to_be_bytes());
    let mut props = (body.len() as u16) & 0x03FF;
    match edition {
        Edition::V2013 => {
            content.extend(props.to_be_bytes());
            content.extend(bcd_phone(phone, 6));
        }
        Edition::V2019(v) => {
            props |= 0x4000;
            content.extend(props.to_be_bytes());
            content.push(v);
            content.extend(bcd_phone(phone, 10));
        }
    }
    content.extend(serial.to_be_bytes());
    content.extend(body);
    let check = content.iter().fold(0u8, |a, b| a ^ b);
    content.push(check);
    let mut wire = Vec::with_capacity(content.len() + 8);
    wire.push(0x7E);
    for b in content {
        match b {
            0x7E => wire.extend([0x7D, 0x02]),
            0x7D => wire.extend([0x7D, 0x01]),
            _ => wire.push(b),
        }
    }
    wire.push(0x7E);
    wire
}

/// 0x8001 result codes.
pub mod result {
    pub const OK: u8 = 0;
    pub const FAIL: u8 = 1;
    pub const BAD_MESSAGE: u8 = 2;
    pub const UNSUPPORTED: u8 = 3;
    pub const ALARM_HANDLED: u8 = 4;
}

/// 0x8001 platform general response body.
pub fn general_response(to_serial: u16, to_msg: u16, result: u8) -> Vec<u8> {
    let mut b = Vec::with_capacity(5);
    b.extend(to_serial.to_be_bytes());
    b.extend(to_msg.to_be_bytes());
    b.push(result);
    b
}

/// 0x8100 register response body: 0 with the authentication code, or a refusal code
/// (1 vehicle registered, 2 vehicle unknown, 3 terminal registered, 4 terminal unknown).
pub fn register_response(to_serial: u16, result: u8, code: &str) -> Vec<u8> {
    let mut b = Vec::with_capacity(3 + code.len());
    b.extend(to_serial.to_be_bytes());
    b.push(result);
    if result == 0 {
        b.extend(encoding_rs::GBK.encode(code).0.iter());
    }
    b
}

/// 0x8300 text message body: flag byte (bit 0 emergency, bit 2 terminal display, bit 3 TTS),
/// for 2019 a text-type byte (1 notice), then GBK text.
pub fn text_message(edition: Edition, flags: u8, text: &str) -> Vec<u8> {
    let mut b = vec![flags];
    if let Edition::V2019(_) = edition {
        b.push(1);
    }
    b.extend(encoding_rs::GBK.encode(text).0.iter());
    b
}

#[cfg(test)]
mod tests;
