//! The administrator's commands through the real binary: `check-config` with hardware profiles,
//! `udev-rules`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn stationd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stationd"))
        .args(args)
        .output()
        .unwrap()
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A station config in `dir` naming `profile`, with `extra` appended.
fn station(dir: &Path, profile: &str, extra: &str) -> PathBuf {
    let path = dir.join("stationd.toml");
    std::fs::write(
        &path,
        format!(
            "[station]\nid = \"jn-test-01\"\nname = \"测试站\"\nprofile = \"{profile}\"\n\n[uplink]\nbrokers = [\"mqtt://127.0.0.1:1883\"]\n\n[buffer]\npath = \"{}/outbox.db\"\n{extra}",
            dir.display()
        ),
    )
    .unwrap();
    path
}

#[test]
fn check_config_reads_the_profile_and_reports_devices_and_machine_facts() {
    let dir = tempfile::tempdir().unwrap();
    let profiles = repo().join("hw-profiles");
    let cfg = station(
        dir.path(),
        "generic-x86-4com",
        "\n[[device]]\nid = \"fleet\"\n[device.terminals]\n\"013912345678\" = \"car-03\"\n[staffing]\nteams = [\"1\"]\nstart = \"2026-12-01T08:00\"\n[[staffing.slot]]\nhours = 24\non_duty = [\"1\"]\n[[staffing.car]]\nid = \"car-03\"\n[[staffing.car]]\nid = \"car-09\"\nradio = \"car-09-radio\"\n",
    );
    let out = stationd(&[
        "check-config",
        "--config",
        cfg.to_str().unwrap(),
        "--profile-dir",
        profiles.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let checks: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let checks = checks.as_array().unwrap();
    let find = |name: &str| -> Vec<&serde_json::Value> {
        checks.iter().filter(|c| c["check"] == name).collect()
    };
    assert_eq!(find("config")[0]["outcome"], "ok");
    assert!(find("profile")[0]["detail"]
        .as_str()
        .unwrap()
        .starts_with("generic-x86-4com ("));
    let devices: Vec<&str> = find("device")
        .iter()
        .map(|c| c["detail"].as_str().unwrap())
        .collect();
    assert_eq!(devices.len(), 3, "{devices:?}");
    assert!(
        devices.contains(&"gps0 nmea /dev/ttyS0 9600 baud 8N1"),
        "{devices:?}"
    );
    assert!(
        devices.contains(&"fleet jt808 tcp://0.0.0.0:7611 (1 terminal(s) listed)"),
        "{devices:?}"
    );
    // A car whose tracker and radio no device speaks for is a warning, naming them; car-03's
    // tracker is the fleet listener's.
    let staffing: Vec<&str> = find("staffing")
        .iter()
        .map(|c| c["detail"].as_str().unwrap())
        .collect();
    assert!(staffing[0].starts_with("1 team(s)"), "{staffing:?}");
    assert_eq!(staffing.len(), 3, "{staffing:?}");
    assert!(staffing[1].starts_with("car car-09: its tracker \"car-09\" is no device"));
    assert!(staffing[2].starts_with("car car-09: its radio \"car-09-radio\" is no device"));
    // Whatever this machine lacks is a warning, never a failure: the USB GNSS receiver of the
    // profile is not plugged in here.
    assert!(checks.iter().all(|c| c["outcome"] != "failed"));
    if cfg!(target_arch = "x86_64") {
        assert!(
            find("machine").iter().any(|c| c["detail"]
                .as_str()
                .unwrap()
                .contains("/dev/stationd/gnss-usb")),
            "{checks:?}"
        );
    }
}

#[test]
fn a_profile_error_is_reported_at_the_profile_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("hw-profiles")).unwrap();
    let broken = std::fs::read_to_string(repo().join("hw-profiles/armv7-box.toml"))
        .unwrap()
        .replace("port = \"uart1\"", "port = \"uart7\"");
    let profile = dir.path().join("hw-profiles/armv7-box.toml");
    std::fs::write(&profile, &broken).unwrap();
    let line = broken
        .lines()
        .position(|l| l == "[[device]]")
        .map(|i| i + 1)
        .unwrap();
    let cfg = station(dir.path(), "armv7-box", "");
    let out = stationd(&["check-config", "--config", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with(&format!("{}:{line}: device \"gps0\"", profile.display())),
        "{err}"
    );
    assert!(err.contains("it has: uart1, uart2, radio0"), "{err}");

    // The same profile checked on its own gives the same answer.
    let out = stationd(&["check-config", "--profile", profile.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!(":{line}:")));
}

#[test]
fn udev_rules_for_a_station_name_its_usb_adapters() {
    let dir = tempfile::tempdir().unwrap();
    // This box's radio adapter, told apart by its serial number in the station config.
    let cfg = station(
        dir.path(),
        "armv7-box",
        "\n[[serial]]\nname = \"radio0\"\nusb = { vendor = \"0403\", product = \"6001\", serial = \"A10KZ3QX\" }\n",
    );
    let profiles = repo().join("hw-profiles");
    let out = stationd(&[
        "udev-rules",
        "--config",
        cfg.to_str().unwrap(),
        "--profile-dir",
        profiles.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rules = String::from_utf8(out.stdout).unwrap();
    assert!(rules.contains("ENV{ID_VENDOR_ID}==\"0403\", ENV{ID_MODEL_ID}==\"6001\", ENV{ID_SERIAL_SHORT}==\"A10KZ3QX\", SYMLINK+=\"stationd/radio0\""), "{rules}");

    // The shipped rules are those of the shipped profiles.
    let mut profiles: Vec<String> = std::fs::read_dir(repo().join("hw-profiles"))
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .filter(|p| p.ends_with(".toml"))
        .collect();
    profiles.sort();
    let mut args = vec!["udev-rules"];
    args.extend(profiles.iter().map(String::as_str));
    let out = stationd(&args);
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        std::fs::read_to_string(repo().join("systemd/60-stationd.rules")).unwrap(),
        "systemd/60-stationd.rules is out of date: cargo run -- udev-rules hw-profiles/*.toml > systemd/60-stationd.rules"
    );
}

#[test]
fn sign_command_prints_a_message_the_station_accepts_and_nobody_else_can_alter() {
    use stationd::command::{check, parse, Keyring, Policy};
    let keys = repo().join("tests/data/keys");
    let out = stationd(&[
        "sign-command",
        "--key",
        keys.join("dispatch-test.key").to_str().unwrap(),
        "--station",
        "jn-szq-wd01",
        "--request-id",
        "d-1",
        "jt808.text",
        r#"{"car":"car-02","text":"请到文化路口"}"#,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/jn-szq-wd01/cmd/jt808.text"), "{stderr}");
    let cmd = parse("jt808.text", out.stdout.trim_ascii()).unwrap();
    assert_eq!(cmd.request_id, "d-1");
    assert_eq!(
        cmd.expires_ms - cmd.issued_ms,
        300_000,
        "--ttl-s 300 by default"
    );
    let policy = |pem: &str| Policy {
        keys: Some(Keyring::from_pem(&std::fs::read_to_string(keys.join(pem)).unwrap()).unwrap()),
        allow_unsigned: false,
        max_expiry_ms: 86_400_000,
    };
    assert_eq!(
        check(
            &cmd,
            "jn-szq-wd01",
            &policy("dispatch-test.pub"),
            cmd.issued_ms,
            true
        ),
        Ok(())
    );
    assert!(check(
        &cmd,
        "jn-szq-wd01",
        &policy("other.pub"),
        cmd.issued_ms,
        true
    )
    .is_err());
    assert!(check(
        &cmd,
        "jn-szq-wd02",
        &policy("dispatch-test.pub"),
        cmd.issued_ms,
        true
    )
    .is_err());

    let bad = stationd(&["sign-command", "--station", "s", "ping", "[1]"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("JSON object"));
    let bad_key = stationd(&[
        "sign-command",
        "--key",
        keys.join("dispatch-test.pub").to_str().unwrap(),
        "--station",
        "s",
        "ping",
    ]);
    assert_eq!(bad_key.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad_key.stderr).contains("openssl genpkey"));
}
