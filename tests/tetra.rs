//! The `tetra` driver end to end: a simulated base radio speaking the PEI (the protocol
//! crate's `sim::tetra`, answering AT commands as the references describe) on a real
//! pseudo-terminal, the daemon reading it as a serial port, central on a real broker receiving
//! the handhelds' reports and sending texts to them.
#![allow(clippy::disallowed_methods)] // test threads may block (clippy.toml bans it in the daemon)

mod common;

use common::*;
use serde_json::{json, Value};
use stationd::sim::tetra::{self as sim, SimRadio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(30);

/// A station with base radio `radio0` on a pty at `<dir>/radio0`, taking signed commands.
fn radio_station(broker: &Broker, extra: &str) -> Station {
    let station = common::dispatch::station(broker, "");
    let link = station.dir.path().join("radio0");
    station.append_config(&format!(
        r#"
[[device]]
id = "radio0"
driver = "tetra"
path = "{}"
baud = 115200
poll_s = 1
emergency_statuses = [0x8005]
{extra}
[device.radios]
"1001" = {{ id = "hh-1001", officer = "P-0417", callsign = "Ji-03" }}
"1002" = {{ id = "car-03-radio", car = "car-03" }}
"#,
        link.display()
    ));
    station
}

fn of_kind<'a>(all: &'a [Msg], kind: &str) -> Vec<&'a Msg> {
    all.iter().filter(|m| m.json["kind"] == kind).collect()
}

fn count(m: &[Msg], kind: &str) -> usize {
    of_kind(m, kind).len()
}

fn new_radio() -> Arc<Mutex<SimRadio>> {
    let mut r = SimRadio::new("2001", "9001");
    r.battery = Some(80);
    Arc::new(Mutex::new(r))
}

#[test]
fn a_base_radio_is_initialised_polled_and_its_handhelds_reports_reach_central() {
    let broker = Broker::started();
    let central = Subscriber::connect(broker.port, "central-tetra");
    let station = radio_station(&broker, "");
    let radio = new_radio();
    let mut pty = PtyRadio::plug_in(&station.dir.path().join("radio0"), radio.clone());
    let daemon = station.start();

    // Initialised in order, then polled: the radio's own state, by exception.
    assert!(
        central.wait(LONG, |m| count(m, "radio.signal") >= 1),
        "log:\n{}",
        daemon.log_text()
    );
    let commands = radio.lock().unwrap().commands.clone();
    assert_eq!(
        commands[..6],
        [
            "ATE0",
            "AT+CTOM=0",
            "AT+CTSP=1,3,130",
            "AT+CTSP=1,2,20",
            "AT+CTSP=1,3,10",
            "AT+CTSDS=12,0,0,0,1"
        ]
    );
    let all = central.all();
    let signal = of_kind(&all, "radio.signal")[0];
    assert_eq!(
        signal.topic,
        "stations/test-st01/telemetry/radio0/radio.signal"
    );
    let d = &signal.json["data"];
    assert_eq!(
        (
            d["dbm"].as_i64(),
            d["talkgroup"].as_str(),
            d["issi"].as_str(),
            d["battery_pct"].as_u64()
        ),
        (Some(-73), Some("9001"), Some("2001"), Some(80))
    );
    assert_eq!(count(&all, "device.online"), 1);
    // The technician's view.
    let devices = station.cli(&["devices"]);
    let shown = String::from_utf8_lossy(&devices.stdout);
    assert!(
        shown.contains("-73 dBm · TG 9001 · ISSI 2001"),
        "stationd devices:\n{shown}"
    );
    // Polls go on every second; a small change is not news, a large one is.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        count(&central.all(), "radio.signal"),
        1,
        "unchanged: nothing sent"
    );
    radio.lock().unwrap().rssi = 10;
    assert!(central.wait(LONG, |m| of_kind(m, "radio.signal")
        .iter()
        .any(|s| s.json["data"]["dbm"] == -93)));

    // The handhelds: an emergency status, an ordinary one, a text, a location report with
    // the emergency reason, garbage in between, a talk burst.
    pty.say(&sim::status("1001", "2001", 0));
    pty.say(&sim::status("1002", "2001", 0x8002));
    let mut garbage = vec![0xFFu8; 3000];
    garbage.extend(b"\r\n\x00\x01+CTSDSR: 12,1001,0,2001,0,84\r\nOK\r\n");
    pty.say(&garbage);
    pty.say(&sim::text_ucs2(
        "09011638300001001",
        "2001",
        4,
        "已到达现场",
    ));
    pty.say(&sim::location(
        "1001",
        "2001",
        -33.8568,
        -70.6483,
        Some(60.0),
        225.0,
        2,
    ));
    pty.say(&sim::status("1001", "2001", 0x8005));
    let (start, end) = sim::group_call(3, "1002", "9001");
    pty.say(&start);
    std::thread::sleep(Duration::from_millis(1500));
    pty.say(&end);
    assert!(
        central.wait(LONG, |m| count(m, "radio.call") >= 1
            && count(m, "radio.emergency") >= 3),
        "log:\n{}",
        daemon.log_text()
    );
    let all = central.all();
    let alarms = of_kind(&all, "radio.emergency");
    let first = alarms[0];
    assert_eq!(first.topic, "stations/test-st01/event/radio.emergency");
    assert_eq!(first.json["prio"], "alarm");
    assert_eq!(first.json["device"], "hh-1001");
    assert_eq!(
        (
            first.json["data"]["officer"].as_str(),
            first.json["data"]["callsign"].as_str(),
            first.json["data"]["source"].as_str()
        ),
        (Some("P-0417"), Some("Ji-03"), Some("status"))
    );
    assert_eq!(alarms[1].json["data"]["source"], "location");
    assert_eq!(alarms[2].json["data"]["status"], 0x8005);
    let status = of_kind(&all, "radio.status")[0];
    assert_eq!(
        (
            status.json["device"].as_str(),
            status.json["data"]["car"].as_str(),
            status.json["data"]["status"].as_u64()
        ),
        (Some("car-03-radio"), Some("car-03"), Some(0x8002))
    );
    let text = of_kind(&all, "radio.text")[0];
    assert_eq!(
        (
            text.json["device"].as_str(),
            text.json["data"]["text"].as_str(),
            text.json["data"]["coding"].as_str()
        ),
        (Some("hh-1001"), Some("已到达现场"), Some("ucs2")),
        "a full TSI is read as its ISSI"
    );
    let position = of_kind(&all, "position")[0];
    assert_eq!(
        position.topic,
        "stations/test-st01/telemetry/hh-1001/position"
    );
    let p = &position.json["data"];
    assert!((p["lat"].as_f64().unwrap() + 33.8568).abs() < 1e-4, "{p}");
    assert!((p["lon"].as_f64().unwrap() + 70.6483).abs() < 1e-4, "{p}");
    assert_eq!(
        (p["reason"].as_str(), p["course_deg"].as_f64()),
        (Some("emergency"), Some(225.0))
    );
    let call = of_kind(&all, "radio.call")[0];
    assert_eq!(call.json["device"], "car-03-radio");
    let talk = call.json["data"]["talk_s"].as_f64().unwrap();
    assert!((1.0..10.0).contains(&talk), "talked {talk} s");
    assert_eq!(call.json["data"]["called"], "9001");
    // The garbage was dropped, counted and logged; the radio is still polled.
    let log = daemon.log_text();
    assert!(log.contains("tetra.line_oversized"), "log:\n{log}");
    let polls = radio.lock().unwrap().commands.len();
    assert!(wait_until(LONG, || radio.lock().unwrap().commands.len() > polls + 4));
    // The handhelds are on the board, via the base radio.
    let devices = String::from_utf8_lossy(&station.cli(&["devices"]).stdout).to_string();
    assert!(
        devices.contains("hh-1001") && devices.contains("car-03-radio"),
        "{devices}"
    );
    // P-0417's radio talked, but this station keeps no staffing (no [staffing], roster or
    // crews): nothing of staffing reaches central.
    assert!(
        !central
            .all()
            .iter()
            .any(|m| m.topic.ends_with("/state/staffing") || m.json["kind"] == "staffing.changed"),
        "staffing published by a station that keeps none"
    );
}

#[test]
fn dispatch_texts_a_handheld_and_hears_whether_it_was_delivered() {
    let broker = Broker::started();
    let central = Subscriber::connect(broker.port, "central-tetra-text");
    let station = radio_station(&broker, "");
    let radio = new_radio();
    let _pty = PtyRadio::plug_in(&station.dir.path().join("radio0"), radio.clone());
    let daemon = station.start();
    assert!(
        central.wait(LONG, |m| count(m, "radio.signal") >= 1),
        "log:\n{}",
        daemon.log_text()
    );
    let answer = |id: &str| -> Value { common::dispatch::answer(&central, id, LONG, &daemon) };

    // Sent, taken by the radio, delivered.
    common::dispatch::send(
        broker.port,
        "radio.text",
        "r-1",
        json!({"to": "1001", "text": "请到文化路口 110"}),
    );
    let a = answer("r-1");
    assert_eq!(a["status"], "done", "{a}");
    assert_eq!(
        (
            a["result"]["delivered"].as_bool(),
            a["result"]["coding"].as_str()
        ),
        (Some(true), Some("ucs2")),
        "{a}"
    );
    let (dest, pdu) = radio.lock().unwrap().sent[0].clone();
    assert_eq!(dest, "1001");
    match stationd::tetra::sds::parse(12, &pdu, pdu.len() * 8) {
        stationd::tetra::sds::Sds::Text {
            text, reference, ..
        } => {
            assert_eq!(text, "请到文化路口 110");
            assert_eq!(
                Some(a["result"]["reference"].as_u64().unwrap() as u8),
                reference
            );
        }
        other => panic!("the radio got {other:?}"),
    }

    // Delivery failed at the destination: failed, with the status.
    radio.lock().unwrap().report_status = Some(0x41);
    common::dispatch::send(
        broker.port,
        "radio.text",
        "r-2",
        json!({"to": "1001", "text": "Come in"}),
    );
    let a = answer("r-2");
    assert_eq!(a["status"], "failed", "{a}");
    assert!(
        a["reason"].as_str().unwrap().contains("not delivered"),
        "{a}"
    );
    assert_eq!(a["result"]["coding"], "latin1");

    // To a group, no report asked: done once the radio took it.
    common::dispatch::send(
        broker.port,
        "radio.text",
        "r-3",
        json!({"to": "9001", "text": "All units", "report": false}),
    );
    let a = answer("r-3");
    assert_eq!(
        (a["status"].as_str(), a["result"]["delivered"].as_null()),
        (Some("done"), Some(())),
        "{a}"
    );

    // The radio refuses: failed with the reason; bad arguments: refused, nothing sent.
    radio.lock().unwrap().refuse_sds = Some(5);
    common::dispatch::send(
        broker.port,
        "radio.text",
        "r-4",
        json!({"to": "1001", "text": "x"}),
    );
    let a = answer("r-4");
    assert_eq!(a["status"], "failed", "{a}");
    assert!(
        a["reason"].as_str().unwrap().contains("+CMGS status 5"),
        "{a}"
    );
    let sent = radio.lock().unwrap().sent.len();
    common::dispatch::send(
        broker.port,
        "radio.text",
        "r-5",
        json!({"to": "ten-oh-one", "text": "x"}),
    );
    assert_eq!(answer("r-5")["status"], "refused");
    assert_eq!(radio.lock().unwrap().sent.len(), sent);
}

#[test]
fn a_hung_radio_is_initialised_again_and_an_unplugged_one_reopened() {
    let broker = Broker::started();
    let central = Subscriber::connect(broker.port, "central-tetra-hung");
    let station = radio_station(&broker, "");
    let link = station.dir.path().join("radio0");
    let radio = new_radio();
    let pty = PtyRadio::plug_in(&link, radio.clone());
    let daemon = station.start();
    assert!(
        central.wait(LONG, |m| count(m, "device.online") >= 1),
        "log:\n{}",
        daemon.log_text()
    );

    // Hung: three polls without an answer, then offline "not answering" and ATE0 again.
    radio.lock().unwrap().hung = true;
    assert!(
        central.wait(Duration::from_secs(60), |m| of_kind(m, "device.offline")
            .iter()
            .any(|o| o.json["data"]["reason"] == "not answering")),
        "log:\n{}",
        daemon.log_text()
    );
    radio.lock().unwrap().hung = false;
    assert!(
        central.wait(LONG, |m| count(m, "device.online") >= 2),
        "log:\n{}",
        daemon.log_text()
    );
    // The sim heard the commands a hung radio ignored: the init sequence went out twice.
    let ate0 = radio
        .lock()
        .unwrap()
        .commands
        .iter()
        .filter(|c| *c == "ATE0")
        .count();
    assert_eq!(ate0, 2, "initialised at start and after it hung");

    // A text while the port is gone fails at once with the reason.
    pty.unplug();
    assert!(central.wait(LONG, |m| of_kind(m, "device.offline")
        .iter()
        .any(|o| o.json["data"]["reason"] == "port closed")));
    let devices = String::from_utf8_lossy(&station.cli(&["devices"]).stdout).to_string();
    assert!(devices.contains("offline"), "{devices}");
    common::dispatch::send(
        broker.port,
        "radio.text",
        "r-gone",
        json!({"to": "1001", "text": "x"}),
    );
    assert!(wait_until(LONG, || !common::dispatch::answers(
        &central, "r-gone"
    )
    .is_empty()));
    let a = &common::dispatch::answers(&central, "r-gone")[0];
    assert_eq!(a["status"], "failed", "{a}");
    assert!(a["reason"].as_str().unwrap().contains("not open"), "{a}");

    // Plugged in again: opened, initialised, online.
    let radio = new_radio();
    let _pty = PtyRadio::plug_in(&link, radio.clone());
    assert!(
        central.wait(LONG, |m| count(m, "device.online") >= 3),
        "log:\n{}",
        daemon.log_text()
    );
    assert_eq!(radio.lock().unwrap().commands[0], "ATE0");
}
