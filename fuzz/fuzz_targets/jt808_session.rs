//! Fuzzes the JT/T 808 session, not only the parser: a terminal registers and authenticates
//! (so the fuzzer starts past the gate), then arbitrary bytes in arbitrary chunks arrive as
//! frames, at a box time and clock state the input chooses. Invariants: no panic; every reply
//! is a frame the codec reads back; every event becomes an envelope that is valid JSON; after
//! `Close` nothing more is fed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stationd_proto::codec::jt808::{encode, Edition, FrameDecoder};
use stationd_proto::event::ClockQuality;
use stationd_proto::gps::ReportPolicy;
use stationd_proto::jt808::{Action, KnownTerminal, Session, SessionConfig, Shared};
use stationd_proto::sim::jt808::{authentication, Registration};
use std::sync::Arc;

const PHONE: &str = "013912345678";

fuzz_target!(|data: &[u8]| {
    let Some((&knobs, stream)) = data.split_first() else { return };
    let chunk = (knobs as usize % 32) + 1;
    let config = SessionConfig {
        device: "fleet".into(),
        terminals: [(PHONE.to_string(), KnownTerminal { car: "car-03".into(), plate: None })].into(),
        allow_unknown: knobs & 0x80 != 0,
        policy: ReportPolicy::from_config(50.0, 30.0, 5, 60),
        max_clock_skew_ms: 86_400_000,
        auth_code: || "c0de".into(),
    };
    let mut session = Session::new(Arc::new(Shared::new(config)));
    let clock = if knobs & 0x40 != 0 { ClockQuality::Synced } else { ClockQuality::Unsynced };
    let mut now = (1_795_940_102_000_i64, clock);
    let mut mono = 0u64;
    let mut closed = false;
    let check = |actions: Vec<Action>, closed: &mut bool| {
        for a in actions {
            match a {
                Action::Reply(bytes) => {
                    let mut n = 0;
                    FrameDecoder::new().push(&bytes, |f| {
                        assert!(f.is_ok(), "a reply the codec cannot read: {bytes:02X?}");
                        n += 1;
                    });
                    assert_eq!(n, 1, "one reply, one frame");
                }
                Action::Event(ev) => {
                    let env = ev.to_envelope_json("st", 1);
                    assert!(serde_json::from_slice::<serde_json::Value>(&env).is_ok(), "{env:?}");
                }
                Action::Close(_) => *closed = true,
                Action::Notice(_) | Action::TerminalAnswer { .. } => {}
            }
        }
    };
    let mut decoder = FrameDecoder::new();
    let mut feed = |wire: &[u8], session: &mut Session, now: (i64, ClockQuality), mono: u64, closed: &mut bool| {
        decoder.push(wire, |f| {
            if *closed {
                return;
            }
            if let Ok(frame) = f {
                let actions = session.on_frame(frame, now, mono);
                check(actions, closed);
            }
        });
    };
    let reg = Registration::default().body(Edition::V2013);
    feed(&encode(0x0100, Edition::V2013, PHONE, 1, &reg), &mut session, now, mono, &mut closed);
    feed(&encode(0x0102, Edition::V2013, PHONE, 2, &authentication(Edition::V2013, b"c0de")), &mut session, now, mono, &mut closed);
    for piece in stream.chunks(chunk) {
        mono += 1_000;
        now.0 += 1_000;
        feed(piece, &mut session, now, mono, &mut closed);
        if closed {
            break;
        }
    }
});
