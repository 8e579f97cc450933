//! Fuzzes a command message from dispatch: arbitrary bytes as the payload of `P/cmd/{name}`,
//! through the parser, the canonical form and the signature and time checks. Invariants: no
//! panic; a refusal that names a request_id names a valid one (it becomes a topic level); an
//! accepted command's canonical form is JSON that holds the command's own fields; a random
//! message never verifies against dispatch's key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stationd_proto::command::{check, parse, signed_bytes, valid_request_id, Keyring, Policy};

const DISPATCH_PUB: &str = include_str!("../../tests/data/keys/dispatch-test.pub");

fuzz_target!(|data: &[u8]| {
    // The first byte picks the command name (the topic's last level), valid or not.
    let Some((&pick, payload)) = data.split_first() else { return };
    let name = ["ping", "jt808.text", "rebirth", "Bad/Name", ""][pick as usize % 5];
    match parse(name, payload) {
        Err(e) => {
            if let Some(id) = &e.request_id {
                assert!(valid_request_id(id));
            }
        }
        Ok(cmd) => {
            assert!(valid_request_id(&cmd.request_id));
            let bytes = signed_bytes("st-1", &cmd);
            let v: serde_json::Value = serde_json::from_slice(&bytes).expect("canonical form is JSON");
            assert_eq!(v["request_id"].as_str(), Some(cmd.request_id.as_str()));
            assert_eq!(v["command"].as_str(), Some(name));
            let policy = Policy {
                keys: Some(Keyring::from_pem(DISPATCH_PUB).unwrap()),
                allow_unsigned: false,
                max_expiry_ms: 86_400_000,
            };
            assert!(check(&cmd, "st-1", &policy, cmd.issued_ms, true).is_err(), "a forged signature verified");
        }
    }
});
