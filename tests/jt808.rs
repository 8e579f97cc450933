//! JT/T 808 end to end: a terminal simulator speaking the real protocol over TCP to the
//! daemon, central receiving positions and alarms.
#![allow(clippy::disallowed_methods)] // test threads may block (clippy.toml bans it in the daemon)

mod common;

use common::terminal::Terminal;
use common::*;
use stationd::codec::jt808::Edition;
use stationd::sim::jt808 as sim;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(30);

/// A 0x0200 body, positioned, north-east. `speed_dkmh` in 0.1 km/h; `time` is BCD
/// YYMMDDhhmmss in GMT+8.
fn location(
    lat: f64,
    lon: f64,
    speed_dkmh: u16,
    alarm: u32,
    time: [u8; 6],
    extra: &[u8],
) -> Vec<u8> {
    sim::Location {
        alarm,
        lat,
        lon,
        speed_kmh: f64::from(speed_dkmh) / 10.0,
        time_bcd: time,
        extra: extra.to_vec(),
        ..Default::default()
    }
    .body()
}

/// A station with a JT/T 808 listener `fleet` (car-03, car-07) and `extra` keys on it. The
/// reports these tests send carry fixed 2026 times: unless `extra` sets `max_clock_skew_s`,
/// they are believed even on a box whose clock is synchronised and years later.
fn fleet_station(broker_port: u16, extra: &str) -> (Station, u16) {
    let station = Station::new(broker_port, "");
    let port = free_port();
    let skew = if extra.contains("max_clock_skew_s") {
        ""
    } else {
        "max_clock_skew_s = 3153600000\n"
    };
    station.append_config(&format!(
        "\n[[device]]\nid = \"fleet\"\ndriver = \"jt808\"\nlisten = \"tcp://127.0.0.1:{port}\"\nmin_interval_s = 0\nmin_distance_m = 0\n{skew}{extra}\n[device.terminals]\n\"013912345678\" = {{ car = \"car-03\", plate = \"鲁A12345\" }}\n\"00000000013912344329\" = \"car-07\"\n"
    ));
    (station, port)
}

fn of_kind<'a>(m: &'a [Msg], kind: &str) -> Vec<&'a Msg> {
    m.iter().filter(|m| m.json["kind"] == kind).collect()
}

#[test]
fn a_known_terminal_registers_authenticates_and_reports() {
    let broker = Broker::started();
    let central = Subscriber::connect(broker.port, "central-jt808");
    let (station, port) = fleet_station(broker.port, "");
    let daemon = station.start();
    assert!(central.wait(LONG, |m| m.iter().any(|m| m.json["state"] == "online")));

    let mut t = Terminal::connect(port, "013912345678", Edition::V2013);
    assert_eq!(t.authenticate("wrong-code"), 1, "no code issued yet: fail");
    let (r, code) = t.register("鲁A12345");
    assert_eq!(r, 0);
    assert!(code.len() >= 8);
    assert_eq!(
        t.request(
            0x0200,
            &location(
                36.66,
                117.02,
                300,
                0,
                [0x26, 0x11, 0x29, 0x16, 0x15, 0x02],
                &[]
            )
        ),
        1,
        "locations before authentication fail"
    );
    assert_eq!(t.authenticate(&code), 0);
    assert_eq!(t.request(0x0002, &[]), 0, "heartbeat");
    let items = [0x01, 4, 0, 0, 0x30, 0x39, 0x30, 1, 28, 0x31, 1, 12];
    assert_eq!(
        t.request(
            0x0200,
            &location(
                36.661234,
                117.020456,
                423,
                0,
                [0x26, 0x11, 0x29, 0x16, 0x15, 0x02],
                &items
            )
        ),
        0
    );
    assert!(
        central.wait(LONG, |m| !of_kind(m, "position").is_empty()),
        "log:\n{}",
        daemon.log_text()
    );
    // The journal's view of the car is under its own device id (journalctl DEVICE_ID=car-03).
    let log = daemon.log_text();
    for event in ["jt808.registered", "device.online"] {
        assert!(
            log.lines()
                .any(|l| l.contains(&format!("event=\"{event}\""))
                    && l.contains("device_id=car-03")
                    && l.contains("listener=fleet")),
            "no {event} record for car-03:\n{log}"
        );
    }
    let all = central.all();
    let pos = of_kind(&all, "position")[0];
    assert_eq!(pos.topic, "stations/test-st01/telemetry/car-03/position");
    assert_eq!(
        pos.json["ts"], "2026-11-29T08:15:02.000Z",
        "the terminal's GMT+8 time in UTC"
    );
    assert_eq!(pos.json["clock"], "synced");
    let d = &pos.json["data"];
    assert_eq!(
        (
            d["lat"].as_f64(),
            d["lon"].as_f64(),
            d["speed_kmh"].as_f64()
        ),
        (Some(36.661234), Some(117.020456), Some(42.3))
    );
    assert_eq!(
        (
            d["mileage_km"].as_f64(),
            d["signal_csq"].as_u64(),
            d["satellites"].as_u64()
        ),
        (Some(1234.5), Some(28), Some(12))
    );
    assert_eq!(d["plate"], "鲁A12345");
    assert_eq!(of_kind(&all, "device.online")[0].json["device"], "car-03");
    assert_eq!(
        of_kind(&all, "jt808.registered")[0].json["data"]["plate"],
        "鲁A12345"
    );

    // Emergency: an alarm event with the position, once per rising edge (the unit tests of
    // `drivers::jt808` check that such positions bypass report-by-exception).
    for (alarm, second) in [(1u32, 0x00u8), (1, 0x10), (1 | (1 << 29), 0x20)] {
        let report = location(
            36.6613,
            117.0205,
            0,
            alarm,
            [0x26, 0x11, 0x29, 0x16, 0x16, second],
            &[],
        );
        assert_eq!(t.request(0x0200, &report), 0);
    }
    assert!(central.wait(LONG, |m| !of_kind(m, "vehicle.alarm").is_empty()));
    let all = central.all();
    let sos = of_kind(&all, "vehicle.emergency");
    assert_eq!(sos.len(), 1, "one event per rising edge");
    assert_eq!(
        (sos[0].json["prio"].as_str(), sos[0].topic.as_str()),
        (Some("alarm"), "stations/test-st01/event/vehicle.emergency")
    );
    assert_eq!(sos[0].json["data"]["lat"], 36.6613);
    assert_eq!(
        of_kind(&all, "vehicle.alarm")[0].json["data"]["alarms"],
        serde_json::json!(["collision"])
    );

    // Stored locations (blind-area back-fill): positions with their own time, historical.
    let a = location(
        36.60,
        117.00,
        100,
        0,
        [0x26, 0x11, 0x29, 0x10, 0x00, 0x00],
        &[],
    );
    let b = location(
        36.61,
        117.01,
        100,
        0,
        [0x26, 0x11, 0x29, 0x10, 0x00, 0x30],
        &[],
    );
    assert_eq!(t.request(0x0704, &sim::batch(1, &[a, b])), 0);
    assert!(central.wait(LONG, |m| m
        .iter()
        .filter(|m| m.json["kind"] == "position" && m.json["ts"] == "2026-11-29T02:00:30.000Z")
        .count()
        == 1));
    let all = central.all();
    let stored = all
        .iter()
        .find(|m| m.json["ts"] == "2026-11-29T02:00:00.000Z")
        .expect("the first stored location");
    assert_eq!(
        stored.json["historical"], true,
        "delivered late, flagged as such"
    );

    assert_eq!(t.request(0x0900, &[1, 2, 3]), 3, "unsupported message");
    assert_eq!(t.request(0x0003, &[]), 0, "deregister");
    assert!(t.recv().is_none(), "closed after deregistration");
    assert!(central.wait(LONG, |m| of_kind(m, "device.offline")
        .iter()
        .any(|o| o.json["data"]["reason"] == "deregistered")));
}

#[test]
fn the_2019_edition_and_an_unknown_terminal() {
    let broker = Broker::started();
    let central = Subscriber::connect(broker.port, "central-jt808-2019");
    let (station, port) = fleet_station(broker.port, "");
    let _daemon = station.start();
    assert!(central.wait(LONG, |m| m.iter().any(|m| m.json["state"] == "online")));
    let mut t = Terminal::online(port, "00000000013912344329", Edition::V2019(1));
    assert_eq!(
        t.request(
            0x0200,
            &location(31.0, 121.0, 0, 0, [0x26, 0x11, 0x29, 0x16, 0x15, 0x02], &[])
        ),
        0
    );
    assert!(central.wait(LONG, |m| m
        .iter()
        .any(|m| m.topic == "stations/test-st01/telemetry/car-07/position")));

    let mut stranger = Terminal::connect(port, "013800000000", Edition::V2013);
    let (r, _) = stranger.register("苏E99999");
    assert_eq!(r, 4, "terminal unknown");
    assert!(stranger.recv().is_none(), "and disconnected");
    assert!(central.wait(LONG, |m| of_kind(m, "jt808.unknown_terminal").len() == 1));
    assert_eq!(
        t.request(0x0002, &[]),
        0,
        "the known terminal is unaffected"
    );
}

#[test]
fn a_terminal_sending_garbage_is_disconnected_without_affecting_others() {
    let broker = Broker::started();
    let central = Subscriber::connect(broker.port, "central-jt808-garbage");
    let (station, port) = fleet_station(broker.port, "");
    let daemon = station.start();
    assert!(central.wait(LONG, |m| m.iter().any(|m| m.json["state"] == "online")));
    let mut good = Terminal::online(port, "013912345678", Edition::V2013);
    let mut bad = TcpStream::connect(("127.0.0.1", port)).unwrap();
    bad.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut garbage = Vec::new();
    for i in 0..40u8 {
        garbage.extend([0x7E, i, 0x55, 0xAA, i, 0x7E]);
    }
    let _ = bad.write_all(&garbage);
    let mut sink = [0u8; 64];
    assert!(
        matches!(bad.read(&mut sink), Ok(0) | Err(_)),
        "the garbage terminal is disconnected"
    );
    assert_eq!(good.request(0x0002, &[]), 0);
    assert!(daemon.log_text().contains("too many bad frames"));
}

#[test]
fn five_hundred_terminals_at_once() {
    let broker = Broker::started();
    let central = Subscriber::connect(broker.port, "central-jt808-500");
    let (station, port) = fleet_station(broker.port, "allow_unknown = true");
    let daemon = station.start();
    assert!(central.wait(LONG, |m| m.iter().any(|m| m.json["state"] == "online")));
    let handles: Vec<_> = (0..500u32)
        .map(|i| {
            std::thread::spawn(move || {
                let mut t = Terminal::online(port, &format!("0139{i:08}"), Edition::V2013);
                for k in 0..3u32 {
                    let lat = 36.6 + i as f64 * 0.0001 + k as f64 * 0.01;
                    assert_eq!(
                        t.request(
                            0x0200,
                            &location(
                                lat,
                                117.0,
                                300,
                                0,
                                [0x26, 0x11, 0x29, 0x16, 0x15, k as u8],
                                &[]
                            )
                        ),
                        0
                    );
                }
                t
            })
        })
        .collect();
    let terminals: Vec<Terminal> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(
        central.wait(LONG, |m| of_kind(m, "position").len() == 1500),
        "got {}; log:\n{}",
        of_kind(&central.all(), "position").len(),
        daemon.log_tail(20)
    );
    let cars: std::collections::HashSet<String> = of_kind(&central.all(), "position")
        .iter()
        .map(|m| m.json["device"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(cars.len(), 500, "each terminal is its own car");
    drop(terminals);
}

#[test]
fn idle_terminals_are_dropped_and_the_connection_limit_holds() {
    let broker = Broker::started();
    let central = Subscriber::connect(broker.port, "central-jt808-limits");
    let (station, port) = fleet_station(broker.port, "max_connections = 2\nidle_timeout_s = 1");
    let daemon = station.start();
    assert!(central.wait(LONG, |m| m.iter().any(|m| m.json["state"] == "online")));
    let mut first = Terminal::online(port, "013912345678", Edition::V2013);
    let _second = Terminal::connect(port, "00000000013912344329", Edition::V2019(1));
    std::thread::sleep(Duration::from_millis(100));
    let mut third = TcpStream::connect(("127.0.0.1", port)).unwrap();
    third
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut b = [0u8; 8];
    assert!(
        matches!(third.read(&mut b), Ok(0) | Err(_)),
        "over the limit: closed at once"
    );
    assert!(daemon.log_text().contains("jt808.connection_refused"));
    // The first terminal says nothing for longer than idle_timeout_s.
    assert!(first.recv().is_none(), "an idle terminal is disconnected");
    assert!(central.wait(LONG, |m| of_kind(m, "device.offline")
        .iter()
        .any(
            |o| o.json["data"]["reason"] == "idle timeout" && o.json["device"] == "car-03"
        )));
}

#[test]
fn no_acknowledgement_before_the_commit_so_a_power_cut_loses_no_report() {
    // A terminal deletes the stored reports the platform acknowledges. Here the outbox cannot
    // commit (another process holds SQLite's write lock, as a stalled disk would): the reports
    // are received but not safe, so they must not be acknowledged. The daemon is then killed
    // (a power cut), the terminal reconnects and resends, and the reports reach central.
    let broker = Broker::started();
    let central = Subscriber::connect(broker.port, "central-jt808-commit");
    let (station, port) = fleet_station(broker.port, "");
    let daemon = station.start();
    assert!(central.wait(LONG, |m| m.iter().any(|m| m.json["state"] == "online")));
    let mut t = Terminal::online(port, "013912345678", Edition::V2013);
    assert!(central.wait(LONG, |m| !of_kind(m, "device.online").is_empty()));

    let emergency = location(
        36.7001,
        117.0001,
        0,
        1,
        [0x26, 0x11, 0x29, 0x11, 0x00, 0x00],
        &[],
    );
    let stored = location(
        36.7002,
        117.0002,
        0,
        0,
        [0x26, 0x11, 0x29, 0x10, 0x59, 0x00],
        &[],
    );
    let batch = sim::batch(1, &[stored]);

    let db = rusqlite::Connection::open(station.db()).unwrap();
    db.execute_batch("BEGIN IMMEDIATE").unwrap();
    t.send(0x0200, &emergency);
    t.send(0x0704, &batch);
    t.stream
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    if let Some(f) = t.recv() {
        panic!(
            "the platform answered 0x{:04X} (body {:02X?}) while nothing could be committed",
            f.header.msg_id, f.body
        );
    }
    daemon.kill9();
    db.execute_batch("ROLLBACK").unwrap();
    drop(db);
    assert!(
        of_kind(&central.all(), "vehicle.emergency").is_empty(),
        "nothing was committed, nothing was sent"
    );

    // The terminal never got its answers: it resends once it is back online.
    let _daemon = station.start();
    let mut t = Terminal::online(port, "013912345678", Edition::V2013);
    assert_eq!(t.request(0x0200, &emergency), 0);
    assert_eq!(t.request(0x0704, &batch), 0);
    let at = |ts: &'static str| {
        move |m: &[Msg]| {
            m.iter()
                .any(|m| m.json["kind"] == "position" && m.json["ts"] == ts)
        }
    };
    assert!(
        central.wait(LONG, |m| !of_kind(m, "vehicle.emergency").is_empty()),
        "the emergency reached central after the resend"
    );
    assert!(
        central.wait(LONG, at("2026-11-29T03:00:00.000Z")),
        "the live report"
    );
    assert!(
        central.wait(LONG, at("2026-11-29T02:59:00.000Z")),
        "the stored report"
    );
}

#[test]
fn a_terminal_clock_years_off_gives_way_to_the_synchronised_box_clock() {
    // The box's clock is synchronised (the kernel's flag, as NTP leaves it); a terminal with a
    // flat RTC battery reports 2020. Its reports must carry the box's time, say so, keep the
    // terminal's own time, and be counted.
    let Some(_synced) = KernelClockSynced::set() else {
        eprintln!("SKIPPED a_terminal_clock_years_off_gives_way_to_the_synchronised_box_clock: needs root to set the kernel's clock-sync flag");
        return;
    };
    let broker = Broker::started();
    let central = Subscriber::connect(broker.port, "central-jt808-skew");
    let (station, port) = fleet_station(broker.port, "max_clock_skew_s = 86400");
    let daemon = station.start();
    assert!(central.wait(LONG, |m| m.iter().any(|m| m.json["state"] == "online")));
    let mut t = Terminal::online(port, "013912345678", Edition::V2013);
    let in_2020 = location(
        36.71,
        117.03,
        0,
        0,
        [0x20, 0x01, 0x01, 0x08, 0x00, 0x00],
        &[],
    );
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert_eq!(t.request(0x0200, &in_2020), 0);
    assert!(
        central.wait(LONG, |m| !of_kind(m, "position").is_empty()),
        "log:\n{}",
        daemon.log_text()
    );
    let pos = of_kind(&central.all(), "position")[0].json.clone();
    assert_eq!(pos["clock"], "device_unreliable", "{pos}");
    assert_eq!(
        pos["data"]["gnss_time"], "2020-01-01T00:00:00.000Z",
        "the terminal's own time is kept"
    );
    let ts = ts_ms(pos["ts"].as_str().unwrap());
    assert!(
        (ts - before).abs() < 60_000,
        "ts is the box's time of arrival, not 2020: {pos}"
    );
    let devices: serde_json::Value =
        serde_json::from_slice(&station.cli(&["devices", "--json"]).stdout).unwrap();
    let car = devices["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == "car-03")
        .unwrap()
        .clone();
    assert_eq!(car["counters"]["clock.device_time_rejected"], 1, "{car}");
    assert!(daemon.log_text().contains("clock.device_time_rejected"));
}

/// Milliseconds since the epoch of an envelope's `ts` (`2026-11-29T08:15:02.120Z`).
fn ts_ms(ts: &str) -> i64 {
    let t = time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339)
        .expect("ts is RFC 3339");
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// The answers central received for a command `request_id` (the envelope's data).
#[test]
fn a_text_from_dispatch_reaches_the_car_and_the_terminals_answer_comes_back() {
    use common::dispatch;
    use serde_json::json;
    let broker = Broker::started();
    let central = Subscriber::connect(broker.port, "central-jt808-text");
    let (station, port) = fleet_station(broker.port, "");
    dispatch::take_commands(&station, "");
    let _daemon = station.start();
    assert!(central.wait(LONG, |m| m.iter().any(|m| m.json["state"] == "online")));
    let mut t = Terminal::online(port, "013912345678", Edition::V2013);
    let text = |id: &str, args: serde_json::Value| {
        let payload = dispatch::command(
            "jt808.text",
            id,
            args,
            Some("dispatch-test.key"),
            "test-st01",
        );
        dispatch::publish(
            broker.port,
            vec![("stations/test-st01/cmd/jt808.text".into(), payload)],
        );
    };

    // Delivered and acknowledged by the terminal.
    text("t-1", json!({"car": "car-03", "text": "请到文化路口 110"}));
    let f = t.recv().expect("the text message");
    assert_eq!(f.header.msg_id, 0x8300);
    assert_eq!(f.body[0], 0x04 | 0x08, "shown and read aloud");
    let (shown, _, _) = encoding_rs::GBK.decode(&f.body[1..]);
    assert_eq!(shown, "请到文化路口 110");
    let mut answer = f.header.serial.to_be_bytes().to_vec();
    answer.extend(0x8300u16.to_be_bytes());
    answer.push(0);
    t.send(0x0001, &answer);
    assert!(wait_until(LONG, || !common::dispatch::answers(
        &central, "t-1"
    )
    .is_empty()));
    let a = &common::dispatch::answers(&central, "t-1")[0];
    assert_eq!(
        (
            a["status"].as_str(),
            a["result"]["terminal_result"].as_u64()
        ),
        (Some("done"), Some(0)),
        "{a}"
    );

    // The terminal says it cannot: failed, with its code.
    text("t-2", json!({"car": "car-03", "text": "x", "tts": false}));
    let f = t.recv().expect("the second text");
    assert_eq!(f.body[0], 0x04, "shown only");
    let mut answer = f.header.serial.to_be_bytes().to_vec();
    answer.extend(0x8300u16.to_be_bytes());
    answer.push(3);
    t.send(0x0001, &answer);
    assert!(wait_until(LONG, || !common::dispatch::answers(
        &central, "t-2"
    )
    .is_empty()));
    let a = &common::dispatch::answers(&central, "t-2")[0];
    assert_eq!(a["status"], "failed", "{a}");
    assert!(a["reason"].as_str().unwrap().contains("unsupported"), "{a}");

    // A car whose terminal is not logged in.
    text("t-3", json!({"car": "car-07", "text": "x"}));
    assert!(wait_until(LONG, || !common::dispatch::answers(
        &central, "t-3"
    )
    .is_empty()));
    let a = &common::dispatch::answers(&central, "t-3")[0];
    assert_eq!(a["status"], "failed");
    assert!(
        a["reason"].as_str().unwrap().contains("not connected"),
        "{a}"
    );

    // Bad arguments are refused before anything is sent.
    text("t-4", json!({"car": "car-03"}));
    assert!(wait_until(LONG, || !common::dispatch::answers(
        &central, "t-4"
    )
    .is_empty()));
    assert_eq!(
        common::dispatch::answers(&central, "t-4")[0]["status"],
        "refused"
    );

    // The terminal leaves before it answers.
    text("t-5", json!({"car": "car-03", "text": "还在吗"}));
    assert_eq!(t.recv().expect("the last text").header.msg_id, 0x8300);
    drop(t);
    assert!(wait_until(LONG, || !common::dispatch::answers(
        &central, "t-5"
    )
    .is_empty()));
    let a = &common::dispatch::answers(&central, "t-5")[0];
    assert_eq!(a["status"], "failed", "{a}");
    assert!(
        a["reason"].as_str().unwrap().contains("before it answered"),
        "{a}"
    );
}
