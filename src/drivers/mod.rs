//! Drivers: one per kind of attached device. Each is a sans-I/O codec (`crate::codec`) plus a
//! thin I/O task that owns the port or socket and hands [`crate::event::Event`]s to an
//! [`crate::outbox::EventSink`]. Drivers know events, not SQLite or MQTT.

pub mod gps;
pub mod jsonl;
pub mod jt808;
pub mod nmea;
pub mod serial;

use crate::config::Device;
use crate::outbox::EventSink;
use tokio::sync::watch;
use tokio::task::JoinSet;

#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("device {device}: cannot listen on {addr}: {source}")]
    Listen {
        device: String,
        addr: String,
        source: std::io::Error,
    },
}

/// Starts every configured device. Listening sockets are bound before this returns, so a
/// port already in use is reported at start, not later.
pub async fn start_all(
    devices: &[Device],
    sink: &EventSink,
    shutdown: &watch::Receiver<bool>,
) -> Result<JoinSet<()>, DriverError> {
    let mut set = JoinSet::new();
    for device in devices {
        let initial = match device {
            Device::Nmea(_) => "waiting",
            Device::Jsonl(_) | Device::Jt808(_) => "listening",
        };
        crate::health::register(device.id(), device.driver(), initial);
        match device {
            Device::Jsonl(d) => {
                let listener = jsonl::bind(d).await?;
                set.spawn(jsonl::serve(
                    d.clone(),
                    jsonl::InputPolicy::new(d, devices),
                    listener,
                    sink.clone(),
                    shutdown.clone(),
                ));
            }
            // A serial device that is absent at start is not an error: it is reported offline
            // and opened when it appears.
            Device::Nmea(d) => {
                set.spawn(nmea::run(d.clone(), sink.clone(), shutdown.clone()));
            }
            Device::Jt808(d) => {
                let listener = jt808::bind(d).await?;
                set.spawn(jt808::serve(
                    d.clone(),
                    listener,
                    sink.clone(),
                    shutdown.clone(),
                ));
            }
        }
    }
    Ok(set)
}
