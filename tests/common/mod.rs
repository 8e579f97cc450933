//! Test harness: real processes on loopback only.
//! - [`Broker`]: a mosquitto started on a free 127.0.0.1 port, with persistence so that a
//!   subscriber's session and queued messages survive restarts of the broker.
//! - [`Subscriber`]: a real MQTT client (rumqttc) standing in for central dispatch.
//! - [`Daemon`]: the `stationd` binary under test, killed in `Drop`.
//!
//! Every spawned child is killed when its guard drops, so a failing test leaks nothing.
#![allow(clippy::disallowed_methods)] // test threads may block (clippy.toml bans it in the daemon)
#![allow(dead_code)]

use serde_json::Value;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub mod terminal;

/// The tests' `[staffing]` rotation (tests/data/staffing/rotation.toml): team 1 always on duty,
/// team 2 always training; append `[[staffing.car]]` tables after it.
#[allow(dead_code)] // not every test binary keeps staffing
pub const ROTATION: &str = include_str!("../data/staffing/rotation.toml");

/// A free loopback port, never the same one twice in this test process: the kernel may hand a
/// just-released port out again, and two tests running in parallel must not share one.
/// CPU seconds (user + system) a process has used, from /proc/PID/stat (0 when it is gone).
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let Some(close) = stat.rfind(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // After the command: state is field 0, utime 11, stime 12 (clock ticks of 1/100 s).
    (tick(11) + tick(12)) / 100.0
}

pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut given = GIVEN.lock().unwrap();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// Polls `cond` every 20 ms until it holds or `timeout` passes (for other processes' state,
/// which cannot be awaited).
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

fn mosquitto_bin() -> PathBuf {
    for dir in std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .chain(["/usr/sbin", "/usr/local/sbin"])
    {
        let p = Path::new(dir).join("mosquitto");
        if p.exists() {
            return p;
        }
    }
    panic!("mosquitto is not installed: run the README's test command (it installs it), or apt-get install mosquitto");
}

pub struct Broker {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Broker {
    /// A broker on a free port, not yet running.
    pub fn new() -> Broker {
        Broker::with_config(|_| String::new())
    }

    /// A broker whose config gets `extra(dir)` appended (e.g. a TLS listener with files in dir).
    pub fn with_config(extra: impl FnOnce(&Path) -> String) -> Broker {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut conf = format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\nmax_inflight_messages 100\n\
             persistence true\npersistence_location {}/\nautosave_interval 1\nuser root\n\
             log_dest file {}/mosquitto.log\nlog_type error\nlog_type warning\n",
            dir.path().display(),
            dir.path().display()
        );
        conf.push_str(&extra(dir.path()));
        std::fs::write(dir.path().join("mosquitto.conf"), conf).unwrap();
        Broker {
            port,
            dir,
            child: None,
        }
    }

    pub fn started() -> Broker {
        let mut b = Broker::new();
        b.start();
        b
    }

    pub fn start(&mut self) {
        assert!(self.child.is_none());
        let child = Command::new(mosquitto_bin())
            .arg("-c")
            .arg(self.dir.path().join("mosquitto.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto");
        self.child = Some(child);
        let port = self.port;
        assert!(
            wait_until(Duration::from_secs(5), || TcpStream::connect((
                "127.0.0.1",
                port
            ))
            .is_ok()),
            "mosquitto did not listen on {port}"
        );
    }

    /// SIGTERM (mosquitto saves its persistence file) and wait.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = c.wait();
        }
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// The directory of its config (files a test's `with_config` wrote live there too).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// SIGHUP: mosquitto reads its config again (ACL and password files included).
    pub fn reload(&self) {
        let child = self.child.as_ref().expect("the broker runs");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGHUP,
        )
        .unwrap();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[derive(Debug, Clone)]
pub struct Msg {
    pub topic: String,
    pub json: Value,
    pub retain: bool,
}

/// A message as the broker delivered it: (topic, payload).
pub type RawMessage = (String, Vec<u8>);

/// Central dispatch's view: everything under `stations/#`, QoS 1, persistent session. When it
/// is dropped (the test did not fail before), every message a station published to it is
/// checked against the contract, docs/asyncapi.yaml (`check_contract`).
pub struct Subscriber {
    msgs: Arc<Mutex<Vec<Msg>>>,
    /// (topic, payload) as received, for the contract check.
    raw: Arc<Mutex<Vec<RawMessage>>>,
    stop: Arc<AtomicBool>,
    subscribed: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Subscriber {
    /// Connects and subscribes; returns once the broker confirmed the subscription.
    pub fn connect(port: u16, client_id: &str) -> Subscriber {
        let s = Subscriber::spawn(port, client_id);
        assert!(
            wait_until(Duration::from_secs(5), || s
                .subscribed
                .load(Ordering::SeqCst)),
            "subscriber could not subscribe"
        );
        s
    }

    /// Starts a client for an existing persistent session on a broker that is not running
    /// yet; it connects when the broker comes up.
    pub fn connect_later(port: u16, client_id: &str) -> Subscriber {
        Subscriber::spawn(port, client_id)
    }

    fn spawn(port: u16, client_id: &str) -> Subscriber {
        let msgs = Arc::new(Mutex::new(Vec::new()));
        let raw = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let subscribed = Arc::new(AtomicBool::new(false));
        let r = raw.clone();
        let (m, s, sub, id) = (
            msgs.clone(),
            stop.clone(),
            subscribed.clone(),
            client_id.to_string(),
        );
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
                let mut o = MqttOptions::new(id, "127.0.0.1", port);
                o.set_clean_session(false)
                    .set_keep_alive(Duration::from_secs(5))
                    .set_max_packet_size(1 << 21, 1 << 21);
                let (client, mut el) = AsyncClient::new(o, 100);
                client
                    .subscribe("stations/#", QoS::AtLeastOnce)
                    .await
                    .unwrap();
                while !s.load(Ordering::SeqCst) {
                    match tokio::time::timeout(Duration::from_millis(200), el.poll()).await {
                        Ok(Ok(Event::Incoming(Packet::SubAck(_)))) => {
                            sub.store(true, Ordering::SeqCst)
                        }
                        Ok(Ok(Event::Incoming(Packet::Publish(p)))) => {
                            let json = serde_json::from_slice(&p.payload).unwrap_or(Value::Null);
                            r.lock()
                                .unwrap()
                                .push((p.topic.clone(), p.payload.to_vec()));
                            m.lock().unwrap().push(Msg {
                                topic: p.topic.clone(),
                                json,
                                retain: p.retain,
                            });
                        }
                        Ok(Ok(_)) | Err(_) => {}
                        Ok(Err(_)) => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                }
            });
        });
        Subscriber {
            msgs,
            raw,
            stop,
            subscribed,
            thread: Some(thread),
        }
    }

    pub fn all(&self) -> Vec<Msg> {
        self.msgs.lock().unwrap().clone()
    }

    /// Telemetry and event envelopes (those with a seq), in arrival order.
    pub fn envelopes(&self) -> Vec<Value> {
        self.all()
            .into_iter()
            .filter(|m| m.json.get("seq").is_some())
            .map(|m| m.json)
            .collect()
    }

    pub fn seqs(&self) -> Vec<u64> {
        self.envelopes()
            .iter()
            .map(|e| e["seq"].as_u64().unwrap())
            .collect()
    }

    pub fn status(&self) -> Vec<Msg> {
        self.all()
            .into_iter()
            .filter(|m| m.topic.ends_with("/status"))
            .collect()
    }

    pub fn wait(&self, timeout: Duration, mut cond: impl FnMut(&[Msg]) -> bool) -> bool {
        wait_until(timeout, || cond(&self.msgs.lock().unwrap()))
    }

    /// Stops the client without unsubscribing (the broker keeps the session).
    pub fn disconnect(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
            if !std::thread::panicking() {
                check_contract(&std::mem::take(&mut *self.raw.lock().unwrap()));
            }
        }
    }
}

/// Checks (topic, payload) a station published against docs/asyncapi.yaml with
/// tests/lib/validate_messages.py (Debian's python3-jsonschema); panics with every violation.
pub fn check_contract(messages: &[RawMessage]) {
    if messages.is_empty() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("messages.jsonl");
    let mut text = String::new();
    for (topic, payload) in messages {
        let payload = String::from_utf8_lossy(payload);
        text.push_str(&serde_json::json!({"topic": topic, "payload": payload}).to_string());
        text.push('\n');
    }
    std::fs::write(&file, text).unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("/usr/bin/python3")
        .arg(format!("{root}/tests/lib/validate_messages.py"))
        .arg(format!("{root}/docs/asyncapi.yaml"))
        .arg(&file)
        .output()
        .expect("Debian's python3 checks the contract (tests/run.sh installs python3-jsonschema)");
    assert!(
        out.status.success(),
        "messages the station sent do not match docs/asyncapi.yaml:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Distinct seqs, and whether 1..=max are all present.
pub fn missing_seqs(seqs: &[u64], upto: u64) -> Vec<u64> {
    let set: std::collections::HashSet<u64> = seqs.iter().copied().collect();
    (1..=upto).filter(|s| !set.contains(s)).collect()
}

/// A station directory: config, outbox, logs.
pub struct Station {
    pub dir: tempfile::TempDir,
    pub ingest_port: u16,
    pub config: PathBuf,
}

impl Station {
    pub fn new(broker_port: u16, extra_buffer: &str) -> Station {
        Station::with_uplink(
            &format!("brokers = [\"mqtt://127.0.0.1:{broker_port}\"]"),
            extra_buffer,
        )
    }

    /// A station whose `[uplink]` starts with `uplink` (brokers, TLS files).
    pub fn with_uplink(uplink: &str, extra_buffer: &str) -> Station {
        let dir = tempfile::tempdir().unwrap();
        let ingest_port = free_port();
        let config = dir.path().join("stationd.toml");
        let text = format!(
            r#"[station]
id = "test-st01"
name = "测试驻巡站"

# Not watched in tests that are not about the box: on a loaded test machine its readings and
# alarms would arrive at random among what a test counts (Station::watch_box turns it on).
[box]
enabled = false

[uplink]
{uplink}
reconnect_min_ms = 50
reconnect_max_ms = 400

[buffer]
path = "{db}"
{extra_buffer}

[[device]]
id = "ingest0"
driver = "jsonl"
listen = "tcp://127.0.0.1:{ingest_port}"

[[device]]
id = "ingest1"
driver = "jsonl"
listen = "unix://{sock}"
"#,
            db = dir.path().join("outbox.db").display(),
            sock = dir.path().join("ingest.sock").display(),
        );
        std::fs::write(&config, text).unwrap();
        Station {
            dir,
            ingest_port,
            config,
        }
    }

    /// Watches the box (`[box] enabled`), with `settings` (more `[box]` keys).
    pub fn watch_box(&self, settings: &str) {
        let cfg = std::fs::read_to_string(&self.config).unwrap();
        assert!(cfg.contains("[box]\nenabled = false\n"));
        let cfg = cfg.replace(
            "[box]\nenabled = false\n",
            &format!("[box]\nenabled = true\n{settings}\n"),
        );
        std::fs::write(&self.config, cfg).unwrap();
    }

    /// Adds TOML (e.g. another `[[device]]`) to the end of the config.
    pub fn append_config(&self, text: &str) {
        let mut cfg = std::fs::read_to_string(&self.config).unwrap();
        cfg.push_str(text);
        std::fs::write(&self.config, cfg).unwrap();
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("outbox.db")
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("ingest.sock")
    }

    /// Starts the daemon with extra environment variables (e.g. NOTIFY_SOCKET).
    pub fn start_with_env(&self, env: &[(&str, &str)]) -> Daemon {
        Daemon::start_env(
            &self.config,
            &self.dir.path().join("stationd.log"),
            self.ingest_port,
            None,
            env,
        )
    }

    pub fn start(&self) -> Daemon {
        Daemon::start(
            &self.config,
            &self.dir.path().join("stationd.log"),
            self.ingest_port,
            None,
        )
    }

    /// Starts the daemon unable to grow any file beyond `bytes` (RLIMIT_FSIZE, SIGXFSZ
    /// ignored): to the daemon this looks like a full disk. `Daemon::lift_file_size_limit`
    /// frees the space again.
    pub fn start_with_file_size_limit(&self, bytes: u64) -> Daemon {
        Daemon::start(
            &self.config,
            &self.dir.path().join("stationd.log"),
            self.ingest_port,
            Some(bytes),
        )
    }

    /// The control socket of this station's daemon.
    pub fn control_socket(&self) -> PathBuf {
        self.dir.path().join("control.sock")
    }

    /// A technician's command (`status`, `devices`, `outbox`) against this station's daemon.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_stationd"))
            .args(args)
            .env("STATIOND_CONTROL_SOCKET", self.control_socket())
            .output()
            .unwrap()
    }

    /// Adds dock `dock0` on `<dir>/footage` (created) with P-0417's recorder `DSJ-A1-0001`
    /// in it; the dock's root.
    pub fn add_dock_with_recorder(&self) -> PathBuf {
        let root = self.dir.path().join("footage");
        std::fs::create_dir_all(root.join("DSJ-A1-0001")).unwrap();
        self.append_config(&format!(
            "\n[[device]]\nid = \"dock0\"\ndriver = \"dock\"\nroot = \"{}\"\nsettle_s = 1\n[device.recorders]\n\"DSJ-A1-0001\" = {{ officer = \"P-0417\" }}\n",
            root.display()
        ));
        root
    }

    /// Adds the JT/T 808 listener `fleet` with terminal 013912345678 as car-03 (`extra`: more
    /// keys of it); its port.
    pub fn add_fleet(&self, extra: &str) -> u16 {
        let port = free_port();
        self.append_config(&format!(
            "\n[[device]]\nid = \"fleet\"\ndriver = \"jt808\"\nlisten = \"tcp://127.0.0.1:{port}\"\n{extra}\n[device.terminals]\n\"013912345678\" = \"car-03\"\n"
        ));
        port
    }

    /// A technician's command that must succeed; its output (the command's output in the
    /// failure).
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "stationd {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `stationd outbox --json --config` (reads the file) as the technician would run it.
    pub fn outbox_stats(&self) -> Value {
        let out = Command::new(env!("CARGO_BIN_EXE_stationd"))
            .args(["outbox", "--json", "--config"])
            .arg(&self.config)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "stationd outbox failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    pub fn outbox_rows(&self) -> u64 {
        let s = self.outbox_stats();
        ["alarm", "event", "telemetry"]
            .iter()
            .map(|c| s[c]["rows"].as_u64().unwrap())
            .sum()
    }
}

pub struct Daemon {
    child: Option<Child>,
    pub log: PathBuf,
}

impl Daemon {
    fn start(config: &Path, log: &Path, ingest_port: u16, fsize: Option<u64>) -> Daemon {
        Daemon::start_env(config, log, ingest_port, fsize, &[])
    }

    fn start_env(
        config: &Path,
        log: &Path,
        ingest_port: u16,
        fsize: Option<u64>,
        env: &[(&str, &str)],
    ) -> Daemon {
        let logf = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_stationd"));
        if let Some(limit) = fsize {
            use std::os::unix::process::CommandExt;
            // SAFETY: only async-signal-safe calls (setrlimit, signal) between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    let lim = libc::rlimit {
                        rlim_cur: limit,
                        rlim_max: libc::RLIM_INFINITY,
                    };
                    if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                    Ok(())
                });
            }
        }
        // Nothing of the outer systemd (if CI runs under one) leaks into the daemon under test.
        cmd.env_remove("NOTIFY_SOCKET").env_remove("WATCHDOG_USEC");
        // Each daemon's control socket beside its log, never the system's /run/stationd.
        cmd.env(
            "STATIOND_CONTROL_SOCKET",
            log.parent().unwrap().join("control.sock"),
        );
        for (k, v) in env {
            cmd.env(k, v);
        }
        // The log is appended across restarts of a station: count the ready lines before.
        let ready_lines = || {
            std::fs::read_to_string(log)
                .unwrap_or_default()
                .matches("daemon.ready")
                .count()
        };
        let ready_before = ready_lines();
        let child = cmd
            .arg("run")
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", "info")
            .env_remove("JOURNAL_STREAM")
            .stdin(Stdio::null())
            .stdout(logf.try_clone().unwrap())
            .stderr(logf)
            .spawn()
            .expect("start stationd");
        let mut d = Daemon {
            child: Some(child),
            log: log.to_path_buf(),
        };
        // Listening on the port is not enough: it must be this daemon that listens (not a
        // process that took the port first while this one exited on a bind error), and it must
        // be ready (the control socket and the command core start after the inputs).
        let up = wait_until(Duration::from_secs(10), || {
            TcpStream::connect(("127.0.0.1", ingest_port)).is_ok()
                && d.child.as_mut().unwrap().try_wait().unwrap().is_none()
                && ready_lines() > ready_before
        });
        assert!(
            up,
            "stationd did not start listening; log:\n{}",
            d.log_text()
        );
        d
    }

    pub fn pid(&self) -> nix::unistd::Pid {
        nix::unistd::Pid::from_raw(self.child.as_ref().unwrap().id() as i32)
    }

    /// Raises RLIMIT_FSIZE of the running daemon to unlimited (prlimit(2) as root).
    pub fn lift_file_size_limit(&self) {
        let lim = libc::rlimit {
            rlim_cur: libc::RLIM_INFINITY,
            rlim_max: libc::RLIM_INFINITY,
        };
        // SAFETY: prlimit with a valid pid and a valid new limit; the old limit is not read.
        let rc = unsafe {
            libc::prlimit(
                self.pid().as_raw(),
                libc::RLIMIT_FSIZE,
                &lim,
                std::ptr::null_mut(),
            )
        };
        assert_eq!(rc, 0, "prlimit failed: {}", std::io::Error::last_os_error());
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last `n` lines of the daemon's log, newest first (for a failure message).
    pub fn log_tail(&self, n: usize) -> String {
        self.log_text()
            .lines()
            .rev()
            .take(n)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The daemon's resident memory now (VmRSS), kB.
    pub fn rss_kb(&self) -> u64 {
        self.status_kb("VmRSS:")
    }

    /// The daemon's peak resident memory so far (VmHWM), kB.
    pub fn peak_rss_kb(&self) -> u64 {
        self.status_kb("VmHWM:")
    }

    fn status_kb(&self, field: &str) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    pub fn kill9(mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM; returns the exit code and how long the daemon took to exit.
    pub fn terminate(mut self) -> (Option<i32>, Duration) {
        let mut c = self.child.take().unwrap();
        let start = Instant::now();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(c.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        loop {
            if let Some(status) = c.try_wait().unwrap() {
                return (status.code(), start.elapsed());
            }
            if start.elapsed() > Duration::from_secs(20) {
                let _ = c.kill();
                return (None, start.elapsed());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// One JSON line.
pub fn line(kind: &str, prio: &str, n: u64) -> String {
    format!("{{\"kind\":\"{kind}\",\"prio\":\"{prio}\",\"data\":{{\"n\":{n}}}}}\n")
}

pub fn send_lines(port: u16, lines: &[String]) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    for l in lines {
        s.write_all(l.as_bytes()).unwrap();
    }
    s.flush().unwrap();
}

/// The kernel's clock-sync flag set to "synchronised" while this lives, as an NTP daemon sets
/// it (adjtimex ADJ_STATUS without STA_UNSYNC, maxerror 0; the time itself is not touched);
/// the status word as it was comes back on drop. It is the machine's one flag: a test using it
/// must be the only one that asserts the box clock's state. None when not root.
pub struct KernelClockSynced {
    saved_status: i32,
}

impl KernelClockSynced {
    pub fn set() -> Option<KernelClockSynced> {
        if !nix::unistd::Uid::effective().is_root() {
            return None;
        }
        // SAFETY: timex is plain old data; modes = 0 only reads.
        let mut tx: libc::timex = unsafe { std::mem::zeroed() };
        // SAFETY: a valid, exclusively borrowed timex.
        assert!(unsafe { libc::adjtimex(&mut tx) } != -1, "adjtimex (read)");
        let saved_status = tx.status;
        Self::write(saved_status & !libc::STA_UNSYNC, true);
        Some(KernelClockSynced { saved_status })
    }

    fn write(status: i32, zero_error: bool) {
        // SAFETY: as above; with modes set this changes only the status flags and error bounds.
        let mut tx: libc::timex = unsafe { std::mem::zeroed() };
        tx.modes = libc::ADJ_STATUS as _;
        tx.status = status;
        if zero_error {
            tx.modes |= (libc::ADJ_MAXERROR | libc::ADJ_ESTERROR) as libc::c_uint;
        }
        // SAFETY: a valid, exclusively borrowed timex.
        assert!(unsafe { libc::adjtimex(&mut tx) } != -1, "adjtimex (set)");
    }
}

impl Drop for KernelClockSynced {
    fn drop(&mut self) {
        Self::write(self.saved_status, false);
    }
}

/// A pseudo-terminal standing in for a device on a serial port: the test reads and writes
/// `master`, the daemon opens the slave through the symlink given to [`Pty::at`]. Dropping it
/// "unplugs" the device (the daemon's reads fail).
pub struct Pty {
    pub master: std::fs::File,
    _slave: std::os::fd::OwnedFd,
}

impl Pty {
    pub fn at(link: &Path) -> Pty {
        use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
        let pty = nix::pty::openpty(None, None).unwrap();
        // Not inherited by the daemon (spawned later): a copy of the master in the daemon
        // would keep the pty alive after the test "unplugs" it.
        for fd in [&pty.master, &pty.slave] {
            nix::fcntl::fcntl(
                fd,
                nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
            )
            .unwrap();
        }
        // Raw before anyone opens it, or the line discipline echoes what we write.
        let mut t = tcgetattr(&pty.slave).unwrap();
        cfmakeraw(&mut t);
        tcsetattr(&pty.slave, SetArg::TCSANOW, &t).unwrap();
        let name = nix::unistd::ttyname(&pty.slave).unwrap();
        let _ = std::fs::remove_file(link);
        std::os::unix::fs::symlink(&name, link).unwrap();
        Pty {
            master: std::fs::File::from(pty.master),
            _slave: pty.slave,
        }
    }
}

/// A simulated TETRA base radio (`sim::tetra`) on a pty: a thread answers what the daemon writes; the test sends
/// the handhelds' unsolicited lines and changes the radio's behaviour through `radio`.
pub struct PtyRadio {
    writer: std::fs::File,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    _pty: Pty,
}

impl PtyRadio {
    pub fn plug_in(link: &Path, radio: Arc<Mutex<stationd::sim::tetra::SimRadio>>) -> PtyRadio {
        let pty = Pty::at(link);
        let mut reader = pty.master.try_clone().unwrap();
        let mut writer = pty.master.try_clone().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (radio, stop) = (radio.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while !stop.load(Ordering::Relaxed) {
                    let mut fds = [nix::poll::PollFd::new(
                        std::os::fd::AsFd::as_fd(&reader),
                        nix::poll::PollFlags::POLLIN,
                    )];
                    if nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(100u16)).unwrap_or(0)
                        == 0
                    {
                        continue;
                    }
                    let n = match std::io::Read::read(&mut reader, &mut buf) {
                        Ok(n) if n > 0 => n,
                        // The daemon has not opened the slave yet, or closed it.
                        _ => {
                            std::thread::sleep(Duration::from_millis(50));
                            continue;
                        }
                    };
                    let answer = radio.lock().unwrap().push(&buf[..n]);
                    if !answer.is_empty() {
                        let _ = writer.write_all(&answer);
                    }
                }
            })
        };
        PtyRadio {
            writer: pty.master.try_clone().unwrap(),
            stop,
            thread: Some(thread),
            _pty: pty,
        }
    }

    /// Unsolicited lines from the radio (a handheld's report, garbage).
    pub fn say(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).unwrap();
        self.writer.flush().unwrap();
    }

    /// Pulls the cable: the thread stops and every copy of the pty is closed.
    pub fn unplug(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for PtyRadio {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// nginx from the distribution as central's upload server: WebDAV PUT under `/upload/` (files
/// land in [`Nginx::stored`]), `403` under `/forbidden/`, on a free loopback port; killed on
/// drop.
pub struct Nginx {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

impl Nginx {
    pub fn start() -> Nginx {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let www = dir.path().join("www");
        std::fs::create_dir_all(www.join("upload")).unwrap();
        // As root the workers would switch to nobody and could not write into the test's
        // directory: keep them root (only ever on 127.0.0.1).
        let user = if nix::unistd::Uid::effective().is_root() {
            "user root;"
        } else {
            ""
        };
        let conf = format!(
            "{user}\ndaemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\nevents {{ worker_connections 64; }}\nhttp {{\n  access_log {d}/access.log;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  server {{\n    listen 127.0.0.1:{port};\n    root {www};\n    client_max_body_size 0;\n    location /upload/ {{ dav_methods PUT; create_full_put_path on; dav_access user:rw; }}\n    location /forbidden/ {{ return 403; }}\n  }}\n}}\n",
            d = dir.path().display(),
            www = www.display()
        );
        std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
        let child = Command::new(if Path::new("/usr/sbin/nginx").exists() {
            "/usr/sbin/nginx"
        } else {
            "nginx"
        })
        .arg("-c")
        .arg(dir.path().join("nginx.conf"))
        .arg("-p")
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx (apt-get install nginx-core; tests/run.sh installs it)");
        assert!(
            wait_until(Duration::from_secs(10), || TcpStream::connect((
                "127.0.0.1",
                port
            ))
            .is_ok()),
            "nginx did not start: {}",
            std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default()
        );
        Nginx { port, dir, child }
    }

    /// What a PUT to `/upload/{name}` stored.
    pub fn stored(&self, name: &str) -> PathBuf {
        self.dir.path().join("www/upload").join(name)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP relay to `upstream` on a free loopback port that cuts its first `cuts` connections
/// after relaying `after` bytes from the client (a link that drops mid-upload); later
/// connections pass whole.
pub fn cutting_relay(upstream: u16, cuts: usize, after: usize) -> u16 {
    let port = free_port();
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    std::thread::spawn(move || {
        for (n, conn) in listener.incoming().enumerate() {
            let Ok(client) = conn else { continue };
            let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                continue;
            };
            let cut = n < cuts;
            std::thread::spawn(move || relay(client, server, cut.then_some(after)));
        }
    });
    port
}

fn relay(client: TcpStream, server: TcpStream, cut_after: Option<usize>) {
    use std::io::Read;
    let (mut c_read, mut s_write) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let (mut s_read, mut c_write) = (server, client);
    let back = std::thread::spawn(move || {
        let _ = std::io::copy(&mut s_read, &mut c_write);
        let _ = c_write.shutdown(std::net::Shutdown::Both);
    });
    let mut buf = [0u8; 16 * 1024];
    let mut relayed = 0usize;
    loop {
        let n = match c_read.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if cut_after.is_some_and(|a| relayed + n > a) {
            // The link drops: both sides see the connection end mid-request.
            let _ = c_read.shutdown(std::net::Shutdown::Both);
            let _ = s_write.shutdown(std::net::Shutdown::Both);
            break;
        }
        if s_write.write_all(&buf[..n]).is_err() {
            break;
        }
        relayed += n;
    }
    let _ = s_write.shutdown(std::net::Shutdown::Write);
    let _ = back.join();
}

/// Waits until central saw the station `online`: it subscribes to its commands before it says
/// so, so a command published after this is not lost to a broker with no subscriber yet.
pub fn wait_online(central: &Subscriber, daemon: &Daemon) {
    assert!(
        central.wait(Duration::from_secs(30), |m| m
            .iter()
            .any(|m| m.json["state"] == "online")),
        "the station never came online; log:\n{}",
        daemon.log_text()
    );
}

/// The `data` of every event of `kind` central received, in order.
pub fn event_data(central: &Subscriber, kind: &str) -> Vec<Value> {
    central
        .all()
        .into_iter()
        .filter(|m| m.json["kind"] == kind)
        .map(|m| m.json["data"].clone())
        .collect()
}

/// Waits until central has an event of `kind` whose `data` satisfies `cond` and returns the
/// latest such `data` (what arrived, and the daemon's log, in the failure).
pub fn wait_event(
    central: &Subscriber,
    daemon: &Daemon,
    kind: &str,
    what: &str,
    cond: impl Fn(&Value) -> bool,
) -> Value {
    assert!(
        wait_until(Duration::from_secs(30), || event_data(central, kind)
            .iter()
            .any(&cond)),
        "no {kind} showing {what}; received: {:#?}\nlog:\n{}",
        event_data(central, kind),
        daemon.log_text()
    );
    event_data(central, kind)
        .into_iter()
        .rfind(|d| cond(d))
        .expect("seen above")
}

/// The latest message central received on `topic`.
pub fn latest_on(central: &Subscriber, topic: &str) -> Option<Value> {
    central
        .all()
        .into_iter()
        .filter(|m| m.topic == topic)
        .map(|m| m.json)
        .next_back()
}

/// The first message `central` received on `topic` that was not a retained one (published
/// since it subscribed), waiting for it.
pub fn fresh_on(central: &Subscriber, daemon: &Daemon, topic: &str) -> Value {
    assert!(
        central.wait(Duration::from_secs(30), |m| m
            .iter()
            .any(|m| m.topic == topic && !m.retain)),
        "nothing fresh on {topic}; log:\n{}",
        daemon.log_text()
    );
    central
        .all()
        .into_iter()
        .find(|m| m.topic == topic && !m.retain)
        .map(|m| m.json)
        .expect("seen above")
}

/// Central dispatch's side of commands: the test keys (tests/data/keys), signed messages, and
/// publishing them as dispatch does (QoS 1, waiting for each PUBACK).
pub mod dispatch {
    use super::*;
    use stationd::command::{signing_key_from_pem, Command};

    pub fn key(name: &str) -> stationd::command::SigningKey {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/keys")
            .join(name);
        signing_key_from_pem(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    /// A station that takes commands signed with the test dispatch key.
    pub fn station(broker: &Broker, extra: &str) -> Station {
        let s = Station::new(broker.port, "");
        take_commands(&s, extra);
        s
    }

    /// `s` takes commands signed with the test dispatch key (`extra`: more `[commands]` keys).
    pub fn take_commands(s: &Station, extra: &str) {
        s.append_config(&format!(
            "\n[commands]\npublic_key_file = \"{}\"\n{extra}",
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/data/keys/dispatch-test.pub")
                .display()
        ));
    }

    /// A command for `station` valid for `ttl_ms` from now, signed with `key_file` (None: unsigned).
    pub fn command(
        name: &str,
        id: &str,
        args: Value,
        key_file: Option<&str>,
        for_station: &str,
    ) -> Vec<u8> {
        let now = stationd::clock::unix_ms();
        let Value::Object(args) = args else {
            panic!("args must be an object")
        };
        let mut cmd = Command::new(name, id, now, now + 60_000, args);
        if let Some(k) = key_file {
            cmd.sign(for_station, &key(k));
        }
        cmd.to_payload()
    }

    /// Signs command `name` for the test station `test-st01` and publishes it as dispatch does.
    pub fn send(broker_port: u16, name: &str, id: &str, args: Value) {
        let payload = command(name, id, args, Some("dispatch-test.key"), "test-st01");
        publish(
            broker_port,
            vec![(format!("stations/test-st01/cmd/{name}"), payload)],
        );
    }

    /// Waits up to `timeout` for the answer to `request_id` (the daemon's log in the failure).
    pub fn answer(
        central: &Subscriber,
        request_id: &str,
        timeout: Duration,
        daemon: &Daemon,
    ) -> Value {
        assert!(
            wait_until(timeout, || !answers(central, request_id).is_empty()),
            "no answer to {request_id}; log:\n{}",
            daemon.log_text()
        );
        answers(central, request_id)[0].clone()
    }

    /// The answers (`data` of `P/cmd-result/{request_id}`) central has received.
    pub fn answers(central: &Subscriber, request_id: &str) -> Vec<Value> {
        central
            .all()
            .into_iter()
            .filter(|m| m.topic.ends_with(&format!("/cmd-result/{request_id}")))
            .map(|m| m.json["data"].clone())
            .collect()
    }

    /// Publishes each (topic, payload) with QoS 1 and waits for its PUBACK, as dispatch does.
    pub fn publish(port: u16, messages: Vec<(String, Vec<u8>)>) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS};
            let mut o =
                MqttOptions::new(format!("dispatch-{}", fastrand::u32(..)), "127.0.0.1", port);
            o.set_max_packet_size(1 << 20, 1 << 20).set_inflight(100);
            let (client, mut el) = AsyncClient::new(o, 1000);
            let n = messages.len();
            let sender = tokio::spawn(async move {
                for (topic, payload) in messages {
                    client
                        .publish(topic, QoS::AtLeastOnce, false, payload)
                        .await
                        .unwrap();
                }
                client
            });
            let mut acked = 0;
            while acked < n {
                match tokio::time::timeout(Duration::from_secs(30), el.poll())
                    .await
                    .expect("broker silent")
                {
                    Ok(Event::Incoming(Packet::PubAck(_))) => acked += 1,
                    Ok(Event::Outgoing(Outgoing::Disconnect)) => break,
                    Ok(_) => {}
                    Err(e) => panic!("dispatch lost the broker: {e}"),
                }
            }
            let client = sender.await.unwrap();
            let _ = client.disconnect().await;
            let _ = tokio::time::timeout(Duration::from_secs(1), el.poll()).await;
        });
    }
}
