//! `[dispatch]`: how the station relays central's orders to its crews and judges their
//! arrival (docs/CONFIG.md, "[dispatch]"). Optional: the defaults are the stations' own rules
//! (arrive within 100 m, acknowledge within a minute).

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDispatch {
    /// A crew has arrived once inside this radius of the incident (metres).
    #[serde(default = "default_arrival_radius_m")]
    arrival_radius_m: f64,
    /// … and has stayed inside this long (a car passing by has not arrived).
    #[serde(default = "default_arrival_dwell_s")]
    arrival_dwell_s: u64,
    /// The crew must acknowledge within this many seconds unless the order says otherwise.
    #[serde(default = "default_ack_within_s")]
    ack_within_s: u64,
    /// "Nearest ready crew" only trusts a car's position this fresh.
    #[serde(default = "default_position_max_age_s")]
    position_max_age_s: u64,
    /// Radio status values (AI service 13) that mean "order received, on our way".
    #[serde(default)]
    ack_statuses: Vec<u16>,
    /// Radio status values that mean "call closed".
    #[serde(default)]
    clear_statuses: Vec<u16>,
    /// JT/T 808-2013 terminal events (0x0301, as preset on the terminals with 0x8301) that
    /// mean "order received".
    #[serde(default)]
    terminal_ack_events: Vec<u8>,
    /// Terminal events that mean "call closed".
    #[serde(default)]
    terminal_clear_events: Vec<u8>,
    /// Whether a path's delivery (the terminal's 0x0001, the radio's delivery report) counts
    /// as the crew's acknowledgement, for crews with no acknowledgement status to send.
    #[serde(default)]
    ack_on_delivery: bool,
    /// `P/state/dispatch`'s figures cover incidents ordered within this many hours.
    #[serde(default = "default_figures_window_h")]
    figures_window_h: u64,
    /// Incidents are kept on the box this many days after they were cleared.
    #[serde(default = "default_keep_days")]
    keep_days: u64,
    /// An incident still open this many hours after its first order is cleared by the station
    /// (`expired`): a crew is never left on call for good when central forgets to clear.
    #[serde(default = "default_max_open_h")]
    max_open_h: f64,
}

impl Default for RawDispatch {
    fn default() -> RawDispatch {
        toml::from_str("").expect("every key has a default")
    }
}

fn default_arrival_radius_m() -> f64 {
    100.0
}
fn default_arrival_dwell_s() -> u64 {
    20
}
fn default_ack_within_s() -> u64 {
    60
}
fn default_position_max_age_s() -> u64 {
    300
}
fn default_figures_window_h() -> u64 {
    24
}
fn default_max_open_h() -> f64 {
    12.0
}
fn default_keep_days() -> u64 {
    30
}

/// `[dispatch]`, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Dispatch {
    pub arrival: stationd_proto::dispatch::arrival::Rules,
    pub ack_within_ms: i64,
    pub position_max_age_ms: i64,
    pub ack_statuses: Vec<u16>,
    pub clear_statuses: Vec<u16>,
    pub terminal_ack_events: Vec<u8>,
    pub terminal_clear_events: Vec<u8>,
    pub ack_on_delivery: bool,
    pub figures_window_ms: i64,
    pub keep_ms: i64,
    pub max_open_ms: i64,
}

impl Default for Dispatch {
    fn default() -> Dispatch {
        RawDispatch::default()
            .check()
            .expect("the defaults are valid")
    }
}

impl Dispatch {
    /// One line for `check-config`.
    pub fn describe(&self) -> String {
        let hex = |v: &[u16]| {
            v.iter()
                .map(|s| format!("0x{s:04X}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut ways = Vec::new();
        if !self.ack_statuses.is_empty() {
            ways.push(format!("radio status {}", hex(&self.ack_statuses)));
        }
        if !self.terminal_ack_events.is_empty() {
            ways.push(format!("terminal event {:?}", self.terminal_ack_events));
        }
        let ack = match (ways.is_empty(), self.ack_on_delivery) {
            (false, _) => format!("crews acknowledge with {}", ways.join(" or ")),
            (true, true) => "a delivery counts as the crew's acknowledgement".to_string(),
            (true, false) => "no way for a crew to acknowledge (set [dispatch] ack_statuses to the status table's \"received\", or ack_on_delivery = true): every order will raise dispatch.unacknowledged".to_string(),
        };
        let mut clears = Vec::new();
        if !self.clear_statuses.is_empty() {
            clears.push(format!("radio status {}", hex(&self.clear_statuses)));
        }
        if !self.terminal_clear_events.is_empty() {
            clears.push(format!("terminal event {:?}", self.terminal_clear_events));
        }
        let clear = if clears.is_empty() {
            "incidents are cleared by central only".to_string()
        } else {
            format!("cleared by {}", clears.join(" or "))
        };
        format!(
            "arrival within {} m for {} s; acknowledge within {} s; {ack}; {clear}",
            self.arrival.radius_m,
            self.arrival.dwell_ms / 1000,
            self.ack_within_ms / 1000
        )
    }
}

impl RawDispatch {
    pub(super) fn check(self) -> Result<Dispatch, String> {
        if !(10.0..=5000.0).contains(&self.arrival_radius_m) {
            return Err(format!(
                "dispatch.arrival_radius_m = {} is out of range: 10 to 5000 metres (100 is usual; GNSS is good to about 10)",
                self.arrival_radius_m
            ));
        }
        if self.arrival_dwell_s > 600 {
            return Err("dispatch.arrival_dwell_s is at most 600 (20 is usual)".into());
        }
        if !(5..=3600).contains(&self.ack_within_s) {
            return Err("dispatch.ack_within_s must be 5 to 3600 seconds (60 is usual)".into());
        }
        if self.position_max_age_s == 0 {
            return Err("dispatch.position_max_age_s must be positive (300 is usual)".into());
        }
        if let Some(s) = self
            .ack_statuses
            .iter()
            .find(|s| self.clear_statuses.contains(s))
        {
            return Err(format!(
                "dispatch: status 0x{s:04X} is in both ack_statuses and clear_statuses"
            ));
        }
        if let Some(e) = self
            .terminal_ack_events
            .iter()
            .find(|e| self.terminal_clear_events.contains(e))
        {
            return Err(format!(
                "dispatch: terminal event {e} is in both terminal_ack_events and terminal_clear_events"
            ));
        }
        if !(self.max_open_h > 0.0 && self.max_open_h <= 720.0) {
            return Err("dispatch.max_open_h must be above 0 and at most 720 (12 is usual)".into());
        }
        if self.figures_window_h == 0 || self.keep_days == 0 {
            return Err("dispatch.figures_window_h and keep_days must be positive".into());
        }
        let mut arrival =
            stationd_proto::dispatch::arrival::Rules::with_radius(self.arrival_radius_m);
        arrival.dwell_ms = self.arrival_dwell_s as i64 * 1000;
        Ok(Dispatch {
            arrival,
            ack_within_ms: self.ack_within_s as i64 * 1000,
            position_max_age_ms: self.position_max_age_s as i64 * 1000,
            ack_statuses: self.ack_statuses,
            clear_statuses: self.clear_statuses,
            terminal_ack_events: self.terminal_ack_events,
            terminal_clear_events: self.terminal_clear_events,
            ack_on_delivery: self.ack_on_delivery,
            figures_window_ms: self.figures_window_h as i64 * 3_600_000,
            keep_ms: self.keep_days as i64 * 86_400_000,
            max_open_ms: (self.max_open_h * 3_600_000.0).round().max(1.0) as i64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Dispatch, String> {
        toml::from_str::<RawDispatch>(text)
            .map_err(|e| e.to_string())?
            .check()
    }

    #[test]
    fn defaults_are_the_stations_rules_and_mistakes_are_named() {
        let d = parse("").unwrap();
        assert_eq!((d.arrival.radius_m, d.arrival.dwell_ms), (100.0, 20_000));
        assert_eq!(d.ack_within_ms, 60_000);
        let d = parse("arrival_radius_m = 50\nack_statuses = [0x8002]\nclear_statuses = [0x8004]")
            .unwrap();
        assert_eq!((d.arrival.exit_radius_m, d.ack_statuses[0]), (75.0, 0x8002));
        assert!(parse("arrival_radius_m = 2")
            .unwrap_err()
            .contains("10 to 5000"));
        assert!(parse("ack_statuses = [1]\nclear_statuses = [1]")
            .unwrap_err()
            .contains("both"));
        assert!(parse("ack_within_s = 0").is_err());
        assert!(parse("radius = 5").is_err());
    }

    #[test]
    fn check_config_says_how_crews_acknowledge_or_that_they_cannot() {
        assert!(parse("")
            .unwrap()
            .describe()
            .contains("no way for a crew to acknowledge"));
        let d = parse("ack_statuses = [0x8002]\nclear_statuses = [0x8004]").unwrap();
        assert_eq!(
            d.describe(),
            "arrival within 100 m for 20 s; acknowledge within 60 s; crews acknowledge with radio status 0x8002; cleared by radio status 0x8004"
        );
    }
}
