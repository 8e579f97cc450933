//! The `rtsp` driver: an IP camera's feed, known healthy before an emergency needs it. Its
//! config is [`config`]. Every `probe_s` the camera is asked to DESCRIBE its stream (retina:
//! Basic or Digest authentication, the SDP, the SPS) and the answer becomes the feed's health
//! (`camera.up` / `camera.down` with a reason a technician can act on) and its shape
//! (`camera.feed` telemetry by exception, the board's `1920x1080 H.264 25 fps`).
//!
//! With `watch_s`, each probe also PLAYs the stream that long over TCP interleaved and counts
//! what arrives: frames per second, bitrate, keyframe interval — and a session that is up but
//! sends no frames is `stalled`.
//!
//! Commands find the cameras in [`Cameras`]: `camera.snapshot` ([`snapshot`]), `video.push`
//! and `video.stop` ([`push`]).

mod cameras;
mod config;
mod push;
mod session;
mod snapshot;

pub use cameras::{Camera, Cameras};
pub use config::RtspDevice;
pub use push::Pushes;

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
    /// Measured by a short PLAY (`watch_s`), when on: frames/s, kbit/s, seconds between
    /// keyframes (rounded, so small jitter is not news).
    pub measured: Option<Measured>,
}

/// What a short PLAY saw.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    pub fps: f64,
    pub kbit_s: u64,
    pub keyframe_interval_s: Option<f64>,
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
        if let Some(m) = &self.measured {
            parts.push(format!("({} fps, {} kbit/s measured)", m.fps, m.kbit_s));
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
    let mut v = json!({"codec": f.codec, "width": f.width, "height": f.height, "fps": f.fps, "profile": f.profile});
    if let Some(m) = &f.measured {
        v["measured_fps"] = m.fps.into();
        v["bitrate_kbit_s"] = m.kbit_s.into();
        v["keyframe_interval_s"] = m.keyframe_interval_s.into();
    }
    v
}

/// Asks the camera to describe its stream and, with `watch` > 0, plays it that long.
async fn probe(camera: &Camera, watch: Duration) -> Result<Feed, Down> {
    let (described, video_i) = session::describe(camera).await?;
    let video = &described.streams()[video_i];
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
        measured: None,
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
    if !watch.is_zero() {
        feed.measured = Some(play(described, video_i, watch).await?);
    }
    Ok(feed)
}

/// PLAYs stream `i` for `watch` over TCP interleaved and measures what arrives.
async fn play(
    mut described: retina::client::Session<retina::client::Described>,
    i: usize,
    watch: Duration,
) -> Result<Measured, Down> {
    use futures::StreamExt;
    session::setup_tcp(&mut described, i).await?;
    let playing = session::play(described).await?;
    let mut frames = playing
        .demuxed()
        .map_err(|e| session::refused("PLAY", &e))?;
    let started = std::time::Instant::now();
    let (mut count, mut bytes, mut keyframes) = (0u64, 0u64, Vec::new());
    let mut last_frame = None;
    while let Some(left) = watch.checked_sub(started.elapsed()) {
        match tokio::time::timeout(left, frames.next()).await {
            Err(_) => break,
            Ok(None) => {
                return Err(Down {
                    reason: "stalled",
                    detail: "the camera ended the stream while playing".into(),
                });
            }
            Ok(Some(Err(e))) => return Err(session::refused("while playing", &e)),
            Ok(Some(Ok(retina::codec::CodecItem::VideoFrame(f)))) => {
                let at = started.elapsed();
                last_frame = Some(at);
                count += 1;
                bytes += f.data().len() as u64;
                if f.is_random_access_point() {
                    keyframes.push(at.as_secs_f64());
                }
            }
            Ok(Some(Ok(_))) => {}
        }
    }
    if let Some(why) = stalled(count, last_frame, watch) {
        return Err(Down {
            reason: "stalled",
            detail: why,
        });
    }
    let secs = watch.as_secs_f64();
    let keyframe_interval_s = (keyframes.len() >= 2).then(|| {
        let span = keyframes[keyframes.len() - 1] - keyframes[0];
        (span / (keyframes.len() - 1) as f64 * 10.0).round() / 10.0
    });
    Ok(Measured {
        // Whole frames per second, whole kbit/s in steps of 10 %: jitter is not news.
        fps: (count as f64 / secs).round(),
        kbit_s: round_to_tenth_of_magnitude(bytes * 8 / 1000 / watch.as_secs().max(1)),
        keyframe_interval_s,
    })
}

/// Whether a PLAY of `watch` that saw `count` frames, the last at `last_frame`, is a stalled
/// stream: up but (nearly) silent — fewer than one frame a second — or silent at the end for
/// [`STALL_SILENCE`] or more (frames that came right after PLAY, then none: an encoder that
/// hangs, or a burst the camera had buffered).
fn stalled(count: u64, last_frame: Option<Duration>, watch: Duration) -> Option<String> {
    if count < watch.as_secs().max(1) {
        return Some(format!(
            "the session is up but only {count} frame(s) came in {} s",
            watch.as_secs()
        ));
    }
    let silent = watch.saturating_sub(last_frame.unwrap_or_default());
    (silent >= STALL_SILENCE).then(|| {
        format!(
            "the session is up but the frames stopped: none in the last {:.1} s of {} s",
            silent.as_secs_f64(),
            watch.as_secs()
        )
    })
}

/// No frame for this long at the end of a short PLAY is a stalled stream (a camera sending
/// even 1 frame/s never goes this long between frames).
pub const STALL_SILENCE: Duration = Duration::from_secs(2);

/// 1234 → 1200, 87 → 87: two significant digits.
fn round_to_tenth_of_magnitude(v: u64) -> u64 {
    let mut scale = 1;
    while v / scale >= 100 {
        scale *= 10;
    }
    (v + scale / 2) / scale * scale
}

/// Runs until shutdown: probe, report, wait.
async fn run(d: RtspDevice, ctx: DeviceContext, camera: Camera, password_error: Option<String>) {
    let DeviceContext {
        sink,
        shutdown,
        board,
        metrics,
        ..
    } = ctx;
    let probes = metrics.counter("camera.probes", &d.id);
    let failures = metrics.counter("camera.probes_failed", &d.id);
    if let Some(why) = &password_error {
        tracing::error!(event = "camera.password_unreadable", device_id = %d.id, error = %why, "cannot read the camera's password file; probing without credentials (make it readable by stationd, mode 0600)");
        board.set_state(&d.id, "offline", Some(why));
    }
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
            o = probe(&camera, Duration::from_secs(d.watch_s)) => o,
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
            measured: None,
        }
    }

    fn kinds(c: &[Change]) -> Vec<&str> {
        c.iter().map(|(k, _, _)| *k).collect()
    }

    #[test]
    fn a_stream_that_stops_is_stalled_one_that_trickles_is_not() {
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        assert!(stalled(0, None, s(5)).is_some(), "nothing came");
        assert!(stalled(4, Some(s(4)), s(5)).is_some(), "under 1 frame/s");
        let burst = stalled(12, Some(ms(480)), s(4)).expect("a burst, then silence");
        assert!(burst.contains("frames stopped"), "{burst}");
        assert_eq!(stalled(100, Some(ms(4960)), s(5)), None, "25 fps");
        assert_eq!(stalled(5, Some(ms(4500)), s(5)), None, "1 fps");
        assert_eq!(stalled(2, Some(ms(1500)), s(2)), None, "1 fps, short watch");
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
        assert_eq!(
            (
                round_to_tenth_of_magnitude(1234),
                round_to_tenth_of_magnitude(87)
            ),
            (1200, 87)
        );
    }
}
