//! Short Data Service user data as the PEI delivers it (after `+CTSDSR`): a status value (AI
//! service 13), or SDS-TL / simple PDUs by protocol identifier — text, LIP location, and the
//! delivery reports and acknowledgements of messages we sent. Sources: EN 300 392-2 §29 as
//! SvxLink's TetraLib.h and tetra-pei's sds.go read it (docs: ../PROTOCOLS notes).

use super::lip::{self, ShortReport};

/// What an SDS carries.
#[derive(Debug, Clone, PartialEq)]
pub enum Sds {
    /// A 16-bit status value (AI service 13); the emergency status is the driver's to judge.
    Status(u16),
    /// Text (PI 0x02/0x09 simple or immediate, 0x82/0x89 SDS-TL with a message reference).
    Text {
        protocol: u8,
        reference: Option<u8>,
        /// Text coding scheme: 0 7-bit (GSM alphabet), 1 ISO 8859-1, 26 UCS-2.
        coding: u8,
        text: String,
    },
    /// A LIP short location report (PI 0x0A).
    Location(ShortReport),
    /// SDS-REPORT for a message we sent: its reference and the delivery status (0x00 received,
    /// 0x01 consumed, … ≥ 0x40 failures).
    Report { reference: u8, status: u8 },
    /// SDS-ACK.
    Ack { reference: u8, status: u8 },
    /// Another protocol, not decoded.
    Other { protocol: u8 },
    /// Well framed, not understood: why.
    Malformed(String),
}

/// GSM 03.38 default alphabet (0x1B, the escape, shown as a space).
const GSM7: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ ÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";

pub fn parse(ai_service: u8, pdu: &[u8], bits: usize) -> Sds {
    let bits = bits.min(pdu.len() * 8);
    let pdu = &pdu[..bits.div_ceil(8)];
    if ai_service == 13 {
        return match pdu {
            [a, b, ..] => Sds::Status(u16::from_be_bytes([*a, *b])),
            _ => Sds::Malformed("a status shorter than 16 bits".into()),
        };
    }
    let Some((&protocol, rest)) = pdu.split_first() else {
        return Sds::Malformed("empty SDS".into());
    };
    match protocol {
        lip::PROTOCOL_ID => match lip::decode(pdu, bits) {
            Ok(r) => Sds::Location(r),
            Err(e) => Sds::Malformed(e.to_string()),
        },
        0x02 | 0x09 => text(protocol, None, rest),
        0x82 | 0x89 => match rest {
            [first, reference, body @ ..] => match first >> 4 {
                0 if first & 0x01 != 0 => {
                    Sds::Malformed("store-and-forward SDS-TRANSFER is not decoded".into())
                }
                0 => text(protocol, Some(*reference), body),
                1 => match body.first() {
                    Some(r) => Sds::Report {
                        status: *reference,
                        reference: *r,
                    },
                    None => Sds::Malformed("SDS-REPORT without its message reference".into()),
                },
                2 => match body.first() {
                    Some(r) => Sds::Ack {
                        status: *reference,
                        reference: *r,
                    },
                    None => Sds::Malformed("SDS-ACK without its message reference".into()),
                },
                t => Sds::Malformed(format!("SDS-TL message type {t}")),
            },
            _ => Sds::Malformed("SDS-TL header shorter than 16 bits".into()),
        },
        other => Sds::Other { protocol: other },
    }
}

/// The text user data: timestamp-used bit and coding scheme, the timestamp if used, the text.
fn text(protocol: u8, reference: Option<u8>, body: &[u8]) -> Sds {
    let Some((&head, mut data)) = body.split_first() else {
        return Sds::Malformed("text without its coding scheme".into());
    };
    if head & 0x80 != 0 {
        let Some(after) = data.get(3..) else {
            return Sds::Malformed("text timestamp cut short".into());
        };
        data = after;
    }
    let coding = head & 0x7F;
    let text = match coding {
        0 => gsm7(data),
        1 => data.iter().map(|&b| char::from(b)).collect(),
        26 => {
            let units: Vec<u16> = data
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16_lossy(&units)
        }
        other => return Sds::Malformed(format!("text coding scheme {other} is not decoded")),
    };
    Sds::Text {
        protocol,
        reference,
        coding,
        text: text.trim_end_matches('\0').to_string(),
    }
}

/// Septets packed least significant bit first (as in GSM SMS), through the default alphabet.
fn gsm7(data: &[u8]) -> String {
    let table: Vec<char> = GSM7.chars().collect();
    let septets = data.len() * 8 / 7;
    (0..septets)
        .map(|i| {
            let bit = i * 7;
            let (byte, shift) = (bit / 8, bit % 8);
            let mut v = u16::from(data[byte]) >> shift;
            if shift > 1 {
                if let Some(next) = data.get(byte + 1) {
                    v |= u16::from(*next) << (8 - shift);
                }
            }
            table[(v & 0x7F) as usize]
        })
        .collect()
}

/// Simple text (PI 0x02) in ISO 8859-1, for simulators and tests: characters outside Latin-1
/// become '?'.
pub fn simple_text_latin1(text: &str) -> Vec<u8> {
    let mut out = vec![0x02, 0x01];
    out.extend(
        text.chars()
            .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?')),
    );
    out
}

/// SDS-TL text transfer (PI 0x82), as the station sends a dispatcher's text to a radio
/// (`AT+CMGS`): ISO 8859-1 when every character fits (one byte each), UCS-2 otherwise (two),
/// with a delivery report requested (on receipt) when `report`.
pub fn tl_text(reference: u8, report: bool, text: &str) -> Vec<u8> {
    // Message type 0 (transfer); delivery report request 01 (on receipt) or 00; no storage.
    let flags = if report { 0b0000_0100 } else { 0 };
    let latin1: Option<Vec<u8>> = text
        .chars()
        .map(|c| u8::try_from(u32::from(c)).ok())
        .collect();
    let mut out = vec![0x82, flags, reference];
    match latin1 {
        Some(bytes) => {
            out.push(1);
            out.extend(bytes);
        }
        None => {
            out.push(26);
            for unit in text.encode_utf16() {
                out.extend(unit.to_be_bytes());
            }
        }
    }
    out
}

/// An SDS-REPORT for message `reference` with delivery `status` (the receiving radio's side:
/// simulators and tests).
pub fn tl_report(reference: u8, status: u8) -> Vec<u8> {
    vec![0x82, 0x10, status, reference]
}

/// What a delivery status says: `Some(true)` delivered (0x00–0x1F), `Some(false)` failed
/// (0x40 and above), `None` not final yet (0x20–0x3F: stored, delivery pending).
pub fn delivered(status: u8) -> Option<bool> {
    match status {
        0x00..=0x1F => Some(true),
        0x20..=0x3F => None,
        _ => Some(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        crate::tetra::from_hex(s).unwrap()
    }

    #[test]
    fn the_public_examples_read_as_their_sources_say() {
        // tetra-pei sds_test.go: "testmessage" (104 bits), a report, a status.
        assert_eq!(
            parse(12, &hex("0201746573746D657373616765"), 104),
            Sds::Text {
                protocol: 2,
                reference: None,
                coding: 1,
                text: "testmessage".into()
            }
        );
        assert_eq!(
            parse(12, &hex("821000C9"), 32),
            Sds::Report {
                reference: 0xC9,
                status: 0
            }
        );
        assert_eq!(parse(13, &hex("8004"), 16), Sds::Status(0x8004));
    }

    #[test]
    fn text_codings_with_and_without_a_timestamp() {
        // UCS-2 with a timestamp (3 bytes skipped), SDS-TL with reference 0x9C.
        let mut pdu = vec![0x82, 0x00, 0x9C, 0x80 | 26, 0x12, 0x34, 0x56];
        for u in "请到文化路口".encode_utf16() {
            pdu.extend(u.to_be_bytes());
        }
        assert_eq!(
            parse(12, &pdu, pdu.len() * 8),
            Sds::Text {
                protocol: 0x82,
                reference: Some(0x9C),
                coding: 26,
                text: "请到文化路口".into()
            }
        );
        // 7-bit: "hello" packed as GSM SMS packs it (E8 32 9B FD 06).
        let mut seven = vec![0x02, 0x00];
        seven.extend(hex("E8329BFD06"));
        assert_eq!(
            parse(12, &seven, seven.len() * 8),
            Sds::Text {
                protocol: 2,
                reference: None,
                coding: 0,
                text: "hello".into()
            }
        );
        assert_eq!(GSM7.chars().count(), 128);
        // Latin-1 round trip through the simulator's encoder.
        let latin = simple_text_latin1("Straße 5");
        assert!(
            matches!(parse(12, &latin, latin.len() * 8), Sds::Text { text, .. } if text == "Straße 5")
        );
        let ours = tl_text(7, true, "收到");
        assert!(
            matches!(parse(12, &ours, ours.len() * 8), Sds::Text { reference: Some(7), coding: 26, text, .. } if text == "收到")
        );
        let ours = tl_text(8, false, "Come in, Ji-03");
        assert_eq!(ours.len(), 4 + 14, "one byte a character in Latin-1");
        assert!(
            matches!(parse(12, &ours, ours.len() * 8), Sds::Text { reference: Some(8), coding: 1, text, .. } if text == "Come in, Ji-03")
        );
        let report = tl_report(8, 0x02);
        assert_eq!(
            parse(12, &report, 32),
            Sds::Report {
                reference: 8,
                status: 2
            }
        );
        assert_eq!(
            (delivered(0x02), delivered(0x21), delivered(0x41)),
            (Some(true), None, Some(false))
        );
    }

    #[test]
    fn location_and_odd_pdus() {
        let lip = lip::encode(36.66, 117.02, 1, Some(12.0), 90.0, 2);
        match parse(12, &lip, 84) {
            Sds::Location(r) => assert!(r.is_emergency() && (r.lat - 36.66).abs() < 1e-4),
            other => panic!("{other:?}"),
        }
        assert!(matches!(parse(12, &[0x0A, 0x40], 16), Sds::Malformed(_)));
        assert_eq!(parse(12, &[0x03, 1, 2], 24), Sds::Other { protocol: 3 });
        assert!(matches!(parse(12, &[], 0), Sds::Malformed(_)));
        assert!(matches!(parse(13, &[0x80], 8), Sds::Malformed(_)));
        assert!(
            matches!(parse(12, &[0x82, 0x01, 0x05, 0x01], 32), Sds::Malformed(m) if m.contains("store-and-forward"))
        );
        assert!(
            matches!(parse(12, &[0x02, 0x05, b'x'], 24), Sds::Malformed(m) if m.contains("coding scheme 5"))
        );
    }
}
