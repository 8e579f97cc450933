//! Logs reach a real systemd-journald with the fields technicians filter on:
//! `journalctl -u stationd DEVICE_ID=gps9` (issue 4). The journald runs in a private mount
//! namespace (its sockets and runtime journal on tmpfs), so the host's logging is untouched.
//! Needs root (mount namespace) and systemd-journald, which tests/run.sh installs; where either
//! is missing the test says so on stderr and checks nothing.

mod common;

use common::*;
use std::process::Command;

#[test]
fn device_records_carry_station_device_and_driver_fields_in_the_journal() {
    let journald = [
        "/lib/systemd/systemd-journald",
        "/usr/lib/systemd/systemd-journald",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists());
    let Some(journald) = journald else {
        eprintln!(
            "journald test NOT run: systemd-journald is not installed (apt-get install systemd)"
        );
        return;
    };
    if !nix::unistd::geteuid().is_root() {
        eprintln!("journald test NOT run: needs root for a private mount namespace");
        return;
    }
    let station = Station::new(free_port(), "");
    station.append_config(&format!(
        "\n[[device]]\nid = \"gps9\"\ndriver = \"nmea\"\npath = \"{}\"\n",
        station.dir.path().join("ttyAbsent").display()
    ));
    // journald on tmpfs in this namespace; the daemon logs to it (JOURNAL_STREAM set, as under
    // systemd) for 2 s, then the journal is queried as a technician would.
    let script = format!(
        r#"set -e
mkdir -p /run/systemd/journal /run/log
mount -t tmpfs tmpfs /run/systemd/journal
mount -t tmpfs tmpfs /run/log
if [ -d /var/log/journal ]; then mount -t tmpfs tmpfs /var/log/journal; fi
{journald} & J=$!
for i in $(seq 50); do [ -S /run/systemd/journal/socket ] && break; sleep 0.1; done
JOURNAL_STREAM=8:1 STATIOND_CONTROL_SOCKET={dir}/control.sock {bin} run --config {cfg} & D=$!
sleep 2
kill -TERM $D; wait $D || true
journalctl --no-pager -o json SYSLOG_IDENTIFIER=stationd DEVICE_ID=gps9
kill $J"#,
        dir = station.dir.path().display(),
        bin = env!("CARGO_BIN_EXE_stationd"),
        cfg = station.config.display(),
    );
    let out = Command::new("unshare")
        .args(["--mount", "--fork", "bash", "-c", &script])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && stderr.contains("unshare failed") {
        eprintln!("journald test NOT run: mount namespaces are not allowed here: {stderr}");
        return;
    }
    assert!(out.status.success(), "{stderr}");
    let records: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let open_failed = records
        .iter()
        .find(|r| r["EVENT"] == "device.open_failed")
        .unwrap_or_else(|| panic!("no device.open_failed record for gps9: {records:?}\n{stderr}"));
    assert_eq!(open_failed["STATION_ID"], "test-st01");
    assert_eq!(open_failed["DRIVER"], "nmea");
    assert_eq!(open_failed["DEVICE_ID"], "gps9");
    assert_eq!(open_failed["PRIORITY"], "4", "a warning: {open_failed}");
    assert!(open_failed["MESSAGE"]
        .as_str()
        .unwrap()
        .contains("cannot open the serial port"));
    // Only gps9's records match the filter.
    assert!(records.iter().all(|r| r["DEVICE_ID"] == "gps9"));
}
