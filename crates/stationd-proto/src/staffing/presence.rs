//! Who is at work, from signals the box already has — a recorder taken out of the dock, a
//! handheld radio registering or talking, a car terminal logging in, `stationd duty on|off`, a
//! line from the station's sign-in system — each with its source and time. A person's presence
//! is the most recent signal's word; the other sources that disagree are kept and shown beside
//! it, so nothing is inferred silently.

use std::collections::BTreeMap;

/// Where a signal came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// A body-worn camera taken out of (or put back in) the dock.
    Recorder,
    /// A handheld radio registering or talking.
    Radio,
    /// A car terminal's driver logging in or out.
    Terminal,
    /// `stationd duty on|off PERSON` on the box.
    Cli,
    /// The station's own sign-in system, through a `jsonl` line.
    SignIn,
    /// Central, by command.
    Central,
}

/// One signal about one person.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Signal {
    pub person: String,
    pub present: bool,
    pub source: Source,
    pub at_ms: i64,
    /// What happened, for the technician (`recorder DSJ-A1-0001 undocked`).
    pub detail: String,
}

/// A person's presence as resolved.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Resolved {
    pub present: bool,
    /// The signal that decided (the most recent).
    pub by: Signal,
    /// Other sources' latest signals that say otherwise.
    pub disputed_by: Vec<Signal>,
}

/// Every person's latest signal per source.
#[derive(Debug, Clone, Default)]
pub struct Presence {
    latest: BTreeMap<String, BTreeMap<Source, Signal>>,
}

impl Presence {
    pub fn new() -> Presence {
        Presence::default()
    }

    /// Takes a signal; the person's presence if it changed (or was first known). A signal older
    /// than what its source already said about that person is stale and ignored.
    pub fn observe(&mut self, signal: Signal) -> Option<Resolved> {
        let before = self.of(&signal.person).map(|r| r.present);
        let by_source = self.latest.entry(signal.person.clone()).or_default();
        if by_source
            .get(&signal.source)
            .is_some_and(|s| s.at_ms > signal.at_ms)
        {
            return None;
        }
        let person = signal.person.clone();
        by_source.insert(signal.source, signal);
        let now = self.of(&person)?;
        (before != Some(now.present)).then_some(now)
    }

    /// `person`'s presence, or `None` if nothing was ever heard of them.
    pub fn of(&self, person: &str) -> Option<Resolved> {
        let by_source = self.latest.get(person)?;
        // The most recent wins; on a tie, the explicit word (CLI, sign-in, central) over a
        // device's.
        let rank = |s: &Signal| {
            let explicit = matches!(s.source, Source::Cli | Source::SignIn | Source::Central);
            (s.at_ms, explicit)
        };
        let by = by_source.values().max_by_key(|s| rank(s))?.clone();
        let disputed_by = by_source
            .values()
            .filter(|s| s.present != by.present)
            .cloned()
            .collect();
        Some(Resolved {
            present: by.present,
            by,
            disputed_by,
        })
    }

    /// Everyone heard of.
    pub fn people(&self) -> impl Iterator<Item = &str> {
        self.latest.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(person: &str, present: bool, source: Source, at_ms: i64) -> Signal {
        Signal {
            person: person.into(),
            present,
            source,
            at_ms,
            detail: String::new(),
        }
    }

    #[test]
    fn the_latest_signal_decides_and_the_disagreeing_ones_are_shown() {
        let mut p = Presence::new();
        let first = p
            .observe(sig("P-0417", true, Source::Recorder, 1_000))
            .unwrap();
        assert!(first.present && first.disputed_by.is_empty());
        assert_eq!(
            p.observe(sig("P-0417", true, Source::Radio, 2_000)),
            None,
            "no change"
        );
        // Signed off at the desk later: off duty, with the radio's word shown against it.
        let off = p
            .observe(sig("P-0417", false, Source::SignIn, 3_000))
            .unwrap();
        assert!(!off.present);
        assert_eq!(off.by.source, Source::SignIn);
        let disputing: Vec<Source> = off.disputed_by.iter().map(|s| s.source).collect();
        assert_eq!(disputing, [Source::Recorder, Source::Radio]);
        // A late-arriving older radio signal changes nothing.
        assert_eq!(p.observe(sig("P-0417", true, Source::Radio, 1_500)), None);
        assert!(!p.of("P-0417").unwrap().present);
        // The radio talks again after the sign-off: present again, by the radio.
        let back = p
            .observe(sig("P-0417", true, Source::Radio, 4_000))
            .unwrap();
        assert_eq!((back.present, back.by.source), (true, Source::Radio));
        assert_eq!(p.of("nobody"), None);
    }

    #[test]
    fn at_the_same_moment_an_explicit_word_beats_a_device() {
        let mut p = Presence::new();
        p.observe(sig("A-0031", true, Source::Terminal, 5_000));
        let r = p.observe(sig("A-0031", false, Source::Cli, 5_000)).unwrap();
        assert_eq!((r.present, r.by.source), (false, Source::Cli));
    }
}
