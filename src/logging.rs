//! Logs: journald when systemd started us (`JOURNAL_STREAM` is set and the journal socket
//! answers), stderr otherwise. Every record carries the station id (journald field
//! `STATION_ID`, `station=` on stderr); records about a device carry `device_id` and `driver`
//! (journald upper-cases field names: `DEVICE_ID`, `DRIVER`, `EVENT`), and every record an
//! `event` name from docs/INSTRUMENTATION.md, so technicians grep for names, not prose.
//! `RUST_LOG` overrides the level (default `info`).

use std::fmt;
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{Format, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Later calls do nothing.
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
    let format = StationPrefix {
        station: station_id.unwrap_or("-").to_string(),
        inner: Format::default().with_target(false),
    };
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .event_format(format);
    let _ = registry.with(fmt).try_init();
}

/// The default stderr format with `station=ID` in front of the fields of every record.
struct StationPrefix {
    station: String,
    inner: Format,
}

impl<S, N> FormatEvent<S, N> for StationPrefix
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    Format: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write!(writer, "station={} ", self.station)?;
        self.inner.format_event(ctx, writer, event)
    }
}
