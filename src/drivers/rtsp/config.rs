//! `driver = "rtsp"`: an IP camera's RTSP feed (docs/CONFIG.md, "rtsp").

use crate::drivers::{CheckedConfig, DeviceConfig, DeviceContext, DeviceTask, DriverError};
use serde::Deserialize;
use std::any::Any;
use std::path::PathBuf;

/// A camera's `[[device]]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RtspDevice {
    pub id: String,
    pub driver: String,
    /// `rtsp://host[:port]/path`, without credentials.
    pub url: String,
    pub username: Option<String>,
    /// A file holding the password (mode 0600, owned by stationd): never in the config.
    pub password_file: Option<PathBuf>,
    /// DESCRIBE this often.
    #[serde(default = "default_probe_s")]
    pub probe_s: u64,
    /// A short PLAY of this many seconds at each probe, measuring frames (0: off).
    #[serde(default)]
    pub watch_s: u64,
}

fn default_probe_s() -> u64 {
    60
}

impl CheckedConfig for RtspDevice {
    fn check(&self) -> Result<(), String> {
        let u = url::Url::parse(&self.url).map_err(|e| format!("url {:?}: {e}", self.url))?;
        if u.scheme() != "rtsp" && u.scheme() != "rtsps" {
            return Err(format!(
                "url {:?} must start with rtsp:// or rtsps://",
                self.url
            ));
        }
        if !u.username().is_empty() || u.password().is_some() {
            return Err("url must not carry credentials: use username and password_file".into());
        }
        if self.password_file.is_some() != self.username.is_some() {
            return Err("username and password_file go together".into());
        }
        if let Some(p) = &self.password_file {
            if !p.is_absolute() {
                return Err(format!("password_file {} must be absolute", p.display()));
            }
        }
        if self.probe_s == 0 {
            return Err("probe_s must be positive (60 is usual)".into());
        }
        if self.watch_s > 60 || self.watch_s >= self.probe_s.max(2) {
            return Err("watch_s must be shorter than probe_s and at most 60 (5 is usual)".into());
        }
        Ok(())
    }
}

impl DeviceConfig for RtspDevice {
    fn id(&self) -> &str {
        &self.id
    }
    fn driver(&self) -> &'static str {
        "rtsp"
    }
    fn describe(&self) -> String {
        format!(
            "{} rtsp {} ({}; probed every {} s)",
            self.id,
            self.url,
            if self.username.is_some() {
                "with credentials"
            } else {
                "no credentials"
            },
            self.probe_s
        )
    }
    fn initial_state(&self) -> &'static str {
        "waiting"
    }
    fn start(&self, ctx: DeviceContext) -> Result<DeviceTask, DriverError> {
        Ok(Box::pin(super::run(self.clone(), ctx)))
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<crate::drivers::Device, String> {
        crate::drivers::parse_device::<RtspDevice>(toml::from_str(s).unwrap())
    }

    #[test]
    fn the_issue_example_parses_and_mistakes_are_named() {
        let base = "id = \"cam-gate\"\ndriver = \"rtsp\"\n";
        assert!(parse(&format!("{base}url = \"rtsp://192.168.1.64:554/Streaming/Channels/101\"\nusername = \"viewer\"\npassword_file = \"/etc/stationd/cam-gate.pass\"\nprobe_s = 60\n")).is_ok());
        assert!(parse(&format!("{base}url = \"http://x/\"\n"))
            .unwrap_err()
            .contains("rtsp://"));
        assert!(parse(&format!("{base}url = \"rtsp://u:p@x/\"\n"))
            .unwrap_err()
            .contains("credentials"));
        assert!(
            parse(&format!("{base}url = \"rtsp://x/\"\nusername = \"u\"\n"))
                .unwrap_err()
                .contains("together")
        );
    }
}
