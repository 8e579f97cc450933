//! The fleet harness (issue #17): many real `stationd` processes against a clustered MQTT
//! broker, each with its own config and outbox and a steady trickle of telemetry plus the
//! occasional alarm, and one subscriber on the cluster that checks every station's seq.
//!
//! The broker is Aedes (npm `aedes@0`), one Node process per node, the nodes sharing sessions,
//! subscriptions and retained messages through Redis (`aedes-persistence-redis`) and forwarding
//! publishes through Redis pub/sub (`mqemitter-redis`): a real distributed MQTT engine that
//! installs here from the package registries (Docker images cannot be pulled), on the machine's
//! Redis (127.0.0.1:6379, db 11, flushed before and after). `benches/fleet/install.sh` installs
//! it into target/fleet-broker.
//!
//! ```text
//! cargo bench --bench fleet                      # 500 stations, the reconnect storm
//! FLEET_STATIONS=100 cargo bench --bench fleet   # a smaller fleet
//! ```
//!
//! Scenario built so far: **the reconnect storm** — every broker node is killed at once while
//! the fleet runs, kept down a while, and started again: the time until every station is
//! connected again and until every backlog is drained, the cluster's peak connection rate and
//! CPU, and the seq of every station checked for gaps; run with the stations' full jitter and
//! again without it (`[uplink] reconnect_jitter = "none"`) to show what the jitter buys.
#![allow(clippy::disallowed_methods)] // the harness's own threads may block

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const REDIS_DB: u32 = 11;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn redis_flush() {
    let ok = Command::new("redis-cli")
        .args(["-n", &REDIS_DB.to_string(), "flushdb"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "Redis is not reachable at 127.0.0.1:6379 (redis-cli -n {REDIS_DB} flushdb failed): the cluster keeps its state there"
    );
}

/// One node of the cluster: `node broker-node.js PORT DB`, its per-second connects read from
/// its stdout.
struct Node {
    port: u16,
    child: Option<Child>,
    /// Its per-second reports: (when, connections accepted in that second, clients now).
    reports: Arc<Mutex<Vec<(Instant, u64, u64)>>>,
}

impl Node {
    fn new() -> Node {
        Node {
            port: common::free_port(),
            child: None,
            reports: Default::default(),
        }
    }

    fn start(&mut self) {
        let modules =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fleet-broker/node_modules");
        let mut child = Command::new("node")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/fleet/broker-node.js"))
            .arg(self.port.to_string())
            .arg(REDIS_DB.to_string())
            .env("FLEET_BROKER_MODULES", modules)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node (Node.js) runs the broker: apt-get install nodejs");
        let out = BufReader::new(child.stdout.take().unwrap());
        let reports = self.reports.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                if line.starts_with("listening") {
                    let _ = tx.send(());
                } else if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                    let n = v["connects"].as_u64().unwrap_or(0);
                    let clients = v["clients"].as_u64().unwrap_or(0);
                    reports.lock().unwrap().push((Instant::now(), n, clients));
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(20))
            .expect("a broker node did not start listening within 20 s");
        self.child = Some(child);
    }

    /// Clients connected as of its latest report after `since` (0 without one).
    fn clients_since(&self, since: Instant) -> u64 {
        self.reports
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|(at, _, _)| *at > since)
            .map_or(0, |(_, _, clients)| *clients)
    }

    fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// SIGKILL: the node vanishes as a crashed machine would, without closing sessions.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What central's checking subscriber saw of one station.
#[derive(Default)]
struct Seen {
    seqs: BTreeSet<u64>,
    duplicates: u64,
    /// The `n` of each trickle line received (the producer numbers them per station).
    lines: BTreeSet<u64>,
    /// An `online` birth arrived. (Only the first start is judged by it: after the nodes
    /// restart, Aedes sends the checker the old retained births again when it subscribes, and
    /// a new birth published after that did not reach it in this harness, so "connected
    /// again" is counted by the cluster itself.)
    born: bool,
}

/// One subscriber on the cluster, persistent session, QoS 1, on everything the fleet sends.
struct Checker {
    seen: Arc<Mutex<HashMap<String, Seen>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checker {
    fn start(ports: Vec<u16>) -> Checker {
        let seen: Arc<Mutex<HashMap<String, Seen>>> = Default::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (seen.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
                let mut round = 0usize;
                while !st.load(Ordering::SeqCst) {
                    // Any node will do: the session lives in Redis.
                    let port = ports[round % ports.len()];
                    round += 1;
                    let mut o = MqttOptions::new("fleet-checker", "127.0.0.1", port);
                    o.set_clean_session(false)
                        .set_keep_alive(Duration::from_secs(10))
                        .set_max_packet_size(1 << 20, 1 << 20)
                        .set_inflight(1000);
                    let (client, mut el) = AsyncClient::new(o, 1000);
                    let _ = client.subscribe("stations/#", QoS::AtLeastOnce).await;
                    loop {
                        if st.load(Ordering::SeqCst) {
                            return;
                        }
                        match tokio::time::timeout(Duration::from_millis(200), el.poll()).await {
                            Ok(Ok(Event::Incoming(Packet::Publish(p)))) => {
                                record(&s, &p.topic, &p.payload)
                            }
                            Ok(Ok(_)) | Err(_) => {}
                            Ok(Err(_)) => {
                                tokio::time::sleep(Duration::from_millis(200)).await;
                                break;
                            }
                        }
                    }
                }
            });
        });
        Checker {
            seen,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Checker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Takes one message in.
fn record(seen: &Mutex<HashMap<String, Seen>>, topic: &str, payload: &[u8]) {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(payload) else {
        return;
    };
    let Some(station) = topic.split('/').nth(1) else {
        return;
    };
    let mut seen = seen.lock().unwrap();
    let entry = seen.entry(station.to_string()).or_default();
    if topic.ends_with("/status") {
        entry.born |= v["state"] == "online";
        return;
    }
    if let Some(seq) = v["seq"].as_u64() {
        if !entry.seqs.insert(seq) {
            entry.duplicates += 1;
        }
        if let Some(n) = v["data"]["n"].as_u64() {
            entry.lines.insert(n);
        }
    }
}

/// One station: its directory, config, and the daemon.
struct Station {
    id: String,
    dir: PathBuf,
    child: Option<Child>,
}

impl Station {
    fn create(root: &Path, i: usize, brokers: &[u16], jitter: &str) -> Station {
        let id = format!("fleet-{i:04}");
        let dir = root.join(&id);
        std::fs::create_dir_all(&dir).unwrap();
        // Each station's own broker order: spread over the nodes, the others as failover.
        let list: Vec<String> = (0..brokers.len())
            .map(|k| format!("\"mqtt://127.0.0.1:{}\"", brokers[(i + k) % brokers.len()]))
            .collect();
        let config = format!(
            "[station]\nid = \"{id}\"\nname = \"fleet {i}\"\n\n[box]\nenabled = false\n\n[uplink]\nbrokers = [{}]\nreconnect_jitter = \"{jitter}\"\n\n[buffer]\npath = \"{}\"\n\n[[device]]\nid = \"feed\"\ndriver = \"jsonl\"\nlisten = \"unix://{}\"\n",
            list.join(", "),
            dir.join("outbox.db").display(),
            dir.join("feed.sock").display(),
        );
        std::fs::write(dir.join("stationd.toml"), config).unwrap();
        Station {
            id,
            dir,
            child: None,
        }
    }

    fn start(&mut self) {
        let log = std::fs::File::create(self.dir.join("stationd.log")).unwrap();
        self.child = Some(
            Command::new(env!("CARGO_BIN_EXE_stationd"))
                .args(["run", "--config"])
                .arg(self.dir.join("stationd.toml"))
                .env("STATIOND_CONTROL_SOCKET", self.dir.join("control.sock"))
                .env("RUST_LOG", "warn")
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("start stationd"),
        );
    }

    /// SIGTERM without waiting (a fleet stops in parallel; `Drop` waits).
    fn terminate(&self) {
        if let Some(c) = &self.child {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
    }

    fn feed(&self) -> Option<UnixStream> {
        UnixStream::connect(self.dir.join("feed.sock")).ok()
    }
}

impl Drop for Station {
    fn drop(&mut self) {
        self.terminate();
        if let Some(mut c) = self.child.take() {
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The trickle: one telemetry line per station every `period`, an alarm every 50th line,
/// numbered per station (`data.n`). Counts what it sent per station.
struct Producer {
    sent: Arc<Vec<AtomicU64>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Producer {
    fn start(feeds: Vec<UnixStream>, period: Duration) -> Producer {
        let sent: Arc<Vec<AtomicU64>> = Arc::new(feeds.iter().map(|_| AtomicU64::new(0)).collect());
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (sent.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut feeds = feeds;
            let step = period / feeds.len().max(1) as u32;
            while !st.load(Ordering::SeqCst) {
                for (i, feed) in feeds.iter_mut().enumerate() {
                    let n = s[i].load(Ordering::SeqCst) + 1;
                    let (kind, prio) = if n % 50 == 0 {
                        ("door.forced", "alarm")
                    } else {
                        ("speed", "telemetry")
                    };
                    let line = format!(
                        "{{\"kind\":\"{kind}\",\"prio\":\"{prio}\",\"data\":{{\"n\":{n},\"kmh\":{}}}}}\n",
                        n % 90
                    );
                    if feed.write_all(line.as_bytes()).is_ok() {
                        s[i].store(n, Ordering::SeqCst);
                    }
                    std::thread::sleep(step);
                    if st.load(Ordering::SeqCst) {
                        return;
                    }
                }
            }
        });
        Producer {
            sent,
            stop,
            thread: Some(thread),
        }
    }

    fn sent(&self) -> Vec<u64> {
        self.sent.iter().map(|n| n.load(Ordering::SeqCst)).collect()
    }

    fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Seconds from `from` until `cond` holds, polled every 100 ms; None past `limit`.
fn time_until(from: Instant, limit: Duration, mut cond: impl FnMut() -> bool) -> Option<f64> {
    while from.elapsed() < limit {
        if cond() {
            return Some(from.elapsed().as_secs_f64());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

struct StormFigures {
    connected_s: Option<f64>,
    drained_s: Option<f64>,
    peak_connects_per_s: u64,
    peak_cpu_pct: f64,
    gaps: usize,
    duplicates: u64,
}

/// The reconnect storm with `jitter` ("full" or "none"): the fleet runs, every node is killed,
/// kept down `down`, and started again.
fn storm(n: usize, jitter: &str, down: Duration) -> StormFigures {
    redis_flush();
    let mut nodes = vec![Node::new(), Node::new()];
    for node in &mut nodes {
        node.start();
    }
    let ports: Vec<u16> = nodes.iter().map(|n| n.port).collect();
    let checker = Checker::start(ports.clone());
    std::thread::sleep(Duration::from_millis(500));
    let root = tempfile::tempdir().unwrap();
    let mut stations: Vec<Station> = (0..n)
        .map(|i| Station::create(root.path(), i, &ports, jitter))
        .collect();
    for (i, s) in stations.iter_mut().enumerate() {
        s.start();
        if i % 50 == 49 {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let all_online = || {
        let seen = checker.seen.lock().unwrap();
        stations
            .iter()
            .all(|s| seen.get(&s.id).is_some_and(|e| e.born))
    };
    let up = time_until(Instant::now(), Duration::from_secs(120), all_online);
    assert!(up.is_some(), "the fleet did not come online within 120 s");
    eprintln!(
        "[{jitter}] {n} stations online after {:.1} s; trickle on",
        up.unwrap_or(0.0)
    );
    let feeds: Vec<UnixStream> = stations
        .iter()
        .map(|s| {
            let mut feed = None;
            let _ = time_until(Instant::now(), Duration::from_secs(20), || {
                feed = s.feed();
                feed.is_some()
            });
            let feed = feed.unwrap_or_else(|| panic!("{}'s feed socket never opened", s.id));
            // A station that stops reading must not stall the trickle to the others.
            feed.set_write_timeout(Some(Duration::from_secs(1)))
                .unwrap();
            feed
        })
        .collect();
    let mut producer = Producer::start(feeds, Duration::from_secs(2));
    std::thread::sleep(Duration::from_secs(10));

    // Every node dies at once.
    for node in &mut nodes {
        node.kill();
    }
    eprintln!(
        "[{jitter}] every broker node killed; down for {} s",
        down.as_secs()
    );
    std::thread::sleep(down);
    let sent_while_down = producer.sent();
    let restart = Instant::now();
    for node in &mut nodes {
        node.start();
    }
    let cpu_at = |nodes: &[Node]| -> f64 {
        nodes
            .iter()
            .filter_map(|n| n.pid())
            .map(common::cpu_seconds)
            .sum()
    };
    let (mut peak_cpu, mut last_cpu, mut last_t) = (0.0f64, cpu_at(&nodes), Instant::now());
    // Connected again, as the cluster counts its clients (each node's report of the second):
    // every station, and the checker.
    let connected_now =
        |nodes: &[Node]| -> u64 { nodes.iter().map(|node| node.clients_since(restart)).sum() };
    let drained = |seen: &HashMap<String, Seen>| {
        stations.iter().zip(&sent_while_down).all(|(s, &upto)| {
            seen.get(&s.id)
                .is_some_and(|e| e.lines.range(1..=upto).count() as u64 == upto)
        })
    };
    eprintln!("[{jitter}] broker nodes back; waiting for every station and its backlog");
    let (mut connected_s, mut drained_s) = (None, None);
    let mut told = Instant::now();
    while restart.elapsed() < Duration::from_secs(300) && drained_s.is_none() {
        std::thread::sleep(Duration::from_millis(200));
        let now_cpu = cpu_at(&nodes);
        let dt = last_t.elapsed().as_secs_f64();
        if dt >= 1.0 {
            peak_cpu = peak_cpu.max(100.0 * (now_cpu - last_cpu) / dt);
            (last_cpu, last_t) = (now_cpu, Instant::now());
        }
        let seen = checker.seen.lock().unwrap();
        let clients = connected_now(&nodes);
        if connected_s.is_none() && clients > n as u64 {
            connected_s = Some(restart.elapsed().as_secs_f64());
        }
        if connected_s.is_some() && drained(&seen) {
            drained_s = Some(restart.elapsed().as_secs_f64());
        }
        if told.elapsed() >= Duration::from_secs(10) {
            told = Instant::now();
            let back = clients.saturating_sub(1);
            let done = stations
                .iter()
                .zip(&sent_while_down)
                .filter(|(s, &upto)| {
                    seen.get(&s.id)
                        .is_some_and(|e| e.lines.range(1..=upto).count() as u64 == upto)
                })
                .count();
            eprintln!(
                "[{jitter}] {:.0} s after the restart: {back}/{n} clients besides the checker, {done}/{n} drained",
                restart.elapsed().as_secs_f64()
            );
        }
    }
    // Peak connects per second, summed over the nodes' per-second reports after the restart.
    let mut per_second: HashMap<u64, u64> = HashMap::new();
    for node in &nodes {
        for (at, c, _) in node.reports.lock().unwrap().iter() {
            if *at > restart {
                *per_second
                    .entry(at.duration_since(restart).as_secs())
                    .or_default() += c;
            }
        }
    }
    producer.stop();
    // The last lines settle, then every station's seq is checked end to end.
    std::thread::sleep(Duration::from_secs(5));
    let seen = checker.seen.lock().unwrap();
    let (mut gaps, mut duplicates) = (0, 0);
    for s in &stations {
        let Some(e) = seen.get(&s.id) else {
            gaps += 1;
            continue;
        };
        duplicates += e.duplicates;
        let max = e.seqs.iter().next_back().copied().unwrap_or(0);
        if e.seqs.len() as u64 != max {
            gaps += 1;
            eprintln!(
                "{}: {} seqs received up to {max}: a gap",
                s.id,
                e.seqs.len()
            );
        }
    }
    drop(seen);
    for s in &stations {
        s.terminate();
    }
    drop(stations);
    drop(checker);
    redis_flush();
    StormFigures {
        connected_s,
        drained_s,
        peak_connects_per_s: per_second.values().copied().max().unwrap_or(0),
        peak_cpu_pct: peak_cpu,
        gaps,
        duplicates,
    }
}

fn raise_open_files() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is taken from the command line.
    let n: usize = env_or("FLEET_STATIONS", 500);
    let down = Duration::from_secs(env_or("FLEET_DOWN_S", 20));
    raise_open_files();
    let install = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/fleet/install.sh");
    let ok = Command::new("bash")
        .arg(&install)
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{} failed: the cluster's broker could not be installed",
        install.display()
    );
    println!(
        "fleet harness: {n} stationd processes, a 2-node Aedes cluster on Redis db {REDIS_DB}"
    );
    let mut verdicts = Vec::new();
    for jitter in ["full", "none"] {
        let f = storm(n, jitter, down);
        let show =
            |v: Option<f64>| v.map_or("not within 300 s".to_string(), |s| format!("{s:.1} s"));
        println!(
            "storm    jitter {jitter:>4}: every station connected again {}, every backlog drained {} after the nodes came back ({} s down); cluster peak {} connects/s, {:.0} % CPU; {} station(s) with a seq gap, {} duplicate(s)",
            show(f.connected_s),
            show(f.drained_s),
            down.as_secs(),
            f.peak_connects_per_s,
            f.peak_cpu_pct,
            f.gaps,
            f.duplicates
        );
        verdicts.push(f.gaps == 0 && f.drained_s.is_some());
    }
    let verdict = if verdicts.iter().all(|v| *v) {
        "PASS"
    } else {
        "FAIL"
    };
    println!("verdict  {verdict}: every station reconnected and drained with no seq gap");
    let _ = std::io::stdout().flush();
    if verdict == "FAIL" {
        std::process::exit(1);
    }
}
