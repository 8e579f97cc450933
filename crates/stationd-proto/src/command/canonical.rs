//! The bytes a command's signature covers (docs/CONTRACT.md, "Signing a command").
//!
//! They are the RFC 8785 (JSON Canonicalization Scheme) form of one JSON object:
//!
//! ```json
//! {"args":{…},"command":"jt808.text","expires_at":"…","issued_at":"…",
//!  "purpose":"stationd.command.v1","request_id":"…","station":"jn-szq-wd01"}
//! ```
//!
//! RFC 8785: keys sorted, no whitespace, strings with minimal escapes, numbers as ECMAScript
//! prints them. `issued_at` and `expires_at` are the strings exactly as sent; `command` is the
//! last level of the topic; `station` is the station id this command is for; `purpose` keeps a
//! command signature from ever verifying as anything else signed with the same key.

use super::Command;
use serde::Serialize;

/// Names what a signature is for; part of the signed object.
pub const SIGNED_PURPOSE: &str = "stationd.command.v1";

/// The canonical bytes of `cmd` for `station`.
pub fn signed_bytes(station: &str, cmd: &Command) -> Vec<u8> {
    let doc = serde_json::json!({
        "purpose": SIGNED_PURPOSE,
        "station": station,
        "command": cmd.name,
        "request_id": cmd.request_id,
        "issued_at": cmd.issued_at,
        "expires_at": cmd.expires_at,
        "args": cmd.args,
    });
    let mut out = Vec::with_capacity(256);
    let mut ser =
        serde_json::Serializer::with_formatter(&mut out, canon_json::CanonicalFormatter::new());
    doc.serialize(&mut ser)
        .expect("a JSON value always serialises");
    out
}
