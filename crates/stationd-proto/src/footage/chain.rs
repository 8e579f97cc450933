//! The evidence index's hash chain. Every entry stores the SHA-256 of its own content and a
//! chain hash: SHA-256 of the previous entry's chain hash followed by this content hash (the
//! first entry follows 32 zero bytes). Editing an entry changes its content hash; deleting,
//! inserting or reordering entries breaks the link of the next one; and the newest chain hash
//! (the head), published to central, commits to every entry before it: the box cannot rewrite
//! its history without central seeing a head that does not extend the one it holds.

use serde::Serialize;
use sha2::{Digest, Sha256};

/// The chained part of an index entry: what was found, where, when, with which hash. The
/// upload state changes later and is kept outside the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// Position in the chain, from 1.
    pub id: i64,
    pub recorder: String,
    pub officer: String,
    /// Relative to the dock's root.
    pub path: String,
    pub size: u64,
    /// The file's SHA-256, lower-case hex.
    pub sha256: String,
    pub media_type: String,
    /// The recording's start, Unix ms (from the name), if known.
    pub start_ms: Option<i64>,
    /// When the station indexed it, Unix ms.
    pub indexed_ms: i64,
    /// Why this entry exists: `new`, or `altered` (a later version of an indexed path).
    pub reason: String,
}

/// The link before the first entry.
pub const GENESIS: [u8; 32] = [0; 32];

/// SHA-256 of the entry's canonical JSON (fields in declaration order, no spaces).
pub fn content_hash(e: &Entry) -> [u8; 32] {
    let json = serde_json::to_vec(e).expect("an entry always serialises");
    Sha256::digest(&json).into()
}

/// SHA-256(previous chain hash ‖ content hash).
pub fn link(previous: &[u8; 32], content: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(previous);
    h.update(content);
    h.finalize().into()
}

/// What is wrong with a stored chain, entry by entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Break {
    /// The entry's fields do not hash to its stored content hash: it was edited.
    Edited { id: i64 },
    /// The entry's chain hash does not follow from the one before: an entry before it was
    /// deleted, inserted or reordered (or the chain hash edited).
    Unlinked { id: i64 },
    /// Ids are not consecutive: entries `from..=to` are missing.
    Gap { from: i64, to: i64 },
}

/// Checks stored entries `(entry, content hash, chain hash)` in id order; returns what is
/// wrong and the head (the last chain hash as recomputed from the stored content hashes).
pub fn verify<'a>(
    stored: impl IntoIterator<Item = (&'a Entry, [u8; 32], [u8; 32])>,
) -> (Vec<Break>, [u8; 32]) {
    let mut breaks = Vec::new();
    let mut previous = GENESIS;
    let mut expected_id = 1;
    for (entry, content, chain) in stored {
        if entry.id > expected_id {
            breaks.push(Break::Gap {
                from: expected_id,
                to: entry.id - 1,
            });
        }
        expected_id = entry.id + 1;
        if content_hash(entry) != content {
            breaks.push(Break::Edited { id: entry.id });
        }
        if link(&previous, &content) != chain {
            breaks.push(Break::Unlinked { id: entry.id });
        }
        previous = chain;
    }
    (breaks, previous)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: i64, path: &str) -> Entry {
        Entry {
            id,
            recorder: "DSJ-A1-0001".into(),
            officer: "P-0417".into(),
            path: path.into(),
            size: 1234,
            sha256: "ab".repeat(32),
            media_type: "video/mp4".into(),
            start_ms: Some(1_796_084_102_000),
            indexed_ms: 1_796_084_200_000,
            reason: "new".into(),
        }
    }

    /// A chain of `n` entries as the index stores it.
    fn chain(n: i64) -> Vec<(Entry, [u8; 32], [u8; 32])> {
        let mut previous = GENESIS;
        (1..=n)
            .map(|id| {
                let e = entry(id, &format!("DSJ-A1-0001/{id}.mp4"));
                let content = content_hash(&e);
                previous = link(&previous, &content);
                (e, content, previous)
            })
            .collect()
    }

    fn check(c: &[(Entry, [u8; 32], [u8; 32])]) -> Vec<Break> {
        verify(c.iter().map(|(e, a, b)| (e, *a, *b))).0
    }

    #[test]
    fn an_intact_chain_verifies_and_its_head_is_the_last_link() {
        let c = chain(5);
        let (breaks, head) = verify(c.iter().map(|(e, a, b)| (e, *a, *b)));
        assert!(breaks.is_empty());
        assert_eq!(head, c[4].2);
    }

    #[test]
    fn an_edited_entry_a_deleted_one_and_a_rewritten_tail_are_found() {
        let mut c = chain(5);
        c[2].0.officer = "P-9999".into();
        assert_eq!(check(&c), [Break::Edited { id: 3 }]);

        let mut c = chain(5);
        c.remove(2);
        assert_eq!(
            check(&c),
            [Break::Gap { from: 3, to: 3 }, Break::Unlinked { id: 4 }]
        );

        // Deleting the last entry leaves an intact but shorter chain: only the head central
        // holds shows it (the head no longer extends it).
        let c = chain(5);
        let (_, head) = verify(c[..4].iter().map(|(e, a, b)| (e, *a, *b)));
        assert_ne!(head, c[4].2);

        // An entry edited and its content hash recomputed: its link breaks.
        let mut c = chain(5);
        c[1].0.size = 1;
        c[1].1 = content_hash(&c[1].0);
        assert_eq!(check(&c), [Break::Unlinked { id: 2 }]);
    }
}
