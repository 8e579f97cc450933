//! The radio's side of the TETRA PEI (EN 300 392-5) as lines: AT responses and unsolicited
//! result codes, read from a serial byte stream. Lines end with CR, LF or CRLF; blank lines
//! are skipped; an over-long line (garbage, a stuck port) is dropped as it streams, never held.
//! A `+CTSDSR` header is followed by a line of hex user data: the decoder pairs them into one
//! [`Line::Sds`]. The radio's echo of our own `AT…` commands is recognised ([`Line::Echo`]).

use super::sds::{self, Sds};

/// Longest line kept; longer ones are dropped (an SDS of 2047 bits is 512 hex digits).
pub const MAX_LINE: usize = 1024;

/// One line from the radio, understood.
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    Ok,
    /// `ERROR`, or `+CME ERROR: n` with its code.
    Error(Option<u16>),
    /// Our own command, echoed.
    Echo(String),
    /// `+CSQ: rssi,ber`: dBm = −113 + 2·rssi (None for 99, unknown).
    Signal {
        dbm: Option<i32>,
        ber: Option<u8>,
    },
    /// `+CBC: status,charge` (battery charge in percent).
    Battery {
        charge: u8,
    },
    /// `+CTGS: group_type,gtsi`: the selected talkgroup.
    Talkgroup(String),
    /// `+CNUMF: …`: the radio's own identity (its ITSI / ISSI, last field).
    OwnIdentity(String),
    /// `+CMGS: instance[,status[,reference]]`: the radio took an SDS to send.
    SdsSent {
        status: Option<u16>,
        reference: Option<u16>,
    },
    /// `+CTSDSR` header and its user data, decoded.
    Sds {
        ai_service: u8,
        calling: Option<String>,
        called: String,
        bits: usize,
        sds: Sds,
    },
    /// `+CTICN`: an incoming call (calling and called party, priority).
    IncomingCall {
        instance: u16,
        calling: Option<String>,
        called: Option<String>,
        priority: Option<u8>,
    },
    /// `+CTXG`: transmission granted (0), refused, queued, or granted to another (3), and to whom.
    TransmitGrant {
        instance: u16,
        grant: u8,
        talker: Option<String>,
    },
    /// `+CDTXC`: transmission ceased.
    TransmitCeased {
        instance: u16,
    },
    /// `+CTCR`: call released, with its cause.
    CallReleased {
        instance: u16,
        cause: Option<u16>,
    },
    /// Anything else, as it came (`+CTCC`, vendor lines, …).
    Other(String),
}

/// Bytes in, [`Line`]s out.
#[derive(Debug, Default)]
pub struct PeiDecoder {
    line: Vec<u8>,
    /// The line being dropped for its length.
    overflow: bool,
    /// A `+CTSDSR` header waiting for its data line.
    sds_header: Option<(u8, Option<String>, String, usize)>,
    /// Lines dropped for their length so far.
    pub oversized: u64,
}

impl PeiDecoder {
    pub fn new() -> PeiDecoder {
        PeiDecoder::default()
    }

    pub fn push(&mut self, bytes: &[u8], mut out: impl FnMut(Line)) {
        for &b in bytes {
            if b == b'\r' || b == b'\n' {
                if self.overflow {
                    self.overflow = false;
                    self.sds_header = None;
                } else if !self.line.is_empty() {
                    let line = String::from_utf8_lossy(&self.line).into_owned();
                    self.line.clear();
                    if let Some(l) = self.take(line.trim()) {
                        out(l);
                    }
                }
                self.line.clear();
            } else if self.overflow {
                // Dropping the rest of an over-long line.
                continue;
            } else if self.line.len() >= MAX_LINE {
                self.overflow = true;
                self.oversized += 1;
                self.line.clear();
            } else {
                self.line.push(b);
            }
        }
    }

    /// Bytes held for the line in progress (bounded by [`MAX_LINE`]).
    pub fn buffered(&self) -> usize {
        self.line.len()
    }

    fn take(&mut self, line: &str) -> Option<Line> {
        if line.is_empty() {
            return None;
        }
        if let Some((ai_service, calling, called, bits)) = self.sds_header.take() {
            // The data line of the header before it; a radio that sent another result code
            // instead lost the data: the header is dropped and this line read as itself.
            if let Some(pdu) = super::from_hex(line) {
                let sds = sds::parse(ai_service, &pdu, bits);
                return Some(Line::Sds {
                    ai_service,
                    calling,
                    called,
                    bits,
                    sds,
                });
            }
        }
        let parsed = parse(line);
        if let ParsedLine::Header(h) = parsed {
            self.sds_header = Some(h);
            return None;
        }
        match parsed {
            ParsedLine::Line(l) => Some(l),
            ParsedLine::Header(_) => None,
        }
    }
}

enum ParsedLine {
    Line(Line),
    Header((u8, Option<String>, String, usize)),
}

fn fields(rest: &str) -> Vec<&str> {
    rest.split(',').map(str::trim).collect()
}

fn num<T: std::str::FromStr>(s: Option<&&str>) -> Option<T> {
    s.and_then(|s| s.parse().ok())
}

fn non_empty(s: Option<&&str>) -> Option<String> {
    s.filter(|s| !s.is_empty()).map(|s| s.to_string())
}

fn parse(line: &str) -> ParsedLine {
    use ParsedLine::Line as L;
    if line == "OK" {
        return L(Line::Ok);
    }
    if line == "ERROR" {
        return L(Line::Error(None));
    }
    // Bytes, not a str slice: a garbage line may hold a multi-byte character at index 1.
    if line.len() >= 2 && line.as_bytes()[..2].eq_ignore_ascii_case(b"AT") {
        return L(Line::Echo(line.to_string()));
    }
    let Some((code, rest)) = line.split_once(':') else {
        return L(Line::Other(line.to_string()));
    };
    let f = fields(rest);
    let l = match code.trim() {
        "+CME ERROR" => Line::Error(num(f.first())),
        "+CSQ" => {
            let rssi: Option<i32> = num(f.first());
            Line::Signal {
                dbm: rssi
                    .filter(|r| *r != 99 && (0..=31).contains(r))
                    .map(|r| -113 + 2 * r),
                ber: num::<u8>(f.get(1)).filter(|b| *b != 99),
            }
        }
        "+CBC" => match num(f.get(1)) {
            Some(charge) => Line::Battery { charge },
            None => Line::Other(line.to_string()),
        },
        "+CTGS" => match non_empty(f.get(1)) {
            Some(g) => Line::Talkgroup(g),
            None => Line::Other(line.to_string()),
        },
        "+CNUMF" => match non_empty(f.last()) {
            Some(id) => Line::OwnIdentity(id),
            None => Line::Other(line.to_string()),
        },
        "+CMGS" => Line::SdsSent {
            status: num(f.get(1)),
            reference: num(f.get(2)),
        },
        "+CTSDSR" => {
            // <AI service>,[<calling>],[<calling type>],<called>,<called type>,<bits>[,<E2EE>]
            let ai: Option<u8> = num(f.first());
            let bits: Option<usize> = num(f.get(5));
            match (ai, non_empty(f.get(3)), bits) {
                (Some(ai), Some(called), Some(bits)) => {
                    return ParsedLine::Header((ai, non_empty(f.get(1)), called, bits));
                }
                _ => Line::Other(line.to_string()),
            }
        }
        "+CTICN" => Line::IncomingCall {
            instance: num(f.first()).unwrap_or(0),
            calling: non_empty(f.get(4)),
            called: non_empty(f.get(11)),
            priority: num(f.get(12)),
        },
        "+CTXG" => Line::TransmitGrant {
            instance: num(f.first()).unwrap_or(0),
            grant: num(f.get(1)).unwrap_or(0),
            talker: non_empty(f.get(5)),
        },
        "+CDTXC" => Line::TransmitCeased {
            instance: num(f.first()).unwrap_or(0),
        },
        "+CTCR" => Line::CallReleased {
            instance: num(f.first()).unwrap_or(0),
            cause: num(f.get(1)),
        },
        _ => Line::Other(line.to_string()),
    };
    L(l)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8]) -> Vec<Line> {
        let mut d = PeiDecoder::new();
        let mut out = Vec::new();
        d.push(input, |l| out.push(l));
        out
    }

    #[test]
    fn mixed_line_endings_echo_and_errors() {
        let got = lines(b"ATE0\r\r\nOK\r\nAT+CSQ?\n+CSQ: 20,99\r\nOK\r+CME ERROR: 35\r\nERROR\n\n");
        assert_eq!(
            got,
            [
                Line::Echo("ATE0".into()),
                Line::Ok,
                Line::Echo("AT+CSQ?".into()),
                Line::Signal {
                    dbm: Some(-73),
                    ber: None
                },
                Line::Ok,
                Line::Error(Some(35)),
                Line::Error(None),
            ]
        );
    }

    #[test]
    fn an_sds_header_and_its_data_line_make_one_report_whatever_the_chunks() {
        let wire = b"+CTSDSR: 13,1001,0,2001,0,16\r\n8002\r\n+CTSDSR: 12,23404,0,23401,0,104\r\n0201746573746D657373616765\r\n";
        for chunk in [1, 3, 7, wire.len()] {
            let mut d = PeiDecoder::new();
            let mut out = Vec::new();
            for piece in wire.chunks(chunk) {
                d.push(piece, |l| out.push(l));
            }
            assert_eq!(out.len(), 2, "chunks of {chunk}: {out:?}");
            match &out[0] {
                Line::Sds {
                    ai_service: 13,
                    calling,
                    sds: Sds::Status(0x8002),
                    ..
                } => {
                    assert_eq!(calling.as_deref(), Some("1001"))
                }
                other => panic!("{other:?}"),
            }
            match &out[1] {
                Line::Sds {
                    sds: Sds::Text { text, .. },
                    called,
                    ..
                } => {
                    assert_eq!((text.as_str(), called.as_str()), ("testmessage", "23401"))
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn call_and_ptt_indications() {
        let got = lines(b"+CTICN: 1,0,0,5,09011638300023404,1,1,0,1,1,5,09011638300000001,0\r\n+CTXG: 1,3,0,0,3,09011638300023404\r\n+CDTXC: 1,0\r\n+CTCR: 1,13\r\n+CTGS: 1,09011638300000001\r\n+CMGS: 0,4,65\r\n");
        assert_eq!(
            got[0],
            Line::IncomingCall {
                instance: 1,
                calling: Some("09011638300023404".into()),
                called: Some("09011638300000001".into()),
                priority: Some(0)
            }
        );
        assert_eq!(
            got[1],
            Line::TransmitGrant {
                instance: 1,
                grant: 3,
                talker: Some("09011638300023404".into())
            }
        );
        assert_eq!(got[2], Line::TransmitCeased { instance: 1 });
        assert_eq!(
            got[3],
            Line::CallReleased {
                instance: 1,
                cause: Some(13)
            }
        );
        assert_eq!(got[4], Line::Talkgroup("09011638300000001".into()));
        assert_eq!(
            got[5],
            Line::SdsSent {
                status: Some(4),
                reference: Some(65)
            }
        );
    }

    #[test]
    fn a_line_of_broken_utf8_is_kept_as_other_not_a_panic() {
        // Found by the fuzzer: a replacement character straddling byte 2.
        assert!(matches!(lines(&[0x25, 0xF2, 0x0A])[..], [Line::Other(_)]));
        assert!(matches!(lines("aé\r\n".as_bytes())[..], [Line::Other(_)]));
    }

    #[test]
    fn garbage_and_over_long_lines_are_dropped_and_the_stream_resyncs() {
        let mut wire = vec![0xFFu8; 3 * MAX_LINE];
        wire.extend(b"\r\n+CSQ: 31,0\r\n");
        wire.extend(b"+CTSDSR: 12,1001,0,2001,0,84\r\n");
        wire.extend(b"OK\r\n"); // the data line never came: the header is dropped
        let mut d = PeiDecoder::new();
        let mut out = Vec::new();
        d.push(&wire, |l| out.push(l));
        assert_eq!(d.oversized, 1);
        assert!(d.buffered() <= MAX_LINE);
        assert_eq!(
            out,
            [
                Line::Signal {
                    dbm: Some(-51),
                    ber: Some(0)
                },
                Line::Ok
            ]
        );
    }
}
