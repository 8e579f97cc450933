//! The local HTTP listeners as their users meet them: Prometheus scraping `/metrics` (parsed
//! by Prometheus's own Python client, in both text formats) while the uplink comes and goes,
//! and the technician opening the status page in a real headless Chromium, driven through
//! ChromeDriver (W3C WebDriver), with and without the token, watching a GPS receiver on a
//! real pseudo-terminal go offline. Screenshots go to target/artifacts/.
#![allow(clippy::disallowed_methods)] // test threads may block (clippy.toml bans it in the daemon)

mod common;

use common::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const LONG: Duration = Duration::from_secs(30);
const TOKEN: &str = "status-token-0123456789abcdef";

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// GET `url` with extra headers: (status, content type, body).
fn get(url: &str, headers: &[(&str, &str)]) -> (u16, String, String) {
    let mut req = agent().get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut resp = req.call().unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let content_type = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = resp
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_string()
        .unwrap();
    (resp.status().as_u16(), content_type, body)
}

/// A scrape as Prometheus's Python client reads it.
struct Exposition {
    families: BTreeMap<String, String>,
    samples: Vec<(String, BTreeMap<String, String>, Option<f64>)>,
}

impl Exposition {
    /// Parses `text` in `format` (`text` or `openmetrics`); panics with the parser's error.
    fn parse(text: &str, format: &str) -> Exposition {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/lib/prom_parse.py");
        let mut child = Command::new("/usr/bin/python3")
            .args([script, format])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("Debian's python3 (tests/run.sh installs python3-prometheus-client)");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "Prometheus's {format} parser refused the exposition: {}\n{text}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        Exposition {
            families: serde_json::from_value(v["families"].clone()).unwrap(),
            samples: serde_json::from_value(v["samples"].clone()).unwrap(),
        }
    }

    /// The value of the sample `name` whose labels include `labels`.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples
            .iter()
            .find(|(n, l, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .and_then(|(_, _, v)| *v)
    }

    fn must(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.value(name, labels)
            .unwrap_or_else(|| panic!("no sample {name} {labels:?}"))
    }
}

/// Scrapes `http://127.0.0.1:{port}/metrics` in both formats; both must parse. The
/// OpenMetrics reading is returned.
fn scrape(port: u16) -> Exposition {
    let url = format!("http://127.0.0.1:{port}/metrics");
    let (status, content_type, text) = get(&url, &[]);
    assert_eq!(status, 200, "{text}");
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    Exposition::parse(&text, "text");
    let (status, content_type, text) = get(
        &url,
        &[(
            "Accept",
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        )],
    );
    assert_eq!(status, 200);
    assert!(
        content_type.starts_with("application/openmetrics-text; version=1.0.0"),
        "{content_type}"
    );
    Exposition::parse(&text, "openmetrics")
}

fn wait_scrape(port: u16, what: &str, cond: impl Fn(&Exposition) -> bool) -> Exposition {
    let deadline = Instant::now() + LONG;
    loop {
        let m = scrape(port);
        if cond(&m) {
            return m;
        }
        assert!(Instant::now() < deadline, "/metrics never showed {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn metrics_follow_the_backlog_and_the_uplink_and_parse_as_prometheus_reads_them() {
    let mut broker = Broker::started();
    let central = Subscriber::connect(broker.port, "central-metrics");
    let station = Station::new(broker.port, "");
    let port = free_port();
    station.append_config(&format!("\n[metrics]\nlisten = \"127.0.0.1:{port}\"\n"));
    station.watch_box("");
    let daemon = station.start();
    wait_online(&central, &daemon);

    let m = wait_scrape(port, "the uplink connected", |m| {
        m.value("stationd_uplink_connected", &[]) == Some(1.0)
    });
    assert_eq!(m.families["stationd_build"], "info");
    assert_eq!(m.families["stationd_jsonl_lines_accepted"], "counter");
    assert_eq!(m.families["stationd_outbox_rows"], "gauge");
    assert_eq!(
        m.must(
            "stationd_build_info",
            &[("station", "test-st01"), ("station_name", "测试驻巡站")]
        ),
        1.0
    );
    assert_eq!(m.must("stationd_uplink_connects_total", &[]), 1.0);
    assert_eq!(
        m.must(
            "stationd_device_state",
            &[
                ("device", "ingest0"),
                ("driver", "jsonl"),
                ("state", "listening")
            ]
        ),
        1.0
    );
    assert!(m.must("process_resident_memory_bytes", &[]) > 1e6);
    // The configuration's hash, as `stationd status` shows it; the box's own figures.
    let status: Value = serde_json::from_str(&station.cli_ok(&["status", "--json"])).unwrap();
    let hash = status["config"]["hash"].as_str().unwrap();
    assert_eq!(m.must("stationd_config_info", &[("hash", hash)]), 1.0);
    let outbox_dir = station.dir.path().display().to_string();
    let m = wait_scrape(port, "the box's first reading", |m| {
        m.value("stationd_box_volume_used_percent", &[("path", &outbox_dir)])
            .is_some()
    });
    assert!(m.must("stationd_box_memory_used_percent", &[]) > 0.0);
    assert!(m.must("process_open_fds", &[]) >= 3.0);

    // The broker goes: the backlog grows in the outbox and the offline time runs.
    broker.stop();
    wait_scrape(port, "the uplink down", |m| {
        m.value("stationd_uplink_connected", &[]) == Some(0.0)
    });
    let lines: Vec<String> = (0..40)
        .map(|n| line("sensor.reading", "telemetry", n))
        .collect();
    send_lines(station.ingest_port, &lines);
    send_lines(station.ingest_port, &[line("door.forced", "alarm", 1)]);
    let m = wait_scrape(port, "41 rows waiting", |m| {
        m.value("stationd_outbox_rows", &[("class", "telemetry")]) == Some(40.0)
            && m.value("stationd_outbox_rows", &[("class", "alarm")]) == Some(1.0)
    });
    assert_eq!(
        m.must(
            "stationd_jsonl_lines_accepted_total",
            &[("device", "ingest0")]
        ),
        41.0
    );
    assert!(m.must("stationd_outbox_bytes", &[("class", "telemetry")]) > 40.0 * 50.0);
    assert_eq!(m.must("stationd_uplink_disconnects_total", &[]), 1.0);
    std::thread::sleep(Duration::from_millis(1500));
    let t0 = Instant::now();
    let before = scrape(port);
    std::thread::sleep(Duration::from_secs(1));
    let after = scrape(port);
    let elapsed = t0.elapsed().as_secs_f64();
    let ran = after.must("stationd_uplink_offline_seconds_total", &[])
        - before.must("stationd_uplink_offline_seconds_total", &[]);
    assert!(
        ran >= 0.9 && ran <= elapsed + 0.1,
        "offline time ran {ran} s in {elapsed} s"
    );
    assert!(
        after.must(
            "stationd_outbox_oldest_age_seconds",
            &[("class", "telemetry")]
        ) >= 2.0
    );
    assert_eq!(
        after.must("stationd_outbox_oldest_age_seconds", &[("class", "event")]),
        0.0
    );

    // It comes back: the backlog drains, the offline time stops.
    broker.start();
    let m = wait_scrape(port, "the backlog drained", |m| {
        m.value("stationd_uplink_connected", &[]) == Some(1.0)
            && m.value("stationd_outbox_rows", &[("class", "telemetry")]) == Some(0.0)
            && m.value("stationd_outbox_rows", &[("class", "alarm")]) == Some(0.0)
    });
    assert_eq!(m.must("stationd_uplink_connects_total", &[]), 2.0);
    assert!(m.must("stationd_uplink_acked_total", &[]) >= 41.0);
    let offline = m.must("stationd_uplink_offline_seconds_total", &[]);
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(
        scrape(port).must("stationd_uplink_offline_seconds_total", &[]),
        offline,
        "the offline time stops while connected"
    );
    // The same figure as the technician's CLI.
    let status: Value = serde_json::from_str(&station.cli_ok(&["status", "--json"])).unwrap();
    assert_eq!(
        status["uplink"]["offline_s"].as_f64().unwrap(),
        offline.floor()
    );

    // Read-only, and nothing else there.
    let post = agent()
        .post(format!("http://127.0.0.1:{port}/metrics"))
        .send("")
        .unwrap();
    assert_eq!(post.status().as_u16(), 405);
    assert_eq!(
        get(&format!("http://127.0.0.1:{port}/api/status"), &[]).0,
        404
    );
    drop(daemon);
}

/// A GPS receiver on a pty that keeps talking until stopped (then the pty is "unplugged").
struct TalkingReceiver {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TalkingReceiver {
    fn plug_in(link: &Path) -> TalkingReceiver {
        let mut pty = Pty::at(link);
        let capture = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/gpsd-bu353s4.log"
        ))
        .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let lines: Vec<&str> = capture.lines().filter(|l| !l.starts_with('#')).collect();
                for l in lines.iter().cycle() {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let _ = pty.master.write_all(format!("{l}\r\n").as_bytes());
                    std::thread::sleep(Duration::from_millis(50));
                }
                drop(pty);
            })
        };
        TalkingReceiver {
            stop,
            thread: Some(thread),
        }
    }

    /// Pulls the receiver's plug.
    fn unplug(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap();
    }
}

impl Drop for TalkingReceiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Debian's Chromium, headless, driven through ChromeDriver's W3C WebDriver endpoint.
struct Browser {
    driver: Child,
    base: String,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn start(width: u32, height: u32) -> Browser {
        for tool in ["/usr/bin/chromium", "/usr/bin/chromedriver"] {
            assert!(
                Path::new(tool).exists(),
                "{tool} is missing: apt-get install chromium chromium-driver (tests/run.sh installs them)"
            );
        }
        let port = free_port();
        let driver = Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        assert!(
            wait_until(LONG, || agent()
                .get(format!("{base}/status"))
                .call()
                .is_ok_and(|r| r.status() == 200)),
            "chromedriver did not start"
        );
        let profile = tempfile::tempdir().unwrap();
        let mut browser = Browser {
            driver,
            base,
            session: String::new(),
            _profile: profile,
        };
        // The flags this machine's closed network needs (no background connections).
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                         "--no-first-run", "--disable-background-networking",
                         "--disable-component-update", "--disable-sync",
                         "--disable-dev-shm-usage",
                         format!("--user-data-dir={}", browser._profile.path().display()),
                         format!("--window-size={width},{height}")]
            }
        }}});
        let v = browser.call("POST", "/session", Some(caps));
        browser.session = v["sessionId"].as_str().unwrap().to_string();
        browser
    }

    /// One WebDriver call; its `value`.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{}", self.base, path);
        let a = agent();
        let mut resp = match method {
            "GET" => a.get(&url).call(),
            "DELETE" => a.delete(&url).call(),
            _ => a
                .post(&url)
                .header("Content-Type", "application/json")
                .send(body.unwrap_or(json!({})).to_string()),
        }
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let text = resp
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert!(
            resp.status() == 200,
            "WebDriver {method} {path}: {}",
            v["value"]
        );
        v["value"].clone()
    }

    fn at(&self, what: &str) -> String {
        format!("/session/{}{what}", self.session)
    }

    fn go(&self, url: &str) {
        self.call("POST", &self.at("/url"), Some(json!({ "url": url })));
    }

    fn js(&self, script: &str) -> Value {
        self.call(
            "POST",
            &self.at("/execute/sync"),
            Some(json!({"script": script, "args": []})),
        )
    }

    /// Waits until `script` returns true; how long it took.
    fn wait_for(&self, timeout: Duration, what: &str, script: &str) -> Duration {
        let t0 = Instant::now();
        while t0.elapsed() < timeout {
            if self.js(script) == json!(true) {
                return t0.elapsed();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "the page never showed {what}; it shows:\n{}",
            self.js("return document.body.innerText")
        );
    }

    fn click(&self, css: &str) {
        let el = self.call(
            "POST",
            &self.at("/element"),
            Some(json!({"using": "css selector", "value": css})),
        );
        let id = el
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap()
            .to_string();
        self.call("POST", &self.at(&format!("/element/{id}/click")), None);
    }

    fn resize(&self, width: u32, height: u32) {
        self.call(
            "POST",
            &self.at("/window/rect"),
            Some(json!({"width": width, "height": height})),
        );
    }

    /// A PNG of the viewport, kept under target/artifacts/.
    fn screenshot(&self, name: &str) -> PathBuf {
        use base64::Engine;
        let b64 = self.call("GET", &self.at("/screenshot"), None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap())
            .unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/artifacts");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, png).unwrap();
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = agent()
                .delete(format!("{}/session/{}", self.base, self.session))
                .call();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// GET over a Unix socket (HTTP/1.1, the connection closed after): (status, body).
fn get_unix(socket: &Path, path: &str) -> (u16, String) {
    let mut s = std::os::unix::net::UnixStream::connect(socket).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}

fn row_state(device: &str) -> String {
    format!("document.querySelector('tr[data-device=\"{device}\"]')?.dataset.state ?? null")
}

#[test]
fn the_status_page_in_a_real_browser_needs_the_token_and_shows_a_device_go_offline() {
    let broker = Broker::started();
    let central = Subscriber::connect(broker.port, "central-page");
    let station = Station::new(broker.port, "");
    let link = station.dir.path().join("gps0");
    let page_port = free_port();
    let metrics_socket = station.dir.path().join("metrics.sock");
    station.append_config(&format!(
        r#"
[[device]]
id = "gps0"
driver = "nmea"
path = "{link}"
min_distance_m = 0
min_interval_s = 0
offline_after_s = 3
max_clock_skew_s = 3153600000

[status_page]
listen = "127.0.0.1:{page_port}"
token = "{TOKEN}"

[metrics]
listen = "unix://{metrics}"
"#,
        link = link.display(),
        metrics = metrics_socket.display()
    ));
    let receiver = TalkingReceiver::plug_in(&link);
    let daemon = station.start();
    wait_online(&central, &daemon);
    let page = format!("http://127.0.0.1:{page_port}");

    // Without the token: refused, and told how to get in.
    let (status, _, body) = get(&format!("{page}/"), &[]);
    assert_eq!(
        (status, body.contains("Token required")),
        (401, true),
        "{body}"
    );
    assert_eq!(get(&format!("{page}/api/status"), &[]).0, 401);
    assert_eq!(
        get(&format!("{page}/?token=wrong-token-0123456789"), &[]).0,
        401
    );
    assert_eq!(
        get(
            &format!("{page}/api/status"),
            &[("Authorization", "Bearer not-the-token-0000")]
        )
        .0,
        401
    );
    let (status, content_type, body) = get(
        &format!("{page}/api/status"),
        &[("Authorization", &format!("Bearer {TOKEN}"))],
    );
    assert_eq!((status, content_type.as_str()), (200, "application/json"));
    let doc: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["status"]["station"], "test-st01");

    let browser = Browser::start(1280, 1000);
    browser.go(&format!("{page}/"));
    let text = browser.js("return document.body.innerText");
    assert!(text.as_str().unwrap().contains("Token required"), "{text}");

    // With the token: the page, and the token gone from the address bar.
    browser.go(&format!("{page}/?token={TOKEN}"));
    browser.wait_for(
        LONG,
        "its first reading",
        "return document.body.dataset.loaded === '1'",
    );
    assert_eq!(
        browser.js("return location.href"),
        json!(format!("{page}/"))
    );
    browser.wait_for(
        LONG,
        "gps0 online",
        &format!("return ({}) === 'online'", row_state("gps0")),
    );
    assert_eq!(
        browser.js("return document.querySelector('#devices-card h2').textContent"),
        json!("设备"),
        "Chinese labels first"
    );
    assert_eq!(
        browser.js("return document.getElementById('station-name').textContent"),
        json!("测试驻巡站")
    );
    // An alarm reaches the page.
    send_lines(station.ingest_port, &[line("door.forced", "alarm", 7)]);
    browser.wait_for(
        LONG,
        "the alarm",
        "return document.querySelector('#alarms li[data-kind=\"door.forced\"]') !== null",
    );
    let shot = browser.screenshot("status-page.png");
    eprintln!("screenshot: {}", shot.display());

    // The receiver is unplugged: the page shows it offline within a few seconds, unreloaded.
    receiver.unplug();
    let took = browser.wait_for(
        LONG,
        "gps0 offline",
        &format!("return ({}) === 'offline'", row_state("gps0")),
    );
    eprintln!("gps0 offline on the page {took:?} after the unplug");
    assert!(took < Duration::from_secs(8), "took {took:?}");
    let detail = browser.js(
        "return document.querySelector('tr[data-device=\"gps0\"] td:nth-child(4)').textContent",
    );
    assert!(!detail.as_str().unwrap().is_empty(), "the page says why");
    browser.screenshot("status-page-offline.png");

    // English on a click; the choice survives a reload.
    browser.click("#lang-toggle");
    assert_eq!(
        browser.js("return document.querySelector('#devices-card h2').textContent"),
        json!("Devices")
    );
    browser.go(&format!("{page}/"));
    browser.wait_for(
        LONG,
        "a reading after the reload",
        "return document.body.dataset.loaded === '1'",
    );
    assert_eq!(
        browser.js("return document.querySelector('#devices-card h2').textContent"),
        json!("Devices")
    );
    assert_eq!(
        browser.js("return document.querySelector('tr[data-device=\"gps0\"] .badge').textContent"),
        json!("offline")
    );

    // A phone's screen: nothing wider than it.
    browser.resize(390, 844);
    browser.wait_for(
        LONG,
        "a layout as wide as the phone",
        "return document.documentElement.scrollWidth <= window.innerWidth",
    );
    let card = "document.getElementById('devices-card')";
    assert_eq!(
        browser.js(&format!(
            "{card}.scrollIntoView(); return {card}.scrollWidth <= {card}.clientWidth"
        )),
        json!(true),
        "the device list fits the phone without scrolling sideways"
    );
    browser.screenshot("status-page-phone.png");

    // The browser left with the cookie; central's view agrees with the page.
    let (status, body) = get_unix(&metrics_socket, "/metrics");
    assert_eq!(status, 200);
    let m = Exposition::parse(&body, "text");
    assert_eq!(
        m.must(
            "stationd_device_state",
            &[("device", "gps0"), ("driver", "nmea"), ("state", "offline")]
        ),
        1.0
    );
    assert!(m.must("stationd_status_page_refused_total", &[]) >= 4.0);
    drop(browser);
    let (code, _) = daemon.terminate();
    assert_eq!(code, Some(0));
    assert!(
        !metrics_socket.exists(),
        "the metrics socket is removed at the stop"
    );
}
