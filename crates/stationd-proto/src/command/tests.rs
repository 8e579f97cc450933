//! Commands: parsing, the canonical form, signatures (checked against signatures made by
//! OpenSSL, an independent Ed25519 and the documented bytes), and the time checks.

use super::*;

const DISPATCH_PUB: &str = include_str!("../../../../tests/data/keys/dispatch-test.pub");
const OTHER_PUB: &str = include_str!("../../../../tests/data/keys/other.pub");
const STATION: &str = "jn-szq-wd01";

/// docs/CONTRACT.md's worked example, signed with `openssl pkeyutl -sign -rawin` and
/// tests/data/keys/dispatch-test.key over the canonical bytes below.
const EXAMPLE: &str = r#"{"request_id":"d-20261201-0001","issued_at":"2026-12-01T08:00:00Z","expires_at":"2026-12-01T08:05:00Z","args":{"text":"请到文化路口 / go to Wenhua Rd","car":"car-02"},"sig":"ZSAGnWy3a5bmn4Q+HVy2dUd+JTLfGqW+Kt9y1x5t7piaMkVWW95JEwriraiSrj4NqzxInLM6giSEwAwr97aJBg=="}"#;
const EXAMPLE_CANONICAL: &str = r#"{"args":{"car":"car-02","text":"请到文化路口 / go to Wenhua Rd"},"command":"jt808.text","expires_at":"2026-12-01T08:05:00Z","issued_at":"2026-12-01T08:00:00Z","purpose":"stationd.command.v1","request_id":"d-20261201-0001","station":"jn-szq-wd01"}"#;
/// 2026-12-01T08:01:00Z.
const NOW: i64 = 1_796_112_060_000;

fn policy(pem: Option<&str>) -> Policy {
    Policy {
        keys: pem.map(|p| Keyring::from_pem(p).unwrap()),
        allow_unsigned: false,
        max_expiry_ms: 24 * 3600 * 1000,
    }
}

fn example() -> Command {
    parse("jt808.text", EXAMPLE.as_bytes()).unwrap()
}

#[test]
fn the_canonical_form_is_the_documented_bytes() {
    assert_eq!(
        String::from_utf8(signed_bytes(STATION, &example())).unwrap(),
        EXAMPLE_CANONICAL
    );
}

#[test]
fn a_signature_made_by_openssl_verifies_and_binds_station_command_and_args() {
    let p = policy(Some(DISPATCH_PUB));
    assert_eq!(check(&example(), STATION, &p, NOW, true), Ok(()));
    let refused = |r: Result<(), Refusal>| matches!(r, Err(Refusal::Unauthenticated(reason)) if reason.starts_with("bad signature"));
    assert!(
        refused(check(&example(), "jn-szq-wd02", &p, NOW, true)),
        "another station"
    );
    let mut renamed = example();
    renamed.name = "ping".into();
    assert!(
        refused(check(&renamed, STATION, &p, NOW, true)),
        "another command"
    );
    let mut tampered = example();
    tampered.args.insert("car".into(), "car-03".into());
    assert!(
        refused(check(&tampered, STATION, &p, NOW, true)),
        "tampered args"
    );
    let mut later = example();
    later.expires_at = "2026-12-01T09:05:00Z".into();
    later.expires_ms += 3_600_000;
    assert!(
        refused(check(&later, STATION, &p, NOW, true)),
        "a longer life"
    );
    assert!(
        refused(check(
            &example(),
            STATION,
            &policy(Some(OTHER_PUB)),
            NOW,
            true
        )),
        "a stranger's key"
    );
}

#[test]
fn a_key_file_may_hold_several_keys_for_rotation() {
    let both = format!("# old key, until 2027-01\n{OTHER_PUB}\n# new key\n{DISPATCH_PUB}");
    let keys = Keyring::from_pem(&both).unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(
        check(&example(), STATION, &policy(Some(&both)), NOW, true),
        Ok(())
    );
}

#[test]
fn key_files_that_are_not_ed25519_public_keys_say_what_to_do() {
    assert_eq!(
        Keyring::from_pem("nothing here").unwrap_err(),
        KeyError::Empty
    );
    let private = include_str!("../../../../tests/data/keys/dispatch-test.key");
    assert_eq!(
        Keyring::from_pem(private).unwrap_err(),
        KeyError::Empty,
        "a private key is not a public one"
    );
    let broken = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
    let e = Keyring::from_pem(broken).unwrap_err();
    assert!(e.to_string().contains("openssl pkey"), "{e}");
}

#[test]
fn unsigned_commands_need_the_stations_consent_and_never_pass_with_a_key() {
    let mut unsigned = example();
    unsigned.sig = None;
    let r = check(&unsigned, STATION, &policy(Some(DISPATCH_PUB)), NOW, true);
    assert!(
        matches!(r, Err(Refusal::Unauthenticated(ref m)) if m.starts_with("unsigned")),
        "{r:?}"
    );
    let r = check(&unsigned, STATION, &policy(None), NOW, true);
    assert!(
        matches!(r, Err(Refusal::Unauthenticated(ref m)) if m.contains("no dispatch key")),
        "{r:?}"
    );
    let open = Policy {
        allow_unsigned: true,
        ..policy(None)
    };
    assert_eq!(check(&unsigned, STATION, &open, NOW, true), Ok(()));
}

#[test]
fn expired_and_far_future_commands_are_refused_unless_the_clock_cannot_judge() {
    let p = policy(Some(DISPATCH_PUB));
    let after = 1_796_112_300_000 + 1_000; // a second after expires_at
    assert!(matches!(
        check(&example(), STATION, &p, after, true),
        Err(Refusal::Expired(_))
    ));
    let short = Policy {
        max_expiry_ms: 60_000,
        ..p.clone()
    };
    let r = check(&example(), STATION, &short, NOW, true);
    assert!(
        matches!(r, Err(Refusal::Refused(ref m)) if m.contains("max_expiry_s")),
        "{r:?}"
    );
    // An unsynchronised clock (1970 after a power cut without RTC) cannot judge expiry.
    assert_eq!(check(&example(), STATION, &p, 5_000, false), Ok(()));
    assert_eq!(check(&example(), STATION, &short, NOW, false), Ok(()));
}

#[test]
fn malformed_messages_are_answered_when_their_request_id_can_be_read() {
    let no_id = |payload: &str| parse("ping", payload.as_bytes()).unwrap_err().request_id;
    assert_eq!(no_id("not json"), None);
    assert_eq!(no_id("[1]"), None);
    assert_eq!(no_id(r#"{"issued_at":"2026-12-01T08:00:00Z"}"#), None);
    assert_eq!(
        no_id(r#"{"request_id":"a/b"}"#),
        None,
        "not a safe topic level"
    );
    assert_eq!(
        no_id(&format!(r#"{{"request_id":"{}"}}"#, "x".repeat(65))),
        None
    );
    let big = format!(
        r#"{{"request_id":"r1","pad":"{}"}}"#,
        "x".repeat(MAX_COMMAND_BYTES)
    );
    assert_eq!(no_id(&big), None, "too big to parse");

    let answered = |name: &str, payload: &str| {
        let e = parse(name, payload.as_bytes()).unwrap_err();
        assert_eq!(e.request_id.as_deref(), Some("r1"), "{e}");
        e.reason
    };
    let t = r#""issued_at":"2026-12-01T08:00:00Z","expires_at":"2026-12-01T08:05:00Z""#;
    assert!(answered("ping", r#"{"request_id":"r1"}"#).contains("issued_at"));
    assert!(answered(
        "ping",
        r#"{"request_id":"r1","issued_at":"yesterday","expires_at":"2026-12-01T08:05:00Z"}"#
    )
    .contains("RFC 3339"));
    assert!(answered("ping", &format!(r#"{{"request_id":"r1",{t},"args":[1]}}"#)).contains("args"));
    assert!(
        answered("ping", &format!(r#"{{"request_id":"r1",{t},"sig":"!!"}}"#)).contains("base64")
    );
    assert!(answered(
        "ping",
        &format!(r#"{{"request_id":"r1",{t},"sig":"AAAA"}}"#)
    )
    .contains("64 bytes"));
    assert!(answered("Ping/x", &format!(r#"{{"request_id":"r1",{t}}}"#)).contains("not valid"));
    let ok = parse("ping", format!(r#"{{"request_id":"r1",{t}}}"#).as_bytes()).unwrap();
    assert!(ok.args.is_empty() && ok.sig.is_none());
    assert_eq!(ok.expires_ms - ok.issued_ms, 300_000);
}

#[test]
fn a_command_signed_here_verifies_and_its_payload_reads_back_the_same() {
    let key = signing_key_from_pem(include_str!(
        "../../../../tests/data/keys/dispatch-test.key"
    ))
    .unwrap();
    let mut args = Map::new();
    args.insert("car".into(), "car-02".into());
    args.insert("text".into(), "请到文化路口 / go to Wenhua Rd".into());
    let mut cmd = Command::new(
        "jt808.text",
        "d-20261201-0001",
        1_796_112_000_000,
        1_796_112_300_000,
        args,
    );
    cmd.sign(STATION, &key);
    let back = parse("jt808.text", &cmd.to_payload()).unwrap();
    assert_eq!(back.issued_at, "2026-12-01T08:00:00.000Z");
    assert_eq!(
        check(&back, STATION, &policy(Some(DISPATCH_PUB)), NOW, true),
        Ok(())
    );
    assert_eq!(back.args, cmd.args);
    // Ed25519 is deterministic: signing the documented example here gives OpenSSL's bytes.
    let mut same = example();
    same.sig = None;
    same.sign(STATION, &key);
    assert_eq!(same.sig, example().sig);
}
