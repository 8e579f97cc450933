//! Fuzzes the radio session with a radio that says anything: arbitrary bytes from the port
//! (through the PEI decoder), ticks at arbitrary times, SDS sends queued in between. No panic;
//! at most one command on the wire; every send queued gets exactly one outcome once the
//! radio has been silent long enough; after a tick the deadline lies ahead (a driver sleeping
//! until it never spins).
#![no_main]

use libfuzzer_sys::fuzz_target;
use stationd_proto::tetra::pei::PeiDecoder;
use stationd_proto::tetra::session::{Output, RadioSession, COMMAND_TIMEOUT_MS, MAX_QUEUE};
use std::collections::BTreeSet;

fuzz_target!(|data: &[u8]| {
    let (mut s, _) = RadioSession::new(0, 1_000);
    let mut d = PeiDecoder::new();
    let mut now = 0u64;
    let mut open: BTreeSet<u64> = BTreeSet::new();
    let mut next_tag = 0u64;
    let settle = |out: Vec<Output>, open: &mut BTreeSet<u64>| {
        for o in out {
            if let Output::Sent { tag, .. } = o {
                assert!(open.remove(&tag), "outcome for tag {tag} twice or never queued");
            }
        }
    };
    for chunk in data.chunks(9) {
        let (op, rest) = chunk.split_first().unwrap();
        match op % 4 {
            0 => {
                let mut lines = Vec::new();
                d.push(rest, |l| lines.push(l));
                for l in lines {
                    let out = s.on_line(l, now);
                    settle(out, &mut open);
                }
            }
            1 => {
                now += u64::from(rest.first().copied().unwrap_or(0)) * 100;
                let out = s.tick(now);
                settle(out, &mut open);
                assert!(s.deadline() > now, "deadline {} not after {now}", s.deadline());
            }
            2 if open.len() < MAX_QUEUE => {
                let tag = next_tag;
                next_tag += 1;
                open.insert(tag);
                let out = s.send_sds(tag, "1001", rest, now);
                settle(out, &mut open);
            }
            _ => {
                let out = s.tick(now);
                settle(out, &mut open);
            }
        }
    }
    // The radio goes silent: every send still waiting comes out (sent, refused, not sent).
    for _ in 0..(MAX_QUEUE + 32) * 2 {
        now = now.max(s.deadline().min(now + COMMAND_TIMEOUT_MS));
        let out = s.tick(now);
        settle(out, &mut open);
        if open.is_empty() {
            break;
        }
    }
    assert!(open.is_empty(), "sends without an outcome: {open:?}");
});
