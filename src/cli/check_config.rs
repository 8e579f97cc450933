//! `stationd check-config` and `stationd udev-rules`: validate what the administrator wrote,
//! and tell what this machine has of what the hardware profile describes.

use super::{report, Check, Outcome};
use crate::config::{udev, Config, Profile};
use std::path::{Path, PathBuf};

/// Validates a station config and its profile. A config error is printed as
/// `file:line: key: problem` on stderr (exit 1); otherwise the checks are printed, where facts
/// of this machine (a serial port not plugged in, a profile for another CPU) are warnings.
pub fn check_config(config: &Path, profile_dirs: &[PathBuf], json: bool) -> u8 {
    let cfg = match Config::load_with(config, profile_dirs) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            if json {
                report(
                    &[Check::new("config", Outcome::Failed, e.to_string())],
                    true,
                );
            }
            return 1;
        }
    };
    let mut checks = vec![Check::new(
        "config",
        Outcome::Ok,
        format!(
            "{}: station {}, {} device(s), {} broker(s), outbox {}",
            config.display(),
            cfg.station.id.as_str(),
            cfg.devices.len(),
            cfg.uplink.brokers.get_ref().len(),
            cfg.buffer.path.display()
        ),
    )];
    let up = &cfg.uplink;
    let expiry_unused = up.message_expiry_s != Default::default() && !up.any_mqtt5();
    if expiry_unused {
        checks.push(Check::new(
            "uplink",
            Outcome::Warning,
            format!("{}: message_expiry_s has no effect, no broker is MQTT 5 (write mqtt5:// or mqtts5://)", up.describe()),
        ));
    } else {
        checks.push(Check::new("uplink", Outcome::Ok, up.describe()));
    }
    match &cfg.profile {
        Some(p) => {
            checks.push(Check::new(
                "profile",
                Outcome::Ok,
                format!("{} ({}): {}", p.name, p.source.display(), p.description),
            ));
            for note in p.machine_notes() {
                checks.push(Check::new("machine", Outcome::Warning, note));
            }
        }
        None => checks.push(Check::new(
            "profile",
            Outcome::Ok,
            "none ([station] profile not set): devices come from this file only",
        )),
    }
    for d in &cfg.devices {
        checks.push(Check::new("device", Outcome::Ok, d.describe()));
    }
    // Without a key the station works, but central cannot command it: a warning, as is
    // accepting anyone's commands.
    let commands = if cfg.commands.keys.is_some() {
        Outcome::Ok
    } else {
        Outcome::Warning
    };
    checks.push(Check::new("commands", commands, cfg.commands.describe()));
    if let Some(staffing) = &cfg.staffing {
        checks.push(Check::new(
            "staffing",
            Outcome::Ok,
            staffing.describe(crate::clock::unix_ms()),
        ));
        // A car's tracker or radio that no configured device speaks for is never online:
        // its crew would be car_unavailable for good.
        for car in &staffing.cars {
            for (what, id) in std::iter::once(("tracker", &car.tracker))
                .chain(car.radio.iter().map(|r| ("radio", r)))
            {
                if !cfg.devices.iter().any(|d| d.owns(id)) {
                    checks.push(Check::new(
                        "staffing",
                        Outcome::Warning,
                        format!("car {}: its {what} {id:?} is no device of this station (not a device's id, a JT/T 808 listener's car, or a base radio's radio): it will never be online and the crew will be car_unavailable", car.id),
                    ));
                }
            }
        }
        if !staffing.cars.is_empty() {
            checks.push(Check::new(
                "dispatch",
                dispatch_outcome(&cfg.dispatch),
                cfg.dispatch.describe(),
            ));
        }
    }
    checks.push(Check::new("box", Outcome::Ok, cfg.host.describe()));
    for (what, listen, describe) in [
        cfg.metrics
            .as_ref()
            .map(|m| ("metrics", &m.listen, m.describe())),
        cfg.status_page
            .as_ref()
            .map(|p| ("status_page", &p.listen, p.describe())),
    ]
    .into_iter()
    .flatten()
    {
        let outcome = if crate::config::on_all_interfaces(listen) {
            Outcome::Warning
        } else {
            Outcome::Ok
        };
        let note = if outcome == Outcome::Warning {
            format!("{describe}: on every interface, reachable from any network the box is on; name the station LAN's address instead")
        } else {
            describe
        };
        checks.push(Check::new(what, outcome, note));
    }
    report(&checks, json)
}

/// Crews that cannot acknowledge would raise `dispatch.unacknowledged` on every order.
fn dispatch_outcome(d: &crate::config::Dispatch) -> Outcome {
    if d.ack_statuses.is_empty() && d.terminal_ack_events.is_empty() && !d.ack_on_delivery {
        Outcome::Warning
    } else {
        Outcome::Ok
    }
}

/// Validates one profile file on its own (what CI runs on every shipped profile).
pub fn check_profile(path: &Path, json: bool) -> u8 {
    match Profile::load(path) {
        Ok(p) => {
            let mut checks = vec![Check::new(
                "profile",
                Outcome::Ok,
                format!(
                    "{} ({}): {}, {} serial port(s), {} device(s)",
                    p.name,
                    p.arch.as_str(),
                    p.description,
                    p.serial.len(),
                    p.device_count()
                ),
            )];
            for note in p.machine_notes() {
                checks.push(Check::new("machine", Outcome::Warning, note));
            }
            report(&checks, json)
        }
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}

/// Prints udev rules for the given profile files, or for the profile of `config`.
pub fn udev_rules(config: &Path, profile_dirs: &[PathBuf], profiles: &[PathBuf]) -> u8 {
    let loaded: Result<Vec<Profile>, String> = if profiles.is_empty() {
        match Config::load_with(config, profile_dirs) {
            Ok(Config {
                profile: Some(p), ..
            }) => Ok(vec![p]),
            Ok(_) => Err(format!(
                "{}: [station] names no hardware profile; give profile files instead",
                config.display()
            )),
            Err(e) => Err(e.to_string()),
        }
    } else {
        profiles
            .iter()
            .map(|p| Profile::load(p).map_err(|e| e.to_string()))
            .collect()
    };
    match loaded.and_then(|ps| udev::rules(&ps)) {
        Ok(rules) => {
            print!("{rules}");
            0
        }
        Err(e) => {
            eprintln!("stationd udev-rules: {e}");
            1
        }
    }
}
