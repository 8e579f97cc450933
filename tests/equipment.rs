//! The equipment register end to end: imported by the administrator, items judged from the real
//! drivers (a recorder leaving the dock, a car's JT/T 808 terminal going quiet), changed by the
//! technician's CLI and by central's signed commands, with `equipment.changed` events,
//! `P/state/equipment`, and the crews that follow (a car in fault, a car's kit checked out).
#![allow(clippy::disallowed_methods)] // test threads may block (clippy.toml bans it in the daemon)

mod common;

use common::terminal::Terminal;
use common::*;
use serde_json::{json, Value};
use stationd::codec::jt808::Edition;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(30);
const STATE: &str = "stations/test-st01/state/equipment";

fn data(path: &str) -> String {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(path)
        .display()
        .to_string()
}

#[test]
fn the_register_follows_the_dock_the_terminal_the_technician_and_central() {
    let broker = Broker::started();
    let central = Subscriber::connect(broker.port, "central-equipment");
    let station = common::dispatch::station(&broker, "");
    let root = station.add_dock_with_recorder();
    let fleet_port = station.add_fleet("");
    station.append_config(&format!(
        r#"
[equipment]
offline_fault_h = 0.001

{ROTATION}
[[staffing.car]]
id = "car-03"
"#
    ));
    let daemon = station.start();
    assert!(wait_until(LONG, || station.control_socket().exists()));
    station.cli_ok(&["roster", "import", &data("staffing/roster.csv")]);

    // The administrator's asset list.
    let out = station.cli_ok(&["equipment", "import", &data("equipment/register.csv")]);
    assert!(
        out.contains("register: 5 items (5 added, 0 removed)"),
        "{out}"
    );
    let summary = wait_event(&central, &daemon, "equipment.changed", "the import", |c| {
        c["change"] == "register"
    });
    assert_eq!(summary["items"], 5);
    assert!(summary["by"].as_str().unwrap().starts_with("cli:"));

    // The recorder in its dock is charging; the handcuffs are due for maintenance.
    assert!(
        wait_until(LONG, || latest_on(&central, STATE)
            .is_some_and(
                |s| s["items"] == 5 && s["counts"]["recorders"]["charging"] == 1
            )),
        "P/state/equipment: {:#}\nlog:\n{}",
        latest_on(&central, STATE).unwrap_or_default(),
        daemon.log_text()
    );
    let s = latest_on(&central, STATE).unwrap();
    assert_eq!(s["counts"]["restraints"]["maintenance_due"], 1);
    assert_eq!(s["counts"]["protective_gear"]["in_service"], 1);
    let not_in_service: Vec<&str> = s["not_in_service"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["item"].as_str().unwrap())
        .collect();
    assert!(not_in_service.contains(&"CUFF-1") && not_in_service.contains(&"BWC-01"));
    assert!(!not_in_service.contains(&"VEST-1"));

    // 1. The recorder leaves the dock: checked out, with its officer.
    std::fs::remove_dir(root.join("DSJ-A1-0001")).unwrap();
    let c = wait_event(&central, &daemon, "equipment.changed", "BWC-01 out", |c| {
        c["item"] == "BWC-01" && c["state"] == "checked_out"
    });
    assert_eq!(c["assigned_to"], "P-0417");
    assert_eq!(c["was"], "charging");
    assert_eq!(c["reason"], "taken from dock dock0");

    // The recorder is car-03's kit: its officer is in car-03's crew.
    let crew = wait_event(
        &central,
        &daemon,
        "staffing.changed",
        "P-0417 in car-03",
        |c| c["change"] == "crew" && c["car"] == "car-03" && c["members"][0]["id"] == "P-0417",
    );
    assert_eq!(crew["formed_by"], "checkout");

    // 2. The technician checks the car's radio out to A-1203: present (by the CLI), in
    // car-03's crew, the radio checked out.
    let out = station.cli_ok(&["equipment", "checkout", "RAD-07", "--to", "A-1203"]);
    assert!(out.starts_with("RAD-07: checked_out to A-1203"), "{out}");
    let c = wait_event(&central, &daemon, "equipment.changed", "RAD-07 out", |c| {
        c["item"] == "RAD-07" && c["state"] == "checked_out"
    });
    assert!(c["by"].as_str().unwrap().starts_with("cli:"));
    let p = wait_event(
        &central,
        &daemon,
        "staffing.changed",
        "A-1203 present",
        |c| c["person"] == "A-1203" && c["present"] == true,
    );
    assert_eq!(p["by"]["source"], "cli");
    assert_eq!(p["by"]["detail"], "checked out RAD-07 (radios)");
    // Checking out to someone not on the roster is refused.
    let out = station.cli(&["equipment", "checkout", "VEST-1", "--to", "X-9"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"X-9\" is not on the roster"));

    let crew = wait_event(
        &central,
        &daemon,
        "staffing.changed",
        "A-1203 in car-03",
        |c| c["change"] == "crew" && c["car"] == "car-03" && c["members"][1]["id"] == "A-1203",
    );
    assert_eq!(crew["formed_by"], "checkout");

    // 3. The car's terminal logs in (tracker online) and heartbeats (offline_fault_h is 3.6 s
    // here); the third member is added and on duty → car-03 ready.
    let terminal = Terminal::online(fleet_port, "013912345678", Edition::V2013);
    let beating = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let heart = {
        let mut stream = terminal.stream.try_clone().unwrap();
        let beating = beating.clone();
        std::thread::spawn(move || {
            use std::io::Write;
            let mut serial = 100u16;
            while beating.load(std::sync::atomic::Ordering::Relaxed) {
                serial += 1;
                let frame = stationd::codec::jt808::encode(
                    0x0002,
                    Edition::V2013,
                    "013912345678",
                    serial,
                    &[],
                );
                if stream.write_all(&frame).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        })
    };
    station.cli_ok(&["duty", "on", "A-1204"]);
    station.cli_ok(&["crew", "set", "car-03", "P-0417", "A-1203", "A-1204"]);
    wait_event(&central, &daemon, "staffing.changed", "car-03 ready", |c| {
        c["change"] == "readiness" && c["car"] == "car-03" && c["readiness"] == "ready"
    });

    // 4. The car is reported in fault: its crew is not available.
    station.cli_ok(&["equipment", "fault", "VEH-03", "--note", "brakes"]);
    let r = wait_event(
        &central,
        &daemon,
        "staffing.changed",
        "car-03 in fault",
        |c| c["change"] == "readiness" && c["reason"] == "the car is in fault or maintenance",
    );
    assert_eq!(r["readiness"], "car_unavailable");
    let c = wait_event(
        &central,
        &daemon,
        "equipment.changed",
        "VEH-03 fault",
        |c| c["item"] == "VEH-03" && c["state"] == "fault",
    );
    assert_eq!(
        c["reason"],
        "reported in fault by ".to_string() + c["by"].as_str().unwrap() + ": brakes"
    );
    assert_eq!(c["suspected"], false);

    // 5. Central: the vest is lost, the car repaired (checked in), the radio back.
    common::dispatch::send(
        broker.port,
        "equipment.mark",
        "e-1",
        json!({"item": "VEST-1", "state": "lost", "note": "left at the scene"}),
    );
    let a = common::dispatch::answer(&central, "e-1", LONG, &daemon);
    assert_eq!(a["status"], "done", "{a}");
    assert_eq!(a["result"]["state"], "lost");
    common::dispatch::send(
        broker.port,
        "equipment.checkin",
        "e-2",
        json!({"item": "VEH-03"}),
    );
    assert_eq!(
        common::dispatch::answer(&central, "e-2", LONG, &daemon)["result"]["state"],
        "in_service"
    );
    common::dispatch::send(
        broker.port,
        "equipment.mark",
        "e-3",
        json!({"item": "NOPE"}),
    );
    let a = common::dispatch::answer(&central, "e-3", LONG, &daemon);
    assert_eq!(a["status"], "refused", "{a}");
    wait_event(
        &central,
        &daemon,
        "staffing.changed",
        "car-03 ready again",
        |c| {
            c["change"] == "readiness" && c["readiness"] == "ready" && c["was"] == "car_unavailable"
        },
    );

    // 6. The terminal goes away: offline, and after offline_fault_h (3.6 s here) the car is a
    // suspected fault.
    beating.store(false, std::sync::atomic::Ordering::Relaxed);
    heart.join().unwrap();
    drop(terminal);
    let c = wait_event(
        &central,
        &daemon,
        "equipment.changed",
        "VEH-03 suspected",
        |c| c["item"] == "VEH-03" && c["suspected"] == true,
    );
    assert_eq!(c["state"], "fault");
    assert!(
        c["reason"]
            .as_str()
            .unwrap()
            .starts_with("suspected: device car-03 offline"),
        "{c}"
    );

    // The technician's view: filtered by state.
    let faults: Value =
        serde_json::from_str(&station.cli_ok(&["equipment", "--state", "fault", "--json"]))
            .unwrap();
    let ids: Vec<&str> = faults["register"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["item"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["VEH-03"]);
    let table = station.cli_ok(&["equipment"]);
    assert!(
        table.contains("VEST-1") && table.contains("lost"),
        "{table}"
    );

    // Restarted, the register and its states come back and are republished.
    daemon.terminate();
    let late = Subscriber::connect(broker.port, "central-equipment-late");
    let daemon = station.start();
    let s = fresh_on(&late, &daemon, STATE);
    assert_eq!(s["counts"]["protective_gear"]["lost"], 1);
    assert_eq!(s["counts"]["recorders"]["checked_out"], 1);
}
