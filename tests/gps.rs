//! The `nmea` driver end to end: real receiver captures written into a real pseudo-terminal,
//! the daemon reading it as a serial port, central receiving positions and health events.
#![allow(clippy::disallowed_methods)] // test threads may block (clippy.toml bans it in the daemon)

mod common;

use common::*;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(30);

/// A pseudo-terminal standing in for a receiver on a serial port: write to `master`, the
/// daemon reads the slave through the symlink `link`.
struct FakeReceiver {
    master: std::fs::File,
    _pty: Pty,
}

impl FakeReceiver {
    fn plug_in(link: &Path) -> FakeReceiver {
        let pty = Pty::at(link);
        FakeReceiver {
            master: pty.master.try_clone().unwrap(),
            _pty: pty,
        }
    }

    /// Writes a capture (comment lines dropped), in serial-sized pieces.
    fn play(&mut self, capture: &str) {
        let text = std::fs::read_to_string(format!(
            "{}/tests/data/{capture}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            self.master.write_all(line.as_bytes()).unwrap();
            self.master.write_all(b"\r\n").unwrap();
        }
        self.master.flush().unwrap();
    }
}

fn gps_station(broker_port: u16) -> Station {
    let station = Station::new(broker_port, "");
    let link = station.dir.path().join("gps0");
    station.append_config(&format!(
        "\n[[device]]\nid = \"gps0\"\ndriver = \"nmea\"\npath = \"{}\"\nbaud = 4800\nmin_distance_m = 0\nmin_interval_s = 0\noffline_after_s = 3\n# replayed captures carry their recording time: believe it even on a synchronised box\nmax_clock_skew_s = 3153600000\n",
        link.display()
    ));
    station
}

fn count(m: &[Msg], kind: &str) -> usize {
    m.iter().filter(|m| m.json["kind"] == kind).count()
}

#[test]
fn a_receiver_on_a_serial_port_reports_positions_and_health_and_survives_unplugging() {
    let broker = Broker::started();
    let central = Subscriber::connect(broker.port, "central-gps");
    let station = gps_station(broker.port);
    let link = station.dir.path().join("gps0");
    let mut receiver = FakeReceiver::plug_in(&link);
    let daemon = station.start();
    assert!(central.wait(LONG, |m| m.iter().any(|m| m.json["state"] == "online")));
    assert!(
        wait_until(LONG, || daemon.log_text().contains("device.port_opened")),
        "log:\n{}",
        daemon.log_text()
    );

    receiver.play("gpsd-bu353s4.log");
    assert!(
        central.wait(LONG, |m| count(m, "position") >= 15),
        "log:\n{}",
        daemon.log_text()
    );
    let all = central.all();
    let pos: Vec<&Msg> = all
        .iter()
        .filter(|m| m.json["kind"] == "position")
        .collect();
    let first = &pos[0];
    assert_eq!(first.topic, "stations/test-st01/telemetry/gps0/position");
    assert_eq!(
        first.json["ts"], "2014-12-31T03:07:19.000Z",
        "the receiver's own time"
    );
    assert_eq!(first.json["clock"], "synced");
    assert_eq!(first.json["prio"], "telemetry");
    let d = &first.json["data"];
    assert_eq!(
        (d["lat"].as_f64(), d["lon"].as_f64()),
        (Some(-37.7847883), Some(175.3148967))
    );
    assert_eq!(
        (
            d["alt_m"].as_f64(),
            d["satellites"].as_u64(),
            d["hdop"].as_f64()
        ),
        (Some(59.9), Some(8), Some(1.1))
    );
    assert_eq!(d["fix_quality"], 1);
    assert!((d["speed_kmh"].as_f64().unwrap() - 1.28).abs() < 0.01);
    assert_eq!(count(&all, "device.online"), 1);
    assert_eq!(count(&all, "gps.fix_acquired"), 1);
    let online = all
        .iter()
        .find(|m| m.json["kind"] == "device.online")
        .unwrap();
    assert_eq!(online.topic, "stations/test-st01/event/device.online");
    assert_eq!(online.json["device"], "gps0");

    // Unplugged: the pty goes away.
    drop(receiver);
    assert!(
        central.wait(LONG, |m| count(m, "device.offline") == 1),
        "log:\n{}",
        daemon.log_text()
    );
    let offline = central
        .all()
        .into_iter()
        .find(|m| m.json["kind"] == "device.offline")
        .unwrap();
    assert_eq!(
        offline.json["data"]["reason"], "port closed",
        "{}",
        offline.json
    );
    // Plugged in again under the same path: the driver reopens it by itself.
    let mut receiver = FakeReceiver::plug_in(&link);
    std::thread::sleep(Duration::from_millis(300));
    let before = count(&central.all(), "position");
    assert!(
        wait_until(LONG, || {
            receiver.play("gpsd-mtk-3301.log");
            central.wait(Duration::from_secs(2), |m| count(m, "position") > before)
        }),
        "log:\n{}",
        daemon.log_text()
    );
    let all = central.all();
    assert_eq!(
        count(&all, "device.online"),
        2,
        "back online after replugging"
    );
    let mtk = all
        .iter()
        .filter(|m| m.json["kind"] == "position")
        .nth(before)
        .unwrap();
    assert!(
        mtk.json["data"]["lat"].as_f64().unwrap() > 52.0,
        "the new receiver's position: {}",
        mtk.json
    );

    // Silence: offline after offline_after_s (3 s).
    assert!(central.wait(LONG, |m| count(m, "device.offline") == 2));
    let silent = central
        .all()
        .into_iter()
        .filter(|m| m.json["kind"] == "device.offline")
        .nth(1)
        .unwrap();
    assert_eq!(silent.json["data"]["reason"], "silent");
    let log = daemon.log_text();
    assert!(
        log.contains("nmea.sentence_rejected"),
        "the $POLYN lines without checksum are logged"
    );
}

#[test]
fn an_absent_serial_device_does_not_stop_the_daemon() {
    let broker = Broker::started();
    let central = Subscriber::connect(broker.port, "central-gps-absent");
    let station = gps_station(broker.port);
    let daemon = station.start();
    assert!(central.wait(LONG, |m| m.iter().any(|m| m.json["state"] == "online")));
    assert!(wait_until(LONG, || daemon
        .log_text()
        .contains("device.open_failed")));
    send_lines(station.ingest_port, &[line("still.working", "event", 1)]);
    assert!(central.wait(LONG, |m| count(m, "still.working") == 1));
    // It appears later: picked up without a restart.
    let link = station.dir.path().join("gps0");
    let mut receiver = FakeReceiver::plug_in(&link);
    assert!(
        wait_until(LONG, || daemon.log_text().contains("device.port_opened")),
        "log:\n{}",
        daemon.log_text()
    );
    std::thread::sleep(Duration::from_millis(200));
    receiver.play("gpsd-beidou-gb.log");
    assert!(
        central.wait(LONG, |m| count(m, "gps.fix_acquired") == 1),
        "log:\n{}",
        daemon.log_text()
    );
}
