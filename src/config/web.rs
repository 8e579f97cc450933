//! `[metrics]` and `[status_page]`: the daemon's local HTTP listeners (docs/CONFIG.md). Both
//! are off unless configured: a station box serves nothing on the network by default.
//!
//! `[metrics] listen` is where Prometheus scrapes `/metrics` (loopback or a Unix socket is
//! the usual place; node exporters on the box forward it). `[status_page]` is the technician's
//! read-only page on the station LAN, and needs a token (inline, or in a file so the config can
//! stay world-readable).

use super::ListenAddr;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Shortest token accepted: a guessable token on the station LAN is no token.
pub const MIN_TOKEN_LEN: usize = 16;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMetrics {
    listen: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStatusPage {
    listen: String,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    token_file: Option<PathBuf>,
    #[serde(default = "default_language")]
    language: String,
}

fn default_language() -> String {
    "zh".into()
}

/// `[metrics]`.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsListener {
    pub listen: ListenAddr,
}

/// The status page's labels: Chinese (the stations' language) or English.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    Zh,
    En,
}

impl Language {
    pub fn as_str(self) -> &'static str {
        match self {
            Language::Zh => "zh",
            Language::En => "en",
        }
    }
}

/// `[status_page]`.
#[derive(Clone, PartialEq)]
pub struct StatusPage {
    pub listen: ListenAddr,
    /// What `?token=` (or `Authorization: Bearer`) must carry.
    pub token: String,
    /// The labels shown first (the page can switch).
    pub language: Language,
}

impl std::fmt::Debug for StatusPage {
    // The token stays out of logs and debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusPage")
            .field("listen", &self.listen)
            .field("token", &"(set)")
            .field("language", &self.language)
            .finish()
    }
}

/// `127.0.0.1:9617`, `tcp://127.0.0.1:9617` or `unix:///run/stationd/metrics.sock`.
fn listen_addr(s: &str) -> Result<ListenAddr, String> {
    if s.contains("://") {
        ListenAddr::try_from(s.to_string())
    } else {
        s.parse::<SocketAddr>().map(ListenAddr::Tcp).map_err(|_| {
            format!("listen {s:?}: expected IP:PORT (127.0.0.1:9617), tcp://IP:PORT or unix:///absolute/path")
        })
    }
}

impl RawMetrics {
    pub(super) fn check(self) -> Result<MetricsListener, (&'static str, String)> {
        Ok(MetricsListener {
            listen: listen_addr(&self.listen).map_err(|e| ("metrics.listen", e))?,
        })
    }
}

impl RawStatusPage {
    pub(super) fn check(self) -> Result<StatusPage, (&'static str, String)> {
        let listen = listen_addr(&self.listen).map_err(|e| ("status_page.listen", e))?;
        let token = match (self.token, self.token_file) {
            (Some(t), None) => t,
            (None, Some(file)) => std::fs::read_to_string(&file)
                .map(|t| t.trim().to_string())
                .map_err(|e| {
                    (
                        "status_page.token_file",
                        format!("cannot read {}: {e}", file.display()),
                    )
                })?,
            (Some(_), Some(_)) => {
                return Err((
                    "status_page.token",
                    "give `token` or `token_file`, not both".into(),
                ))
            }
            (None, None) => {
                return Err((
                    "status_page.token",
                    format!("the status page needs a token (`token_file = \"/etc/stationd/status-token\"` holding at least {MIN_TOKEN_LEN} characters, e.g. from `openssl rand -hex 16`)"),
                ))
            }
        };
        // The token travels in a URL and a cookie: letters, digits and -._~+/= only.
        let allowed = |c: char| c.is_ascii_alphanumeric() || "-._~+/=".contains(c);
        if token.chars().count() < MIN_TOKEN_LEN || !token.chars().all(allowed) {
            return Err((
                "status_page.token",
                format!("the token must be at least {MIN_TOKEN_LEN} characters of letters, digits and -._~+/= (`openssl rand -hex 16` makes one)"),
            ));
        }
        let language = match self.language.as_str() {
            "zh" => Language::Zh,
            "en" => Language::En,
            other => {
                return Err((
                    "status_page.language",
                    format!("{other:?} is not a language of the page (zh, en)"),
                ))
            }
        };
        Ok(StatusPage {
            listen,
            token,
            language,
        })
    }
}

/// Whether `listen` answers on every interface (0.0.0.0, ::): allowed when configured, and
/// worth a warning from check-config.
pub fn on_all_interfaces(listen: &ListenAddr) -> bool {
    matches!(listen, ListenAddr::Tcp(a) if a.ip().is_unspecified())
}

impl MetricsListener {
    pub fn describe(&self) -> String {
        format!("Prometheus /metrics on {}", self.listen)
    }
}

impl StatusPage {
    pub fn describe(&self) -> String {
        format!(
            "status page on {} (token required, labels {})",
            self.listen,
            self.language.as_str()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(text: &str) -> Result<StatusPage, (&'static str, String)> {
        toml::from_str::<RawStatusPage>(text).unwrap().check()
    }

    #[test]
    fn listen_takes_the_issue_form_a_scheme_or_a_unix_socket() {
        assert_eq!(
            listen_addr("127.0.0.1:9617").unwrap(),
            ListenAddr::Tcp("127.0.0.1:9617".parse().unwrap())
        );
        assert_eq!(
            listen_addr("tcp://[::1]:9617").unwrap(),
            ListenAddr::Tcp("[::1]:9617".parse().unwrap())
        );
        assert_eq!(
            listen_addr("unix:///run/stationd/metrics.sock").unwrap(),
            ListenAddr::Unix("/run/stationd/metrics.sock".into())
        );
        assert!(listen_addr("localhost:9617")
            .unwrap_err()
            .contains("IP:PORT"));
        assert!(on_all_interfaces(&listen_addr("0.0.0.0:9617").unwrap()));
        assert!(!on_all_interfaces(&listen_addr("127.0.0.1:9617").unwrap()));
    }

    #[test]
    fn the_page_needs_a_long_enough_token_from_one_place() {
        let ok = page("listen = \"0.0.0.0:8080\"\ntoken = \"0123456789abcdef\"").unwrap();
        assert_eq!(
            (ok.token.as_str(), ok.language),
            ("0123456789abcdef", Language::Zh)
        );
        assert!(
            !format!("{ok:?}").contains("0123456789abcdef"),
            "the token is not logged"
        );
        let e = page("listen = \"0.0.0.0:8080\"").unwrap_err();
        assert_eq!(e.0, "status_page.token");
        let e = page("listen = \"0.0.0.0:8080\"\ntoken = \"short\"").unwrap_err();
        assert!(e.1.contains("at least 16"), "{e:?}");
        let e = page("listen = \"0.0.0.0:8080\"\ntoken = \"0123456789abcdef;x\"").unwrap_err();
        assert!(e.1.contains("letters, digits"), "{e:?}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "fedcba9876543210fedcba\n").unwrap();
        let text = format!(
            "listen = \"127.0.0.1:8080\"\ntoken_file = {:?}\nlanguage = \"en\"",
            file
        );
        let ok = page(&text).unwrap();
        assert_eq!(
            (ok.token.as_str(), ok.language),
            ("fedcba9876543210fedcba", Language::En)
        );
        let both = format!("{text}\ntoken = \"0123456789abcdef\"");
        assert!(page(&both).unwrap_err().1.contains("not both"));
        let e =
            page("listen = \"127.0.0.1:8080\"\ntoken = \"0123456789abcdef\"\nlanguage = \"fr\"")
                .unwrap_err();
        assert_eq!(e.0, "status_page.language");
    }
}
