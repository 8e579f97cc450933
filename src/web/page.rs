//! The technician's status page (`[status_page]`): one read-only page for a laptop or a phone
//! on the station LAN, showing what `stationd status`, `devices`, `staffing`, `equipment` and
//! `dispatch` show, refreshing itself every two seconds, in Chinese or English.
//!
//! The page (`assets/index.html`, `app.js`, `app.css`, compiled into the binary) holds no data;
//! it reads `/api/status`. Both need the token: opened once as `/?token=…`, the page sets it as
//! an HttpOnly, SameSite=Strict cookie and drops it from the address bar; scripts may send
//! `Authorization: Bearer …` instead. Without it, 401 and a line that says what is missing.
//! The script and style sheet carry no data and are served to anyone, so the page can keep a
//! strict Content-Security-Policy (no inline script). Data is put on the page as text, never
//! as HTML: a device's detail comes from the field.

use super::Sources;
use crate::config::StatusPage;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

const INDEX: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

/// The cookie that carries the token after the first visit.
const COOKIE: &str = "stationd_status";

/// Everything loaded from this listener, nothing inline, no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

struct PageState {
    sources: Arc<Sources>,
    token: String,
    language: &'static str,
}

/// The page's routes.
pub fn routes(cfg: &StatusPage, sources: Arc<Sources>) -> Router {
    let state = Arc::new(PageState {
        sources,
        token: cfg.token.clone(),
        language: cfg.language.as_str(),
    });
    Router::new()
        .route("/", get(index))
        .route("/api/status", get(status))
        .route(
            "/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/app.css",
            get(|| async { asset("text/css; charset=utf-8", APP_CSS) }),
        )
        .with_state(state)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// Compares in time that does not depend on where the first difference is.
fn same_token(given: &str, expected: &str) -> bool {
    let (a, b) = (given.as_bytes(), expected.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The token a request carries: `Authorization: Bearer`, else the cookie.
fn carried_token(headers: &HeaderMap) -> Option<&str> {
    if let Some(bearer) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return Some(bearer.trim());
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(COOKIE)?.strip_prefix('='))
}

impl PageState {
    fn allows(&self, token: Option<&str>) -> bool {
        let ok = token.is_some_and(|t| same_token(t, &self.token));
        if !ok {
            let refused = self.sources.metrics.counter("status_page.refused", "");
            crate::metrics::inc(&refused);
            let n = refused.load(std::sync::atomic::Ordering::Relaxed);
            if n <= 10 || n.is_multiple_of(100) {
                tracing::warn!(
                    event = "status_page.refused",
                    refused = n,
                    token_given = token.is_some(),
                    "refused a status page request without the right token"
                );
            }
        }
        ok
    }
}

/// The answer without the token: which is missing, in both languages.
fn refused(json: bool) -> Response {
    let mut response = if json {
        (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "token required: open the page as /?token=… (the token is in the station's configuration, [status_page])"})),
        )
            .into_response()
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            "<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>stationd</title></head><body><h1>需要令牌 · Token required</h1><p>请使用 <code>/?token=…</code> 打开本页（令牌见站点配置 [status_page]）。</p><p>Open this page as <code>/?token=…</code> (the token is in the station's configuration, <code>[status_page]</code>).</p></body></html>",
        )
            .into_response()
    };
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"stationd\""),
    );
    response
}

/// `GET /`: the page; `/?token=…` keeps the token in a cookie and comes back without it.
async fn index(
    State(st): State<Arc<PageState>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(given) = query.get("token") {
        if !st.allows(Some(given)) {
            return refused(false);
        }
        let back = match query.get("lang").map(String::as_str) {
            Some(l @ ("zh" | "en")) => format!("/?lang={l}"),
            _ => "/".to_string(),
        };
        let cookie = format!("{COOKIE}={given}; HttpOnly; SameSite=Strict; Path=/");
        let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, back)]).into_response();
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            response.headers_mut().insert(header::SET_COOKIE, v);
        }
        return response;
    }
    if !st.allows(carried_token(&headers)) {
        return refused(false);
    }
    let mut response = (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        INDEX.replace("{{LANG}}", st.language),
    )
        .into_response();
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    response
}

/// `GET /api/status`: what the page shows.
async fn status(State(st): State<Arc<PageState>>, headers: HeaderMap) -> Response {
    if !st.allows(carried_token(&headers)) {
        return refused(true);
    }
    match document(&st.sources).await {
        Ok(doc) => axum::Json(doc).into_response(),
        Err(e) => {
            tracing::warn!(event = "status_page.unreadable", error = %e, "the status page could not read the daemon");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!({ "error": e })),
            )
                .into_response()
        }
    }
}

/// The page's data: the status head, the device rows, staffing and crews (names as central
/// gets them), equipment not in service, dispatch, and the recent alarms.
pub async fn document(s: &Sources) -> Result<Value, String> {
    let status = crate::control::server::status_reply(s).await?;
    let devices = crate::control::server::devices_reply(s);
    let staffing = s
        .staffing
        .as_ref()
        .filter(|st| st.config().is_some())
        .map(|st| {
            crate::staffing::payload::document(st, crate::staffing::payload::share_names(st), false)
        });
    let equipment = s
        .equipment
        .as_ref()
        .map(|e| crate::equipment::payload::document(e, false));
    let dispatch = s.dispatch.as_ref().map(|d| d.document());
    Ok(json!({
        "now_ms": devices.now_ms,
        "status": status,
        "devices": devices.devices,
        "staffing": staffing,
        "equipment": equipment,
        "dispatch": dispatch,
        "alarms": s.alarms.newest_first(),
        "box": s.host.as_ref().and_then(|h| h.document()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_comes_from_a_bearer_header_or_the_cookie() {
        let mut h = HeaderMap::new();
        assert_eq!(carried_token(&h), None);
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("theme=dark; stationd_status=abc123; x=1"),
        );
        assert_eq!(carried_token(&h), Some("abc123"));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer zzz"),
        );
        assert_eq!(carried_token(&h), Some("zzz"));
        assert!(same_token("0123456789abcdef", "0123456789abcdef"));
        assert!(!same_token("0123456789abcdeF", "0123456789abcdef"));
        assert!(!same_token("0123456789abcde", "0123456789abcdef"));
    }

    #[test]
    fn the_page_loads_its_script_and_style_and_nothing_inline() {
        assert!(INDEX.contains("src=\"/app.js\"") && INDEX.contains("href=\"/app.css\""));
        assert!(!INDEX.contains("<script>") && !INDEX.contains("<style"));
        // Data reaches the page as text only.
        assert!(
            !APP_JS.contains("innerHTML"),
            "app.js must not build HTML from data"
        );
    }
}
