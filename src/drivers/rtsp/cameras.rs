//! The station's cameras as the commands see them: each `rtsp` device registers what a
//! command needs to reach it (its URLs, credentials, limits) when it starts, so
//! `camera.snapshot` and `video.push` find a camera by its device id.

use crate::upload::UploadSettings;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// A user name and password read from `password_file`.
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} / (password)", self.username)
    }
}

impl Credentials {
    pub fn retina(&self) -> retina::client::Credentials {
        retina::client::Credentials {
            username: self.username.clone(),
            password: self.password.clone(),
        }
    }
}

/// One camera.
#[derive(Debug, Clone)]
pub struct Camera {
    pub id: String,
    pub url: url::Url,
    pub creds: Option<Credentials>,
    pub snapshot_url: Option<String>,
    pub snapshot_max_bytes: u64,
    pub upload: UploadSettings,
}

/// Every camera of the station, by device id.
#[derive(Default)]
pub struct Cameras {
    by_id: Mutex<BTreeMap<String, Arc<Camera>>>,
}

impl Cameras {
    pub fn set(&self, camera: Camera) {
        self.lock().insert(camera.id.clone(), Arc::new(camera));
    }

    pub fn get(&self, id: &str) -> Option<Arc<Camera>> {
        self.lock().get(id).cloned()
    }

    /// The ids, for an answer naming what there is.
    pub fn ids(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Arc<Camera>>> {
        self.by_id.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The camera a command's `args.camera` names, or why not.
pub fn named(
    cameras: &Cameras,
    args: &serde_json::Map<String, serde_json::Value>,
) -> Result<Arc<Camera>, String> {
    let id = args
        .get("camera")
        .and_then(serde_json::Value::as_str)
        .ok_or("args.camera (the camera's device id) is required")?;
    cameras.get(id).ok_or_else(|| {
        format!(
            "no camera {id:?} on this station (cameras: {})",
            cameras.ids().join(", ")
        )
    })
}
