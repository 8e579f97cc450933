//! The `jsonl` input: JSON objects, one per line, from other local systems (DESIGN.md §3).
//!
//! Two pure halves:
//! - [`LineFramer`] splits a byte stream into lines with a hard cap. A line longer than the cap
//!   is discarded *as it streams past*: the framer never holds more than `max_line` bytes, so a
//!   peer that never sends a newline cannot make the daemon buffer without bound.
//! - [`parse_line`] turns one line into an [`Event`] or a [`LineError`] that says what is wrong.
//!
//! Neither does I/O; the listener in `drivers::jsonl` feeds them bytes and counts the outcomes.

use crate::event::{self, ClockQuality, Event, Priority};
use serde::Deserialize;
use serde_json::value::RawValue;

/// The contract's line limit: 64 KiB, not counting the newline.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// What the framer found in the stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// One complete line, without its `\n` (or `\r\n`).
    Line(&'a [u8]),
    /// A line that exceeded the cap; `bytes` is how much of it was thrown away.
    Oversized { bytes: usize },
}

/// Splits bytes into lines, discarding over-long lines without buffering them.
#[derive(Debug)]
pub struct LineFramer {
    buf: Vec<u8>,
    max_line: usize,
    /// Some(n) while skipping the rest of an oversized line; n bytes skipped so far.
    discarding: Option<usize>,
}

impl LineFramer {
    pub fn new(max_line: usize) -> LineFramer {
        LineFramer {
            buf: Vec::new(),
            max_line,
            discarding: None,
        }
    }

    /// Bytes held for an incomplete line (never more than `max_line`).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Feeds bytes; calls `on_frame` for every complete line or discarded oversized line.
    pub fn push(&mut self, mut input: &[u8], mut on_frame: impl FnMut(Frame<'_>)) {
        while !input.is_empty() {
            let newline = input.iter().position(|&b| b == b'\n');
            if let Some(skipped) = self.discarding {
                match newline {
                    Some(i) => {
                        on_frame(Frame::Oversized { bytes: skipped + i });
                        self.discarding = None;
                        input = &input[i + 1..];
                    }
                    None => {
                        self.discarding = Some(skipped + input.len());
                        return;
                    }
                }
                continue;
            }
            match newline {
                Some(i) => {
                    let part = &input[..i];
                    input = &input[i + 1..];
                    if self.buf.len() + part.len() > self.max_line + 1 {
                        // +1 tolerates the '\r' of a CRLF line of exactly max_line bytes.
                        let bytes = self.buf.len() + part.len();
                        self.buf.clear();
                        on_frame(Frame::Oversized { bytes });
                    } else if self.buf.is_empty() {
                        emit_line(part, self.max_line, &mut on_frame);
                    } else {
                        self.buf.extend_from_slice(part);
                        let line = std::mem::take(&mut self.buf);
                        emit_line(&line, self.max_line, &mut on_frame);
                        self.buf = line;
                        self.buf.clear();
                    }
                }
                None => {
                    if self.buf.len() + input.len() > self.max_line + 1 {
                        self.discarding = Some(self.buf.len() + input.len());
                        self.buf.clear();
                        self.buf.shrink_to(4096);
                    } else {
                        self.buf.extend_from_slice(input);
                    }
                    return;
                }
            }
        }
    }

    /// The stream ended: a last line without a newline is still a line.
    pub fn finish(&mut self, mut on_frame: impl FnMut(Frame<'_>)) {
        if let Some(bytes) = self.discarding.take() {
            on_frame(Frame::Oversized { bytes });
        } else if !self.buf.is_empty() {
            let line = std::mem::take(&mut self.buf);
            emit_line(&line, self.max_line, &mut on_frame);
        }
    }
}

fn emit_line(mut line: &[u8], max_line: usize, on_frame: &mut impl FnMut(Frame<'_>)) {
    if let [rest @ .., b'\r'] = line {
        line = rest;
    }
    if line.len() > max_line {
        on_frame(Frame::Oversized { bytes: line.len() });
    } else if !line.iter().all(|b| b.is_ascii_whitespace()) {
        on_frame(Frame::Line(line));
    }
}

/// Why a line was rejected. The message is what the log line says.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LineError {
    #[error("not a JSON object with the contract's fields: {0}")]
    Invalid(String),
    #[error("`kind` {0:?} does not match [a-z0-9_.]+")]
    BadKind(String),
    #[error("`prio` {0:?} is not one of alarm, event, telemetry")]
    BadPrio(String),
    #[error("`device` {0:?} must be 1-64 characters of [A-Za-z0-9_.-]")]
    BadDevice(String),
    #[error("`ts` {0:?} is neither RFC 3339 nor milliseconds since the epoch")]
    BadTs(String),
    #[error("`data` must be a JSON object")]
    DataNotObject,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InputLine<'a> {
    kind: String,
    #[serde(default)]
    prio: Option<String>,
    #[serde(default, borrow)]
    ts: Option<&'a RawValue>,
    #[serde(default)]
    device: Option<String>,
    #[serde(default)]
    data: Option<Box<RawValue>>,
}

/// Parses one line. `default_device` is the input's own id; `now` is the time of arrival and
/// the box clock's quality, used when the line carries no `ts`.
pub fn parse_line(
    line: &[u8],
    default_device: &str,
    now: (i64, ClockQuality),
) -> Result<Event, LineError> {
    let input: InputLine<'_> =
        serde_json::from_slice(line).map_err(|e| LineError::Invalid(e.to_string()))?;
    if !event::is_valid_kind(&input.kind) {
        return Err(LineError::BadKind(input.kind));
    }
    let prio = match input.prio {
        None => Priority::Event,
        Some(p) => Priority::parse(&p).ok_or(LineError::BadPrio(p))?,
    };
    let device = match input.device {
        None => default_device.to_string(),
        Some(d) if event::is_valid_device_id(&d) => d,
        Some(d) => return Err(LineError::BadDevice(d)),
    };
    let ts_ms = match input.ts {
        None => now.0,
        Some(raw) => parse_ts(raw.get()).ok_or_else(|| LineError::BadTs(raw.get().to_string()))?,
    };
    let data = match input.data {
        None => RawValue::from_string("{}".into()).expect("valid"),
        Some(d) if d.get().trim_start().starts_with('{') => d,
        Some(_) => return Err(LineError::DataNotObject),
    };
    Ok(Event {
        ts_ms,
        clock: now.1,
        device,
        kind: input.kind,
        prio,
        historical: false,
        data,
        topic: None,
    })
}

/// `"2026-11-29T08:15:02.120Z"` (any RFC 3339 offset) or an integer of epoch milliseconds.
fn parse_ts(raw: &str) -> Option<i64> {
    if let Ok(ms) = raw.parse::<i64>() {
        return (ms >= 0).then_some(ms);
    }
    let s: String = serde_json::from_str(raw).ok()?;
    crate::event::parse_ts_ms(&s)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: (i64, ClockQuality) = (1_000, ClockQuality::Unsynced);

    fn frames(framer: &mut LineFramer, chunks: &[&[u8]]) -> Vec<String> {
        let mut out = Vec::new();
        for c in chunks {
            framer.push(c, |f| {
                out.push(match f {
                    Frame::Line(l) => String::from_utf8_lossy(l).into_owned(),
                    Frame::Oversized { bytes } => format!("<oversized {bytes}>"),
                })
            });
        }
        out
    }

    #[test]
    fn splits_lines_across_chunks_and_strips_crlf() {
        let mut f = LineFramer::new(100);
        let got = frames(&mut f, &[b"ab", b"c\r\nde\n\nf", b"g\n"]);
        assert_eq!(got, ["abc", "de", "fg"]);
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn oversized_line_is_discarded_without_buffering_then_next_line_works() {
        let mut f = LineFramer::new(10);
        let mut got = frames(&mut f, &[b"0123456789ABC"]);
        assert!(
            f.buffered() <= 10,
            "framer must not hold the oversized line"
        );
        got.extend(frames(&mut f, &[b"DEF", b"GH\nok\n"]));
        assert_eq!(got, ["<oversized 18>", "ok"]);
    }

    #[test]
    fn line_of_exactly_the_limit_passes() {
        let mut f = LineFramer::new(4);
        assert_eq!(
            frames(&mut f, &[b"abcd\n", b"abcd\r\n", b"abcde\n"]),
            ["abcd", "abcd", "<oversized 5>"]
        );
    }

    #[test]
    fn unterminated_last_line_is_emitted_at_finish() {
        let mut f = LineFramer::new(100);
        assert!(frames(&mut f, &[b"{\"kind\":\"x\"}"]).is_empty());
        let mut last = Vec::new();
        f.finish(|fr| last.push(format!("{fr:?}")));
        assert_eq!(last.len(), 1);
    }

    #[test]
    fn parses_a_full_line() {
        let ev = parse_line(
            br#"{"kind":"door.open","prio":"alarm","ts":"2026-11-29T08:15:02.120Z","device":"door1","data":{"n":1}}"#,
            "ingest0",
            NOW,
        )
        .unwrap();
        assert_eq!(ev.kind, "door.open");
        assert_eq!(ev.prio, Priority::Alarm);
        assert_eq!(ev.device, "door1");
        assert_eq!(
            crate::event::format_ts_ms(ev.ts_ms),
            "2026-11-29T08:15:02.120Z"
        );
        assert_eq!(ev.data.get(), r#"{"n":1}"#);
    }

    #[test]
    fn defaults_device_prio_ts_and_data() {
        let ev = parse_line(br#"{"kind":"ping"}"#, "ingest0", NOW).unwrap();
        assert_eq!(
            (ev.device.as_str(), ev.prio, ev.ts_ms, ev.clock),
            ("ingest0", Priority::Event, 1_000, ClockQuality::Unsynced)
        );
        assert_eq!(ev.data.get(), "{}");
        let ev = parse_line(br#"{"kind":"ping","ts":1795940102120}"#, "i", NOW).unwrap();
        assert_eq!(ev.ts_ms, 1_795_940_102_120);
    }

    #[test]
    fn rejects_what_the_contract_forbids() {
        let bad: &[(&[u8], &str)] = &[
            (b"not json", "Invalid"),
            (br#"{"prio":"alarm"}"#, "Invalid"),
            (br#"{"kind":"x","extra":1}"#, "Invalid"),
            (br#"[1,2]"#, "Invalid"),
            (br#"{"kind":"Bad Kind"}"#, "BadKind"),
            (br#"{"kind":"x","prio":"urgent"}"#, "BadPrio"),
            (br#"{"kind":"x","device":"a/b"}"#, "BadDevice"),
            (br#"{"kind":"x","ts":"yesterday"}"#, "BadTs"),
            (br#"{"kind":"x","data":[1]}"#, "DataNotObject"),
            (b"\xff\xfe{garbage", "Invalid"),
        ];
        for (line, want) in bad {
            let err = parse_line(line, "i", NOW).unwrap_err();
            assert!(
                format!("{err:?}").starts_with(want),
                "{:?} gave {err:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    /// The framer agrees with a plain split of the whole stream, however it is chunked, and
    /// never holds more than the limit. (The fuzz target checks the same with coverage.)
    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn reference(stream: &[u8], max: usize) -> Vec<Option<Vec<u8>>> {
            let mut out = Vec::new();
            let mut parts: Vec<&[u8]> = stream.split(|&b| b == b'\n').collect();
            let last = parts.pop().unwrap_or(&[]);
            for p in parts.into_iter().chain((!last.is_empty()).then_some(last)) {
                let p = p.strip_suffix(b"\r").unwrap_or(p);
                if p.len() > max {
                    out.push(None);
                } else if !p.iter().all(|b| b.is_ascii_whitespace()) {
                    out.push(Some(p.to_vec()));
                }
            }
            out
        }

        proptest! {
            #[test]
            fn framer_matches_a_plain_split(
                stream in prop::collection::vec(prop_oneof![4 => any::<u8>(), 1 => Just(b'\n'), 1 => Just(b'\r')], 0..600),
                chunk in 1usize..50,
                max in 1usize..40,
            ) {
                let mut f = LineFramer::new(max);
                let mut got = Vec::new();
                for piece in stream.chunks(chunk) {
                    f.push(piece, |fr| got.push(match fr { Frame::Line(l) => Some(l.to_vec()), Frame::Oversized { .. } => None }));
                    prop_assert!(f.buffered() <= max + 1);
                }
                f.finish(|fr| got.push(match fr { Frame::Line(l) => Some(l.to_vec()), Frame::Oversized { .. } => None }));
                prop_assert_eq!(got, reference(&stream, max));
            }

            #[test]
            fn parser_never_panics(line in prop::collection::vec(any::<u8>(), 0..200)) {
                let _ = parse_line(&line, "i", NOW);
            }
        }
    }
}
