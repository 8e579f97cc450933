//! The core's figures on this machine (README "Benchmark"): `cargo bench --bench pipeline`.
//!
//! 1. Outbox ingest: events/s committed through the writer thread (group commit), 200-byte
//!    `data` payloads, for both durability settings; bytes written to disk per event.
//! 2. The ceiling: a bare rumqttc publisher, QoS 1, same window and message size, against a
//!    local mosquitto.
//! 3. Backlog drain through the uplink into the same broker (rows deleted on PUBACK), over
//!    MQTT 3.1.1 and over MQTT 5 alternately (measured: MQTT 5 0.84x of 3.1.1 at window 256,
//!    0.88x at window 100: its ~34 bytes of properties per message, and mosquitto's receive
//!    maximum of 100 in flight).
//! 4. The real daemon started on a 1,000,000-event backlog: peak RSS (VmHWM) while it opens the
//!    outbox and drains it, its drain rate, and bytes written per drained event.
//!
//! 5. Commands from dispatch (`BENCH_ONLY=commands`): signed commands answered per second by the
//!    real daemon through a real broker, and what a stream of commands costs the telemetry
//!    flowing beside it.
//!
//! 6. The TETRA base radio (`BENCH_ONLY=tetra`): unsolicited reports decoded per second (PEI
//!    lines to events, one core), the real daemon reading a simulated radio on a pty (reports
//!    per second end to end, RSS), and the time from an emergency status line on the serial
//!    port to the alarm at the broker (median, p99).
//!
//! 7. The body-cam dock (`BENCH_ONLY=dock`): small files indexed per second end to end, the
//!    hashing rate and the daemon's peak RSS on a 4 GiB file, and `footage.upload`'s rate
//!    against its cap (nginx on loopback).
//!
//! 8. Cameras (`BENCH_ONLY=camera`): what a probe costs (daemon CPU and bytes on the wire per
//!    DESCRIBE, 50 cameras probed by one daemon), and relaying one 1080p25 H.264 stream to a
//!    media server with `video.push`: the daemon's CPU and RSS while it relays, and the
//!    latency it adds (each RTP packet timed as it leaves the camera and as it reaches the
//!    server, by its sequence number, through two tapping relays on loopback).
//!
//! 9. Staffing (`BENCH_ONLY=staffing`): what reading presence off the drivers' events costs on
//!    their path (an event that says nothing about people, and one that does), what computing
//!    the picture costs for a station and for the largest roster, and the time from a sign-in
//!    line to its `staffing.changed` at the broker (median, p99).
//!
//! 10. Dispatch (`BENCH_ONLY=dispatch`): what the dispatch watcher costs on every position a
//!     driver reports, and the time from central publishing a signed `dispatch` to the order on
//!     the car terminal's screen (0x8300 over TCP) and to its answer at the broker (median, p99),
//!     beside a signed `ping`'s round trip. `BENCH_BROKER_EXTRA` adds lines to that mosquitto's
//!     config (e.g. `set_tcp_nodelay true`, to see what the broker's Nagle costs).
//!
//! 11. Replay that respects the link (`BENCH_ONLY=replay`): a backlog replayed by the real
//!     daemon under `[uplink] replay_max_bytes_per_s` (two caps), measured at the broker (bytes
//!     of payload and topic per second, first to last backlog row) against the cap, and the
//!     latency of live lines sent every 100 ms meanwhile (they must not wait for the backlog).
//!
//! `BENCH_SCALE=0.1` shrinks every size (a quick look); the goals are judged at scale 1.
#![allow(clippy::disallowed_methods)] // test threads may block (clippy.toml bans it in the daemon)

#[path = "../tests/common/mod.rs"]
mod common;

use serde_json::value::RawValue;
use stationd::config::Durability;
use stationd::event::{ClockQuality, Event, Priority};
use stationd::outbox::{self, LinkState, OutboxOptions, Reader, WriterThread};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

fn scale(n: u64) -> u64 {
    let s: f64 = std::env::var("BENCH_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1.0);
    ((n as f64) * s).max(1000.0) as u64
}

fn event(n: u64) -> Event {
    // 200 bytes of data: {"n":…,"pad":"…"}
    let head = format!("{{\"n\":{n},\"pad\":\"");
    let pad = "x".repeat(200 - head.len() - 2);
    Event {
        ts_ms: 1_795_940_102_120 + n as i64,
        clock: ClockQuality::Synced,
        device: "car-03".into(),
        kind: "position".into(),
        prio: Priority::Telemetry,
        historical: true,
        data: RawValue::from_string(format!("{head}{pad}\"}}")).unwrap(),
        topic: None,
    }
}

/// Bytes this process caused to be written to the block layer (/proc/self/io write_bytes).
fn io_write_bytes(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/io"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("write_bytes:")
                    .map(|v| v.trim().parse().unwrap_or(0))
            })
        })
        .unwrap_or(0)
}

fn vm_hwm_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("VmHWM:")
                    .map(|v| v.trim().trim_end_matches(" kB").trim().parse().unwrap_or(0))
            })
        })
        .unwrap_or(0)
}

fn bench_dir(name: &str) -> std::path::PathBuf {
    // On the project's disk (not tmpfs), so fsync and write_bytes are real.
    let d = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/bench-tmp")
        .join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn opts(dir: &std::path::Path, durability: Durability) -> OutboxOptions {
    OutboxOptions {
        path: dir.join("outbox.db"),
        station: "bench-st01".into(),
        max_bytes: 8 << 30,
        durability,
    }
}

/// The outbox writer on `store`, as the daemon starts it.
fn start_writer(store: outbox::Store) -> (WriterThread, outbox::EventSink, outbox::WriterControl) {
    WriterThread::start(
        store,
        16 * 1024,
        Arc::new(Notify::new()),
        Arc::new(LinkState::default()),
        Arc::new(stationd::metrics::Metrics::default()),
    )
}

/// Hands `events` to the writer, waits until they are committed, and stops it. Returns when
/// they were committed (before the writer's closing checkpoint).
fn commit_and_stop(
    rt: &tokio::runtime::Runtime,
    (writer, sink, control): (WriterThread, outbox::EventSink, outbox::WriterControl),
    events: Vec<Event>,
) -> Instant {
    rt.block_on(async {
        for e in events {
            sink.send(e).await.unwrap();
        }
        control.flush().await.unwrap();
    });
    let committed = Instant::now();
    drop((sink, control));
    writer.join();
    committed
}

/// Fills an outbox with `n` events through the writer; returns (events/s, disk bytes/event).
async fn ingest(o: &OutboxOptions, n: u64) -> (f64, f64) {
    let (store, _) = outbox::open_store(o).unwrap();
    let (writer, sink, control) = start_writer(store);
    let events: Vec<Event> = (0..n).map(event).collect();
    let io0 = io_write_bytes("self");
    let start = Instant::now();
    let producer = tokio::spawn(async move {
        for e in events {
            sink.send(e).await.unwrap();
        }
    });
    producer.await.unwrap();
    control.flush().await.unwrap();
    let secs = start.elapsed().as_secs_f64();
    drop(control);
    tokio::task::spawn_blocking(move || writer.join())
        .await
        .unwrap();
    let written = io_write_bytes("self").saturating_sub(io0);
    (n as f64 / secs, written as f64 / n as f64)
}

/// A bare rumqttc publisher: QoS 1, `window` in flight, until every PUBACK is back.
async fn bare_publisher(port: u16, n: u64, payload: Vec<u8>, window: u16) -> f64 {
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
    let mut o = MqttOptions::new("bench-bare", "127.0.0.1", port);
    o.set_inflight(window)
        .set_request_channel_capacity(window as usize + 16)
        .set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut el) = AsyncClient::new(o, window as usize + 16);
    let start = Instant::now();
    let publisher = tokio::spawn(async move {
        for _ in 0..n {
            client
                .publish(
                    "stations/bench/telemetry/car-03/position",
                    QoS::AtLeastOnce,
                    false,
                    payload.clone(),
                )
                .await
                .unwrap();
        }
        client
    });
    let mut acks = 0;
    while acks < n {
        if let Event::Incoming(Packet::PubAck(_)) = el.poll().await.unwrap() {
            acks += 1;
        }
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    drop(publisher.await);
    rate
}

fn drained(path: &std::path::Path) -> bool {
    Reader::open(path)
        .and_then(|r| {
            r.is_empty().map_err(|e| outbox::OutboxError::Open {
                path: path.to_path_buf(),
                source: e,
            })
        })
        .unwrap_or(false)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let n_ingest = scale(300_000);
    let n_drain = scale(200_000);
    let n_backlog = scale(1_000_000);
    println!(
        "stationd pipeline benchmark ({} cores)",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );

    // BENCH_ONLY=jt808 (or ingest, nmea, drain; comma-separated) runs only those sections.
    let only = std::env::var("BENCH_ONLY").ok();
    let section = |name: &str| {
        only.as_deref()
            .is_none_or(|o| o.split(',').any(|x| x == name))
    };

    // 1. Ingest.
    for durability in [Durability::PowerCut, Durability::ProcessCrash] {
        if !section("ingest") {
            break;
        }
        let dir = bench_dir("ingest");
        let (rate, bytes) = rt.block_on(ingest(&opts(&dir, durability), n_ingest));
        println!("ingest   {durability:?}: {rate:>10.0} events/s committed ({n_ingest} events, 200-byte data); {bytes:.0} bytes written to disk per event");
    }

    // NMEA: decode rate, and decode + report + commit of every fix (report-by-exception off).
    if section("nmea") {
        nmea(&rt, scale(200_000));
    }

    // JT/T 808: location reports decoded, answered and committed; RSS with 500 terminals.
    if section("jt808") {
        jt808(&rt, scale(200_000));
    }
    if section("commands") {
        commands(scale(5_000), scale(50_000));
    }
    if section("dock") {
        dock(scale(5_000));
    }
    if section("camera") {
        // 50 cameras (10 at a BENCH_SCALE below 1): scale() floors at 1,000.
        let quick =
            std::env::var("BENCH_SCALE").is_ok_and(|v| v.parse::<f64>().is_ok_and(|s| s < 1.0));
        camera(if quick { 10 } else { 50 });
    }
    if section("tetra") {
        tetra(scale(1_000_000), scale(20_000), scale(1_000));
    }
    if section("staffing") {
        staffing(scale(1_000_000), scale(1_000));
    }
    if section("dispatch") {
        dispatch(scale(1_000_000), scale(200));
    }
    if section("replay") {
        let quick =
            std::env::var("BENCH_SCALE").is_ok_and(|v| v.parse::<f64>().is_ok_and(|s| s < 1.0));
        replay(&rt, if quick { 4 } else { 15 });
    }
    if !section("drain") {
        return;
    }

    // 2 + 3. Ceiling and drain against one local mosquitto, alternated three times (medians):
    // the two compete with the broker for the same 2 cores, so single runs are noisy.
    let broker = common::Broker::started();
    let sample = event(1).to_envelope_json("bench-st01", 1_000_000);
    let window: u16 = std::env::var("BENCH_WINDOW")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let dir = bench_dir("drain");
    let o = opts(&dir, Durability::PowerCut);
    let config_text = format!(
        "[station]\nid = \"bench-st01\"\nname = \"bench\"\n[uplink]\nbrokers = [\"mqtt://127.0.0.1:{}\"]\nwindow = {window}\n[buffer]\npath = \"{}\"\nmax_bytes = 8589934592\n",
        broker.port,
        o.path.display()
    );
    std::fs::write(dir.join("stationd.toml"), &config_text).unwrap();
    // The same drain over MQTT 5 (user properties on every message, the broker's receive
    // maximum), alternated with the 3.1.1 one.
    std::fs::write(
        dir.join("stationd-mqtt5.toml"),
        config_text.replace("mqtt://", "mqtt5://"),
    )
    .unwrap();
    let (mut ceilings, mut drains, mut drains5) = (Vec::new(), Vec::new(), Vec::new());
    for (round, config) in ["stationd.toml", "stationd-mqtt5.toml"]
        .iter()
        .cycle()
        .take(6)
        .enumerate()
    {
        if round % 2 == 0 {
            ceilings.push(rt.block_on(bare_publisher(
                broker.port,
                n_drain,
                sample.clone(),
                window,
            )));
        }
        rt.block_on(ingest(&o, n_drain));
        let cfg = stationd::config::Config::load(&dir.join(config)).unwrap();
        // The daemon's own runtime flavour, so the figure is the one a station box sees.
        let daemon_rt = stationd::daemon::runtime().unwrap();
        let into = if round % 2 == 0 {
            &mut drains
        } else {
            &mut drains5
        };
        into.push(daemon_rt.block_on(async {
            let stop = tokio_util::sync::CancellationToken::new();
            let running = stationd::daemon::start(cfg, stop.clone(), None)
                .await
                .unwrap();
            let start = Instant::now();
            // This daemon's own counters (a fresh registry per daemon).
            let acked = running.metrics.counter("uplink.acked", "");
            while acked.load(std::sync::atomic::Ordering::Relaxed) < n_drain {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            let rate = n_drain as f64 / start.elapsed().as_secs_f64();
            stop.cancel();
            running.stop().await;
            rate
        }));
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (ceiling, drain_rate) = (median(&mut ceilings), median(&mut drains));
    let drain5 = median(&mut drains5);
    println!("ceiling  bare rumqttc publisher:     {ceiling:>10.0} msg/s (QoS 1, window {window}, {} bytes; median of 3)", sample.len());
    println!(
        "drain    uplink from the outbox:   {drain_rate:>10.0} events/s acknowledged and deleted ({n_drain} backlog; median of 3) = {:.0}% of the ceiling",
        100.0 * drain_rate / ceiling
    );
    println!(
        "drain    the same over MQTT 5:     {drain5:>10.0} events/s (seq/prio user properties; the broker's receive maximum 100) = {:.2}x the 3.1.1 drain",
        drain5 / drain_rate
    );

    // 4. The daemon process on a 1M backlog.
    let dir = bench_dir("backlog");
    let o = opts(&dir, Durability::PowerCut);
    let t = Instant::now();
    let (rate, _) = rt.block_on(ingest(&o, n_backlog));
    println!(
        "backlog  built {n_backlog} events in {:.1}s ({rate:.0}/s); file {} MB",
        t.elapsed().as_secs_f64(),
        std::fs::metadata(&o.path).unwrap().len() / 1_000_000
    );
    let cfg_path = dir.join("stationd.toml");
    std::fs::write(
        &cfg_path,
        config_text.replace(&dir_path_in(&config_text), &o.path.display().to_string()),
    )
    .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_stationd"))
        .args(["run", "--config"])
        .arg(&cfg_path)
        .env("RUST_LOG", "warn")
        .env("STATIOND_CONTROL_SOCKET", dir.join("control.sock"))
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let start = Instant::now();
    let mut io_start = None;
    let mut peak = 0;
    let mut last_check = Instant::now();
    loop {
        peak = peak.max(vm_hwm_kb(pid));
        if io_start.is_none() {
            io_start = Some(io_write_bytes(&pid.to_string()));
        }
        if last_check.elapsed() > Duration::from_millis(100) {
            last_check = Instant::now();
            if drained(&o.path) {
                break;
            }
        }
        if start.elapsed() > Duration::from_secs(600) {
            println!("backlog  did not drain within 600 s");
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let secs = start.elapsed().as_secs_f64();
    let written = io_write_bytes(&pid.to_string()).saturating_sub(io_start.unwrap_or(0));
    peak = peak.max(vm_hwm_kb(pid));
    let threads = thread_cpu(pid);
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = child.wait();
    println!(
        "daemon   stationd run on a {n_backlog}-event backlog: peak RSS {:.1} MB; drained in {secs:.1}s = {:.0} events/s (incl. start-up check); {:.0} bytes written per drained event",
        peak as f64 / 1024.0,
        n_backlog as f64 / secs,
        written as f64 / n_backlog as f64
    );
    println!("daemon   CPU seconds by thread during start + drain: {threads}");
    println!("goals: ingest >= 100000/s; drain >= 80% of the ceiling; peak RSS <= 30 MB with the 1M backlog");
}

/// The four receiver captures, comment lines dropped, repeated to about `sentences` lines.
fn nmea_stream(sentences: u64) -> (Vec<u8>, u64) {
    let mut one = Vec::new();
    let mut lines = 0u64;
    for f in [
        "gpsd-bu353s4.log",
        "gpsd-mtk-3301.log",
        "gpsd-beidou-gb.log",
        "gpsd-quectel-l76k-nmea.log",
    ] {
        let text =
            std::fs::read_to_string(format!("{}/tests/data/{f}", env!("CARGO_MANIFEST_DIR")))
                .unwrap();
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            one.extend_from_slice(l.as_bytes());
            one.extend_from_slice(b"\r\n");
            lines += 1;
        }
    }
    let reps = sentences.div_ceil(lines);
    (one.repeat(reps as usize), lines * reps)
}

fn nmea(rt: &tokio::runtime::Runtime, n: u64) {
    use stationd::codec::nmea::{parse, EpochAssembler, EpochOutcome, Frame, SentenceFramer};
    use stationd::drivers::gps::{position_data, GpsTracker, Report, ReportPolicy};
    let (stream, lines) = nmea_stream(n);
    let decode = |mut on_fix: Box<dyn FnMut(EpochOutcome) + '_>| {
        let mut framer = SentenceFramer::new();
        let mut epochs = EpochAssembler::new();
        for chunk in stream.chunks(512) {
            framer.push(chunk, |f| {
                if let Frame::Sentence(s) = f {
                    if let Ok(p) = parse(s) {
                        if let Some(o) = epochs.push(&p.sentence) {
                            on_fix(o);
                        }
                    }
                }
            });
        }
    };
    let start = Instant::now();
    let mut fixes = 0u64;
    decode(Box::new(|o| {
        fixes += matches!(o, EpochOutcome::Fix(_)) as u64
    }));
    let secs = start.elapsed().as_secs_f64();
    println!(
        "nmea     decode: {:>10.0} sentences/s ({lines} sentences, {fixes} fixes, one core)",
        lines as f64 / secs
    );

    let dir = bench_dir("nmea");
    let (store, _) = outbox::open_store(&opts(&dir, Durability::PowerCut)).unwrap();
    let (writer, sink, control) = start_writer(store);
    let policy = ReportPolicy {
        min_distance_m: 0.0,
        min_course_deg: 0.0,
        min_interval_ms: 0,
        max_interval_ms: 1,
    };
    let mut tracker = GpsTracker::new(policy, 10_000);
    let mut events = Vec::new();
    let start = Instant::now();
    decode(Box::new(|o| {
        for r in tracker.epoch(0, o) {
            if let Report::Position(f) = r {
                events.push(Event {
                    ts_ms: f.utc_ms.unwrap_or(0),
                    clock: ClockQuality::Synced,
                    device: "gps0".into(),
                    kind: "position".into(),
                    prio: Priority::Telemetry,
                    historical: false,
                    data: RawValue::from_string(position_data(&f).to_string()).unwrap(),
                    topic: None,
                });
            }
        }
    }));
    let positions = events.len() as u64;
    let secs = (commit_and_stop(rt, (writer, sink, control), events) - start).as_secs_f64();
    println!(
        "nmea     decode + commit every fix: {:>10.0} sentences/s = {:.0} positions/s committed",
        lines as f64 / secs,
        positions as f64 / secs
    );
}

/// A 2013 registration body (Shandong, Jinan, a simulated terminal, plate "A").
fn register_body() -> Vec<u8> {
    stationd::sim::jt808::Registration::default().body(stationd::codec::jt808::Edition::V2013)
}

/// The `i`-th of a stream of location reports: moving north 11 m a report, 30 km/h.
fn jt808_location(i: u64) -> Vec<u8> {
    stationd::sim::jt808::Location {
        lat: 36.6 + (i % 1000) as f64 * 1e-4,
        lon: 117.0,
        speed_kmh: 30.0,
        time_bcd: [0x26, 0x11, 0x29, 0x16, 0x15, (i % 60) as u8],
        extra: vec![0x30, 1, 25, 0x31, 1, 12],
        ..Default::default()
    }
    .body()
}

fn jt808(rt: &tokio::runtime::Runtime, n: u64) {
    use stationd::codec::jt808::{encode, Edition, FrameDecoder};
    use stationd::drivers::jt808::{Action, Session, Shared};
    let dir = bench_dir("jt808");
    let cfg_text = format!(
        "[station]\nid = \"bench-st01\"\nname = \"b\"\n[uplink]\nbrokers = [\"mqtt://127.0.0.1:1\"]\n[buffer]\npath = \"{}\"\n[[device]]\nid = \"fleet\"\ndriver = \"jt808\"\nlisten = \"tcp://127.0.0.1:0\"\nmin_interval_s = 0\nmin_distance_m = 0\n[device.terminals]\n\"013912345678\" = \"car-03\"\n",
        dir.join("outbox.db").display()
    );
    let cfg = stationd::config::Config::parse(&dir.join("s.toml"), &cfg_text).unwrap();
    let dev = cfg.devices[0]
        .as_any()
        .downcast_ref::<stationd::drivers::jt808::Jt808Device>()
        .expect("a jt808 device");
    let shared = Arc::new(Shared::new(dev.session_config()));
    let mut session = Session::new(shared);
    // Register and authenticate, then a stream of location reports.
    let mut wire = encode(0x0100, Edition::V2013, "013912345678", 1, &register_body());
    let mut decoder = FrameDecoder::new();
    let mut code = String::new();
    decoder.push(&wire, |f| {
        for a in session.on_frame(f.unwrap(), (0, ClockQuality::Synced), 0) {
            if let Action::Reply(r) = a {
                let mut d = FrameDecoder::new();
                d.push(&r, |g| {
                    code = String::from_utf8_lossy(&g.unwrap().body[3..]).into_owned()
                });
            }
        }
    });
    decoder.push(
        &encode(0x0102, Edition::V2013, "013912345678", 2, code.as_bytes()),
        |f| {
            session.on_frame(f.unwrap(), (0, ClockQuality::Synced), 0);
        },
    );
    wire.clear();
    for i in 0..n {
        wire.extend(encode(
            0x0200,
            Edition::V2013,
            "013912345678",
            (i % 65536) as u16,
            &jt808_location(i),
        ));
    }
    let (store, _) = outbox::open_store(&opts(&dir, Durability::PowerCut)).unwrap();
    let (writer, sink, control) = start_writer(store);
    let start = Instant::now();
    let mut events = Vec::with_capacity(n as usize);
    let mut replies = 0u64;
    for chunk in wire.chunks(1460) {
        decoder.push(chunk, |f| {
            for a in session.on_frame(f.unwrap(), (0, ClockQuality::Synced), 0) {
                match a {
                    Action::Event(e) => events.push(e),
                    Action::Reply(_) => replies += 1,
                    Action::Close(_) | Action::Notice(_) | Action::TerminalAnswer { .. } => {}
                }
            }
        });
    }
    let positions = events.len() as u64;
    let secs = (commit_and_stop(rt, (writer, sink, control), events) - start).as_secs_f64();
    println!(
        "jt808    location reports decoded, answered (0x8001) and committed: {:>10.0} reports/s ({positions} positions, {replies} replies)",
        n as f64 / secs
    );

    // The same through the real daemon and a real socket: every 0x8001 written only once the
    // report it answers is committed (a terminal deletes what was acknowledged).
    let (rate, acks) = jt808_over_tcp(&dir, n);
    println!(
        "jt808    stationd over TCP, one terminal pipelining, each 0x8001 after its commit: {rate:>10.0} reports/s ({acks} acknowledged)"
    );

    // RSS of the daemon with 500 terminals connected (registered and authenticated).
    let port = common::free_port();
    let ingest = common::free_port();
    let text = format!(
        "[station]\nid = \"bench-st01\"\nname = \"b\"\n[uplink]\nbrokers = [\"mqtt://127.0.0.1:1\"]\n[buffer]\npath = \"{}\"\n[[device]]\nid = \"in\"\ndriver = \"jsonl\"\nlisten = \"tcp://127.0.0.1:{ingest}\"\n[[device]]\nid = \"fleet\"\ndriver = \"jt808\"\nlisten = \"tcp://127.0.0.1:{port}\"\nallow_unknown = true\n",
        dir.join("rss.db").display()
    );
    let mut child = spawn_daemon(&dir, "rss", &text, port);
    let idle_kb = vm_rss_kb(child.id());
    let mut streams = Vec::new();
    for i in 0..500u32 {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let phone = format!("0139{i:08}");
        s.write_all(&encode(0x0100, Edition::V2013, &phone, 1, &register_body()))
            .unwrap();
        let mut buf = [0u8; 256];
        let k = s.read(&mut buf).unwrap();
        let mut code = String::new();
        FrameDecoder::new().push(&buf[..k], |g| {
            code = String::from_utf8_lossy(&g.unwrap().body[3..]).into_owned()
        });
        s.write_all(&encode(0x0102, Edition::V2013, &phone, 2, code.as_bytes()))
            .unwrap();
        let _ = s.read(&mut buf).unwrap();
        s.write_all(&encode(
            0x0200,
            Edition::V2013,
            &phone,
            3,
            &jt808_location(i as u64),
        ))
        .unwrap();
        let _ = s.read(&mut buf).unwrap();
        streams.push(s);
    }
    std::thread::sleep(Duration::from_millis(500));
    let with_500 = vm_rss_kb(child.id());
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = child.wait();
    drop(streams);
    println!(
        "jt808    stationd RSS: {:.1} MB idle, {:.1} MB with 500 terminals connected and authenticated",
        idle_kb as f64 / 1024.0,
        with_500 as f64 / 1024.0
    );
}

/// Starts `stationd run` on the config `text` (written as `dir/NAME.toml`, with its own
/// control socket) and waits until it accepts connections on `port`.
fn spawn_daemon(dir: &std::path::Path, name: &str, text: &str, port: u16) -> std::process::Child {
    let child = run_daemon(dir, name, text);
    assert!(common::wait_until(Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    }));
    child
}

/// Starts `stationd run` on the config `text` (written as `dir/NAME.toml`, with its own
/// control socket) without waiting for anything.
fn run_daemon(dir: &std::path::Path, name: &str, text: &str) -> std::process::Child {
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(&config, text).unwrap();
    std::process::Command::new(env!("CARGO_BIN_EXE_stationd"))
        .args(["run", "--config"])
        .arg(&config)
        .env("RUST_LOG", "error")
        .env(
            "STATIOND_CONTROL_SOCKET",
            dir.join(format!("{name}-control.sock")),
        )
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// SIGTERM, then waits for the exit.
fn stop_daemon(mut child: std::process::Child) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = child.wait();
}

/// One terminal registers, authenticates and sends `n` location reports back to back to a
/// running `stationd`; returns (reports/s until the last is acknowledged, acknowledgements).
fn jt808_over_tcp(dir: &std::path::Path, n: u64) -> (f64, u64) {
    use stationd::codec::jt808::{encode, Edition, FrameDecoder};
    use std::io::{Read, Write};
    let port = common::free_port();
    let text = format!(
        "[station]\nid = \"bench-st01\"\nname = \"b\"\n[uplink]\nbrokers = [\"mqtt://127.0.0.1:1\"]\n[buffer]\npath = \"{}\"\n[[device]]\nid = \"fleet\"\ndriver = \"jt808\"\nlisten = \"tcp://127.0.0.1:{port}\"\nmin_interval_s = 0\nmin_distance_m = 0\n[device.terminals]\n\"013912345678\" = \"car-03\"\n",
        dir.join("tcp.db").display()
    );
    let mut child = spawn_daemon(dir, "tcp", &text, port);
    let phone = "013912345678";
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_nodelay(true).unwrap();
    let mut frames = FrameDecoder::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut next_frame = |s: &mut std::net::TcpStream| loop {
        let k = s.read(&mut buf).unwrap();
        let mut got = None;
        frames.push(&buf[..k], |g| got = Some(g.unwrap()));
        if let Some(f) = got {
            return f;
        }
    };
    s.write_all(&encode(0x0100, Edition::V2013, phone, 1, &register_body()))
        .unwrap();
    let code = String::from_utf8_lossy(&next_frame(&mut s).body[3..]).into_owned();
    s.write_all(&encode(0x0102, Edition::V2013, phone, 2, code.as_bytes()))
        .unwrap();
    let _ = next_frame(&mut s);
    let mut wire = Vec::new();
    for i in 0..n {
        wire.extend(encode(
            0x0200,
            Edition::V2013,
            phone,
            (i % 65536) as u16,
            &jt808_location(i),
        ));
    }
    let mut reader = s.try_clone().unwrap();
    let start = Instant::now();
    let sender = std::thread::spawn(move || s.write_all(&wire).map(|_| s));
    let mut acks = 0u64;
    let mut decoder = FrameDecoder::new();
    let mut rbuf = vec![0u8; 64 * 1024];
    while acks < n {
        let k = reader.read(&mut rbuf).unwrap();
        assert!(
            k > 0,
            "the daemon closed the connection after {acks} acknowledgements"
        );
        decoder.push(&rbuf[..k], |f| {
            if f.map(|f| f.header.msg_id == 0x8001).unwrap_or(false) {
                acks += 1;
            }
        });
    }
    let secs = start.elapsed().as_secs_f64();
    let _stream = sender.join().unwrap().unwrap();
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = child.wait();
    (n as f64 / secs, acks)
}

fn vm_rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("VmRSS:")
                    .map(|v| v.trim().trim_end_matches(" kB").trim().parse().unwrap_or(0))
            })
        })
        .unwrap_or(0)
}

/// CPU seconds (user + system) per thread name of a process, largest first.
fn thread_cpu(pid: u32) -> String {
    let tick = 100.0; // USER_HZ
    let mut by_name: std::collections::BTreeMap<String, f64> = Default::default();
    for entry in std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = stat[open + 1..close].to_string();
        let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        let cpu = fields
            .get(11)
            .and_then(|u| u.parse::<f64>().ok())
            .unwrap_or(0.0)
            + fields
                .get(12)
                .and_then(|s| s.parse::<f64>().ok())
                .unwrap_or(0.0);
        *by_name.entry(name).or_default() += cpu / tick;
    }
    let mut v: Vec<(String, f64)> = by_name.into_iter().collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1));
    v.iter()
        .map(|(n, c)| format!("{n} {c:.2}s"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn dir_path_in(config: &str) -> String {
    config
        .lines()
        .find_map(|l| l.strip_prefix("path = \""))
        .map(|p| p.trim_end_matches('"').to_string())
        .unwrap()
}

/// Central as the benchmark needs it: counts of what arrives, by topic alone (no JSON parsing,
/// no copies), so that watching costs the two cores next to nothing.
struct Tally {
    ticks: Arc<std::sync::atomic::AtomicU64>,
    answers: Arc<std::sync::atomic::AtomicU64>,
    online: Arc<std::sync::atomic::AtomicBool>,
    _thread: std::thread::JoinHandle<()>,
}

impl Tally {
    fn connect(port: u16) -> Tally {
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        let (ticks, answers, online) = (
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let (t, a, o) = (ticks.clone(), answers.clone(), online.clone());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
                let mut o_ = MqttOptions::new(
                    format!("bench-tally-{}", fastrand::u32(..)),
                    "127.0.0.1",
                    port,
                );
                o_.set_max_packet_size(1 << 20, 1 << 20);
                let (client, mut el) = AsyncClient::new(o_, 100);
                client
                    .subscribe("stations/#", QoS::AtLeastOnce)
                    .await
                    .unwrap();
                loop {
                    match el.poll().await {
                        Ok(Event::Incoming(Packet::Publish(p))) => {
                            if p.topic.ends_with("/bench.tick") {
                                t.fetch_add(1, Ordering::Relaxed);
                            } else if p.topic.contains("/cmd-result/") {
                                a.fetch_add(1, Ordering::Relaxed);
                            } else if p.topic.ends_with("/status")
                                && p.payload.windows(8).any(|w| w == b"\"online\"")
                            {
                                o.store(true, Ordering::Relaxed);
                            }
                        }
                        Ok(_) => {}
                        Err(_) => return,
                    }
                }
            });
        });
        Tally {
            ticks,
            answers,
            online,
            _thread: thread,
        }
    }

    fn ticks(&self) -> u64 {
        self.ticks.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn answers(&self) -> u64 {
        self.answers.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Waits (polling every millisecond) until `cond`; panics after 120 s.
fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < Duration::from_secs(120), "{what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A station taking signed commands (no rate limit to speak of) with a `jsonl` input, as a
/// process against a local mosquitto; (daemon, jsonl port).
fn command_station(
    dir: &std::path::Path,
    broker: &common::Broker,
    tally: &Tally,
) -> (std::process::Child, u16) {
    let ingest = common::free_port();
    let key =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/keys/dispatch-test.pub");
    let _ = std::fs::remove_dir_all(dir.join("cmd"));
    std::fs::create_dir_all(dir.join("cmd")).unwrap();
    let text = format!(
        "[station]\nid = \"bench-st01\"\nname = \"b\"\n[uplink]\nbrokers = [\"mqtt://127.0.0.1:{}\"]\n[buffer]\npath = \"{}\"\n[commands]\npublic_key_file = \"{}\"\nmax_per_minute = 1000000\n[[device]]\nid = \"ingest0\"\ndriver = \"jsonl\"\nlisten = \"tcp://127.0.0.1:{ingest}\"\n",
        broker.port,
        dir.join("cmd/outbox.db").display(),
        key.display()
    );
    let child = spawn_daemon(dir, "commands", &text, ingest);
    until("the station came online", || {
        tally.online.load(std::sync::atomic::Ordering::Relaxed)
    });
    (child, ingest)
}

/// `n` signed pings `{tag}-{i}`, made before any clock starts.
fn signed_pings(n: u64, tag: &str) -> Vec<(String, Vec<u8>)> {
    let key = common::dispatch::key("dispatch-test.key");
    let now = stationd::clock::unix_ms();
    (0..n)
        .map(|i| {
            let mut c = stationd::command::Command::new(
                "ping",
                &format!("{tag}-{i}"),
                now,
                now + 3_600_000,
                Default::default(),
            );
            c.sign("bench-st01", &key);
            ("stations/bench-st01/cmd/ping".to_string(), c.to_payload())
        })
        .collect()
}

/// Publishes `cmds` as a dispatcher does that keeps at most `window` commands unanswered (a
/// burst larger than the station's command queue is shed, by design); returns once all are
/// answered.
fn paced(port: u16, tally: &Tally, cmds: Vec<(String, Vec<u8>)>, window: usize) {
    let before = tally.answers();
    let mut sent = 0u64;
    for chunk in cmds.chunks(window) {
        common::dispatch::publish(port, chunk.to_vec());
        sent += chunk.len() as u64;
        until("every command answered", || {
            tally.answers() >= before + sent
        });
    }
}

fn commands(n: u64, lines: u64) {
    let broker = common::Broker::started();
    let tally = Arc::new(Tally::connect(broker.port));
    let dir = bench_dir("commands");
    let (mut child, ingest) = command_station(&dir, &broker, &tally);
    let start = Instant::now();
    paced(broker.port, &tally, signed_pings(n, "alone"), 256);
    let alone = n as f64 / start.elapsed().as_secs_f64();
    println!("commands {n} signed pings (at most 256 unanswered) published, verified, run, answered through the outbox, received by central: {alone:>6.0} commands/s");
    let lines: Vec<String> = (0..lines)
        .map(|i| {
            format!("{{\"kind\":\"bench.tick\",\"prio\":\"telemetry\",\"data\":{{\"n\":{i}}}}}\n")
        })
        .collect();
    let n_lines = lines.len() as u64;
    let telemetry = |cmds: Option<Vec<(String, Vec<u8>)>>| {
        let before = tally.ticks();
        let start = Instant::now();
        let port = broker.port;
        let flood = cmds.map(|cmds| {
            let (n, tally) = (cmds.len() as f64, tally.clone());
            std::thread::spawn(move || {
                paced(port, &tally, cmds, 256);
                n / start.elapsed().as_secs_f64()
            })
        });
        common::send_lines(ingest, &lines);
        until("all telemetry at central", || {
            tally.ticks() >= before + n_lines
        });
        let rate = n_lines as f64 / start.elapsed().as_secs_f64();
        (rate, flood.map(|f| f.join().unwrap()))
    };
    let (quiet, _) = telemetry(None);
    let (busy, cmds) = telemetry(Some(signed_pings(n, "beside")));
    println!(
        "commands telemetry end to end (jsonl in, central out): {quiet:>8.0} events/s alone; {busy:>8.0} events/s while commands arrive at full speed ({:.0} commands/s answered meanwhile): {:+.0} %",
        cmds.unwrap_or(0.0),
        (busy / quiet - 1.0) * 100.0
    );
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = child.wait();
}

/// The handhelds' unsolicited traffic, `n` reports: location reports (most), statuses, texts,
/// talk bursts, round robin over 50 radios.
fn radio_reports(n: u64) -> Vec<u8> {
    use stationd::sim::tetra as sim;
    let mut wire = Vec::new();
    for i in 0..n {
        let issi = format!("{}", 1001 + i % 50);
        let f = i as f64 / 1000.0;
        match i % 10 {
            0 => wire.extend(sim::status(&issi, "2001", 0x8002 + (i % 8) as u16)),
            1 => wire.extend(sim::text_ucs2(&issi, "2001", (i % 256) as u8, "已到达现场")),
            2 => {
                let (start, end) = sim::group_call((i % 1000) as u16, &issi, "9001");
                wire.extend(start);
                wire.extend(end);
            }
            _ => wire.extend(sim::location(
                &issi,
                "2001",
                36.66 + f.sin() * 0.01,
                117.02 + f.cos() * 0.01,
                Some(40.0),
                90.0,
                3,
            )),
        }
    }
    wire
}

fn tetra(n_decode: u64, n_reports: u64, n_alarms: u64) {
    use stationd::drivers::tetra::reports::{Out, Reporter};
    use stationd::tetra::pei::PeiDecoder;
    // 1. Decode alone and decode + the driver's translation to events, one core.
    let wire = radio_reports(n_decode);
    let start = Instant::now();
    let mut lines = 0u64;
    let mut decoder = PeiDecoder::new();
    for chunk in wire.chunks(512) {
        decoder.push(chunk, |_| lines += 1);
    }
    let decode = n_decode as f64 / start.elapsed().as_secs_f64();
    let mut reporter = Reporter::new("radio0", Default::default(), vec![], 6);
    let mut events = 0u64;
    let start = Instant::now();
    let mut decoder = PeiDecoder::new();
    for chunk in wire.chunks(512) {
        decoder.push(chunk, |l| {
            events += reporter
                .line(l, 0)
                .iter()
                .filter(|o| matches!(o, Out::Event { .. }))
                .count() as u64
        });
    }
    let translate = n_decode as f64 / start.elapsed().as_secs_f64();
    println!("tetra    decode: {decode:>10.0} reports/s PEI lines and SDS/LIP decoded; {translate:>10.0} reports/s decoded and made events ({n_decode} reports, {events} events, {} MB of PEI, one core)", wire.len() / 1_000_000);

    // 2 + 3. The daemon with a simulated radio on a pty, against a local mosquitto.
    let broker = common::Broker::started();
    let dir = bench_dir("tetra");
    let link = dir.join("radio0");
    let radio = Arc::new(std::sync::Mutex::new(stationd::sim::tetra::SimRadio::new(
        "2001", "9001",
    )));
    let mut pty = common::PtyRadio::plug_in(&link, radio);
    let arrivals = central_arrivals(broker.port, "bench-tetra-central");
    let text = format!(
        "[station]\nid = \"bench-st01\"\nname = \"b\"\n[uplink]\nbrokers = [\"mqtt://127.0.0.1:{}\"]\n[buffer]\npath = \"{}\"\n[[device]]\nid = \"radio0\"\ndriver = \"tetra\"\npath = \"{}\"\nbaud = 115200\npoll_s = 30\n",
        broker.port,
        dir.join("tetra.db").display(),
        link.display()
    );
    let config = dir.join("tetra.toml");
    std::fs::write(&config, text).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_stationd"))
        .args(["run", "--config"])
        .arg(&config)
        .env("RUST_LOG", "error")
        .env("STATIOND_CONTROL_SOCKET", dir.join("tetra-control.sock"))
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let wait_for = |what: &str, n: u64, pred: &dyn Fn(&str) -> bool| -> Vec<Instant> {
        let mut got = Vec::new();
        while (got.len() as u64) < n {
            let (at, topic) = arrivals
                .recv_timeout(Duration::from_secs(120))
                .unwrap_or_else(|_| panic!("{what}: {} of {n} after 120 s", got.len()));
            if pred(&topic) {
                got.push(at);
            }
        }
        got
    };
    wait_for("the radio's first signal report", 1, &|t| {
        t.ends_with("/radio.signal")
    });
    let idle_rss = vm_rss_kb(pid);
    // Reports end to end: every location report is a position at central (no exception
    // rule for LIP), the rest events.
    let wire = radio_reports(n_reports);
    let positions = (0..n_reports).filter(|i| i % 10 >= 3).count() as u64;
    let start = Instant::now();
    for chunk in wire.chunks(4096) {
        pty.say(chunk);
    }
    wait_for("positions at central", positions, &|t| {
        t.ends_with("/position")
    });
    let secs = start.elapsed().as_secs_f64();
    let busy_rss = vm_rss_kb(pid);
    println!(
        "tetra    daemon: {:>8.0} reports/s from the pty to central ({n_reports} reports, {positions} of them positions, all received); RSS {:.1} MB idle with the radio attached, {:.1} MB after the burst",
        n_reports as f64 / secs,
        idle_rss as f64 / 1024.0,
        busy_rss as f64 / 1024.0
    );
    // Emergency status line → the alarm at central, one at a time.
    while arrivals.try_recv().is_ok() {}
    let mut latencies = Vec::new();
    for i in 0..n_alarms {
        let line = stationd::sim::tetra::status(&format!("{}", 1001 + i % 50), "2001", 0);
        std::thread::sleep(Duration::from_millis(10));
        let sent = Instant::now();
        pty.say(&line);
        let at = wait_for("the emergency at central", 1, &|t| {
            t.ends_with("/event/radio.emergency")
        })[0];
        latencies.push(at.duration_since(sent).as_secs_f64() * 1000.0);
    }
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    println!(
        "tetra    emergency status line written on the pty -> radio.emergency (alarm) received from the broker: median {:.2} ms, p99 {:.2} ms, max {:.2} ms ({n_alarms} alarms, one at a time; includes the outbox commit's fsync)",
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = child.wait();
}

/// A subscriber on `stations/#` that hands over (arrival time, topic) of every message.
fn staffing(n_events: u64, n_lines: u64) {
    use stationd::staffing::model::{Devices, Model};
    use stationd::staffing::roster::Person;
    use stationd::staffing::signals;
    use stationd_proto::staffing::crew::Role;
    use stationd_proto::staffing::presence::{Signal, Source};
    // 1. The watcher's cost on the drivers' path, one core.
    let ev = |device: &str, kind: &str, data: serde_json::Value| {
        Event::new(
            device,
            kind,
            Priority::Telemetry,
            (0, ClockQuality::Synced),
            false,
            data,
        )
    };
    let position = ev(
        "gps0",
        "position",
        serde_json::json!({"lat": 36.66, "lon": 117.02, "speed_kmh": 40.0}),
    );
    let talk = ev(
        "hh-1001",
        "radio.call",
        serde_json::json!({"issi": "1001", "officer": "A-1203", "car": "car-03", "call": 7, "talk_s": 3.2, "via": "radio0"}),
    );
    let per_event = |driver: &'static str, e: &Event| {
        let start = Instant::now();
        let mut said = 0u64;
        for _ in 0..n_events {
            said += u64::from(std::hint::black_box(signals::observe(driver, e)).is_some());
        }
        (start.elapsed().as_nanos() as f64 / n_events as f64, said)
    };
    let (quiet_ns, _) = per_event("nmea", &position);
    let (talk_ns, said) = per_event("tetra", &talk);
    assert_eq!(said, n_events);
    println!("staffing watcher: {quiet_ns:>8.0} ns per event that says nothing about people (a receiver's position); {talk_ns:>8.0} ns per radio talk burst read as presence ({n_events} each, one core)");

    // 2. The picture: a station (15 people, 5 cars) and the largest roster (2000, 100 cars).
    struct AllUp;
    impl Devices for AllUp {
        fn online(&self, _: &str) -> bool {
            true
        }
        fn heard_within(&self, _: &str, _: i64, _: i64) -> bool {
            true
        }
    }
    for (people, cars) in [(15usize, 5usize), (2_000, 100)] {
        let mut m = Model {
            roster: (0..people)
                .map(|i| Person {
                    id: format!("P-{i:04}"),
                    name: String::new(),
                    role: if i % 3 == 0 {
                        Role::Officer
                    } else {
                        Role::Auxiliary
                    },
                    team: Some(format!("{}", 1 + i % 4)),
                    card: None,
                })
                .collect(),
            ..Default::default()
        };
        for i in 0..people {
            m.presence.observe(Signal {
                person: format!("P-{i:04}"),
                present: i % 5 != 0,
                source: Source::Radio,
                at_ms: i as i64,
                detail: "radio".into(),
            });
        }
        for c in 0..cars {
            let members = (0..3)
                .map(|k| format!("P-{:04}", (c * 3 + k) % people))
                .collect();
            m.set_crew(&format!("car-{c:02}"), members, "config", 0);
        }
        let before = Default::default();
        let rounds = if people > 100 { 20 } else { 2_000 };
        let start = Instant::now();
        let mut last = m.picture(None, &AllUp, 1_000, &before);
        for _ in 0..rounds {
            let next = m.picture(None, &AllUp, 1_000, &before);
            std::hint::black_box(stationd::staffing::model::diff(&last, &next));
            last = next;
        }
        let us = start.elapsed().as_secs_f64() * 1e6 / f64::from(rounds);
        println!("staffing picture: {us:>10.0} µs to compute and diff the picture of {people} people and {cars} crews (every signal and every 5 s)");
    }

    // 3. A sign-in line → its staffing.changed at central, through the real daemon.
    let broker = common::Broker::started();
    let dir = bench_dir("staffing");
    let port = common::free_port();
    let arrivals = central_arrivals(broker.port, "bench-staffing-central");
    let text = format!(
        "[station]\nid = \"bench-st01\"\nname = \"b\"\n[uplink]\nbrokers = [\"mqtt://127.0.0.1:{}\"]\n[buffer]\npath = \"{}\"\n[[device]]\nid = \"signin\"\ndriver = \"jsonl\"\nlisten = \"tcp://127.0.0.1:{port}\"\n[staffing]\nteams = [\"1\"]\nstart = \"2026-01-01T08:00\"\n[[staffing.slot]]\nhours = 24\non_duty = [\"1\"]\n",
        broker.port,
        dir.join("outbox.db").display(),
    );
    let config = dir.join("staffing.toml");
    std::fs::write(&config, text).unwrap();
    let socket = dir.join("staffing-control.sock");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_stationd"))
        .args(["run", "--config"])
        .arg(&config)
        .env("RUST_LOG", "error")
        .env("STATIOND_CONTROL_SOCKET", &socket)
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    assert!(common::wait_until(Duration::from_secs(30), || socket.exists()));
    let roster = dir.join("roster.csv");
    std::fs::write(&roster, "id,role,team\nP-0417,officer,1\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stationd"))
        .args(["roster", "import"])
        .arg(&roster)
        .env("STATIOND_CONTROL_SOCKET", &socket)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::thread::sleep(Duration::from_millis(300));
    while arrivals.try_recv().is_ok() {}
    let mut signin = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut latencies = Vec::new();
    for i in 0..n_lines {
        use std::io::Write;
        let kind = if i % 2 == 0 {
            "duty.signed_on"
        } else {
            "duty.signed_off"
        };
        let line = format!("{{\"kind\":\"{kind}\",\"data\":{{\"person\":\"P-0417\"}}}}\n");
        let sent = Instant::now();
        signin.write_all(line.as_bytes()).unwrap();
        loop {
            let (at, topic) = arrivals
                .recv_timeout(Duration::from_secs(30))
                .expect("staffing.changed at central");
            if topic.ends_with("/event/staffing.changed") {
                latencies.push(at.duration_since(sent).as_secs_f64() * 1000.0);
                break;
            }
        }
    }
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    println!(
        "staffing sign-in line written -> staffing.changed received from the broker: median {:.2} ms, p99 {:.2} ms ({n_lines} lines, one at a time; daemon RSS {} kB after)",
        pct(0.5),
        pct(0.99),
        vm_rss_kb(pid)
    );
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = child.wait();
}

fn central_arrivals(port: u16, name: &str) -> std::sync::mpsc::Receiver<(Instant, String)> {
    let messages = central_messages(port, name);
    let (tx, arrivals) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for (at, topic, _) in messages {
            if tx.send((at, topic)).is_err() {
                return;
            }
        }
    });
    arrivals
}

/// Waits for `n` messages whose topic ends with `suffix`; the arrival of the last.
fn arrivals_of(
    arrivals: &std::sync::mpsc::Receiver<(Instant, String)>,
    suffix: &str,
    n: u64,
) -> Instant {
    let mut got = 0;
    loop {
        let (at, topic) = arrivals
            .recv_timeout(Duration::from_secs(300))
            .unwrap_or_else(|_| panic!("{suffix}: {got} of {n} after 300 s"));
        if topic.ends_with(suffix) {
            got += 1;
            if got >= n {
                return at;
            }
        }
    }
}

fn dock(n_small: u64) {
    let broker = common::Broker::started();
    let arrivals = central_arrivals(broker.port, "bench-dock-central");
    let nginx = common::Nginx::start();
    let dir = bench_dir("dock");
    let root = dir.join("footage");
    std::fs::create_dir_all(root.join("DSJ-A1-0001")).unwrap();
    let key =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/keys/dispatch-test.pub");
    let text = |kbit: u64| {
        format!(
            "[station]\nid = \"test-st01\"\nname = \"b\"\n[uplink]\nbrokers = [\"mqtt://127.0.0.1:{}\"]\n[buffer]\npath = \"{}\"\n[commands]\npublic_key_file = \"{}\"\n[[device]]\nid = \"dock0\"\ndriver = \"dock\"\nroot = \"{}\"\nsettle_s = 1\nupload_kbit_s = {kbit}\n",
            broker.port,
            dir.join("dock.db").display(),
            key.display(),
            root.display()
        )
    };
    let start_daemon = |kbit: u64| run_daemon(&dir, "dock", &text(kbit));
    let stop = stop_daemon;
    let child = start_daemon(2000);
    arrivals_of(&arrivals, "/status", 1);
    // Small files (10 kB, a still's size) written at once: until the last footage.indexed.
    let start = Instant::now();
    for i in 0..n_small {
        let (h, m, s) = (8 + i / 3600, i / 60 % 60, i % 60);
        std::fs::write(
            root.join(format!(
                "DSJ-A1-0001/DSJ-A1-0001_P-0417_20261201{h:02}{m:02}{s:02}_{i}.jpg"
            )),
            vec![(i % 251) as u8; 10_000],
        )
        .unwrap();
    }
    let last = arrivals_of(&arrivals, "/event/footage.indexed", n_small);
    let secs = last.duration_since(start).as_secs_f64();
    println!("dock     {n_small} small files (10 kB) written at once: {:>6.0} files/s indexed end to end (hashed, chained in evidence.db, footage.indexed at central; includes settle_s = 1)", n_small as f64 / secs);
    // A 4 GiB file (sparse: the hash rate, not the disk's) and the daemon's peak RSS.
    let pid = child.id();
    let before = vm_hwm_kb(pid);
    let big = root.join("DSJ-A1-0001_P-0417_20261201120000.mp4");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(4 << 30).unwrap();
    drop(f);
    let start = Instant::now();
    let mut peak = before;
    loop {
        peak = peak.max(vm_hwm_kb(pid));
        match arrivals.recv_timeout(Duration::from_millis(50)) {
            Ok((at, topic)) if topic.ends_with("/event/footage.indexed") => {
                let secs = at.duration_since(start).as_secs_f64();
                println!("dock     4 GiB file hashed and indexed: {:>6.0} MB/s (SHA-256, one core, idle I/O class); daemon peak RSS {:.1} MB before, {:.1} MB after", 4096.0 * 1.048_576 / secs, before as f64 / 1024.0, peak.max(vm_hwm_kb(pid)) as f64 / 1024.0);
                break;
            }
            _ => assert!(
                start.elapsed() < Duration::from_secs(600),
                "the 4 GiB file was not indexed in 600 s"
            ),
        }
    }
    std::fs::remove_file(&big).unwrap();
    stop(child);
    // Upload: 20 MB to nginx under two caps.
    let up = root.join("DSJ-A1-0001_P-0417_20261201130000.mp4");
    let bytes: Vec<u8> = (0..20_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 11) as u8)
        .collect();
    std::fs::write(&up, &bytes).unwrap();
    for (n, cap) in [(1, 40_000u64), (2, 400_000u64)] {
        let child = start_daemon(cap);
        arrivals_of(&arrivals, "/status", 1);
        if n == 1 {
            arrivals_of(&arrivals, "/event/footage.indexed", 1);
        }
        let start = Instant::now();
        common::dispatch::send(
            broker.port,
            "footage.upload",
            &format!("b-{n}"),
            serde_json::json!({"path": "DSJ-A1-0001_P-0417_20261201130000.mp4", "url": nginx.url(&format!("upload/b{n}.mp4"))}),
        );
        let at = arrivals_of(&arrivals, &format!("/cmd-result/b-{n}"), 1);
        let secs = at.duration_since(start).as_secs_f64();
        let ok = std::fs::read(nginx.stored(&format!("b{n}.mp4")))
            .map(|b| b == bytes)
            .unwrap_or(false);
        println!("dock     footage.upload of 20 MB to nginx with upload_kbit_s = {cap}: {:>8.0} kbit/s end to end ({:.0} % of the cap), byte-identical: {ok}", 20_000_000.0 * 8.0 / 1000.0 / secs, 20_000_000.0 * 8.0 / 1000.0 / secs / cap as f64 * 100.0);
        stop(child);
    }
}

/// A TCP relay on a free loopback port to `upstream` that counts the bytes and connections
/// through it and, for one direction (`tap_upstream`: upstream → client, else client →
/// upstream), notes when each interleaved RTP packet on channel 0 passed, by sequence number.
struct TapRelay {
    port: u16,
    bytes: Arc<std::sync::atomic::AtomicU64>,
    connections: Arc<std::sync::atomic::AtomicU64>,
    seen: Arc<std::sync::Mutex<std::collections::HashMap<u16, Instant>>>,
}

impl TapRelay {
    fn start(upstream: u16, tap_upstream: bool) -> TapRelay {
        use std::io::{Read, Write};
        let port = common::free_port();
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        let relay = TapRelay {
            port,
            bytes: Default::default(),
            connections: Default::default(),
            seen: Default::default(),
        };
        let (bytes, connections, seen) = (
            relay.bytes.clone(),
            relay.connections.clone(),
            relay.seen.clone(),
        );
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(client) = conn else { continue };
                let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                connections.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let _ = (client.set_nodelay(true), server.set_nodelay(true));
                for (mut from, mut to, tap) in [
                    (
                        client.try_clone().unwrap(),
                        server.try_clone().unwrap(),
                        !tap_upstream,
                    ),
                    (server, client, tap_upstream),
                ] {
                    let (bytes, seen) = (bytes.clone(), seen.clone());
                    std::thread::spawn(move || {
                        let mut reader = stationd_proto::camera::rtsp::Reader::new();
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            let n = match from.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            let at = Instant::now();
                            bytes.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                            if to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                            if !tap {
                                continue;
                            }
                            reader.push(&buf[..n]);
                            while let Ok(Some(item)) = reader.next_item() {
                                if let stationd_proto::camera::rtsp::Item::Interleaved {
                                    channel: 0,
                                    data,
                                } = item
                                {
                                    if data.len() >= 4 {
                                        let seq = u16::from_be_bytes([data[2], data[3]]);
                                        seen.lock().unwrap().entry(seq).or_insert(at);
                                    }
                                }
                            }
                        }
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        relay
    }
}

/// A GStreamer process from tests/lib (a camera or the media server); killed on drop.
struct GstProcess(std::process::Child);

impl GstProcess {
    fn start(script: &str, args: &[String]) -> GstProcess {
        use std::io::BufRead;
        let mut child = std::process::Command::new("/usr/bin/python3")
            .arg(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/lib")
                    .join(script),
            )
            .args(args)
            // A busy scene at a street camera's bitrate, not a mostly still test pattern.
            .env("CAMERA_PATTERN", "snow")
            .env("CAMERA_KBIT", "4000")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("/usr/bin/python3 with GStreamer's RTSP server (tests/run.sh installs it)");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "{script} did not start");
        GstProcess(child)
    }
}

impl Drop for GstProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn camera(n_cameras: u64) {
    let broker = common::Broker::started();
    let arrivals = central_arrivals(broker.port, "bench-camera-central");
    let dir = bench_dir("camera");
    let cam_port = common::free_port();
    let _camera = GstProcess::start(
        "rtsp_camera.py",
        &[
            cam_port.to_string(),
            "1920".into(),
            "1080".into(),
            "25".into(),
        ],
    );
    let key =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/keys/dispatch-test.pub");
    let head = |db: &str| {
        format!(
            "[station]\nid = \"test-st01\"\nname = \"b\"\n[uplink]\nbrokers = [\"mqtt://127.0.0.1:{}\"]\n[buffer]\npath = \"{}\"\n[commands]\npublic_key_file = \"{}\"\n",
            broker.port,
            dir.join(db).display(),
            key.display()
        )
    };
    let start_daemon = |name: &str, text: String| run_daemon(&dir, name, &text);
    let stop = stop_daemon;

    // Probes: n cameras (all the same GStreamer camera, through a counting relay), every 10 s.
    let probe_tap = TapRelay::start(cam_port, true);
    let mut text = head("probe.db");
    for i in 0..n_cameras {
        text.push_str(&format!(
            "[[device]]\nid = \"cam-{i}\"\ndriver = \"rtsp\"\nurl = \"rtsp://127.0.0.1:{}/cam1\"\nprobe_s = 10\n",
            probe_tap.port
        ));
    }
    let child = start_daemon("probe", text);
    arrivals_of(&arrivals, "/status", 1);
    // Warm: every camera probed once (the camera's media constructed), then 30 s measured.
    arrivals_of(&arrivals, "/event/camera.up", n_cameras);
    let pid = child.id();
    let (cpu0, bytes0, conns0) = (
        common::cpu_seconds(pid),
        probe_tap.bytes.load(std::sync::atomic::Ordering::Relaxed),
        probe_tap
            .connections
            .load(std::sync::atomic::Ordering::Relaxed),
    );
    std::thread::sleep(Duration::from_secs(30));
    let probes = probe_tap
        .connections
        .load(std::sync::atomic::Ordering::Relaxed)
        - conns0;
    let bytes = probe_tap.bytes.load(std::sync::atomic::Ordering::Relaxed) - bytes0;
    let cpu = common::cpu_seconds(pid) - cpu0;
    println!(
        "camera   {n_cameras} cameras probed every 10 s by one daemon: {probes} probes in 30 s; {:.2} ms of daemon CPU and {:.0} bytes on the wire (both ways) per probe (DESCRIBE, 1080p H.264 SDP); daemon RSS {:.1} MB, {:.1} % of one core",
        cpu * 1000.0 / probes.max(1) as f64,
        bytes as f64 / probes.max(1) as f64,
        vm_rss_kb(pid) as f64 / 1024.0,
        cpu / 30.0 * 100.0
    );
    stop(child);

    // Relaying one 1080p25 stream for 20 s: camera → tap → daemon → tap → media server.
    let media_port = common::free_port();
    let recording = dir.join("received.ts");
    let _media = GstProcess::start(
        "rtsp_record_server.py",
        &[media_port.to_string(), recording.display().to_string()],
    );
    let camera_tap = TapRelay::start(cam_port, true);
    let media_tap = TapRelay::start(media_port, false);
    let text = head("push.db")
        + &format!(
            "[[device]]\nid = \"cam-gate\"\ndriver = \"rtsp\"\nurl = \"rtsp://127.0.0.1:{}/cam1\"\nprobe_s = 3600\n",
            camera_tap.port
        );
    let child = start_daemon("push", text);
    let pid = child.id();
    arrivals_of(&arrivals, "/status", 1);
    arrivals_of(&arrivals, "/event/camera.up", 1);
    let rss_before = vm_rss_kb(pid);
    common::dispatch::send(
        broker.port,
        "video.push",
        "bench-push",
        serde_json::json!({"camera": "cam-gate", "url": format!("rtsp://127.0.0.1:{}/live/cam", media_tap.port), "duration_s": 20}),
    );
    // Sample from the first packet at the server to the end.
    until("the first packet reached the media server", || {
        !media_tap.seen.lock().unwrap().is_empty()
    });
    let (cpu0, started) = (common::cpu_seconds(pid), Instant::now());
    let mut rss_peak = 0;
    let done = loop {
        rss_peak = rss_peak.max(vm_rss_kb(pid));
        match arrivals.recv_timeout(Duration::from_millis(200)) {
            Ok((at, topic)) if topic.ends_with("/cmd-result/bench-push") => break at,
            _ => assert!(
                started.elapsed() < Duration::from_secs(120),
                "no answer to the push"
            ),
        }
    };
    let secs = done.duration_since(started).as_secs_f64();
    let cpu = common::cpu_seconds(pid) - cpu0;
    let relayed = media_tap.bytes.load(std::sync::atomic::Ordering::Relaxed);
    let mut latencies: Vec<f64> = {
        let (from, to) = (
            camera_tap.seen.lock().unwrap(),
            media_tap.seen.lock().unwrap(),
        );
        to.iter()
            .filter_map(|(seq, t_out)| {
                from.get(seq)
                    .map(|t_in| t_out.duration_since(*t_in).as_secs_f64() * 1000.0)
            })
            .collect()
    };
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    println!(
        "camera   video.push of one 1080p25 H.264 stream ({:.0} kbit/s): daemon {:.1} % of one core, RSS {:.1} MB before, {:.1} MB peak while relaying",
        relayed as f64 * 8.0 / 1000.0 / secs,
        cpu / secs * 100.0,
        rss_before as f64 / 1024.0,
        rss_peak as f64 / 1024.0
    );
    println!(
        "camera   relay latency (an RTP packet leaving the camera → reaching the media server, {} packets): median {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        latencies.len(),
        pct(0.5),
        pct(0.99),
        latencies.last().copied().unwrap_or(f64::NAN)
    );
    stop(child);
}

fn dispatch(n_events: u64, n_orders: u64) {
    // 1. The watcher's work on each position any driver reports (parse, keep the newest).
    let positions = stationd::dispatch::Positions::default();
    let events: Vec<Event> = (0..100)
        .map(|i| {
            Event::new(
                &format!("car-{i:02}"),
                "position",
                Priority::Telemetry,
                (i, ClockQuality::Synced),
                false,
                serde_json::json!({"lat": 36.66, "lon": 117.02, "alt_m": 45, "speed_kmh": 42.3, "course_deg": 90,
                                   "valid": true, "satellites": 12, "terminal": "013912345678"}),
            )
        })
        .collect();
    let start = Instant::now();
    for i in 0..n_events {
        std::hint::black_box(positions.take(&events[(i % 100) as usize]));
    }
    let ns = start.elapsed().as_nanos() as f64 / n_events as f64;
    println!("dispatch watcher: {ns:>8.0} ns per position event (a JT/T 808 position's data read and kept, 100 cars; {n_events} events, one core)");

    // 2. An order → the terminal's screen, and → its answer at central, through the real
    // daemon, one at a time.
    let mut broker =
        common::Broker::with_config(|_| std::env::var("BENCH_BROKER_EXTRA").unwrap_or_default());
    broker.start();
    let dir = bench_dir("dispatch");
    let port = common::free_port();
    let arrivals = central_arrivals(broker.port, "bench-dispatch-central");
    let key =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/keys/dispatch-test.pub");
    let text = format!(
        "[station]\nid = \"bench-st01\"\nname = \"b\"\n[uplink]\nbrokers = [\"mqtt://127.0.0.1:{}\"]\n[buffer]\npath = \"{}\"\n[commands]\npublic_key_file = \"{}\"\nmax_per_minute = 1000000\n[[device]]\nid = \"fleet\"\ndriver = \"jt808\"\nlisten = \"tcp://127.0.0.1:{port}\"\n[device.terminals]\n\"013912345678\" = \"car-03\"\n[staffing]\nteams = [\"1\"]\nstart = \"2026-01-01T08:00\"\n[[staffing.slot]]\nhours = 24\non_duty = [\"1\"]\n[[staffing.car]]\nid = \"car-03\"\n[dispatch]\nack_on_delivery = true\n",
        broker.port,
        dir.join("outbox.db").display(),
        key.display()
    );
    let _ = std::fs::remove_file(dir.join("dispatch.db"));
    let child = spawn_daemon(&dir, "dispatch", &text, port);
    let pid = child.id();
    let mut terminal = common::terminal::Terminal::online(
        port,
        "013912345678",
        stationd::codec::jt808::Edition::V2013,
    );
    arrivals_of(&arrivals, "/status", 1);
    // One dispatcher connection, kept (as central keeps its own).
    let mut o = rumqttc::MqttOptions::new("bench-dispatcher", "127.0.0.1", broker.port);
    o.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut conn) = rumqttc::Client::new(o, 100);
    std::thread::spawn(move || for _ in conn.iter() {});
    let signing = common::dispatch::key("dispatch-test.key");
    let signed = |name: &str, id: &str, args: serde_json::Value| {
        let now = stationd::clock::unix_ms();
        let serde_json::Value::Object(args) = args else {
            unreachable!()
        };
        let mut c = stationd::command::Command::new(name, id, now, now + 3_600_000, args);
        c.sign("bench-st01", &signing);
        (format!("stations/bench-st01/cmd/{name}"), c.to_payload())
    };
    std::thread::sleep(Duration::from_millis(500));
    while arrivals.try_recv().is_ok() {}
    let (mut to_screen, mut to_answer) = (Vec::new(), Vec::new());
    for i in 0..n_orders {
        let incident = format!("B-{i}");
        let (topic, payload) = signed(
            "dispatch",
            &incident,
            serde_json::json!({"incident": incident, "type": "help", "location": {"lat": 36.66, "lon": 117.02}, "car": "car-03"}),
        );
        let (clear_topic, clear) = signed(
            "dispatch.clear",
            &format!("c-{i}"),
            serde_json::json!({"incident": incident}),
        );
        let sent = Instant::now();
        client
            .publish(topic, rumqttc::QoS::AtLeastOnce, false, payload)
            .unwrap();
        let f = terminal.recv().expect("the order on the terminal");
        assert_eq!(f.header.msg_id, 0x8300);
        to_screen.push(sent.elapsed().as_secs_f64() * 1000.0);
        let mut answer = f.header.serial.to_be_bytes().to_vec();
        answer.extend(0x8300u16.to_be_bytes());
        answer.push(0);
        terminal.send(0x0001, &answer);
        let at = arrivals_of(&arrivals, &format!("/cmd-result/{incident}"), 1);
        to_answer.push(at.duration_since(sent).as_secs_f64() * 1000.0);
        client
            .publish(clear_topic, rumqttc::QoS::AtLeastOnce, false, clear)
            .unwrap();
        arrivals_of(&arrivals, &format!("/cmd-result/c-{i}"), 1);
    }
    // The command path alone, for comparison: a signed ping's answer at central.
    let mut ping = Vec::new();
    for i in 0..n_orders.min(200) {
        let (topic, payload) = signed("ping", &format!("p-{i}"), serde_json::json!({}));
        let sent = Instant::now();
        client
            .publish(topic, rumqttc::QoS::AtLeastOnce, false, payload)
            .unwrap();
        let at = arrivals_of(&arrivals, &format!("/cmd-result/p-{i}"), 1);
        ping.push(at.duration_since(sent).as_secs_f64() * 1000.0);
    }
    let pct = |v: &mut Vec<f64>, p: f64| {
        v.sort_by(f64::total_cmp);
        v[((v.len() - 1) as f64 * p).round() as usize]
    };
    println!(
        "dispatch a signed ping published -> its answer at central (the command path alone): median {:.2} ms, p99 {:.2} ms",
        pct(&mut ping, 0.5),
        pct(&mut ping, 0.99)
    );
    println!(
        "dispatch order published -> 0x8300 on the terminal: median {:.2} ms, p99 {:.2} ms; -> its answer at central (terminal's 0x0001 counted as acknowledgement): median {:.2} ms, p99 {:.2} ms ({n_orders} orders, one at a time, each then cleared; daemon RSS {} kB after)",
        pct(&mut to_screen, 0.5),
        pct(&mut to_screen, 0.99),
        pct(&mut to_answer, 0.5),
        pct(&mut to_answer, 0.99),
        vm_rss_kb(pid)
    );
    stop_daemon(child);
}

/// Every message central receives: (arrival, topic, payload bytes).
fn central_messages(port: u16, name: &str) -> std::sync::mpsc::Receiver<(Instant, String, usize)> {
    let (tx, messages) = std::sync::mpsc::channel();
    let name = name.to_string();
    std::thread::spawn(move || {
        let mut o = rumqttc::MqttOptions::new(name, "127.0.0.1", port);
        o.set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut conn) = rumqttc::Client::new(o, 1000);
        client
            .subscribe("stations/#", rumqttc::QoS::AtLeastOnce)
            .unwrap();
        for ev in conn.iter() {
            match ev {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                    if tx.send((Instant::now(), p.topic, p.payload.len())).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    messages
}

/// 11. A backlog of `seconds` at each cap, replayed by `stationd run` with live lines beside it.
fn replay(rt: &tokio::runtime::Runtime, seconds: u64) {
    use std::io::Write;
    let broker = common::Broker::started();
    let root = "stations/bench-st01/";
    for cap in [50_000u64, 200_000] {
        let dir = bench_dir(&format!("replay-{cap}"));
        let o = opts(&dir, Durability::PowerCut);
        // What the cap counts per row: its payload and its topic below the station's root.
        let sample = event(1).to_envelope_json("bench-st01", 1_000_000).len()
            + "telemetry/car-03/position".len();
        let rows = cap * seconds / sample as u64;
        rt.block_on(ingest(&o, rows));
        let messages = central_messages(broker.port, &format!("central-replay-{cap}"));
        std::thread::sleep(Duration::from_millis(300));
        let ingest_port = common::free_port();
        let text = format!(
            "[station]\nid = \"bench-st01\"\nname = \"bench\"\n[uplink]\nbrokers = [\"mqtt://127.0.0.1:{}\"]\nreplay_max_bytes_per_s = {cap}\n[buffer]\npath = \"{}\"\nmax_bytes = 8589934592\n[[device]]\nid = \"ingest0\"\ndriver = \"jsonl\"\nlisten = \"tcp://127.0.0.1:{ingest_port}\"\n",
            broker.port,
            o.path.display()
        );
        let daemon = spawn_daemon(&dir, "replay", &text, ingest_port);
        // Live lines every 100 ms while the backlog replays.
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sender = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut conn = std::net::TcpStream::connect(("127.0.0.1", ingest_port)).unwrap();
                let mut sent = Vec::new();
                let mut n = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let line = format!("{{\"device\":\"live-{n}\",\"kind\":\"live.tick\",\"prio\":\"telemetry\",\"data\":{{}}}}\n");
                    conn.write_all(line.as_bytes()).unwrap();
                    sent.push(Instant::now());
                    n += 1;
                    std::thread::sleep(Duration::from_millis(100));
                }
                sent
            })
        };
        let (mut first, mut last, mut bytes, mut got) = (None, None, 0u64, 0u64);
        let mut live: Vec<(u64, Instant)> = Vec::new();
        while got < rows {
            let (at, topic, len) = messages
                .recv_timeout(Duration::from_secs(seconds * 4 + 60))
                .unwrap_or_else(|_| panic!("replay: {got} of {rows} backlog rows"));
            if topic.ends_with("/position") {
                got += 1;
                // The first row's cost was spent before it went: the rate counts from it.
                if first.is_none() {
                    first = Some(at);
                } else {
                    bytes += (len + topic.len() - root.len()) as u64;
                }
                last = Some(at);
            } else if let Some(n) = topic
                .strip_prefix(&format!("{root}telemetry/live-"))
                .and_then(|t| t.strip_suffix("/live.tick"))
                .and_then(|n| n.parse().ok())
            {
                live.push((n, at));
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let sent = sender.join().unwrap();
        stop_daemon(daemon);
        let secs = (last.unwrap() - first.unwrap()).as_secs_f64();
        let rate = bytes as f64 / secs;
        let mut latency: Vec<f64> = live
            .iter()
            .filter_map(|(n, at)| {
                sent.get(*n as usize)
                    .map(|s| (*at - *s).as_secs_f64() * 1000.0)
            })
            .collect();
        latency.sort_by(f64::total_cmp);
        let pct = |p: f64| {
            latency
                .get(((latency.len() as f64 * p) as usize).min(latency.len().saturating_sub(1)))
                .copied()
                .unwrap_or(f64::NAN)
        };
        println!(
            "replay   cap {cap} B/s: {rows} backlog rows replayed at {rate:.0} B/s over {secs:.1} s = {:.3} x the cap; {} live lines meanwhile, latency median {:.1} ms, p99 {:.1} ms",
            rate / cap as f64,
            latency.len(),
            pct(0.5),
            pct(0.99)
        );
    }
}
