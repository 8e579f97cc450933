//! Dispatch end to end, on loopback with the real drivers and simulators: a signed `dispatch`
//! command → the nearest ready crew chosen from the cars' real JT/T 808 positions → the car's
//! simulated terminal gets the 0x8300 text and answers, the simulated base radio carries the
//! SDS to the car radio and the officer's handheld and returns their delivery reports → the
//! officer's acknowledgement status → the car drives (JT/T 808 positions on the terminal's own
//! clock) and arrives, with jitter at the radius → the car radio's "closed" status clears the
//! incident, all while central's broker is down; afterwards central has every event, in order,
//! and `P/state/dispatch` has the figures. And a crew that never acknowledges raises the alarm.
#![allow(clippy::disallowed_methods)] // test threads may block (clippy.toml bans it in the daemon)

mod common;

use common::terminal::Terminal;
use common::*;
use serde_json::{json, Value};
use stationd::codec::jt808::Edition;
use stationd::sim::jt808 as sim;
use stationd::sim::tetra::SimRadio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(30);
/// The incident: Jinan, Quancheng Square.
const AT: (f64, f64) = (36.6612, 117.0194);
/// Metres per degree of latitude on the sphere the daemon's distances use.
const M_PER_DEG: f64 = 6_371_008.8 * std::f64::consts::PI / 180.0;
const CAR_03: &str = "013912345678";
const CAR_04: &str = "013900000004";
const ACK: u16 = 0x8002;
const CLOSED: u16 = 0x8004;

/// `m` metres south of the incident.
fn south(m: f64) -> (f64, f64) {
    (AT.0 - m / M_PER_DEG, AT.1)
}

/// A station with two cars (car-03: terminal, car radio ISSI 2003, officer P-0417 with
/// handheld 1001; car-04: terminal, L-0001), the base radio on a pty and the fleet listener.
/// `dispatch_extra`: more `[dispatch]` keys.
fn station(broker: &Broker, dispatch_extra: &str) -> (Station, u16, std::path::PathBuf) {
    let station = Station::new(broker.port, "");
    dispatch::take_commands(&station, "");
    let port = free_port();
    let radio_link = station.dir.path().join("radio0");
    station.append_config(&format!(
        r#"
[[device]]
id = "fleet"
driver = "jt808"
listen = "tcp://127.0.0.1:{port}"
min_distance_m = 1
min_interval_s = 0
max_clock_skew_s = 3153600000
[device.terminals]
"{CAR_03}" = "car-03"
"{CAR_04}" = "car-04"

[[device]]
id = "radio0"
driver = "tetra"
path = "{radio}"
baud = 115200
poll_s = 1
[device.radios]
"1001" = {{ id = "hh-1001", officer = "P-0417" }}
"2003" = {{ id = "car-03-radio", car = "car-03" }}

{ROTATION}
[[staffing.car]]
id = "car-03"
radio = "car-03-radio"
auxiliaries = 0
crew = ["P-0417"]
[[staffing.car]]
id = "car-04"
auxiliaries = 0
crew = ["L-0001"]

[dispatch]
ack_statuses = [{ACK:#06x}]
clear_statuses = [{CLOSED:#06x}]
terminal_ack_events = [1]
terminal_clear_events = [3]
{dispatch_extra}
"#,
        radio = radio_link.display(),
    ));
    (station, port, radio_link)
}

/// Central sends `car` (or `"nearest"`) to a call for help at the incident, as request `id`.
fn order(broker_port: u16, id: &str, incident: &str, car: &str) {
    dispatch::send(
        broker_port,
        "dispatch",
        id,
        json!({"incident": incident, "type": "help", "location": {"lat": AT.0, "lon": AT.1}, "car": car}),
    );
}

/// A 0x0200 position at `p`, on the terminal's clock `at_ms`; the platform's result.
fn position(t: &mut Terminal, p: (f64, f64), at_ms: i64) -> u8 {
    let body = sim::Location {
        lat: p.0,
        lon: p.1,
        speed_kmh: 40.0,
        time_bcd: sim::bcd_time(at_ms),
        ..Default::default()
    }
    .body();
    t.request(0x0200, &body)
}

/// Answers the platform's next message, which must be a 0x8300 text: 0x0001 with `result`.
/// Returns (flags, text).
fn answer_text(t: &mut Terminal, result: u8) -> (u8, String) {
    let f = t.recv().expect("the order as a text message");
    assert_eq!(f.header.msg_id, 0x8300, "a text message");
    let (text, _, _) = encoding_rs::GBK.decode(&f.body[1..]);
    let mut answer = f.header.serial.to_be_bytes().to_vec();
    answer.extend(0x8300u16.to_be_bytes());
    answer.push(result);
    t.send(0x0001, &answer);
    (f.body[0], text.into_owned())
}

fn crew<'a>(staffing: &'a Value, car: &str) -> &'a Value {
    staffing["crews"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["car"] == car))
        .unwrap_or(&Value::Null)
}

/// Waits until the latest `P/state/{name}` satisfies `cond`.
fn wait_state(
    central: &Subscriber,
    daemon: &Daemon,
    name: &str,
    cond: impl Fn(&Value) -> bool,
) -> Value {
    let topic = format!("stations/test-st01/state/{name}");
    assert!(
        wait_until(LONG, || latest_on(central, &topic)
            .is_some_and(|s| cond(&s))),
        "{topic} never got there; last: {:#}\nlog:\n{}",
        latest_on(central, &topic).unwrap_or_default(),
        daemon.log_text()
    );
    latest_on(central, &topic).unwrap()
}

fn ms_of(ts: &Value) -> i64 {
    let t = time::OffsetDateTime::parse(
        ts.as_str().expect("a timestamp"),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// Everything of `kind` central received, whole envelopes.
fn envelopes_of(central: &Subscriber, kind: &str) -> Vec<Value> {
    central
        .envelopes()
        .into_iter()
        .filter(|e| e["kind"] == kind)
        .collect()
}

#[test]
fn the_nearest_crew_is_sent_on_every_path_acknowledges_arrives_and_clears_through_an_outage() {
    // The box clock synchronised (as root): the response time counts in the figures. Without
    // it the arrival says its clock is `unsynced` and the figures leave it out.
    let synced = KernelClockSynced::set();
    let mut broker = Broker::started();
    let central = Subscriber::connect(broker.port, "central-dispatch");
    let (station, port, radio_link) = station(&broker, "");
    let radio = Arc::new(Mutex::new(SimRadio::new("9999", "9001")));
    let mut pty = PtyRadio::plug_in(&radio_link, radio.clone());
    let daemon = station.start();
    wait_online(&central, &daemon);
    let roster =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/staffing/roster.csv");
    station.cli_ok(&["roster", "import", roster.to_str().unwrap()]);
    station.cli_ok(&["duty", "on", "P-0417"]);
    station.cli_ok(&["duty", "on", "L-0001"]);
    let mut t3 = Terminal::online(port, CAR_03, Edition::V2013);
    let mut t4 = Terminal::online(port, CAR_04, Edition::V2013);
    // car-03's radio is heard (an ordinary status), and both cars say where they are:
    // car-03 1.5 km from the incident, car-04 3 km.
    pty.say(&stationd::sim::tetra::status("2003", "9999", 0x8001));
    let now = stationd::clock::unix_ms();
    assert_eq!(position(&mut t3, south(1510.0), now - 2000), 0);
    assert_eq!(position(&mut t4, south(3000.0), now - 2000), 0);
    wait_state(&central, &daemon, "staffing", |s| {
        crew(s, "car-03")["readiness"] == "ready" && crew(s, "car-04")["readiness"] == "ready"
    });

    // Central sends the nearest ready crew to a priority-1 call.
    dispatch::send(
        broker.port,
        "dispatch",
        "d-1",
        json!({"incident": "J-1", "priority": 1, "type": "dispute", "summary": "两人争吵",
               "location": {"lat": AT.0, "lon": AT.1, "address": "泉城广场"}, "car": "nearest"}),
    );
    let ordered = wait_event(&central, &daemon, "dispatch.ordered", "J-1", |d| {
        d["incident"] == "J-1"
    });
    assert_eq!(ordered["crew"]["car"], "car-03", "{ordered:#}");
    let chosen = ordered["crew"]["chosen"].as_str().unwrap();
    assert!(
        chosen.starts_with("nearest ready crew: car-03 at 1.5 km")
            && chosen.contains("car-04 at 3.0 km"),
        "{chosen}"
    );
    let ordered_ms = ms_of(&ordered["crew"]["ordered"]);

    // The terminal shows it, reads it aloud, as an emergency (priority 1), and answers.
    let (flags, text) = answer_text(&mut t3, 0);
    assert_eq!(flags, 0x01 | 0x04 | 0x08, "emergency, display, TTS");
    assert_eq!(text, "P1 J-1 dispute @ 泉城广场: 两人争吵");
    // The radio carried it to the car radio and the officer's handheld (and reported delivery).
    assert!(wait_until(LONG, || radio.lock().unwrap().sent.len() >= 2));
    let mut to: Vec<String> = radio
        .lock()
        .unwrap()
        .sent
        .iter()
        .map(|(d, _)| d.clone())
        .collect();
    to.sort();
    assert_eq!(to, ["1001", "2003"]);
    let (_, pdu) = radio.lock().unwrap().sent[0].clone();
    match stationd::tetra::sds::parse(12, &pdu, pdu.len() * 8) {
        stationd::tetra::sds::Sds::Text { text, .. } => {
            assert_eq!(text, "P1 J-1 dispute @ 泉城广场: 两人争吵")
        }
        other => panic!("the radio got {other:?}"),
    }
    // Each path's outcome is published as it settles.
    wait_event(
        &central,
        &daemon,
        "dispatch.relayed",
        "three paths delivered",
        |_| {
            event_data(&central, "dispatch.relayed")
                .iter()
                .filter(|d| d["incident"] == "J-1" && d["state"] == "delivered")
                .count()
                == 3
        },
    );
    // Not acknowledged yet: the answer waits. The officer presses "received" on the handheld.
    assert!(dispatch::answers(&central, "d-1").is_empty());
    pty.say(&stationd::sim::tetra::status("1001", "9999", ACK));
    let a = dispatch::answer(&central, "d-1", LONG, &daemon);
    assert_eq!(a["status"], "done", "{a:#}");
    let c = &a["result"]["crew"];
    assert_eq!(
        c["acknowledged"]["by"],
        format!("radio hh-1001 status 0x{ACK:04X}"),
        "{a:#}"
    );
    let paths: Vec<(String, String, String)> = c["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["via"].as_str().unwrap().to_string(),
                p["to"].as_str().unwrap().to_string(),
                p["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        paths,
        [
            ("terminal".into(), "car-03".into(), "delivered".into()),
            ("radio".into(), "2003".into(), "delivered".into()),
            ("radio".into(), "1001".into(), "delivered".into())
        ]
    );
    assert!(c["acknowledged"]["after_ms"].as_i64().unwrap() > 0);
    // The crew is on call; the other is still ready.
    wait_state(&central, &daemon, "staffing", |s| {
        crew(s, "car-03")["readiness"] == "on_call" && crew(s, "car-04")["readiness"] == "ready"
    });
    let open = wait_state(&central, &daemon, "dispatch", |s| {
        s["open"][0]["incident"] == "J-1"
    });
    assert_eq!(open["open"][0]["crews"][0]["car"], "car-03");

    // Central's broker goes away; the crew carries on.
    let before_cut = central.seqs().into_iter().max().unwrap_or(0);
    broker.stop();
    // The car drives in on the terminal's clock (a position every 10 s): enters the radius at
    // 95 m, wanders to 120 m (inside the exit band), stays; then jitters across the radius.
    let t0 = (ordered_ms / 1000 + 1) * 1000;
    let way = [
        1500.0, 1200.0, 900.0, 600.0, 300.0, 95.0, 120.0, 60.0, 40.0, 160.0, 90.0, 170.0, 80.0,
    ];
    for (k, m) in way.iter().enumerate() {
        assert_eq!(position(&mut t3, south(*m), t0 + 10_000 * k as i64), 0);
    }
    // The car radio says the call is closed.
    pty.say(&stationd::sim::tetra::status("2003", "9999", CLOSED));
    assert!(
        wait_until(LONG, || daemon.log_text().contains("dispatch.cleared")),
        "log:\n{}",
        daemon.log_text()
    );
    broker.start();

    // Everything reached central afterwards, in order, flagged historical, no gap.
    let arrived = wait_event(&central, &daemon, "dispatch.arrived", "J-1", |d| {
        d["incident"] == "J-1"
    });
    let cleared = wait_event(&central, &daemon, "dispatch.cleared", "J-1", |d| {
        d["incident"] == "J-1"
    });
    let entered_ms = t0 + 50_000;
    assert_eq!(
        arrived["response_ms"],
        entered_ms - ordered_ms,
        "{arrived:#}"
    );
    assert_eq!(ms_of(&arrived["at"]), entered_ms);
    assert_eq!(arrived["car"], "car-03");
    assert_eq!(arrived["by"], "car-03");
    // 1500 → 95 → 120 → 60, arrived 20 s after entering: every step over 15 m counts.
    let driven = arrived["driven_m"].as_f64().unwrap();
    assert!((driven - 1490.0).abs() <= 2.0, "driven {driven} m");
    assert_eq!(
        arrived["positions"], 8,
        "the positions from the order to arrival"
    );
    assert_eq!(
        envelopes_of(&central, "dispatch.arrived").len(),
        1,
        "jitter across the radius after arriving is not a second arrival"
    );
    assert_eq!(
        (cleared["outcome"].as_str(), cleared["closed_by"].as_str()),
        (Some("closed"), Some("car-03"))
    );
    assert_eq!(cleared["closed_by_first_crew"], true);
    assert_eq!(
        cleared["by"],
        format!("radio car-03-radio status 0x{CLOSED:04X}")
    );
    let seq_of = |kind: &str| envelopes_of(&central, kind)[0]["seq"].as_u64().unwrap();
    assert!(
        seq_of("dispatch.arrived") > before_cut
            && seq_of("dispatch.arrived") < seq_of("dispatch.cleared")
    );
    for kind in ["dispatch.arrived", "dispatch.cleared"] {
        assert_eq!(
            envelopes_of(&central, kind)[0]["historical"],
            true,
            "{kind}"
        );
    }
    assert!(
        wait_until(LONG, || {
            let seqs = central.seqs();
            let max = seqs.iter().copied().max().unwrap_or(0);
            max >= seq_of("dispatch.cleared") && missing_seqs(&seqs, max).is_empty()
        }),
        "a gap in central's seqs"
    );

    // The crew is ready again; the figures count the call.
    wait_state(&central, &daemon, "staffing", |s| {
        crew(s, "car-03")["readiness"] == "ready"
    });
    let state = wait_state(&central, &daemon, "dispatch", |s| {
        s["open"].as_array().is_some_and(|o| o.is_empty())
            && s["figures"]["station"]["arrived"] == 1
    });
    let f = &state["figures"]["station"];
    let response_s = (entered_ms - ordered_ms) as f64 / 1000.0;
    assert_eq!(
        (f["dispatched"].as_u64(), f["acknowledged"].as_u64()),
        (Some(1), Some(1)),
        "{state:#}"
    );
    if synced.is_some() {
        assert_eq!(arrived["clock"], "synced");
        assert_eq!(
            f["median_response_s"].as_f64(),
            Some(response_s),
            "{state:#}"
        );
        assert_eq!(
            state["figures"]["crews"]["car-03"]["p90_response_s"],
            response_s
        );
    } else {
        eprintln!("the box clock is not synchronised (not root): the response time is left out of the figures");
        assert_eq!(arrived["clock"], "unsynced");
        assert_eq!(
            (
                f["median_response_s"].as_f64(),
                f["unsynced_responses"].as_u64()
            ),
            (None, Some(1))
        );
    }
    assert_eq!(f["first_crew_closure_share"], 1.0);
    assert_eq!(state["figures"]["shifts"]["1"]["dispatched"], 1);
    // The technician's view on the box says the same.
    let view = station.cli_ok(&["dispatch"]);
    assert!(
        view.contains("J-1 P1 dispute — 两人争吵 @ 泉城广场 [cleared (closed)]")
            && view.contains("car-03: acknowledged after")
            && view.contains(&format!("arrived after {response_s:.0} s"))
            && view.contains("1 arrived"),
        "{view}"
    );
}

#[test]
fn a_crew_that_does_not_acknowledge_raises_the_alarm_and_stays_on_call_across_a_restart() {
    let broker = Broker::started();
    let central = Subscriber::connect(broker.port, "central-dispatch-unack");
    let (station, port, radio_link) = station(&broker, "");
    let radio = Arc::new(Mutex::new(SimRadio::new("9999", "9001")));
    let _pty = PtyRadio::plug_in(&radio_link, radio);
    let daemon = station.start();
    wait_online(&central, &daemon);
    let mut t4 = Terminal::online(port, CAR_04, Edition::V2013);

    // Refused before anything is sent: a car the station does not have.
    order(broker.port, "u-0", "J-2", "car-09");
    let a = dispatch::answer(&central, "u-0", LONG, &daemon);
    assert_eq!(a["status"], "refused");
    assert!(
        a["reason"].as_str().unwrap().contains("car-03, car-04"),
        "{a}"
    );
    // "Nearest" with nobody ready (no one on duty): failed, saying why of each crew.
    order(broker.port, "u-1", "J-2", "nearest");
    let a = dispatch::answer(&central, "u-1", LONG, &daemon);
    assert_eq!(a["status"], "failed", "{a}");
    assert!(
        a["reason"].as_str().unwrap().contains("car-03 off_duty"),
        "{a}"
    );

    // car-04 by name, five seconds to acknowledge: the terminal takes it, nobody acknowledges.
    dispatch::send(
        broker.port,
        "dispatch",
        "u-2",
        json!({"incident": "J-2", "priority": 3, "type": "help", "location": {"lat": AT.0, "lon": AT.1},
               "car": "car-04", "ack_within_s": 5}),
    );
    let (flags, _) = answer_text(&mut t4, 0);
    assert_eq!(flags, 0x04 | 0x08, "priority 3 is not an emergency");
    let alarm = wait_event(&central, &daemon, "dispatch.unacknowledged", "J-2", |d| {
        d["incident"] == "J-2"
    });
    assert_eq!(alarm["crew"]["car"], "car-04");
    assert_eq!(alarm["delivered_to"], json!(["terminal car-04"]));
    let env = &envelopes_of(&central, "dispatch.unacknowledged")[0];
    assert_eq!(env["prio"], "alarm");
    let ordered = &event_data(&central, "dispatch.ordered")[0];
    let late_by = ms_of(&env["ts"]) - ms_of(&ordered["crew"]["ordered"]);
    assert!(
        (5_000..8_000).contains(&late_by),
        "alarm {late_by} ms after the order"
    );
    let a = dispatch::answer(&central, "u-2", LONG, &daemon);
    assert_eq!(a["status"], "done", "delivered, not acknowledged: {a}");
    assert_eq!(a["result"]["crew"]["acknowledged"], Value::Null);
    assert_eq!(a["result"]["crew"]["unacknowledged_alarm"], true);

    // car-03 is sent while nobody is there to acknowledge; the station stops meanwhile: it
    // does not wait for the crew, and the answer says what it knew.
    order(broker.port, "u-5", "J-3", "car-03");
    wait_event(&central, &daemon, "dispatch.ordered", "J-3", |d| {
        d["incident"] == "J-3"
    });
    let (code, took) = daemon.terminate();
    assert_eq!(code, Some(0));
    assert!(took < Duration::from_secs(10), "the stop took {took:?}");
    // A restart: the incidents and their crews are still there.
    drop(t4);
    let restarted_ms = stationd::clock::unix_ms();
    let daemon = station.start();
    let state = wait_state(&central, &daemon, "dispatch", |s| {
        ms_of(&s["ts"]) > restarted_ms && s["open"][0]["incident"] == "J-2"
    });
    assert_eq!(state["open"][0]["crews"][0]["unacknowledged_alarm"], true);
    let a = dispatch::answer(&central, "u-5", LONG, &daemon);
    assert_eq!(a["status"], "failed", "{a}");
    assert!(
        a["reason"]
            .as_str()
            .unwrap()
            .contains("stopped before the crew acknowledged"),
        "{a}"
    );
    assert_eq!(state["open"][1]["crews"][0]["car"], "car-03");
    wait_state(&central, &daemon, "staffing", |s| {
        crew(s, "car-04")["readiness"] == "on_call"
    });
    // Central hands it over elsewhere: cleared, not closed by the crew.
    wait_online(&central, &daemon);
    dispatch::send(
        broker.port,
        "dispatch.clear",
        "u-3",
        json!({"incident": "J-2", "outcome": "handed_over"}),
    );
    let a = dispatch::answer(&central, "u-3", LONG, &daemon);
    assert_eq!(a["status"], "done", "{a}");
    let cleared = wait_event(&central, &daemon, "dispatch.cleared", "J-2", |d| {
        d["incident"] == "J-2"
    });
    assert_eq!(
        (cleared["outcome"].as_str(), cleared["closed_by"].as_str()),
        (Some("handed_over"), None)
    );
    // A cleared incident takes no more crews.
    order(broker.port, "u-4", "J-2", "car-03");
    let a = dispatch::answer(&central, "u-4", LONG, &daemon);
    assert_eq!(a["status"], "refused");
    assert!(a["reason"].as_str().unwrap().contains("was cleared"), "{a}");
    wait_state(&central, &daemon, "staffing", |s| {
        crew(s, "car-04")["readiness"] != "on_call"
    });
    // The driver answers on the terminal: event 1 (preset "received"), later 3 ("closed").
    let mut t4 = Terminal::online(port, CAR_04, Edition::V2013);
    order(broker.port, "u-6", "J-4", "car-04");
    answer_text(&mut t4, 0);
    assert_eq!(t4.request(0x0301, &sim::event_report(1)), 0);
    let a = dispatch::answer(&central, "u-6", LONG, &daemon);
    assert_eq!(
        a["result"]["crew"]["acknowledged"]["by"], "terminal car-04 event 1",
        "{a}"
    );
    assert_eq!(t4.request(0x0301, &sim::event_report(3)), 0);
    let cleared = wait_event(&central, &daemon, "dispatch.cleared", "J-4", |d| {
        d["incident"] == "J-4"
    });
    assert_eq!(
        (cleared["closed_by"].as_str(), cleared["by"].as_str()),
        (Some("car-04"), Some("terminal car-04 event 3"))
    );
}

#[test]
fn an_incident_nobody_clears_expires_and_its_crew_is_stood_down() {
    let broker = Broker::started();
    let central = Subscriber::connect(broker.port, "central-dispatch-expiry");
    // Open at most 3.6 s (the station looks every 0.9 s).
    let (station, _port, _radio) = station(&broker, "max_open_h = 0.001");
    let daemon = station.start();
    wait_online(&central, &daemon);
    order(broker.port, "e-1", "J-9", "car-04");
    // Its terminal is not logged in: the order reached no one, but the crew was sent.
    let a = dispatch::answer(&central, "e-1", LONG, &daemon);
    assert_eq!(a["status"], "failed", "{a}");
    assert!(
        a["reason"].as_str().unwrap().contains("not logged in"),
        "{a}"
    );
    // On call meanwhile (an event: the retained state may skip a state this short).
    let readiness = |state: &'static str| {
        move |d: &Value| {
            d["change"] == "readiness" && d["car"] == "car-04" && d["readiness"] == state
        }
    };
    wait_event(
        &central,
        &daemon,
        "staffing.changed",
        "car-04 on call",
        readiness("on_call"),
    );
    let cleared = wait_event(&central, &daemon, "dispatch.cleared", "J-9", |d| {
        d["incident"] == "J-9"
    });
    assert_eq!(
        (cleared["outcome"].as_str(), cleared["closed_by"].as_str()),
        (Some("expired"), None)
    );
    assert_eq!(cleared["by"], "station: open longer than 0.001 h");
    let open_ms = cleared["open_ms"].as_i64().unwrap();
    assert!(
        (3_600..6_000).contains(&open_ms),
        "cleared after {open_ms} ms"
    );
    let stood_down = wait_event(
        &central,
        &daemon,
        "staffing.changed",
        "car-04 stood down",
        readiness("off_duty"),
    );
    assert_eq!(stood_down["was"], "on_call");
}
