//! The `rtsp` driver: an IP camera's feed, known healthy before an emergency needs it. Its
//! config is [`config`]. Every `probe_s` the camera is asked to DESCRIBE its stream (retina:
//! Basic or Digest authentication, the SDP, the SPS) and the answer becomes the feed's health
//! (`camera.up` / `camera.down` with a reason a technician can act on) and its shape
//! (`camera.feed` telemetry by exception, the board's `1920x1080 H.264 25 fps`).
//!
//! Snapshots, a short PLAY measuring frames, and pushing video to central come in the next
//! part of issue #13.

mod config;

pub use config::RtspDevice;

use super::{DeviceContext, DeviceSink, Driver};
use crate::event::{Event, Priority};
use serde_json::json;
use std::time::Duration;

/// The registry's entry (`driver = "rtsp"`).
pub const DRIVER: Driver = Driver {
    name: "rtsp",
    serial: false,
    parse: super::parse_device::<RtspDevice>,
    keys: crate::config::keys::keys_of::<RtspDevice>,
};

/// How long a camera has to answer OPTIONS + DESCRIBE.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// What a feed looks like.
#[derive(Debug, Clone, PartialEq)]
pub struct Feed {
    /// `H.264`, `H.265`, `MJPEG`, or the SDP's encoding name.
    pub codec: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub fps: Option<f64>,
    /// The RFC 6381 codec string (profile and level), e.g. `avc1.4D401E`.
    pub profile: Option<String>,
}

impl Feed {
    /// `1920x1080 H.264 25 fps`.
    pub fn detail(&self) -> String {
        let mut parts = Vec::new();
        if let (Some(w), Some(h)) = (self.width, self.height) {
            parts.push(format!("{w}x{h}"));
        }
        parts.push(self.codec.clone());
        if let Some(f) = self.fps {
            parts.push(format!("{} fps", (f * 100.0).round() / 100.0));
        }
        parts.join(" ")
    }
}

/// Why a camera is down, in a technician's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Down {
    /// `unreachable`, `refused`, `authentication_failed`, `not_found`, `timeout`,
    /// `no_video_track`.
    pub reason: &'static str,
    pub detail: String,
}

/// What a probe's outcome changes: the events to send.
#[derive(Debug, Default)]
pub struct Health {
    up: Option<bool>,
    feed: Option<Feed>,
    down: Option<Down>,
}

/// One event to send: (kind, prio, data).
pub type Change = (&'static str, Priority, serde_json::Value);

impl Health {
    /// The probe's outcome; what is news.
    pub fn probed(&mut self, outcome: Result<Feed, Down>) -> Vec<Change> {
        let mut out = Vec::new();
        match outcome {
            Ok(feed) => {
                if self.up != Some(true) {
                    out.push(("camera.up", Priority::Event, feed_json(&feed)));
                }
                if self.feed.as_ref() != Some(&feed) {
                    out.push(("camera.feed", Priority::Telemetry, feed_json(&feed)));
                }
                self.up = Some(true);
                self.feed = Some(feed);
                self.down = None;
            }
            Err(down) => {
                // A reason that changes while down is news too (refused → authentication).
                if self.up != Some(false)
                    || self.down.as_ref().map(|d| d.reason) != Some(down.reason)
                {
                    out.push((
                        "camera.down",
                        Priority::Event,
                        json!({"reason": down.reason, "detail": down.detail}),
                    ));
                }
                self.up = Some(false);
                self.down = Some(down);
            }
        }
        out
    }
}

fn feed_json(f: &Feed) -> serde_json::Value {
    json!({"codec": f.codec, "width": f.width, "height": f.height, "fps": f.fps, "profile": f.profile})
}

/// Asks the camera to describe its stream.
async fn probe(url: &url::Url, creds: Option<retina::client::Credentials>) -> Result<Feed, Down> {
    let options = retina::client::SessionOptions::default()
        .creds(creds)
        .user_agent(format!("stationd/{}", env!("CARGO_PKG_VERSION")));
    let session = match tokio::time::timeout(
        PROBE_TIMEOUT,
        retina::client::Session::describe(url.clone(), options),
    )
    .await
    {
        Err(_) => {
            return Err(Down {
                reason: "timeout",
                detail: format!("no answer to DESCRIBE within {} s", PROBE_TIMEOUT.as_secs()),
            })
        }
        Ok(Err(e)) => return Err(classify(&e)),
        Ok(Ok(s)) => s,
    };
    let Some(video) = session.streams().iter().find(|s| s.media() == "video") else {
        return Err(Down {
            reason: "no_video_track",
            detail: "the camera's SDP has no video stream".into(),
        });
    };
    let codec = match video.encoding_name() {
        "h264" => "H.264".to_string(),
        "h265" => "H.265".to_string(),
        "jpeg" => "MJPEG".to_string(),
        other => other.to_ascii_uppercase(),
    };
    let mut feed = Feed {
        codec,
        width: None,
        height: None,
        fps: None,
        profile: None,
    };
    if let Some(retina::codec::ParametersRef::Video(v)) = video.parameters() {
        let (w, h) = v.pixel_dimensions();
        feed.width = Some(w);
        feed.height = Some(h);
        feed.fps = v
            .frame_rate()
            .filter(|(num, _)| *num > 0)
            .map(|(num, den)| f64::from(den) / f64::from(num));
        feed.profile = Some(v.rfc6381_codec().to_string());
    }
    Ok(feed)
}

/// A failed DESCRIBE, in a technician's words.
fn classify(e: &retina::Error) -> Down {
    let detail = e.to_string().lines().next().unwrap_or_default().to_string();
    let reason = match e.status_code() {
        Some(401) => "authentication_failed",
        Some(404) => "not_found",
        Some(_) => "refused",
        None if detail.contains("Connection refused") => "refused",
        None => "unreachable",
    };
    Down { reason, detail }
}

/// Runs until shutdown: probe, report, wait.
async fn run(d: RtspDevice, ctx: DeviceContext) {
    let DeviceContext {
        sink,
        shutdown,
        board,
        metrics,
        ..
    } = ctx;
    let probes = metrics.counter("camera.probes", &d.id);
    let failures = metrics.counter("camera.probes_failed", &d.id);
    let url = match url::Url::parse(&d.url) {
        Ok(u) => u,
        Err(_) => return, // checked when the config was read
    };
    let creds = match (&d.username, &d.password_file) {
        (Some(user), Some(file)) => match std::fs::read_to_string(file) {
            Ok(p) => Some(retina::client::Credentials {
                username: user.clone(),
                password: p.trim_end_matches(['\n', '\r']).to_string(),
            }),
            Err(e) => {
                tracing::error!(event = "camera.password_unreadable", device_id = %d.id, file = %file.display(), error = %e, "cannot read the camera's password file; probing without credentials (make it readable by stationd, mode 0600)");
                board.set_state(
                    &d.id,
                    "offline",
                    Some(&format!("password file {}: {e}", file.display())),
                );
                None
            }
        },
        _ => None,
    };
    let mut health = Health::default();
    let mut every = tokio::time::interval(Duration::from_secs(d.probe_s));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        crate::metrics::inc(&probes);
        let outcome = tokio::select! {
            o = probe(&url, creds.clone()) => o,
            _ = shutdown.cancelled() => return,
        };
        match &outcome {
            Ok(feed) => board.set_state(&d.id, "online", Some(&feed.detail())),
            Err(down) => {
                crate::metrics::inc(&failures);
                board.set_state(
                    &d.id,
                    "offline",
                    Some(&format!(
                        "{}: {}",
                        down.reason.replace('_', " "),
                        down.detail
                    )),
                );
            }
        }
        for (kind, prio, mut data) in health.probed(outcome) {
            data["url"] = d.url.clone().into();
            match kind {
                "camera.down" => {
                    tracing::warn!(event = kind, device_id = %d.id, reason = %data["reason"], detail = %data["detail"], "camera feed down")
                }
                "camera.up" => tracing::info!(event = kind, device_id = %d.id, "camera feed up"),
                _ => {}
            }
            if !send(&sink, &d.id, kind, prio, data).await {
                return;
            }
        }
    }
}

async fn send(
    sink: &DeviceSink,
    device: &str,
    kind: &str,
    prio: Priority,
    data: serde_json::Value,
) -> bool {
    let ev = Event::new(device, kind, prio, crate::clock::now(), false, data);
    sink.send(ev).await.is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(w: u32) -> Feed {
        Feed {
            codec: "H.264".into(),
            width: Some(w),
            height: Some(1080),
            fps: Some(25.0),
            profile: Some("avc1.4D4029".into()),
        }
    }

    fn kinds(c: &[Change]) -> Vec<&str> {
        c.iter().map(|(k, _, _)| *k).collect()
    }

    #[test]
    fn health_is_reported_by_exception() {
        let mut h = Health::default();
        assert_eq!(
            kinds(&h.probed(Ok(feed(1920)))),
            ["camera.up", "camera.feed"]
        );
        assert!(h.probed(Ok(feed(1920))).is_empty(), "nothing new");
        assert_eq!(
            kinds(&h.probed(Ok(feed(1280)))),
            ["camera.feed"],
            "resolution changed"
        );
        let auth = || Down {
            reason: "authentication_failed",
            detail: "401".into(),
        };
        assert_eq!(kinds(&h.probed(Err(auth()))), ["camera.down"]);
        assert!(
            h.probed(Err(auth())).is_empty(),
            "still down for the same reason"
        );
        let gone = Down {
            reason: "refused",
            detail: "x".into(),
        };
        assert_eq!(kinds(&h.probed(Err(gone))), ["camera.down"], "a new reason");
        assert_eq!(
            kinds(&h.probed(Ok(feed(1280)))),
            ["camera.up"],
            "same feed as before"
        );
        assert_eq!(feed(1920).detail(), "1920x1080 H.264 25 fps");
    }
}
