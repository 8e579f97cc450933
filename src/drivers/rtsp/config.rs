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
    /// `http(s)://…` answering GET with a JPEG (`camera.snapshot`); same credentials.
    pub snapshot_url: Option<String>,
    /// A snapshot larger than this is refused (a camera answering with a stream, not a picture).
    #[serde(default = "default_snapshot_max_kb")]
    pub snapshot_max_kb: u64,
    /// Snapshots are sent to central at most this many kilobits per second.
    #[serde(default = "default_upload_kbit_s")]
    pub upload_kbit_s: u64,
    /// A CA certificate (PEM) for central's servers (snapshot uploads, `rtsps://` pushes),
    /// besides Mozilla's roots.
    pub upload_ca_file: Option<PathBuf>,
}

fn default_snapshot_max_kb() -> u64 {
    4096
}
fn default_upload_kbit_s() -> u64 {
    2000
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
        if let Some(snap) = &self.snapshot_url {
            let u = url::Url::parse(snap).map_err(|e| format!("snapshot_url {snap:?}: {e}"))?;
            if u.scheme() != "http" && u.scheme() != "https" {
                return Err(format!(
                    "snapshot_url {snap:?} must start with http:// or https://"
                ));
            }
            if !u.username().is_empty() || u.password().is_some() {
                return Err(
                    "snapshot_url must not carry credentials: username and password_file serve it too"
                        .into(),
                );
            }
        }
        if self.snapshot_max_kb == 0 || self.upload_kbit_s == 0 {
            return Err("snapshot_max_kb and upload_kbit_s must be positive".into());
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

impl RtspDevice {
    /// What the commands need of this camera, with the password read; or why it could not be.
    fn camera(&self) -> (super::cameras::Camera, Option<String>) {
        let (creds, error) = match (&self.username, &self.password_file) {
            (Some(user), Some(file)) => match std::fs::read_to_string(file) {
                Ok(p) => (
                    Some(super::cameras::Credentials {
                        username: user.clone(),
                        password: p.trim_end_matches(['\n', '\r']).to_string(),
                    }),
                    None,
                ),
                Err(e) => (None, Some(format!("password file {}: {e}", file.display()))),
            },
            _ => (None, None),
        };
        let camera = super::cameras::Camera {
            id: self.id.clone(),
            url: url::Url::parse(&self.url).expect("checked when the config was read"),
            creds,
            snapshot_url: self.snapshot_url.clone(),
            snapshot_max_bytes: self.snapshot_max_kb * 1024,
            upload: crate::upload::UploadSettings {
                kbit_s: self.upload_kbit_s,
                ca_file: self.upload_ca_file.clone(),
            },
        };
        (camera, error)
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
    /// A password file that cannot be read is not fatal: the camera is probed without
    /// credentials and the board says why (the probe then reads authentication_failed).
    fn start(&self, ctx: DeviceContext) -> Result<DeviceTask, DriverError> {
        let (camera, password_error) = self.camera();
        {
            let mut commands = ctx.commands.lock().unwrap_or_else(|p| p.into_inner());
            let cameras = commands.service::<super::cameras::Cameras>();
            cameras.set(camera.clone());
            commands.add_once(std::sync::Arc::new(super::snapshot::SnapshotCommand {
                cameras: cameras.clone(),
            }));
            let pushes = commands.service::<super::push::Pushes>();
            pushes.set_shutdown(ctx.shutdown.clone());
            let replay = commands.service::<crate::uplink::ReplayGate>();
            commands.add_once(std::sync::Arc::new(super::push::PushCommand {
                cameras: cameras.clone(),
                pushes: pushes.clone(),
                replay,
            }));
            commands.add_once(std::sync::Arc::new(super::push::StopCommand { pushes }));
        }
        Ok(Box::pin(super::run(
            self.clone(),
            ctx,
            camera,
            password_error,
        )))
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
