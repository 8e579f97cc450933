//! `stationd demo`: the whole station on one command, with nothing installed.
//!
//! - **Central dispatch** is an embedded MQTT broker (rumqttd) on a free loopback port, and a
//!   viewer subscribed to `stations/#` on it that shows what central receives.
//! - **The uplink** goes through a link simulator: a loopback TCP relay that is cut every so
//!   often (connections dropped, new ones refused), as a 4G link or the police network would.
//!   While it is down the outbox fills; when it is back the backlog drains, flagged
//!   `historical`, alarms first.
//! - **The station** is the real daemon (`daemon::start`) on embedded defaults, its outbox in a
//!   temporary directory, fed by simulated devices speaking their real protocols: three patrol
//!   cars' JT/T 808 terminals over TCP (positions, car 2's emergency button now and then),
//!   the duty roster and a door panel from another local system over the `jsonl` socket; a
//!   GNSS receiver (patrol car 04's, GPS + BeiDou) speaking NMEA 0183 into a pseudo-terminal
//!   that the daemon reads as a serial port with its `nmea` driver; and the station's TETRA
//!   base radio on another pseudo-terminal (the `tetra` driver, the PEI's AT commands), passing
//!   on its handhelds' positions, talk bursts, texts and an emergency button now and then;
//!   and a body-cam dock, a directory where recorders dock and unload their footage, indexed
//!   in the evidence chain.
//! - **Dispatch** sends signed commands: a ping, a text to car 02's terminal, an SDS text to
//!   handheld 1001 through the base radio.
//!
//! Everything stays on 127.0.0.1. Later drivers (docks, cameras) add their simulators here.

mod devices;
mod dispatch;

use crate::config::Config;
use crate::outbox::Reader;
use anyhow::Context;
use devices::{
    simulate_base_radio, simulate_dock, simulate_inputs, simulate_receiver, simulate_terminal, CARS,
};
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

const STATION: &str = "demo-st01";

#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Stop after this many seconds (0: run until Ctrl-C).
    pub seconds: u64,
    /// Seconds the uplink stays up between outages.
    pub up_secs: u64,
    /// Seconds each outage lasts.
    pub down_secs: u64,
    /// One status line per second instead of a redrawn screen.
    pub plain: bool,
}

/// What central has received, as the viewer tallies it.
#[derive(Default)]
struct CentralView {
    received: u64,
    historical: u64,
    seqs: HashSet<u64>,
    duplicates: u64,
    evicted: HashSet<u64>,
    by_kind: BTreeMap<String, u64>,
    /// Positions that came from the simulated NMEA receiver over the pseudo-terminal.
    receiver_positions: u64,
    /// Positions that came from the simulated JT/T 808 terminals.
    terminal_positions: u64,
    /// Handheld positions (LIP) that came through the simulated base radio.
    radio_positions: u64,
    station_state: String,
    recent: VecDeque<String>,
    /// Commands dispatch sent (request_id → what), and their answers as they come.
    commands: VecDeque<(String, String, Option<String>)>,
    answered: u64,
    /// The retained device board (`P/state/devices`): devices per state.
    board: String,
    /// The evidence chain's head as central holds it (`P/state/evidence`).
    evidence_head: u64,
    /// The crews' readiness as central holds it (`P/state/staffing`).
    crews: String,
    /// The most crews central saw `ready` at once (a crew sent to a call is `on_call`).
    crews_ready: u64,
    /// The calls as central holds them (`P/state/dispatch`): open incidents and the figures.
    dispatch: String,
}

impl CentralView {
    fn take(&mut self, topic: &str, payload: &[u8]) {
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(payload) else {
            return;
        };
        if topic.ends_with("/state/devices") {
            let mut by_state: BTreeMap<String, u64> = BTreeMap::new();
            for d in v["devices"].as_object().into_iter().flatten() {
                *by_state
                    .entry(d.1["state"].as_str().unwrap_or("?").to_string())
                    .or_default() += 1;
            }
            let parts: Vec<String> = by_state.iter().map(|(s, n)| format!("{n} {s}")).collect();
            self.board = parts.join(", ");
            return;
        }
        if topic.ends_with("/state/staffing") {
            let crews: Vec<String> = v["crews"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| {
                    let state = c["readiness"].as_str().unwrap_or("?");
                    match c["reason"].as_str() {
                        Some(r) if state != "ready" => {
                            format!("{} {state} ({r})", c["car"].as_str().unwrap_or("?"))
                        }
                        _ => format!("{} {state}", c["car"].as_str().unwrap_or("?")),
                    }
                })
                .collect();
            let ready = v["crews"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|c| c["readiness"] == "ready")
                .count() as u64;
            self.crews_ready = self.crews_ready.max(ready);
            self.crews = format!(
                "{} — {} of {} expected present",
                crews.join(" · "),
                v["on_duty"]["total"],
                v["expected"]["total"]
            );
            return;
        }
        if topic.ends_with("/state/dispatch") {
            self.dispatch = dispatch_line(&v);
            return;
        }
        if topic.ends_with("/state/evidence") {
            self.evidence_head = v["head"]["entry"].as_u64().unwrap_or(0);
            return;
        }
        if let Some(id) = topic.split("/cmd-result/").nth(1) {
            let d = &v["data"];
            let outcome = match (d["status"].as_str(), d["reason"].as_str()) {
                (Some("done"), _) => format!("done {}", d["result"]),
                (Some(s), Some(r)) => format!("{s}: {r}"),
                (s, _) => s.unwrap_or("?").to_string(),
            };
            if let Some(c) = self.commands.iter_mut().find(|c| c.0 == id) {
                if c.2.is_none() {
                    self.answered += 1;
                }
                c.2 = Some(outcome);
            }
        }
        if topic.ends_with("/status") {
            let reason = v["reason"]
                .as_str()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default();
            self.station_state = format!("{}{reason}", v["state"].as_str().unwrap_or("?"));
            return;
        }
        let Some(seq) = v["seq"].as_u64() else { return };
        self.received += 1;
        if !self.seqs.insert(seq) {
            self.duplicates += 1;
        }
        let historical = v["historical"] == true;
        if historical {
            self.historical += 1;
        }
        let kind = v["kind"].as_str().unwrap_or("?").to_string();
        if kind == "outbox.evicted" {
            for r in v["data"]["ranges"].as_array().into_iter().flatten() {
                if let (Some(a), Some(b)) = (r[0].as_u64(), r[1].as_u64()) {
                    self.evicted.extend(a..=b);
                }
            }
        }
        *self.by_kind.entry(kind.clone()).or_default() += 1;
        if kind == "position" && v["device"] == "car-04" {
            self.receiver_positions += 1;
        } else if kind == "position" && v["data"]["terminal"].is_string() {
            self.terminal_positions += 1;
        } else if kind == "position" && v["data"]["source"] == "lip" {
            self.radio_positions += 1;
        }
        let line = format!(
            "seq {:>6}  {:<9} {:<10} {:<16} {:<8} {}",
            seq,
            v["prio"].as_str().unwrap_or(""),
            if historical { "HISTORICAL" } else { "live" },
            kind,
            v["device"].as_str().unwrap_or(""),
            v["ts"].as_str().unwrap_or("")
        );
        self.recent.push_back(line);
        while self.recent.len() > 10 {
            self.recent.pop_front();
        }
    }

    fn sent(&mut self, id: String, what: String) {
        self.commands.push_back((id, what, None));
        while self.commands.len() > 4 {
            self.commands.pop_front();
        }
    }

    fn highest(&self) -> u64 {
        self.seqs.iter().copied().max().unwrap_or(0)
    }

    /// Seqs below the highest one received that neither arrived nor were reported evicted.
    fn missing(&self) -> u64 {
        (1..=self.highest())
            .filter(|s| !self.seqs.contains(s) && !self.evicted.contains(s))
            .count() as u64
    }
}

/// `P/state/dispatch` in one line: each open call with its crew's progress, then the figures.
fn dispatch_line(v: &serde_json::Value) -> String {
    let secs = |ms: &serde_json::Value| format!("{:.0} s", ms.as_f64().unwrap_or(0.0) / 1000.0);
    let mut calls: Vec<String> = Vec::new();
    for i in v["open"].as_array().into_iter().flatten() {
        for c in i["crews"].as_array().into_iter().flatten() {
            let mut progress = vec![format!(
                "{} {} → {}",
                i["incident"].as_str().unwrap_or("?"),
                i["type"].as_str().unwrap_or("?"),
                c["car"].as_str().unwrap_or("?")
            )];
            match (&c["acknowledged"], c["unacknowledged_alarm"] == true) {
                (serde_json::Value::Object(a), _) => {
                    progress.push(format!("acknowledged {}", secs(&a["after_ms"])))
                }
                (_, true) => progress.push("NOT ACKNOWLEDGED".into()),
                _ => progress.push("waiting for acknowledgement".into()),
            }
            if let serde_json::Value::Object(a) = &c["arrived"] {
                progress.push(format!("arrived {}", secs(&a["response_ms"])));
            }
            calls.push(progress.join(", "));
        }
    }
    let f = &v["figures"]["station"];
    format!(
        "{} | {} crews sent, {} acknowledged, {} arrived (median {}), {} closed",
        if calls.is_empty() {
            "no open call".to_string()
        } else {
            calls.join(" · ")
        },
        f["dispatched"],
        f["acknowledged"],
        f["arrived"],
        f["median_response_s"]
            .as_f64()
            .map_or("-".to_string(), |m| format!("{m:.0} s")),
        f["closed"],
    )
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Where the demo serves its status page and metrics (free loopback ports, a fresh token).
struct DemoWeb {
    page_port: u16,
    metrics_port: u16,
    token: String,
}

impl DemoWeb {
    fn new() -> anyhow::Result<DemoWeb> {
        Ok(DemoWeb {
            page_port: free_port()?,
            metrics_port: free_port()?,
            token: format!("{:032x}", fastrand::u128(..)),
        })
    }

    fn page_url(&self) -> String {
        format!("http://127.0.0.1:{}/?token={}", self.page_port, self.token)
    }
}

/// The simulated box (`hw-profiles/sim.toml`), embedded so the demo needs no files.
const SIM_PROFILE: &str = include_str!("../../hw-profiles/sim.toml");

/// The station config the demo runs on, built from embedded defaults.
fn demo_config(
    dir: &Path,
    uplink_port: u16,
    ingest_port: u16,
    fleet_port: u16,
    web: &DemoWeb,
) -> anyhow::Result<Config> {
    let text = format!(
        r#"[station]
id = "{STATION}"
name = "演示驻巡站 (demo station)"
profile = "sim"

[uplink]
brokers = ["mqtt://127.0.0.1:{uplink_port}"]
reconnect_min_ms = 200
reconnect_max_ms = 2000

[buffer]
path = "{db}"

# Central dispatch's demo key (tests/data/keys): the demo's dispatch signs with it.
[commands]
public_key_file = "{key}"

# The devices come from the sim hardware profile (hw-profiles/sim.toml); this run
# moves them to free ports and the simulated receiver's pty.
[[device]]
id = "ingest0"
listen = "tcp://127.0.0.1:{ingest_port}"

[[device]]
id = "fleet"
listen = "tcp://127.0.0.1:{fleet_port}"
# A car parked on scene still reports every 5 s (its arrival is confirmed sooner).
max_interval_s = 5

[[device]]
id = "car-04"
path = "{gps}"

[[device]]
id = "radio0"
path = "{radio}"

# The body-cam dock: the directory a collection station writes.
[[device]]
id = "dock0"
driver = "dock"
root = "{footage}"
settle_s = 2
storage_s = 10
[device.recorders]
"DSJ-A1-0003" = {{ officer = "A-1031" }}

# Who is on duty: team 1 works, team 2 trains (the roster comes from dispatch, roster.set);
# the crews of the two grid cars whose terminals report.
[staffing]
teams = ["1", "2"]
start = "2026-01-01T08:00"
[[staffing.slot]]
hours = 24
on_duty = ["1"]
training = ["2"]
[[staffing.car]]
id = "car-01"
crew = ["P-0417", "A-1031", "A-1032"]
[[staffing.car]]
id = "car-02"
crew = ["P-0522", "A-1041", "A-1042"]

# The crews' handhelds send status 0x8002 for "received" and 0x8004 for "call closed".
[dispatch]
ack_statuses = [{received:#06x}]
clear_statuses = [{closed:#06x}]
arrival_dwell_s = 10

# The technician's status page and Prometheus metrics, on loopback only.
[status_page]
listen = "127.0.0.1:{page_port}"
token = "{token}"

[metrics]
listen = "127.0.0.1:{metrics_port}"
"#,
        page_port = web.page_port,
        token = web.token,
        metrics_port = web.metrics_port,
        received = devices::STATUS_RECEIVED,
        closed = devices::STATUS_CLOSED,
        db = dir.join("outbox.db").display(),
        gps = dir.join("gps0").display(),
        radio = dir.join("radio0").display(),
        footage = dir.join("footage").display(),
        key = dir.join("dispatch.pub").display()
    );
    std::fs::write(dir.join("dispatch.pub"), dispatch::PUBLIC_KEY)?;
    std::fs::create_dir_all(dir.join("hw-profiles"))?;
    std::fs::write(dir.join("hw-profiles/sim.toml"), SIM_PROFILE)?;
    Ok(Config::parse(&dir.join("demo.toml"), &text)?)
}

/// Starts rumqttd as central dispatch on `port`; returns a channel of the (topic, payload) it
/// receives under `stations/#`. Also the uplink's in-process test broker.
pub(crate) fn start_central(
    port: u16,
) -> anyhow::Result<std::sync::mpsc::Receiver<(String, Vec<u8>)>> {
    let text = format!(
        r#"id = 0
[router]
max_connections = 64
max_outgoing_packet_count = 1000
max_segment_size = 10485760
max_segment_count = 10

[v4.1]
name = "central"
listen = "127.0.0.1:{port}"
next_connection_delay_ms = 1
[v4.1.connections]
connection_timeout_ms = 60000
max_payload_size = 1048576
max_inflight_count = 1000
dynamic_filters = true
"#
    );
    let config: rumqttd::Config = toml::from_str(&text).context("embedded broker configuration")?;
    let mut broker = rumqttd::Broker::new(config);
    let (mut link_tx, mut link_rx) = broker
        .link("dispatch-viewer")
        .context("embedded broker link")?;
    std::thread::Builder::new()
        .name("central-broker".into())
        .spawn(move || {
            if let Err(e) = broker.start() {
                tracing::error!(error = %e, "embedded broker stopped");
            }
        })?;
    link_tx
        .subscribe("stations/#")
        .context("subscribe the viewer")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("central-viewer".into())
        .spawn(move || loop {
            match link_rx.recv() {
                Ok(Some(rumqttd::Notification::Forward(f))) => {
                    let topic = String::from_utf8_lossy(&f.publish.topic).into_owned();
                    if tx.send((topic, f.publish.payload.to_vec())).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(_) => return,
            }
        })?;
    Ok(rx)
}

/// A TCP relay to central that drops every connection and refuses new ones while `up` is false.
async fn link_simulator(listener: TcpListener, upstream: SocketAddr, up: watch::Receiver<bool>) {
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else {
            continue;
        };
        if !*up.borrow() {
            drop(inbound);
            continue;
        }
        let mut up = up.clone();
        tokio::spawn(async move {
            let Ok(mut outbound) = TcpStream::connect(upstream).await else {
                return;
            };
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                _ = up.wait_for(|u| !*u) => {}
            }
        });
    }
}

fn render(
    view: &CentralView,
    link_up: bool,
    phase_left: u64,
    outbox: &str,
    elapsed: u64,
    plain: bool,
    hint: &str,
) -> String {
    let link = if link_up {
        format!("UP   (outage in {phase_left:>2}s)")
    } else {
        format!("DOWN (back in {phase_left:>2}s)")
    };
    if plain {
        return format!(
            "t={elapsed:>4}s uplink {link} | outbox {outbox} | central: {} received, {} historical, {} duplicates, {} missing, {} commands answered | station {} | crews {} | calls {}\n",
            view.received,
            view.historical,
            view.duplicates,
            view.missing(),
            view.answered,
            view.station_state,
            if view.crews.is_empty() { "(waiting for the roster)" } else { &view.crews },
            if view.dispatch.is_empty() { "(none yet)" } else { &view.dispatch }
        );
    }
    let mut s = String::from("\x1b[2J\x1b[H");
    s.push_str(&format!("stationd demo — station {STATION} → central dispatch (embedded MQTT broker)   t={elapsed}s\n"));
    s.push_str("Ctrl-C stops. The uplink is cut now and then: watch the outbox fill, then drain as HISTORICAL.\n");
    s.push_str(&format!("{hint}\n\n"));
    s.push_str(&format!("  uplink          {link}\n"));
    s.push_str(&format!("  station outbox  {outbox}\n"));
    s.push_str(&format!(
        "  station status  {} (retained P/status as central sees it)\n\n",
        view.station_state
    ));
    s.push_str(&format!(
        "  central received {} messages: {} live, {} historical; {} duplicates; {} missing seqs\n",
        view.received,
        view.received - view.historical,
        view.historical,
        view.duplicates,
        view.missing()
    ));
    let kinds: Vec<String> = view
        .by_kind
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    s.push_str(&format!(
        "  by kind: {}\n  car-01..03 positions from their JT/T 808 terminals (TCP): {}\n  car-04 positions from its GNSS receiver (NMEA over a serial port): {}\n  handheld radio positions through the base radio (TETRA PEI over a serial port): {}, emergencies {}\n  body-cam footage indexed from the dock: {} files, {} recorders docked; evidence chain head at central: entry {}\n\n  latest at central:\n",
        kinds.join(", "),
        view.terminal_positions,
        view.receiver_positions,
        view.radio_positions,
        view.by_kind.get("radio.emergency").copied().unwrap_or(0),
        view.by_kind.get("footage.indexed").copied().unwrap_or(0),
        view.by_kind.get("recorder.docked").copied().unwrap_or(0),
        view.evidence_head
    ));
    for l in &view.recent {
        s.push_str(&format!("    {l}\n"));
    }
    s.push_str(&format!(
        "\n  device board at central (retained P/state/devices): {}\n  crews at central (retained P/state/staffing): {}\n  calls at central (retained P/state/dispatch): {}\n  commands from dispatch (signed), answered on P/cmd-result/…:\n",
        view.board,
        if view.crews.is_empty() { "(waiting for the roster)" } else { &view.crews },
        if view.dispatch.is_empty() { "(no call yet: one a minute)" } else { &view.dispatch }
    ));
    for (id, what, answer) in &view.commands {
        s.push_str(&format!(
            "    {id:<8} {what:<22} → {}\n",
            answer.as_deref().unwrap_or("(waiting for the answer)")
        ));
    }
    s
}

fn outbox_summary(db: &Path) -> String {
    match Reader::open(db).and_then(|r| {
        r.stats().map_err(|e| crate::outbox::OutboxError::Open {
            path: db.to_path_buf(),
            source: e,
        })
    }) {
        Ok(s) => format!(
            "{:>6} rows waiting (alarm {}, event {}, telemetry {}), next seq {}",
            s.rows(),
            s.alarm.rows,
            s.event.rows,
            s.telemetry.rows,
            s.next_seq
        ),
        Err(_) => "opening".into(),
    }
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn run(opts: DemoOptions) -> anyhow::Result<()> {
    let dir = TempDir(std::env::temp_dir().join(format!("stationd-demo-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).with_context(|| format!("create {}", dir.0.display()))?;
    let log = std::fs::File::create(dir.0.join("stationd.log"))?;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(Mutex::new(log))
        .with_ansi(false)
        .try_init();
    let plain = opts.plain || !std::io::stdout().is_terminal();
    let (central_port, uplink_port, ingest_port, fleet_port) =
        (free_port()?, free_port()?, free_port()?, free_port()?);
    let received = start_central(central_port)?;
    let web = DemoWeb::new()?;
    let cfg = demo_config(&dir.0, uplink_port, ingest_port, fleet_port, &web)?;
    let db = cfg.buffer.path.clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let (link_tx, link_rx) = watch::channel(true);
        let relay = TcpListener::bind(("127.0.0.1", uplink_port)).await?;
        tokio::spawn(link_simulator(relay, SocketAddr::from(([127, 0, 0, 1], central_port)), link_rx));
        let stop = CancellationToken::new();
        let inputs_stop = CancellationToken::new();
        let receiver = simulate_receiver(&dir.0.join("gps0"), inputs_stop.clone())?;
        let base_radio = simulate_base_radio(&dir.0.join("radio0"), inputs_stop.clone())?;
        let dock = simulate_dock(&dir.0.join("footage"), inputs_stop.clone())?;
        let control = dir.0.join("control.sock");
        let hint = format!(
            "status page (open in a browser): {}\nmetrics: http://127.0.0.1:{}/metrics\ntechnician's view, in another terminal: STATIOND_CONTROL_SOCKET={} stationd devices",
            web.page_url(),
            web.metrics_port,
            control.display()
        );
        if plain {
            println!("{hint}");
        }
        let station = crate::daemon::start(cfg, stop.clone(), Some(control)).await?;
        let inputs = tokio::spawn(simulate_inputs(ingest_port, inputs_stop.clone()));
        let scene = devices::Scene::default();
        let terminals: Vec<_> = (0..CARS.len()).map(|i| tokio::spawn(simulate_terminal(fleet_port, i, scene.clone(), inputs_stop.clone()))).collect();
        let (sent_tx, sent) = std::sync::mpsc::channel();
        // The first call once crews are ready (the roster and the sign-in come first).
        let first_call = Duration::from_secs(if plain { 5 } else { 15 });
        let dispatcher = tokio::spawn(dispatch::dispatch(central_port, STATION, Duration::from_secs(if plain { 3 } else { 8 }), first_call, scene, sent_tx, inputs_stop.clone()));
        let mut view = CentralView::default();
        let started = Instant::now();
        let mut ticker = tokio::time::interval(Duration::from_millis(if plain { 1000 } else { 500 }));
        let cycle = opts.up_secs + opts.down_secs;
        let mut out = std::io::stdout();
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = tokio::signal::ctrl_c() => break,
            }
            let elapsed = started.elapsed().as_secs();
            if opts.seconds > 0 && elapsed >= opts.seconds {
                break;
            }
            let in_cycle = elapsed % cycle.max(1);
            let up = opts.down_secs == 0 || in_cycle < opts.up_secs;
            let phase_left = if up { opts.up_secs - in_cycle } else { cycle - in_cycle };
            if *link_tx.borrow() != up {
                let _ = link_tx.send(up);
            }
            while let Ok((id, what)) = sent.try_recv() {
                view.sent(id, what);
            }
            while let Ok((topic, payload)) = received.try_recv() {
                view.take(&topic, &payload);
            }
            let _ = out.write_all(render(&view, up, phase_left, &outbox_summary(&db), elapsed, plain, &hint).as_bytes());
            let _ = out.flush();
        }
        // Wind down: stop the inputs, restore the link, let the backlog drain, stop the station.
        inputs_stop.cancel();
        let _ = inputs.await;
        for t in terminals {
            let _ = t.await;
        }
        let _ = dispatcher.await;
        let _ = tokio::task::spawn_blocking(move || (receiver.join(), base_radio.join(), dock.join())).await;
        let _ = link_tx.send(true);
        let drain_deadline = Instant::now() + Duration::from_secs(15);
        loop {
            while let Ok((topic, payload)) = received.try_recv() {
                view.take(&topic, &payload);
            }
            let drained = Reader::open(&db).ok().and_then(|r| r.stats().ok()).is_some_and(|s| s.rows() == 0);
            if drained || Instant::now() > drain_deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        stop.cancel();
        station.stop().await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        while let Ok((topic, payload)) = received.try_recv() {
            view.take(&topic, &payload);
        }
        println!(
            "\ndemo summary: central received {} messages ({} historical, delivered late after outages; {} positions from JT/T 808 terminals, {} positions from the NMEA receiver, {} positions from handheld radios; {} footage files indexed; {} commands answered; at best {} crews ready at once; {} crews sent to calls, {} acknowledged, {} arrived), {} duplicates, {} missing seqs; station {}",
            view.received,
            view.historical,
            view.terminal_positions,
            view.receiver_positions,
            view.radio_positions,
            view.by_kind.get("footage.indexed").copied().unwrap_or(0),
            view.answered,
            view.crews_ready,
            view.by_kind.get("dispatch.ordered").copied().unwrap_or(0),
            view.by_kind.get("dispatch.acknowledged").copied().unwrap_or(0),
            view.by_kind.get("dispatch.arrived").copied().unwrap_or(0),
            view.duplicates,
            view.missing(),
            view.station_state
        );
        anyhow::Ok(())
    })
}
