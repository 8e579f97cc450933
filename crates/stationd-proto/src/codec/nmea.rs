//! NMEA 0183 from GNSS receivers (GPS, BeiDou, GLONASS, Galileo), sans I/O.
//!
//! Three layers, each pure:
//! - [`SentenceFramer`]: bytes → checksummed sentences. It resynchronises on `$` after noise,
//!   accepts CRLF or LF, caps a sentence at [`MAX_SENTENCE`] bytes, and rejects (and reports)
//!   sentences with a bad or missing checksum, as gpsd's packet layer does: trust checksummed
//!   frames only.
//! - [`parse`]: one sentence → [`Sentence`] (RMC, GGA, VTG, GSA, GSV; anything else is
//!   `Other`). Talkers GP, GL, GA, GB, BD, GN, … are all accepted; the talker is kept.
//! - [`EpochAssembler`]: sentences → [`Fix`]es, one per receiver epoch. Receivers order the
//!   sentences of an epoch differently (GGA before RMC on SiRF, after it on the Quectel L76K,
//!   whose 5 Hz output stamps GGA with the *next* epoch's time), so epochs are delimited by
//!   order, not by time: a second RMC, GGA or VTG starts a new epoch. The assembler learns
//!   which sentence types the receiver sends per epoch, and an epoch is complete as soon as it
//!   has all of them (no waiting for the next one).
//!
//! Field layouts follow gpsd's "NMEA Revealed" (see docs/CONTRACT.md for what is sent).

/// Longest sentence accepted, `$` to checksum. The standard says 82, but proprietary
/// sentences run longer (MTK's `$PMTKCHN` is 203 bytes); 256 keeps them without letting a
/// noisy line grow the buffer.
pub const MAX_SENTENCE: usize = 256;

/// What the framer found.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A sentence whose checksum verified, without `$`, `*hh` and line end: `GPRMC,...`.
    Sentence(&'a str),
    /// A sentence-shaped line that failed: reason.
    Rejected(Reject),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    BadChecksum,
    NoChecksum,
    TooLong,
    /// Not printable ASCII between `$` and the line end (binary noise, a baud mismatch).
    Garbage,
}

impl Reject {
    pub fn as_str(self) -> &'static str {
        match self {
            Reject::BadChecksum => "bad checksum",
            Reject::NoChecksum => "no checksum",
            Reject::TooLong => "longer than 256 bytes",
            Reject::Garbage => "not printable ASCII",
        }
    }
}

/// Splits a byte stream into verified sentences.
#[derive(Debug, Default)]
pub struct SentenceFramer {
    buf: Vec<u8>,
    in_sentence: bool,
    too_long: bool,
}

impl SentenceFramer {
    pub fn new() -> SentenceFramer {
        SentenceFramer::default()
    }

    pub fn push(&mut self, input: &[u8], mut on_frame: impl FnMut(Frame<'_>)) {
        for &b in input {
            match b {
                b'$' | b'!' => {
                    // A new start: whatever was pending had no line end (a truncated sentence).
                    if self.in_sentence && !self.buf.is_empty() {
                        on_frame(Frame::Rejected(if self.too_long {
                            Reject::TooLong
                        } else {
                            check(&self.buf).err().unwrap_or(Reject::NoChecksum)
                        }));
                    }
                    self.buf.clear();
                    self.in_sentence = true;
                    self.too_long = false;
                }
                b'\r' | b'\n' => {
                    if self.in_sentence {
                        if self.too_long {
                            on_frame(Frame::Rejected(Reject::TooLong));
                        } else {
                            match check(&self.buf) {
                                Ok(s) => on_frame(Frame::Sentence(s)),
                                Err(r) => on_frame(Frame::Rejected(r)),
                            }
                        }
                    }
                    self.buf.clear();
                    self.in_sentence = false;
                    self.too_long = false;
                }
                _ if self.in_sentence => {
                    if self.buf.len() >= MAX_SENTENCE {
                        self.too_long = true;
                    } else {
                        self.buf.push(b);
                    }
                }
                _ => {} // noise between sentences
            }
        }
    }
}

/// Verifies `body*hh` and returns `body` as text.
fn check(raw: &[u8]) -> Result<&str, Reject> {
    if !raw.iter().all(|b| (0x20..0x7f).contains(b)) {
        return Err(Reject::Garbage);
    }
    let text = std::str::from_utf8(raw).map_err(|_| Reject::Garbage)?;
    let (body, sum) = text.rsplit_once('*').ok_or(Reject::NoChecksum)?;
    let want = u8::from_str_radix(sum.get(..2).ok_or(Reject::BadChecksum)?, 16)
        .map_err(|_| Reject::BadChecksum)?;
    let got = body.bytes().fold(0u8, |acc, b| acc ^ b);
    if got == want {
        Ok(body)
    } else {
        Err(Reject::BadChecksum)
    }
}

/// Milliseconds since midnight UTC.
pub type TimeOfDayMs = u32;

#[derive(Debug, Clone, PartialEq)]
pub struct Rmc {
    pub time: Option<TimeOfDayMs>,
    /// Status `A` (and mode not `N`).
    pub valid: bool,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub speed_knots: Option<f64>,
    pub course_deg: Option<f64>,
    /// (year, month, day).
    pub date: Option<(i32, u8, u8)>,
    pub mode: Option<char>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Gga {
    pub time: Option<TimeOfDayMs>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    /// 0 none, 1 GPS, 2 DGPS, 3 PPS, 4 RTK, 5 float RTK, 6 dead reckoning, 7 manual, 8 simulation.
    pub quality: u8,
    pub satellites: Option<u8>,
    pub hdop: Option<f64>,
    pub altitude_m: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Vtg {
    pub course_deg: Option<f64>,
    pub speed_kmh: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Gsa {
    /// 1 none, 2 2D, 3 3D.
    pub fix_type: u8,
    pub pdop: Option<f64>,
    pub hdop: Option<f64>,
    pub vdop: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Gsv {
    pub total: u8,
    pub number: u8,
    pub in_view: u8,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Sentence {
    Rmc(Rmc),
    Gga(Gga),
    Vtg(Vtg),
    Gsa(Gsa),
    Gsv(Gsv),
    /// Any other sentence (ZDA, GLL, GNS, TXT, proprietary $P…); valid, not used.
    Other,
}

/// The talker and the parsed sentence.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    /// `GP`, `GN`, `BD`, `GB`, `GL`, `GA`, …; `P` for proprietary sentences.
    pub talker: String,
    pub sentence: Sentence,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed {kind} sentence: {why}")]
pub struct ParseError {
    pub kind: String,
    pub why: &'static str,
}

/// Parses a verified sentence body (`GPRMC,…`).
pub fn parse(body: &str) -> Result<Parsed, ParseError> {
    let mut fields = body.split(',');
    let tag = fields.next().unwrap_or("");
    let f: Vec<&str> = fields.collect();
    if tag.starts_with('P') {
        return Ok(Parsed {
            talker: "P".into(),
            sentence: Sentence::Other,
        });
    }
    if tag.len() != 5 || !tag.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(ParseError {
            kind: tag.into(),
            why: "the tag is not a talker and a type",
        });
    }
    let (talker, kind) = tag.split_at(2);
    let bad = |why| ParseError {
        kind: kind.to_string(),
        why,
    };
    let get = |i: usize| f.get(i).copied().unwrap_or("");
    let sentence = match kind {
        "RMC" => {
            if f.len() < 9 {
                return Err(bad("fewer than 9 fields"));
            }
            let mode = get(11).chars().next();
            let valid = get(1) == "A" && mode != Some('N');
            Sentence::Rmc(Rmc {
                time: time_of_day(get(0)).map_err(bad)?,
                valid,
                lat: position_field(coord(get(2), get(3), 2), valid).map_err(bad)?,
                lon: position_field(coord(get(4), get(5), 3), valid).map_err(bad)?,
                speed_knots: num(get(6)).map_err(bad)?,
                course_deg: num(get(7)).map_err(bad)?,
                date: date(get(8)).map_err(bad)?,
                mode,
            })
        }
        "GGA" => {
            if f.len() < 9 {
                return Err(bad("fewer than 9 fields"));
            }
            let quality: u8 = get(5).parse().unwrap_or(0);
            Sentence::Gga(Gga {
                time: time_of_day(get(0)).map_err(bad)?,
                lat: position_field(coord(get(1), get(2), 2), quality > 0).map_err(bad)?,
                lon: position_field(coord(get(3), get(4), 3), quality > 0).map_err(bad)?,
                quality,
                satellites: get(6).parse().ok(),
                hdop: num(get(7)).map_err(bad)?,
                altitude_m: num(get(8)).map_err(bad)?,
            })
        }
        "VTG" => {
            // NMEA 3.01+: course,T,course,M,knots,N,kmh,K; older: course,course,knots,kmh.
            let (course, kmh) = if get(1) == "T" {
                (get(0), get(6))
            } else {
                (get(0), get(3))
            };
            Sentence::Vtg(Vtg {
                course_deg: num(course).map_err(bad)?,
                speed_kmh: num(kmh).map_err(bad)?,
            })
        }
        "GSA" => {
            if f.len() < 17 {
                return Err(bad("fewer than 17 fields"));
            }
            Sentence::Gsa(Gsa {
                fix_type: get(1).parse().unwrap_or(1),
                pdop: num(get(14)).map_err(bad)?,
                hdop: num(get(15)).map_err(bad)?,
                vdop: num(get(16)).map_err(bad)?,
            })
        }
        "GSV" => Sentence::Gsv(Gsv {
            total: get(0).parse().map_err(|_| bad("no sentence count"))?,
            number: get(1).parse().map_err(|_| bad("no sentence number"))?,
            in_view: get(2).parse().unwrap_or(0),
        }),
        _ => Sentence::Other,
    };
    Ok(Parsed {
        talker: talker.to_string(),
        sentence,
    })
}

/// Receivers without a fix often fill the position with placeholders (MTK: `8960.000000,N`).
/// Those are not errors; a malformed position in a sentence that claims a fix is.
fn position_field(
    v: Result<Option<f64>, &'static str>,
    claims_fix: bool,
) -> Result<Option<f64>, &'static str> {
    match v {
        Err(_) if !claims_fix => Ok(None),
        other => other,
    }
}

fn num(s: &str) -> Result<Option<f64>, &'static str> {
    if s.is_empty() {
        return Ok(None);
    }
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(Some(v)),
        _ => Err("a number field is not a number"),
    }
}

/// `hhmmss[.sss]` → ms since midnight.
fn time_of_day(s: &str) -> Result<Option<TimeOfDayMs>, &'static str> {
    if s.is_empty() {
        return Ok(None);
    }
    let bad = "time is not hhmmss.ss";
    if s.len() < 6 || !s.as_bytes()[..6].iter().all(u8::is_ascii_digit) {
        return Err(bad);
    }
    let h: u32 = s[0..2].parse().map_err(|_| bad)?;
    let m: u32 = s[2..4].parse().map_err(|_| bad)?;
    let sec: f64 = s[4..].parse().map_err(|_| bad)?;
    if h > 23 || m > 59 || !(0.0..61.0).contains(&sec) {
        return Err(bad);
    }
    Ok(Some(
        h * 3_600_000 + m * 60_000 + (sec * 1000.0).round() as u32,
    ))
}

/// `ddmmyy` → (year, month, day); two-digit years 80–99 are 19xx.
fn date(s: &str) -> Result<Option<(i32, u8, u8)>, &'static str> {
    if s.is_empty() {
        return Ok(None);
    }
    let bad = "date is not ddmmyy";
    if s.len() != 6 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad);
    }
    let d: u8 = s[0..2].parse().map_err(|_| bad)?;
    let m: u8 = s[2..4].parse().map_err(|_| bad)?;
    let y: i32 = s[4..6].parse().map_err(|_| bad)?;
    if !(1..=31).contains(&d) || !(1..=12).contains(&m) {
        return Err(bad);
    }
    Ok(Some((if y >= 80 { 1900 + y } else { 2000 + y }, m, d)))
}

/// `ddmm.mmmm` / `dddmm.mmmm` with hemisphere → signed degrees.
fn coord(value: &str, hemi: &str, deg_digits: usize) -> Result<Option<f64>, &'static str> {
    if value.is_empty() {
        return Ok(None);
    }
    let bad = "coordinate is not (d)ddmm.mmmm";
    if value.len() < deg_digits + 2
        || !value.as_bytes()[..deg_digits]
            .iter()
            .all(u8::is_ascii_digit)
    {
        return Err(bad);
    }
    let deg: f64 = value[..deg_digits].parse().map_err(|_| bad)?;
    let min: f64 = value[deg_digits..].parse().map_err(|_| bad)?;
    if !(0.0..60.0).contains(&min) {
        return Err(bad);
    }
    let v = deg + min / 60.0;
    let limit = if deg_digits == 2 { 90.0 } else { 180.0 };
    if v > limit {
        return Err(bad);
    }
    match hemi {
        "N" | "E" => Ok(Some(v)),
        "S" | "W" => Ok(Some(-v)),
        _ => Err("hemisphere is not N/S/E/W"),
    }
}

/// One receiver epoch with a valid position.
#[derive(Debug, Clone, PartialEq)]
pub struct Fix {
    /// Receiver UTC, ms since the Unix epoch (when RMC supplied a date).
    pub utc_ms: Option<i64>,
    pub lat: f64,
    pub lon: f64,
    pub altitude_m: Option<f64>,
    pub speed_kmh: Option<f64>,
    pub course_deg: Option<f64>,
    /// GGA quality (1 GPS, 2 DGPS, 4 RTK, 6 dead reckoning, …).
    pub quality: u8,
    /// GSA fix type: 2 = 2D, 3 = 3D.
    pub fix_type: Option<u8>,
    pub satellites: Option<u8>,
    pub hdop: Option<f64>,
}

/// What an epoch produced.
#[derive(Debug, Clone, PartialEq)]
pub enum EpochOutcome {
    Fix(Fix),
    /// The receiver is talking but has no valid position.
    NoFix,
}

#[derive(Debug, Default)]
struct Epoch {
    rmc: Option<Rmc>,
    gga: Option<Gga>,
    vtg: Option<Vtg>,
    gsa: Option<Gsa>,
}

const HAS_RMC: u8 = 1;
const HAS_GGA: u8 = 2;
const HAS_VTG: u8 = 4;
const HAS_GSA: u8 = 8;

impl Epoch {
    fn kinds(&self) -> u8 {
        (self.rmc.is_some() as u8 * HAS_RMC)
            | (self.gga.is_some() as u8 * HAS_GGA)
            | (self.vtg.is_some() as u8 * HAS_VTG)
            | (self.gsa.is_some() as u8 * HAS_GSA)
    }
}

/// Groups sentences into epochs and turns each into a [`Fix`] or [`EpochOutcome::NoFix`].
#[derive(Debug, Default)]
pub struct EpochAssembler {
    current: Epoch,
    /// The sentence types the receiver sent in its last epoch that ended by time.
    expected: u8,
}

impl EpochAssembler {
    pub fn new() -> EpochAssembler {
        EpochAssembler::default()
    }

    /// Feeds one parsed sentence; returns the outcome of an epoch that just completed.
    pub fn push(&mut self, s: &Sentence) -> Option<EpochOutcome> {
        let kind = match s {
            Sentence::Rmc(_) => HAS_RMC,
            Sentence::Gga(_) => HAS_GGA,
            Sentence::Vtg(_) => HAS_VTG,
            Sentence::Gsa(_) => HAS_GSA,
            _ => return None,
        };
        let mut done = None;
        // GSA repeats within an epoch (one per constellation); the others do not.
        if kind != HAS_GSA && self.current.kinds() & kind != 0 {
            // A new epoch began: learn what the finished one contained.
            self.expected = self.current.kinds();
            done = self.finish();
        }
        match s {
            Sentence::Rmc(r) => self.current.rmc = Some(r.clone()),
            Sentence::Gga(g) => self.current.gga = Some(g.clone()),
            Sentence::Vtg(v) => self.current.vtg = Some(v.clone()),
            // One GSA per constellation: keep the first.
            Sentence::Gsa(g) if self.current.gsa.is_none() => self.current.gsa = Some(g.clone()),
            _ => {}
        }
        let kinds = self.current.kinds();
        if done.is_none()
            && self.expected & (HAS_RMC | HAS_GGA) != 0
            && kinds & self.expected == self.expected
        {
            done = self.finish();
        }
        done
    }

    /// Closes the current epoch (also call when the receiver goes quiet).
    pub fn finish(&mut self) -> Option<EpochOutcome> {
        let e = std::mem::take(&mut self.current);
        if e.rmc.is_none() && e.gga.is_none() {
            return None;
        }
        let rmc_valid = e
            .rmc
            .as_ref()
            .is_some_and(|r| r.valid && r.lat.is_some() && r.lon.is_some());
        let gga_valid = e
            .gga
            .as_ref()
            .is_some_and(|g| g.quality > 0 && g.lat.is_some() && g.lon.is_some());
        // RMC's status decides when present; GGA's quality otherwise.
        let valid = match &e.rmc {
            Some(_) => rmc_valid,
            None => gga_valid,
        };
        if !valid {
            return Some(EpochOutcome::NoFix);
        }
        let (lat, lon) = match (&e.rmc, &e.gga) {
            (Some(r), _) if rmc_valid => (r.lat.unwrap_or_default(), r.lon.unwrap_or_default()),
            (_, Some(g)) => (g.lat.unwrap_or_default(), g.lon.unwrap_or_default()),
            _ => return Some(EpochOutcome::NoFix),
        };
        let utc_ms = e
            .rmc
            .as_ref()
            .and_then(|r| Some((r.date?, r.time?)))
            .and_then(|((y, m, d), t)| {
                let date =
                    time::Date::from_calendar_date(y, time::Month::try_from(m).ok()?, d).ok()?;
                Some(date.midnight().assume_utc().unix_timestamp() * 1000 + t as i64)
            });
        let speed_kmh = e
            .rmc
            .as_ref()
            .and_then(|r| r.speed_knots)
            .map(|k| k * 1.852)
            .or_else(|| e.vtg.as_ref().and_then(|v| v.speed_kmh));
        let course_deg = e
            .rmc
            .as_ref()
            .and_then(|r| r.course_deg)
            .or_else(|| e.vtg.as_ref().and_then(|v| v.course_deg));
        let quality = match &e.gga {
            Some(g) if g.quality > 0 => g.quality,
            _ => match e.rmc.as_ref().and_then(|r| r.mode) {
                Some('D') => 2,
                Some('E') => 6,
                Some('R') => 4,
                Some('F') => 5,
                _ => 1,
            },
        };
        Some(EpochOutcome::Fix(Fix {
            utc_ms,
            lat,
            lon,
            altitude_m: e.gga.as_ref().and_then(|g| g.altitude_m),
            speed_kmh,
            course_deg,
            quality,
            fix_type: e.gsa.as_ref().map(|g| g.fix_type),
            satellites: e.gga.as_ref().and_then(|g| g.satellites),
            hdop: e
                .gga
                .as_ref()
                .and_then(|g| g.hdop)
                .or_else(|| e.gsa.as_ref().and_then(|g| g.hdop)),
        }))
    }
}

#[cfg(test)]
mod tests;
