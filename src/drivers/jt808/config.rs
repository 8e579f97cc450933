//! `driver = "jt808"`: the cars' JT/T 808 terminals connecting over TCP (docs/CONFIG.md).

use crate::config::ListenAddr;
use crate::drivers::gps::{
    default_max_interval_s, default_min_course_deg, default_min_distance_m, default_min_interval_s,
};
use crate::drivers::{CheckedConfig, DeviceConfig, DeviceContext, DeviceTask, DriverError};
use serde::Deserialize;
use std::any::Any;

/// Vehicle terminals (JT/T 808) connecting over TCP (`driver = "jt808"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Jt808Device {
    pub id: String,
    pub driver: String,
    /// `tcp://IP:PORT`.
    pub listen: ListenAddr,
    /// Whether terminals not listed in `terminals` may register (they are reported either way).
    #[serde(default)]
    pub allow_unknown: bool,
    /// Terminal phone number → the car: `"013912345678" = "car-03"` or
    /// `"013912345678" = { car = "car-03", plate = "鲁A12345" }`.
    #[serde(default)]
    pub terminals: std::collections::BTreeMap<String, TerminalEntry>,
    #[serde(default = "default_jt808_connections")]
    pub max_connections: usize,
    /// A terminal silent this long is disconnected (terminals heartbeat every 30-60 s).
    #[serde(default = "default_idle_timeout_s")]
    pub idle_timeout_s: u64,
    #[serde(default = "default_min_distance_m")]
    pub min_distance_m: f64,
    #[serde(default = "default_min_course_deg")]
    pub min_course_deg: f64,
    #[serde(default = "default_min_interval_s")]
    pub min_interval_s: u64,
    #[serde(default = "default_max_interval_s")]
    pub max_interval_s: u64,
    /// A terminal time further than this from the synchronised box clock (or, for stored
    /// reports, ahead of it) is not believed (a flat RTC battery): the box's time is used,
    /// `clock: "device_unreliable"`.
    #[serde(default = "crate::clock::default_max_clock_skew_s")]
    pub max_clock_skew_s: u64,
}

/// One known terminal.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum TerminalEntry {
    Car(String),
    Detailed {
        car: String,
        #[serde(default)]
        plate: Option<String>,
    },
}

impl TerminalEntry {
    pub fn car(&self) -> &str {
        match self {
            TerminalEntry::Car(c) | TerminalEntry::Detailed { car: c, .. } => c,
        }
    }
    pub fn plate(&self) -> Option<&str> {
        match self {
            TerminalEntry::Car(_) => None,
            TerminalEntry::Detailed { plate, .. } => plate.as_deref(),
        }
    }
}

fn default_jt808_connections() -> usize {
    1000
}
fn default_idle_timeout_s() -> u64 {
    300
}

impl CheckedConfig for Jt808Device {
    fn check(&self) -> Result<(), String> {
        if !matches!(self.listen, ListenAddr::Tcp(_)) {
            return Err("listen must be tcp://IP:PORT (terminals connect over TCP)".into());
        }
        for (phone, t) in &self.terminals {
            if phone.is_empty() || phone.len() > 20 || !phone.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!(
                    "terminal {phone:?}: a terminal phone number is 1-20 digits"
                ));
            }
            if !crate::event::is_valid_device_id(t.car()) {
                return Err(format!(
                    "terminal {phone:?}: car id {:?} must be 1-64 characters of [A-Za-z0-9_.-]",
                    t.car()
                ));
            }
        }
        if self.min_interval_s > self.max_interval_s
            || self.max_interval_s == 0
            || self.idle_timeout_s == 0
        {
            return Err("min_interval_s must not exceed max_interval_s; intervals and idle_timeout_s must be positive".into());
        }
        Ok(())
    }
}

impl Jt808Device {
    /// What its connections' sessions (pure, in the protocol crate) are configured with.
    pub fn session_config(&self) -> stationd_proto::jt808::SessionConfig {
        stationd_proto::jt808::SessionConfig {
            device: self.id.clone(),
            terminals: self
                .terminals
                .iter()
                .map(|(phone, t)| {
                    let known = stationd_proto::jt808::KnownTerminal {
                        car: t.car().to_string(),
                        plate: t.plate().map(str::to_string),
                    };
                    (phone.clone(), known)
                })
                .collect(),
            allow_unknown: self.allow_unknown,
            policy: crate::drivers::gps::ReportPolicy::from_config(
                self.min_distance_m,
                self.min_course_deg,
                self.min_interval_s,
                self.max_interval_s,
            ),
            max_clock_skew_ms: (self.max_clock_skew_s as i64).saturating_mul(1000),
            // 64 random bits per registration (fastrand: fast, not cryptographic — JT/T 808 runs
            // over plain TCP anyway); the protocol crate takes no randomness of its own.
            auth_code: || format!("{:016x}", fastrand::u64(..)),
        }
    }
}

impl DeviceConfig for Jt808Device {
    fn id(&self) -> &str {
        &self.id
    }
    fn driver(&self) -> &'static str {
        "jt808"
    }
    fn describe(&self) -> String {
        format!(
            "{} jt808 {} ({} terminal(s) listed{})",
            self.id,
            self.listen,
            self.terminals.len(),
            if self.allow_unknown {
                ", unknown ones allowed"
            } else {
                ""
            }
        )
    }
    fn initial_state(&self) -> &'static str {
        "listening"
    }
    /// The listener and the cars behind it: the listed ones, and `jt808-PHONE` for admitted
    /// unknown terminals.
    fn owns(&self, id: &str) -> bool {
        self.id == id || id.starts_with("jt808-") || self.terminals.values().any(|t| t.car() == id)
    }
    fn start(&self, ctx: DeviceContext) -> Result<DeviceTask, DriverError> {
        let listener = super::bind(self)?;
        // Texts from dispatch reach the cars of every JT/T 808 listener through one directory.
        let links = {
            let mut commands = ctx.commands.lock().unwrap_or_else(|p| p.into_inner());
            let links = commands.service::<super::text::CarLinks>();
            commands.add_once(std::sync::Arc::new(super::text::TextCommand {
                links: links.clone(),
            }));
            links
        };
        Ok(Box::pin(super::serve(self.clone(), listener, ctx, links)))
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}
