//! What one `jsonl` input may send: no kind from the daemon's reserved namespaces, no device
//! another configured device owns, and only its `devices` / `kinds` when its config lists them
//! (docs/CONTRACT.md, "Reserved names"). Built from the configuration, asked per event; what
//! the other devices own is read from the list a reload keeps current.

use super::config::{kind_matches, JsonlDevice};
#[cfg(test)]
use crate::drivers::Device;
use crate::drivers::SharedDevices;
use crate::event::Event;

/// What one `jsonl` input may send.
#[derive(Debug, Clone)]
pub struct InputPolicy {
    own: String,
    /// Every configured device (the others' owners name the refusal).
    all: SharedDevices,
    devices: Option<Vec<String>>,
    kinds: Option<Vec<String>>,
}

impl InputPolicy {
    pub fn new(input: &JsonlDevice, all: SharedDevices) -> InputPolicy {
        InputPolicy {
            own: input.id.clone(),
            all,
            devices: input.devices.clone(),
            kinds: input.kinds.clone(),
        }
    }

    /// Ok, or why the event is not this input's to send.
    pub fn check(&self, ev: &Event) -> Result<(), String> {
        if crate::event::is_reserved_kind(&ev.kind) {
            return Err(format!(
                "kind {:?} is reserved for the daemon's own records",
                ev.kind
            ));
        }
        if let Some(kinds) = &self.kinds {
            if !kinds.iter().any(|p| kind_matches(p, &ev.kind)) {
                return Err(format!(
                    "kind {:?} is not in this input's kinds {kinds:?}",
                    ev.kind
                ));
            }
        }
        if ev.device == self.own {
            return Ok(());
        }
        let all = self.all.current();
        if let Some(owner) = all
            .iter()
            .find(|d| d.id() != self.own && d.owns(&ev.device))
        {
            return Err(format!(
                "device {:?} belongs to device {:?} ({})",
                ev.device,
                owner.id(),
                owner.driver()
            ));
        }
        match &self.devices {
            Some(devices) if !devices.contains(&ev.device) => Err(format!(
                "device {:?} is not in this input's devices {devices:?}",
                ev.device
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{ClockQuality, Priority};

    fn devices(station: &str) -> Vec<Device> {
        let text = format!(
            "[station]\nid = \"st\"\nname = \"n\"\n[uplink]\nbrokers = [\"mqtt://127.0.0.1:1\"]\n[buffer]\npath = \"/tmp/stationd-policy-test.db\"\n{station}"
        );
        crate::config::Config::parse(std::path::Path::new("t.toml"), &text)
            .unwrap()
            .devices
    }

    fn ev(device: &str, kind: &str) -> Event {
        Event::new(
            device,
            kind,
            Priority::Event,
            (0, ClockQuality::Synced),
            false,
            serde_json::json!({}),
        )
    }

    const FLEET: &str = "[[device]]\nid = \"fleet\"\ndriver = \"jt808\"\nlisten = \"tcp://127.0.0.1:7611\"\n[device.terminals]\n\"013912345678\" = \"car-03\"\n[[device]]\nid = \"gps0\"\ndriver = \"nmea\"\npath = \"/dev/ttyS0\"\n";

    fn policy(input: &str) -> InputPolicy {
        let all = devices(&format!("{FLEET}{input}"));
        let me = all
            .iter()
            .find_map(|d| d.as_any().downcast_ref::<JsonlDevice>())
            .expect("ingest0");
        InputPolicy::new(me, SharedDevices::new(&all))
    }

    #[test]
    fn the_daemons_kinds_and_other_drivers_devices_are_refused() {
        let p = policy("[[device]]\nid = \"ingest0\"\ndriver = \"jsonl\"\nlisten = \"tcp://127.0.0.1:7070\"\n[[device]]\nid = \"ingest1\"\ndriver = \"jsonl\"\nlisten = \"tcp://127.0.0.1:7071\"\n");
        assert!(p.check(&ev("ingest0", "door.open")).is_ok());
        assert!(
            p.check(&ev("door-2", "door.open")).is_ok(),
            "any id nobody owns"
        );
        for kind in [
            "outbox.evicted",
            "outbox.recovered",
            "vehicle.emergency",
            "device.online",
        ] {
            let why = p.check(&ev("ingest0", kind)).unwrap_err();
            assert!(why.contains("reserved"), "{kind}: {why}");
        }
        for (device, owner) in [
            ("car-03", "fleet"),
            ("jt808-13912340000", "fleet"),
            ("fleet", "fleet"),
            ("gps0", "gps0"),
            ("ingest1", "ingest1"),
        ] {
            let why = p.check(&ev(device, "door.open")).unwrap_err();
            assert!(
                why.contains(&format!("belongs to device {owner:?}")),
                "{device}: {why}"
            );
        }
    }

    #[test]
    fn an_input_limited_to_its_devices_and_kinds() {
        let p = policy("[[device]]\nid = \"ingest0\"\ndriver = \"jsonl\"\nlisten = \"tcp://127.0.0.1:7070\"\ndevices = [\"radio-01\", \"roster\"]\nkinds = [\"door.*\", \"duty.change\"]\n");
        assert!(p.check(&ev("roster", "duty.change")).is_ok());
        assert!(p.check(&ev("radio-01", "door.open.long")).is_ok());
        assert!(p.check(&ev("ingest0", "door.open")).is_ok(), "its own id");
        assert!(p
            .check(&ev("door-2", "door.open"))
            .unwrap_err()
            .contains("not in this input's devices"));
        assert!(p
            .check(&ev("roster", "duty.swap"))
            .unwrap_err()
            .contains("not in this input's kinds"));
        assert!(
            p.check(&ev("roster", "doorbell"))
                .unwrap_err()
                .contains("not in this input's kinds"),
            "door.* is a namespace, not a prefix"
        );
    }

    #[test]
    fn a_config_that_grants_reserved_names_is_refused() {
        for (extra, want) in [
            ("kinds = [\"outbox.*\"]", "reserved"),
            ("kinds = [\"vehicle.emergency\"]", "reserved"),
            ("kinds = [\"dev*\"]", "neither a kind"),
            ("devices = [\"car-03\"]", "belongs to device \"fleet\""),
            ("devices = [\"gps0\"]", "belongs to device \"gps0\""),
        ] {
            let text = format!("[station]\nid = \"st\"\nname = \"n\"\n[uplink]\nbrokers = [\"mqtt://127.0.0.1:1\"]\n[buffer]\npath = \"/tmp/x.db\"\n{FLEET}[[device]]\nid = \"ingest0\"\ndriver = \"jsonl\"\nlisten = \"tcp://127.0.0.1:7070\"\n{extra}\n");
            let err =
                crate::config::Config::parse(std::path::Path::new("t.toml"), &text).unwrap_err();
            assert!(err.to_string().contains(want), "{extra}: {err}");
        }
    }
}
