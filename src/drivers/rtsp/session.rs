//! A camera's RTSP session through retina, opened the same way for the probe and for
//! `video.push`: DESCRIBE with the camera's credentials and the video stream found, SETUP over
//! TCP interleaved, PLAY — each within [`TIMEOUT`], a failure said as a [`Down`] a technician
//! can act on.

use super::cameras::Camera;
use super::Down;
use retina::client::{Described, Playing, Session};
use std::time::Duration;

/// How long a camera has to answer each request.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// DESCRIBE; the session and the index of its (first) video stream.
pub async fn describe(camera: &Camera) -> Result<(Session<Described>, usize), Down> {
    let options = retina::client::SessionOptions::default()
        .creds(
            camera
                .creds
                .as_ref()
                .map(super::cameras::Credentials::retina),
        )
        .user_agent(format!("stationd/{}", env!("CARGO_PKG_VERSION")));
    let session = tokio::time::timeout(TIMEOUT, Session::describe(camera.url.clone(), options))
        .await
        .map_err(|_| Down {
            reason: "timeout",
            detail: format!("no answer to DESCRIBE within {} s", TIMEOUT.as_secs()),
        })?
        .map_err(|e| classify(&e))?;
    let video = session
        .streams()
        .iter()
        .position(|s| s.media() == "video")
        .ok_or_else(|| Down {
            reason: "no_video_track",
            detail: "the camera's SDP has no video stream".into(),
        })?;
    Ok((session, video))
}

/// SETUP of stream `i` over TCP interleaved.
pub async fn setup_tcp(session: &mut Session<Described>, i: usize) -> Result<(), Down> {
    let setup = retina::client::SetupOptions::default()
        .transport(retina::client::Transport::Tcp(Default::default()));
    tokio::time::timeout(TIMEOUT, session.setup(i, setup))
        .await
        .map_err(|_| Down {
            reason: "timeout",
            detail: "no answer to SETUP".into(),
        })?
        .map_err(|e| refused("SETUP", &e))?;
    Ok(())
}

/// PLAY. DESCRIBE and SETUP were answered: a PLAY that is not is the camera's media side
/// hung (its server waits for the encoder's first packet before answering), not the network.
pub async fn play(session: Session<Described>) -> Result<Session<Playing>, Down> {
    tokio::time::timeout(TIMEOUT, session.play(retina::client::PlayOptions::default()))
        .await
        .map_err(|_| Down {
            reason: "stalled",
            detail: format!(
                "DESCRIBE and SETUP answered, PLAY not within {} s: the camera's encoder is not producing",
                TIMEOUT.as_secs()
            ),
        })?
        .map_err(|e| refused("PLAY", &e))
}

/// A request the camera answered with an error, or a session that failed under way.
pub fn refused(what: &str, e: &retina::Error) -> Down {
    Down {
        reason: "refused",
        detail: format!("{what}: {}", first_line(e)),
    }
}

/// retina's errors carry context on further lines; the first says what happened.
pub fn first_line(e: &impl std::fmt::Display) -> String {
    e.to_string().lines().next().unwrap_or_default().to_string()
}

/// A failed DESCRIBE, in a technician's words.
fn classify(e: &retina::Error) -> Down {
    let detail = first_line(e);
    let reason = match e.status_code() {
        Some(401) => "authentication_failed",
        Some(404) => "not_found",
        Some(_) => "refused",
        None if detail.contains("Connection refused") => "refused",
        None => "unreachable",
    };
    Down { reason, detail }
}
