//! A base radio's PEI, simulated: it answers the AT commands a TE sends (the init sequence,
//! the polls, `AT+CMGS` with its hex PDU and Ctrl-Z) as the references describe, and produces
//! the unsolicited lines a radio sends when its handhelds report (`+CTSDSR` status, text and
//! LIP, SDS-REPORTs, call and PTT indications). Bytes in, bytes out: the tests' pty radio, the
//! demo's base radio and the benchmark run it over their own ports.

use crate::tetra::{lip, sds};

/// One simulated base radio.
#[derive(Debug, Clone)]
pub struct SimRadio {
    /// Its own ISSI (`AT+CNUMF?`).
    pub issi: String,
    /// The selected talkgroup (`AT+CTGS?`).
    pub talkgroup: String,
    /// `+CSQ` rssi (0–31, 99 unknown).
    pub rssi: u8,
    /// Battery charge in percent; None answers `AT+CBC?` with `+CME ERROR: 4` (a mains radio).
    pub battery: Option<u8>,
    /// Echoes each command line back until `ATE0`.
    pub echo: bool,
    /// Says nothing at all (a radio that hung).
    pub hung: bool,
    /// Answers `AT+CMGS` with this failure status instead of accepting.
    pub refuse_sds: Option<u16>,
    /// When set, every SDS-TL text that asks for a delivery report gets one with this status,
    /// right after it is accepted.
    pub report_status: Option<u8>,
    /// Every SDS the TE sent: destination and user data.
    pub sent: Vec<(String, Vec<u8>)>,
    /// Every command line the TE sent.
    pub commands: Vec<String>,
    line: Vec<u8>,
    /// `AT+CMGS=dest,bits` seen: collecting its hex PDU until Ctrl-Z.
    cmgs: Option<String>,
    next_reference: u16,
}

impl SimRadio {
    pub fn new(issi: &str, talkgroup: &str) -> SimRadio {
        SimRadio {
            issi: issi.into(),
            talkgroup: talkgroup.into(),
            rssi: 20,
            battery: None,
            echo: true,
            hung: false,
            refuse_sds: None,
            report_status: Some(0x00),
            sent: Vec::new(),
            commands: Vec::new(),
            line: Vec::new(),
            cmgs: None,
            next_reference: 1,
        }
    }

    /// Bytes from the TE; returns what the radio answers.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for &b in bytes {
            if let Some(dest) = &self.cmgs {
                if b == 0x1A {
                    let dest = dest.clone();
                    self.cmgs = None;
                    let hex = String::from_utf8_lossy(&self.line).trim().to_string();
                    self.line.clear();
                    self.sds_from_te(&dest, &hex, &mut out);
                } else if b != b'\r' && b != b'\n' && self.line.len() < 4096 {
                    self.line.push(b);
                }
                continue;
            }
            if b == b'\r' || b == b'\n' {
                if !self.line.is_empty() {
                    let line = String::from_utf8_lossy(&self.line).trim().to_string();
                    self.line.clear();
                    self.command(&line, &mut out);
                }
            } else if self.line.len() < 4096 {
                self.line.push(b);
            }
        }
        if self.hung {
            out.clear();
        }
        out
    }

    fn command(&mut self, line: &str, out: &mut Vec<u8>) {
        self.commands.push(line.to_string());
        if self.echo {
            out.extend(line.as_bytes());
            out.extend(b"\r\n");
        }
        let upper = line.to_ascii_uppercase();
        let answer: String = match upper.as_str() {
            "ATE0" => {
                self.echo = false;
                String::new()
            }
            "AT+CSQ?" => format!("+CSQ: {},99\r\n", self.rssi),
            "AT+CTGS?" => format!("+CTGS: 1,{}\r\n", self.talkgroup),
            "AT+CNUMF?" => format!("+CNUMF: 0,{}\r\n", self.issi),
            "AT+CBC?" => match self.battery {
                Some(pct) => format!("+CBC: 0,{pct}\r\n"),
                None => {
                    out.extend(b"+CME ERROR: 4\r\n");
                    return;
                }
            },
            c if c.starts_with("AT+CMGS=") => {
                // The PDU follows on the next line, up to Ctrl-Z.
                self.cmgs = c["AT+CMGS=".len()..].split(',').next().map(str::to_string);
                return;
            }
            c if c.starts_with("AT+CTOM=")
                || c.starts_with("AT+CTSP=")
                || c.starts_with("AT+CTSDS=")
                || c.starts_with("AT+CTGS=")
                || c == "AT" =>
            {
                String::new()
            }
            _ => {
                out.extend(b"ERROR\r\n");
                return;
            }
        };
        out.extend(answer.as_bytes());
        out.extend(b"OK\r\n");
    }

    fn sds_from_te(&mut self, dest: &str, hex: &str, out: &mut Vec<u8>) {
        let Some(pdu) = crate::tetra::from_hex(hex) else {
            out.extend(b"+CME ERROR: 35\r\n");
            return;
        };
        self.sent.push((dest.to_string(), pdu.clone()));
        if let Some(status) = self.refuse_sds {
            out.extend(format!("+CMGS: 0,{status}\r\nOK\r\n").as_bytes());
            return;
        }
        let reference = self.next_reference;
        self.next_reference = self.next_reference.wrapping_add(1);
        out.extend(format!("+CMGS: 0,4,{reference}\r\nOK\r\n").as_bytes());
        // SDS-TL transfer asking for a report: the destination's report comes back.
        if let ([0x82, flags, tl_reference, ..], Some(status)) = (&pdu[..], self.report_status) {
            if flags >> 4 == 0 && flags & 0b0000_1100 != 0 {
                out.extend(sds_lines(
                    12,
                    dest,
                    &self.issi,
                    &sds::tl_report(*tl_reference, status),
                ));
            }
        }
    }
}

/// `+CTSDSR` header and hex data line for an SDS from `from` to `to`.
pub fn sds_lines(ai_service: u8, from: &str, to: &str, pdu: &[u8]) -> Vec<u8> {
    let hex: String = pdu.iter().map(|b| format!("{b:02X}")).collect();
    format!(
        "+CTSDSR: {ai_service},{from},0,{to},0,{}\r\n{hex}\r\n",
        pdu.len() * 8
    )
    .into_bytes()
}

/// A handheld sends status `value` (AI service 13; 0 is the emergency).
pub fn status(from: &str, to: &str, value: u16) -> Vec<u8> {
    sds_lines(13, from, to, &value.to_be_bytes())
}

/// A handheld sends a text (simple text, Latin-1).
pub fn text(from: &str, to: &str, text: &str) -> Vec<u8> {
    sds_lines(12, from, to, &sds::simple_text_latin1(text))
}

/// A handheld sends an SDS-TL text in UCS-2 (reference `reference`, no report asked).
pub fn text_ucs2(from: &str, to: &str, reference: u8, text: &str) -> Vec<u8> {
    let mut pdu = sds::tl_text(reference, false, text);
    if pdu[3] != 26 {
        // Force UCS-2 even for Latin-1 text: the test wants the coding.
        pdu = vec![0x82, 0, reference, 26];
        for unit in text.encode_utf16() {
            pdu.extend(unit.to_be_bytes());
        }
    }
    sds_lines(12, from, to, &pdu)
}

/// A handheld's LIP short location report (84 bits).
pub fn location(
    from: &str,
    to: &str,
    lat: f64,
    lon: f64,
    speed_kmh: Option<f64>,
    heading_deg: f64,
    reason: u8,
) -> Vec<u8> {
    let pdu = lip::encode(lat, lon, 1, speed_kmh, heading_deg, reason);
    let hex: String = pdu.iter().map(|b| format!("{b:02X}")).collect();
    // 84 bits: 21 hex digits, the last byte's low nibble unused.
    format!("+CTSDSR: 12,{from},0,{to},0,84\r\n{}\r\n", &hex[..21]).into_bytes()
}

/// A group call from `talker` on `group`: set up, the talker granted, speaking, released.
/// Returns (the lines at the start, the lines at the end); the test waits between them.
pub fn group_call(instance: u16, talker: &str, group: &str) -> (Vec<u8>, Vec<u8>) {
    let start = format!(
        "+CTICN: {instance},0,0,0,{talker},1,1,0,1,1,1,{group},0\r\n+CTXG: {instance},3,0,0,0,{talker}\r\n"
    );
    let end = format!("+CDTXC: {instance},0\r\n+CTCR: {instance},1\r\n");
    (start.into_bytes(), end.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tetra::pei::{Line, PeiDecoder};
    use crate::tetra::session::{Output, RadioSession, SendOutcome};

    /// The pure session against the simulated radio: init, a poll round, a text with report.
    #[test]
    fn the_session_and_the_simulator_agree() {
        let mut radio = SimRadio::new("2001", "1001");
        let mut decoder = PeiDecoder::new();
        let (mut session, mut pending) = RadioSession::new(0, 30_000);
        let mut seen = Vec::new();
        let mut sent_tl = false;
        for step in 0..100 {
            let mut next = Vec::new();
            for o in pending.drain(..) {
                match o {
                    Output::Write(bytes) => {
                        let answer = radio.push(&bytes);
                        let mut lines = Vec::new();
                        decoder.push(&answer, |l| lines.push(l));
                        for l in lines {
                            next.extend(session.on_line(l, step));
                        }
                    }
                    other => seen.push(other),
                }
            }
            if session.is_ready() && !sent_tl && seen.contains(&Output::Polled) {
                sent_tl = true;
                next.extend(session.send_sds(1, "1001", &sds::tl_text(9, true, "hi"), step));
            }
            pending = next;
            if pending.is_empty() && sent_tl {
                break;
            }
        }
        assert!(seen.contains(&Output::Ready));
        assert!(seen.contains(&Output::Report(Line::Signal {
            dbm: Some(-73),
            ber: None
        })));
        assert!(seen.contains(&Output::Report(Line::OwnIdentity("2001".into()))));
        assert!(seen.contains(&Output::Sent {
            tag: 1,
            outcome: SendOutcome::Accepted { reference: Some(1) }
        }));
        assert!(
            seen.iter().any(|o| matches!(
                o,
                Output::Report(Line::Sds {
                    sds: sds::Sds::Report {
                        reference: 9,
                        status: 0
                    },
                    ..
                })
            )),
            "{seen:?}"
        );
        assert_eq!(radio.sent[0].0, "1001");
    }

    #[test]
    fn the_handhelds_lines_decode() {
        let mut wire = status("1001", "2001", 0);
        wire.extend(location(
            "1001",
            "2001",
            -33.85,
            151.21,
            Some(60.0),
            90.0,
            2,
        ));
        wire.extend(text_ucs2("1002", "2001", 3, "收到"));
        let mut lines = Vec::new();
        PeiDecoder::new().push(&wire, |l| lines.push(l));
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(
            matches!(&lines[1], Line::Sds { sds: sds::Sds::Location(r), .. } if r.is_emergency() && r.lat < -33.8)
        );
    }
}
