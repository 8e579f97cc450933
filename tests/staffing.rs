//! Staffing end to end: presence from each signal source through the real drivers (a recorder
//! directory removed from the dock, a simulated radio's handheld reporting over a pty, a JT/T
//! 808 terminal's driver inserting an IC card over TCP, the sign-in system's `jsonl` line, the
//! technician's `stationd duty`), crews and their readiness, the roster from the CLI and from a
//! signed command, the retained `P/state/staffing` across a restart, and names that never leave
//! the box unless configured.
#![allow(clippy::disallowed_methods)] // test threads may block (clippy.toml bans it in the daemon)

mod common;

use common::terminal::Terminal;
use common::*;
use serde_json::{json, Value};
use stationd::codec::jt808::Edition;
use stationd::sim::tetra::SimRadio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(30);
const STATE: &str = "stations/test-st01/state/staffing";

/// car-03 with the default crew of three, after the tests' rotation (team 1 on duty).
fn staffing() -> String {
    format!("{ROTATION}\n[[staffing.car]]\nid = \"car-03\"\n")
}

fn data(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/staffing")
        .join(name)
}

/// The `staffing.changed` events central received, their `data`.
fn changes(central: &Subscriber) -> Vec<Value> {
    event_data(central, "staffing.changed")
}

/// Waits until the latest `P/state/staffing` satisfies `cond`.
fn wait_state(
    central: &Subscriber,
    daemon: &Daemon,
    what: &str,
    cond: impl Fn(&Value) -> bool,
) -> Value {
    assert!(
        wait_until(LONG, || latest_on(central, STATE).is_some_and(|s| cond(&s))),
        "P/state/staffing never showed {what}; last: {:#}\nlog:\n{}",
        latest_on(central, STATE).unwrap_or_default(),
        daemon.log_text()
    );
    latest_on(central, STATE).unwrap()
}

/// Waits until central has a `staffing.changed` whose data satisfies `cond`; returns it.
fn wait_change(
    central: &Subscriber,
    daemon: &Daemon,
    what: &str,
    cond: impl Fn(&Value) -> bool,
) -> Value {
    wait_event(central, daemon, "staffing.changed", what, cond)
}

fn person<'a>(state: &'a Value, id: &str) -> &'a Value {
    state["people"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["id"] == id))
        .unwrap_or(&Value::Null)
}

fn crew<'a>(state: &'a Value, car: &str) -> &'a Value {
    state["crews"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["car"] == car))
        .unwrap_or(&Value::Null)
}

#[test]
fn presence_comes_from_each_real_driver_and_the_crew_follows() {
    let broker = Broker::started();
    let central = Subscriber::connect(broker.port, "central-staffing");
    let station = Station::new(broker.port, "");
    // The dock, with P-0417's recorder in it; the radio; car-03's terminal.
    let root = station.add_dock_with_recorder();
    let fleet_port = station.add_fleet("max_clock_skew_s = 3153600000");
    let radio_link = station.dir.path().join("radio0");
    station.append_config(&format!(
        r#"
[[device]]
id = "radio0"
driver = "tetra"
path = "{radio}"
baud = 115200
poll_s = 1
[device.radios]
"1001" = {{ id = "hh-1001", officer = "A-1203", car = "car-03" }}
{staffing}"#,
        radio = radio_link.display(),
        staffing = staffing(),
    ));
    let radio = Arc::new(Mutex::new(SimRadio::new("2001", "9001")));
    let mut pty = PtyRadio::plug_in(&radio_link, radio);
    let daemon = station.start();
    assert!(
        wait_until(LONG, || station.control_socket().exists()),
        "no control socket; log:\n{}",
        daemon.log_text()
    );

    // The roster, from the administrator's spreadsheet.
    let out = station.cli_ok(&["roster", "import", data("roster.csv").to_str().unwrap()]);
    assert!(
        out.contains("roster: 5 people (5 added, 0 removed, 0 changed)"),
        "{out}"
    );
    let s = wait_state(&central, &daemon, "the roster", |s| s["roster"] == 5);
    assert_eq!(s["shift"]["on_duty"], json!(["1"]));
    assert_eq!(s["expected"]["total"], 3, "team 1: P-0417, A-1203, A-1204");
    assert_eq!(s["on_duty"]["total"], 0);
    assert_eq!(s["missing"], json!(["P-0417", "A-1203", "A-1204"]));
    assert!(changes(&central).iter().any(|c| c["change"] == "roster"
        && c["people"] == 5
        && c["by"].as_str().unwrap().starts_with("cli:")));

    // 1. A recorder taken out of the dock: its officer is present, by the recorder.
    std::fs::remove_dir(root.join("DSJ-A1-0001")).unwrap();
    let p = wait_change(&central, &daemon, "P-0417 present", |c| {
        c["change"] == "presence" && c["person"] == "P-0417" && c["present"] == true
    });
    assert_eq!(p["by"]["source"], "recorder");
    assert_eq!(
        p["by"]["detail"],
        "recorder DSJ-A1-0001 taken from dock dock0"
    );
    assert_eq!(p["role"], "officer");

    // 2. A handheld radio reports: A-1203 present by radio, and with car-03's crew (the
    // radio is car-03's).
    assert!(
        central.wait(LONG, |m| m.iter().any(|m| m.json["kind"]
            == "device.online"
            && m.json["device"] == "radio0")),
        "the radio never came up; log:\n{}",
        daemon.log_text()
    );
    pty.say(&stationd::sim::tetra::status("1001", "2001", 0x8002));
    let p = wait_change(&central, &daemon, "A-1203 present", |c| {
        c["change"] == "presence" && c["person"] == "A-1203" && c["present"] == true
    });
    assert_eq!(p["by"]["source"], "radio");
    let c = wait_change(
        &central,
        &daemon,
        "car-03's crew formed by the radio",
        |c| c["change"] == "crew" && c["car"] == "car-03" && c["formed_by"] == "radio",
    );
    assert_eq!(c["members"][0]["id"], "A-1203");

    // 3. The car's terminal logs in and P-0417 inserts their IC card: present by the
    // terminal, in car-03's crew.
    let mut terminal = Terminal::online(fleet_port, "013912345678", Edition::V2013);
    // The card's time has whole seconds: a second after the recorder's word, so it is newer.
    std::thread::sleep(Duration::from_secs(1));
    let now = stationd::clock::unix_ms();
    assert_eq!(
        terminal.request(
            0x0702,
            &stationd::sim::jt808::driver_card(Some("440301198001"), "李伟", now)
        ),
        0,
        "the card report is acknowledged"
    );
    let c = wait_change(&central, &daemon, "P-0417 in car-03's crew", |c| {
        c["change"] == "crew"
            && c["car"] == "car-03"
            && c["members"].as_array().is_some_and(|m| m.len() == 2)
    });
    assert_eq!(c["members"][1]["id"], "P-0417", "{c}");
    let p = wait_change(&central, &daemon, "P-0417 by the terminal", |c| {
        c["person"] == "P-0417" && c["by"]["source"] == "terminal"
    });
    assert_eq!(p["by"]["detail"], "IC card inserted at car-03's terminal");
    let r = wait_change(&central, &daemon, "car-03 short of one auxiliary", |c| {
        c["change"] == "readiness" && c["car"] == "car-03" && c["reason"] == "1 of 2 auxiliaries"
    });
    assert_eq!(
        r["readiness"], "short_staffed",
        "the car's tracker is online: {r}"
    );

    // 4. The sign-in system says A-1204 signed on; the technician puts them in the crew:
    // complete, the tracker online → ready.
    send_lines(
        station.ingest_port,
        &["{\"device\":\"signin\",\"kind\":\"duty.signed_on\",\"data\":{\"person\":\"A-1204\"}}\n".to_string()],
    );
    wait_change(&central, &daemon, "A-1204 signed in", |c| {
        c["person"] == "A-1204" && c["by"]["source"] == "sign_in"
    });
    let out = station.cli_ok(&["crew", "set", "car-03", "P-0417", "A-1203", "A-1204"]);
    assert!(
        out.contains("car-03: P-0417, A-1203, A-1204 — ready"),
        "{out}"
    );
    let s = wait_state(&central, &daemon, "car-03 ready", |s| {
        crew(s, "car-03")["readiness"] == "ready"
    });
    assert_eq!(crew(&s, "car-03")["formed_by"], "cli");
    assert_eq!(s["on_duty"]["officer"], 1);
    assert_eq!(s["on_duty"]["auxiliary"], 2);
    assert_eq!(s["missing"], json!([]));

    // 5. The technician signs A-1204 off: short staffed, naming who is missing.
    station.cli_ok(&["duty", "off", "A-1204", "--note", "sent home"]);
    let s = wait_state(&central, &daemon, "car-03 short staffed", |s| {
        crew(s, "car-03")["readiness"] == "short_staffed"
    });
    assert_eq!(
        crew(&s, "car-03")["reason"],
        "1 of 2 auxiliaries; absent: A-1204"
    );
    assert_eq!(person(&s, "A-1204")["by"]["source"], "cli");

    // 6. The card comes out: P-0417 absent by the terminal, the recorder's word shown beside.
    assert_eq!(
        terminal.request(
            0x0702,
            &stationd::sim::jt808::driver_card(None, "", now + 1_000)
        ),
        0
    );
    let s = wait_state(&central, &daemon, "P-0417 absent, disputed", |s| {
        person(s, "P-0417")["present"] == false
    });
    let p = person(&s, "P-0417");
    assert_eq!(p["by"]["source"], "terminal");
    assert_eq!(p["disputed_by"][0]["source"], "recorder", "{p}");

    // Every change reached central as an event, in order, readiness transitions included.
    let readiness: Vec<String> = changes(&central)
        .iter()
        .filter(|c| c["change"] == "readiness" && c["car"] == "car-03")
        .map(|c| c["readiness"].as_str().unwrap().to_string())
        .collect();
    let in_order = ["short_staffed", "ready", "short_staffed"];
    let mut next = in_order.iter().peekable();
    for r in &readiness {
        if next.peek().is_some_and(|want| *want == r) {
            next.next();
        }
    }
    assert!(next.peek().is_none(), "{readiness:?}");

    // The technician's view on the box names people and where each word came from.
    let view = station.cli_ok(&["staffing"]);
    assert!(view.contains("李伟"), "{view}");
    assert!(view.contains("terminal"), "{view}");
    assert!(view.contains("disputed: recorder says present"), "{view}");

    // Privacy: no name from the roster reached central, in any message.
    for m in central.all() {
        let text = m.json.to_string();
        for name in ["李伟", "张三", "王五", "赵队长", "钱六"] {
            assert!(
                !text.contains(name),
                "{name} left the box on {}: {text}",
                m.topic
            );
        }
    }
    drop(pty);
}

#[test]
fn a_signed_roster_and_crew_from_central_survive_a_restart_and_are_republished() {
    let broker = Broker::started();
    let central = Subscriber::connect(broker.port, "central-staffing-cmd");
    let station = common::dispatch::station(&broker, "");
    station.append_config(&staffing());
    let daemon = station.start();
    let answer = |id: &str| common::dispatch::answer(&central, id, LONG, &daemon);
    wait_online(&central, &daemon);

    // A roster with a mistake is refused whole, naming the person; nothing changes.
    let mut people: Vec<Value> = vec![
        json!({"id": "P-0417", "name": "李伟", "role": "officer", "team": "1", "card": "440301198001"}),
        json!({"id": "A-1203", "name": "张三", "role": "auxiliary", "team": "1"}),
        json!({"id": "A-1204", "name": "王五", "role": "auxiliary", "team": "9"}),
    ];
    common::dispatch::send(broker.port, "roster.set", "r-1", json!({"people": people}));
    let a = answer("r-1");
    assert_eq!(a["status"], "refused", "{a}");
    assert!(
        a["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("person 3 (\"A-1204\"): team \"9\""),
        "{a}"
    );
    people[2]["team"] = "1".into();
    common::dispatch::send(broker.port, "roster.set", "r-2", json!({"people": people}));
    let a = answer("r-2");
    assert_eq!(a["status"], "done", "{a}");
    assert_eq!(a["result"]["people"], 3);

    // A crew by command; an unknown person or car is refused.
    common::dispatch::send(
        broker.port,
        "crew.set",
        "c-1",
        json!({"car": "car-03", "members": ["P-0417", "A-1203", "X-1"]}),
    );
    let a = answer("c-1");
    assert_eq!(a["status"], "refused");
    assert!(
        a["reason"]
            .as_str()
            .unwrap()
            .contains("\"X-1\" is not on the roster"),
        "{a}"
    );
    common::dispatch::send(
        broker.port,
        "crew.set",
        "c-2",
        json!({"car": "car-99", "members": []}),
    );
    assert!(answer("c-2")["reason"]
        .as_str()
        .unwrap()
        .contains("the station's cars: car-03"));
    common::dispatch::send(
        broker.port,
        "crew.set",
        "c-3",
        json!({"car": "car-03", "members": ["P-0417", "A-1203", "A-1204"]}),
    );
    let a = answer("c-3");
    assert_eq!(a["status"], "done", "{a}");
    // Nobody present yet: off duty.
    assert_eq!(a["result"]["readiness"], "off_duty");

    // Central says P-0417 is on duty; A-1204 is sick until tomorrow.
    common::dispatch::send(
        broker.port,
        "duty.set",
        "d-1",
        json!({"person": "P-0417", "present": true}),
    );
    assert_eq!(answer("d-1")["result"]["present"], true);
    let tomorrow = stationd::event::format_ts_ms(stationd::clock::unix_ms() + 86_400_000);
    common::dispatch::send(
        broker.port,
        "roster.override",
        "o-1",
        json!({"person": "A-1204", "kind": "sick", "until": tomorrow, "note": "influenza"}),
    );
    let a = answer("o-1");
    assert_eq!(a["status"], "done", "{a}");
    let s = wait_state(&central, &daemon, "A-1204 sick", |s| {
        person(s, "A-1204")["exception"] == "sick"
    });
    assert_eq!(person(&s, "A-1204")["expected"], false);
    assert_eq!(s["expected"]["total"], 2);
    let before = crew(&s, "car-03").clone();
    // Someone is present, but this station's car-03 has no tracker heard: not available.
    assert_eq!(before["readiness"], "car_unavailable", "{before}");
    assert_eq!(before["reason"], "the car's tracker is offline");
    assert_eq!(before["members"][0]["role"], "officer");
    assert!(
        before["members"][0].get("name").is_none(),
        "ids and roles only"
    );
    let o = changes(&central)
        .into_iter()
        .find(|c| c["change"] == "override")
        .unwrap();
    assert_eq!(
        (o["kind"].as_str(), o["by"].as_str()),
        (Some("sick"), Some("central"))
    );
    assert!(
        !o.to_string().contains("influenza"),
        "a sickness's note stays on the box"
    );

    // rebirth names the staffing snapshot among those it publishes again.
    common::dispatch::send(broker.port, "rebirth", "rb-1", json!({}));
    let a = answer("rb-1");
    assert!(
        a["result"]["republished"]
            .as_array()
            .unwrap()
            .contains(&json!("state/staffing")),
        "{a}"
    );

    // Restarted, the daemon republishes the same picture: crew, readiness and its since.
    daemon.terminate();
    let late = Subscriber::connect(broker.port, "central-late");
    let daemon = station.start();
    let after = fresh_on(&late, &daemon, STATE);
    let again = crew(&after, "car-03");
    assert_eq!(again["members"], before["members"]);
    assert_eq!(again["readiness"], before["readiness"]);
    assert_eq!(
        again["since"], before["since"],
        "since when survives the restart"
    );
    assert_eq!(person(&after, "P-0417")["by"]["source"], "central");
    assert_eq!(person(&after, "A-1204")["exception"], "sick");
    // (Central's own roster.set carried the names to the box; nothing from the box does.)
    for m in central
        .all()
        .iter()
        .chain(late.all().iter())
        .filter(|m| !m.topic.contains("/cmd/"))
    {
        assert!(
            !m.json.to_string().contains("李伟"),
            "a name left the box: {}",
            m.topic
        );
    }
}

#[test]
fn names_leave_the_box_only_when_configured() {
    let broker = Broker::started();
    let central = Subscriber::connect(broker.port, "central-staffing-names");
    let station = Station::new(broker.port, "");
    station.append_config(&staffing().replace("[staffing]\n", "[staffing]\nshare_names = true\n"));
    let daemon = station.start();
    assert!(wait_until(LONG, || station.control_socket().exists()));
    station.cli_ok(&["roster", "import", data("roster.toml").to_str().unwrap()]);
    station.cli_ok(&["duty", "on", "P-0417"]);
    let p = wait_change(&central, &daemon, "P-0417 on duty", |c| {
        c["person"] == "P-0417" && c["present"] == true
    });
    assert_eq!(p["name"], "李伟");
    let s = wait_state(&central, &daemon, "the roster with names", |s| {
        person(s, "P-0417")["name"] == "李伟"
    });
    assert_eq!(s["roster"], 3);

    // A sign-in line about someone not on the roster is ignored, logged and counted.
    send_lines(
        station.ingest_port,
        &["{\"kind\":\"duty.signed_on\",\"data\":{\"person\":\"X-404\"}}\n".to_string()],
    );
    assert!(
        wait_until(LONG, || {
            let s: Value = serde_json::from_str(&station.cli_ok(&["status", "--json"])).unwrap();
            s["counters"]["staffing.unknown_people"] == 1
        }),
        "log:\n{}",
        daemon.log_text()
    );
    assert!(daemon.log_text().contains("staffing.unknown_person"));
    assert!(!changes(&central).iter().any(|c| c["person"] == "X-404"));

    // A person not on the roster cannot be put on duty; the CLI says why.
    let out = station.cli(&["duty", "on", "X-1"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("\"X-1\" is not on the roster"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A roster file with a mistake names its row and changes nothing.
    let bad = station.dir.path().join("bad.csv");
    std::fs::write(&bad, "id,name,role,team\nP-1,A,officer,1\nP-2,B,chief,1\n").unwrap();
    let out = station.cli(&["roster", "import", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("row 3: role \"chief\""));
    let doc: Value = serde_json::from_str(&station.cli_ok(&["staffing", "--json"])).unwrap();
    assert_eq!(doc["roster"], 3);
}
