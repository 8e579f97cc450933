//! The daemon's local HTTP listeners: `/metrics` for Prometheus (`[metrics]`) and the
//! technician's status page (`[status_page]`). Both are off unless configured, read-only, and
//! a convenience: if a listener cannot bind, the daemon says so and goes on with its job.
//!
//! axum on hyper serves them; `prometheus` encodes `/metrics`, `page` answers the page and its
//! JSON, `process` reads `/proc/self`. When `[metrics]` and `[status_page]` name the same
//! address, one listener serves both (and `/metrics` is then as open as that address).

pub mod page;
pub mod process;
pub mod prometheus;

use crate::config::{ListenAddr, MetricsListener, StatusPage};
use crate::control::server::Sources;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Binds and serves what is configured; one task per listener, ended by `stop`.
pub async fn start(
    metrics: Option<&MetricsListener>,
    page: Option<&StatusPage>,
    sources: Arc<Sources>,
    stop: CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    let metrics_routes = || {
        Router::new()
            .route("/metrics", get(scrape))
            .with_state(sources.clone())
    };
    let page_routes = |p: &StatusPage| page::routes(p, sources.clone());
    let mut listeners: Vec<(ListenAddr, Router, &'static str)> = Vec::new();
    match (metrics, page) {
        (Some(m), Some(p)) if m.listen == p.listen => {
            listeners.push((
                p.listen.clone(),
                page_routes(p).merge(metrics_routes()),
                "metrics and status page",
            ));
        }
        (m, p) => {
            if let Some(m) = m {
                let root = Router::new().route(
                    "/",
                    get(|| async { "stationd: Prometheus metrics at /metrics\n" }),
                );
                listeners.push((m.listen.clone(), metrics_routes().merge(root), "metrics"));
            }
            if let Some(p) = p {
                listeners.push((p.listen.clone(), page_routes(p), "status page"));
            }
        }
    }
    let mut tasks = Vec::new();
    for (addr, router, what) in listeners {
        match serve(&addr, router, stop.clone()).await {
            Ok(task) => {
                tracing::info!(event = "web.listening", listen = %addr, serves = what, "HTTP listener ready");
                tasks.push(task);
            }
            Err(e) => {
                tracing::error!(event = "web.unavailable", listen = %addr, serves = what, error = %e, "cannot listen for HTTP: the {what} is not served (the daemon goes on); free the address or change it in the config");
                crate::metrics::inc(&sources.metrics.counter("web.bind_failures", ""));
            }
        }
    }
    tasks
}

/// Binds `addr` (a Unix socket gets mode 0660, and is removed at the stop) and serves.
async fn serve(
    addr: &ListenAddr,
    router: Router,
    stop: CancellationToken,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let router = router.layer(axum::middleware::map_response(common_headers));
    match addr {
        ListenAddr::Tcp(a) => {
            let listener = tokio::net::TcpListener::bind(a).await?;
            Ok(tokio::spawn(run(listener, router, stop, None)))
        }
        ListenAddr::Unix(path) => {
            use std::os::unix::fs::{FileTypeExt, PermissionsExt};
            // A socket left behind by a daemon that died is replaced.
            if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
                let _ = std::fs::remove_file(path);
            }
            let listener = tokio::net::UnixListener::bind(path)?;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
            Ok(tokio::spawn(run(
                listener,
                router,
                stop,
                Some(path.clone()),
            )))
        }
    }
}

/// Serves until `stop`; then removes `socket`, if the listener is a Unix socket's.
async fn run<L>(
    listener: L,
    router: Router,
    stop: CancellationToken,
    socket: Option<std::path::PathBuf>,
) where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    let served = axum::serve(listener, router)
        .with_graceful_shutdown(stop.cancelled_owned())
        .await;
    if let Err(e) = served {
        tracing::warn!(event = "web.failed", error = %e, "HTTP listener stopped");
    }
    if let Some(path) = socket {
        let _ = std::fs::remove_file(path);
    }
}

/// Every answer: never cached (it is live and may be behind a token), never framed, no
/// content sniffing, no referrer leaving the page.
async fn common_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// `GET /metrics`.
async fn scrape(
    axum::extract::State(sources): axum::extract::State<Arc<Sources>>,
    headers: HeaderMap,
) -> Response {
    crate::metrics::inc(&sources.metrics.counter("web.scrapes", ""));
    let openmetrics =
        prometheus::wants_openmetrics(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    match prometheus::read(&sources).await {
        Ok(readings) => {
            let body = prometheus::encode(readings, openmetrics);
            let content_type = if openmetrics {
                prometheus::OPENMETRICS_CONTENT_TYPE
            } else {
                prometheus::TEXT_CONTENT_TYPE
            };
            ([(header::CONTENT_TYPE, content_type)], body).into_response()
        }
        Err(e) => {
            tracing::warn!(event = "web.scrape_failed", error = %e, "a Prometheus scrape could not read the daemon");
            (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response()
        }
    }
}
