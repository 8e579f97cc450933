//! Logs: journald when systemd started us (`JOURNAL_STREAM` is set and the journal socket
//! answers), stderr otherwise. Every record carries the station id (journald field
//! `STATION_ID`); records about a device carry `device` (journald `DEVICE`) and an `event`
//! name from docs/INSTRUMENTATION.md, so technicians grep for names, not prose.
//! `RUST_LOG` overrides the level (default `info`).

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Safe to call once per process; later calls do nothing.
pub fn init(station_id: Option<&str>) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        if let Ok(layer) = tracing_journald::layer() {
            let layer = layer
                .with_field_prefix(None)
                .with_syslog_identifier("stationd".into())
                .with_custom_fields([("STATION_ID", station_id.unwrap_or(""))]);
            let _ = registry.with(layer).try_init();
            return;
        }
    }
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = registry.with(fmt).try_init();
    if let Some(id) = station_id {
        tracing::info!(
            station = id,
            "stationd {} starting",
            env!("CARGO_PKG_VERSION")
        );
    }
}
