//! Fuzzes the dock's naming pattern: an arbitrary pattern (first line) against arbitrary names
//! (the other lines). No panic, and what a name yields is a part of that name.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stationd_proto::footage::name::{start_unix_ms, NameTemplate};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let Some(pattern) = lines.next() else { return };
    let Ok(t) = NameTemplate::parse(pattern) else { return };
    for name in lines.take(8) {
        if let Some(f) = t.read(name) {
            for part in [&f.recorder, &f.officer, &f.ext].into_iter().flatten() {
                assert!(!part.is_empty() && name.contains(part.as_str()));
            }
            if let Some(start) = f.start {
                let _ = start_unix_ms(start, 480);
            }
        }
    }
});
