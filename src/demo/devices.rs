//! The demo's simulated devices, speaking their real protocols to the daemon: three patrol
//! cars' JT/T 808 terminals over TCP, a GNSS receiver and a TETRA base radio (with handhelds
//! around the station) on pseudo-terminals, and another local system's JSON lines.

use anyhow::Context;
use stationd_proto::sim;
use stationd_proto::tetra::sds as sim_sds;
use std::path::Path;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// Jinan, around Quancheng Square: the demo's three patrol cars with JT/T 808 terminals.
pub(super) const CARS: [(&str, &str, f64, f64); 3] = [
    ("car-01", "013900000001", 36.6612, 117.0201),
    ("car-02", "013900000002", 36.6680, 117.0302),
    ("car-03", "013900000003", 36.6551, 117.0105),
];

/// Where the demo's dispatch sent the latest call: the car whose terminal gets the order
/// drives there.
pub(super) type Scene = std::sync::Arc<std::sync::Mutex<Option<(f64, f64)>>>;

/// Metres per degree of latitude (a demo's approximation).
const M_PER_DEG_LAT: f64 = 111_195.0;
/// A car answering a call drives at 90 km/h, stays on scene this long, then patrols again.
const RESPONSE_SPEED_M_S: f64 = 25.0;
const ON_SCENE_S: u64 = 60;

/// A car answering a call: where to, and since which tick it has been there.
struct Response {
    target: (f64, f64),
    on_scene_since: Option<u64>,
}

impl Response {
    /// One second of driving from `at`; the new position.
    fn step(&mut self, at: (f64, f64), tick: u64) -> (f64, f64) {
        let m_per_deg_lon = M_PER_DEG_LAT * at.0.to_radians().cos();
        let (dn, de) = (
            (self.target.0 - at.0) * M_PER_DEG_LAT,
            (self.target.1 - at.1) * m_per_deg_lon,
        );
        let d = (dn * dn + de * de).sqrt();
        if d <= RESPONSE_SPEED_M_S {
            self.on_scene_since.get_or_insert(tick);
            return self.target;
        }
        let f = RESPONSE_SPEED_M_S / d;
        (at.0 + dn * f / M_PER_DEG_LAT, at.1 + de * f / m_per_deg_lon)
    }
}

/// A dispatch order as the demo's central words it: `P{priority} …`.
pub(super) fn is_order(text: &str) -> bool {
    let mut c = text.chars();
    c.next() == Some('P') && c.next().is_some_and(|d| d.is_ascii_digit())
}

/// One patrol car's JT/T 808 terminal: connects, registers, authenticates, then reports its
/// location every second (2013 edition). Car 2 presses its emergency button for 10 s every
/// 90 s. A dispatch order on its screen sends it to the scene (`scene`): it drives there,
/// stays a while, and patrols again. Reconnects when the station drops it.
pub(super) async fn simulate_terminal(
    port: u16,
    index: usize,
    scene: Scene,
    stop: CancellationToken,
) {
    use crate::codec::jt808::{encode, Edition, FrameDecoder};
    use tokio::io::AsyncReadExt;
    let (_, phone, lat0, lon0) = CARS[index];
    let mut tick: u64 = 0;
    let mut serial: u16 = 0;
    let mut at = (lat0, lon0);
    let mut response: Option<Response> = None;
    'connect: loop {
        let Ok(mut conn) = TcpStream::connect(("127.0.0.1", port)).await else {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                _ = stop.cancelled() => return,
            }
        };
        let mut decoder = FrameDecoder::new();
        let mut buf = [0u8; 1024];
        // Register: Shandong, Jinan, the car's simulated terminal and plate.
        let terminal_id = format!("T{index:06}");
        let reg = sim::jt808::Registration {
            maker: b"SIMUL",
            terminal_id: terminal_id.as_bytes(),
            plate: &format!("鲁A9{index:04}"),
            ..Default::default()
        }
        .body(Edition::V2013);
        serial = serial.wrapping_add(1);
        if conn
            .write_all(&encode(0x0100, Edition::V2013, phone, serial, &reg))
            .await
            .is_err()
        {
            continue;
        }
        let mut code = None;
        while code.is_none() {
            let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf)).await
            else {
                continue 'connect;
            };
            if n == 0 {
                continue 'connect;
            }
            decoder.push(&buf[..n], |f| {
                if let Ok(f) = f {
                    if f.header.msg_id == 0x8100 && f.body.get(2) == Some(&0) {
                        code = Some(f.body[3..].to_vec());
                    }
                }
            });
        }
        serial = serial.wrapping_add(1);
        if conn
            .write_all(&encode(
                0x0102,
                Edition::V2013,
                phone,
                serial,
                &code.unwrap_or_default(),
            ))
            .await
            .is_err()
        {
            continue;
        }
        let mut interval = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                r = conn.read(&mut buf) => match r {
                    Ok(0) | Err(_) => continue 'connect,
                    Ok(n) => {
                        // The platform's 0x8001 answers pass; a text message (0x8300) from
                        // dispatch is shown on the car's screen and acknowledged (0x0001).
                        let mut texts = Vec::new();
                        decoder.push(&buf[..n], |f| {
                            if let Ok(f) = f {
                                if f.header.msg_id == 0x8300 {
                                    let (text, _, _) = encoding_rs::GBK.decode(f.body.get(1..).unwrap_or_default());
                                    texts.push((f.header.serial, is_order(&text)));
                                }
                            }
                        });
                        for (text_serial, order) in texts {
                            if order {
                                let target = *scene.lock().unwrap_or_else(|p| p.into_inner());
                                response = target.map(|target| Response { target, on_scene_since: None });
                            }
                            let mut answer = text_serial.to_be_bytes().to_vec();
                            answer.extend(0x8300u16.to_be_bytes());
                            answer.push(0);
                            serial = serial.wrapping_add(1);
                            if conn.write_all(&encode(0x0001, Edition::V2013, phone, serial, &answer)).await.is_err() {
                                continue 'connect;
                            }
                        }
                        continue;
                    }
                },
                _ = stop.cancelled() => return,
            }
            tick += 1;
            let t = tick as f64 / 10.0 + index as f64 * 2.1;
            let patrol = (lat0 + 0.004 * t.sin(), lon0 + 0.005 * t.cos());
            at = match response.as_mut() {
                Some(r) if r.on_scene_since.is_none_or(|s| tick < s + ON_SCENE_S) => {
                    r.step(at, tick)
                }
                _ => {
                    response = None;
                    patrol
                }
            };
            let (lat, lon) = at;
            let speed = 30.0 + 15.0 * (t * 3.0).sin().abs();
            let course = (t.to_degrees() + 90.0).rem_euclid(360.0);
            let sos = index == 1 && tick % 90 >= 40 && tick % 90 < 50;
            let body = sim::jt808::Location {
                alarm: sos as u32,
                status: 0x0000_0003, // ACC on, positioned
                lat,
                lon,
                altitude_m: 40,
                speed_kmh: speed,
                course_deg: course as u16,
                time_bcd: sim::jt808::bcd_time(crate::clock::unix_ms()),
                extra: vec![0x30, 1, 24, 0x31, 1, 14],
            }
            .body();
            serial = serial.wrapping_add(1);
            if conn
                .write_all(&encode(0x0200, Edition::V2013, phone, serial, &body))
                .await
                .is_err()
            {
                continue 'connect;
            }
        }
    }
}

/// One epoch of a receiver (RMC, GGA, GSA, GSV) for a car at `t` seconds into its route.
fn receiver_epoch(t: u64) -> String {
    let tf = t as f64 / 60.0;
    let (lat, lon) = (36.6650 + 0.006 * tf.sin(), 117.0150 + 0.008 * tf.cos());
    let speed_kn = 20.0 + 8.0 * (tf * 2.0).sin().abs();
    let course = (tf.to_degrees() + 180.0).rem_euclid(360.0);
    sim::nmea::fix_epoch(crate::clock::unix_ms(), lat, lon, speed_kn, course)
}

/// A raw pseudo-terminal whose slave is linked at `link`: (master, slave). The slave is kept
/// open by the simulator so the daemon's opens and closes do not hang the line up.
fn pty_at(link: &Path, what: &str) -> anyhow::Result<(std::fs::File, std::os::fd::OwnedFd)> {
    use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
    let pty = nix::pty::openpty(None, None)
        .with_context(|| format!("open a pseudo-terminal for the simulated {what}"))?;
    let mut t = tcgetattr(&pty.slave)?;
    cfmakeraw(&mut t);
    tcsetattr(&pty.slave, SetArg::TCSANOW, &t)?;
    let name = nix::unistd::ttyname(&pty.slave)?;
    std::os::unix::fs::symlink(&name, link)?;
    Ok((std::fs::File::from(pty.master), pty.slave))
}

/// Patrol car 04's GNSS receiver: a pseudo-terminal whose slave is linked at `link`; one
/// epoch a second until `stop`.
pub(super) fn simulate_receiver(
    link: &Path,
    stop: CancellationToken,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    let (mut master, slave) = pty_at(link, "receiver")?;
    Ok(std::thread::Builder::new()
        .name("demo-gnss".into())
        .spawn(move || {
            let _keep_open = slave;
            let mut t = 0u64;
            while !stop.is_cancelled() {
                if std::io::Write::write_all(&mut master, receiver_epoch(t).as_bytes()).is_err() {
                    return;
                }
                t += 1;
                #[allow(clippy::disallowed_methods)] // the simulated receiver's own thread
                std::thread::sleep(Duration::from_secs(1));
            }
        })?)
}

/// The handheld and car radios heard through the demo's base radio (`hw-profiles/sim.toml`):
/// ISSI and where they patrol.
const HANDHELDS: [(&str, f64, f64); 3] = [
    ("1001", 36.6620, 117.0250),
    ("1002", 36.6640, 117.0180),
    ("1003", 36.6551, 117.0105),
];
/// The base radio's own ISSI and the station's talkgroup.
const BASE_ISSI: &str = "2001";
const TALKGROUP: &str = "9001";

/// The status values the demo's crews press: "received" and "call closed" (`[dispatch]
/// ack_statuses` and `clear_statuses` of the demo's config).
pub(super) const STATUS_RECEIVED: u16 = 0x8002;
pub(super) const STATUS_CLOSED: u16 = 0x8004;
/// A crew presses "received" this long after a dispatch order reaches its handheld, and
/// "closed" this long after.
const PRESS_RECEIVED_S: u64 = 3;
const PRESS_CLOSED_S: u64 = 80;

/// The station's TETRA base radio: a pseudo-terminal linked at `link` where a simulated radio
/// answers the daemon's AT commands (init, polls, texts from dispatch with their delivery
/// reports) and passes on its handhelds: a location report from each every 3 s, a talk burst
/// now and then, a text, and handheld 1002's emergency button every 60 s. A handheld that
/// receives a dispatch order presses "received" a few seconds later and "closed" once the call
/// is dealt with.
pub(super) fn simulate_base_radio(
    link: &Path,
    stop: CancellationToken,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    use std::io::{Read, Write};
    use std::os::fd::AsFd;
    let (master, slave) = pty_at(link, "base radio")?;
    let mut reader = master.try_clone()?;
    let mut writer = master;
    Ok(std::thread::Builder::new()
        .name("demo-radio".into())
        .spawn(move || {
            let _keep_open = slave;
            let mut radio = sim::tetra::SimRadio::new(BASE_ISSI, TALKGROUP);
            radio.battery = None; // a mains-powered base radio
            let started = std::time::Instant::now();
            let mut next_second = 0u64;
            let mut buf = [0u8; 1024];
            // (second, handheld, status) the crews will press.
            let mut presses: Vec<(u64, String, u16)> = Vec::new();
            while !stop.is_cancelled() {
                let mut fds = [nix::poll::PollFd::new(
                    reader.as_fd(),
                    nix::poll::PollFlags::POLLIN,
                )];
                if nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(100u16)).unwrap_or(0) > 0
                {
                    match reader.read(&mut buf) {
                        Ok(n) if n > 0 => {
                            let answer = radio.push(&buf[..n]);
                            if writer.write_all(&answer).is_err() {
                                return;
                            }
                            let now = started.elapsed().as_secs();
                            for (to, pdu) in radio.sent.drain(..) {
                                if let sim_sds::Sds::Text { text, .. } =
                                    sim_sds::parse(12, &pdu, pdu.len() * 8)
                                {
                                    if is_order(&text) {
                                        presses.push((
                                            now + PRESS_RECEIVED_S,
                                            to.clone(),
                                            STATUS_RECEIVED,
                                        ));
                                        presses.push((now + PRESS_CLOSED_S, to, STATUS_CLOSED));
                                    }
                                }
                            }
                        }
                        // Nobody has the slave open (the daemon reopening): wait.
                        #[allow(clippy::disallowed_methods)] // the simulated radio's own thread
                        _ => std::thread::sleep(Duration::from_millis(100)),
                    }
                }
                let second = started.elapsed().as_secs();
                if second < next_second {
                    continue;
                }
                next_second = second + 1;
                let mut traffic = handheld_traffic(second);
                presses.retain(|(when, issi, status)| {
                    let due = *when <= second;
                    if due {
                        traffic.extend(sim::tetra::status(issi, BASE_ISSI, *status));
                    }
                    !due
                });
                if writer.write_all(&traffic).is_err() {
                    return;
                }
            }
        })?)
}

/// What the handhelds send in second `t` of the demo.
fn handheld_traffic(t: u64) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, (issi, lat0, lon0)) in HANDHELDS.iter().enumerate() {
        if (t + i as u64).is_multiple_of(3) {
            let a = t as f64 / 40.0 + i as f64 * 2.0;
            let (lat, lon) = (lat0 + 0.0015 * a.sin(), lon0 + 0.002 * a.cos());
            let speed = if i == 2 { Some(35.0) } else { Some(4.0) };
            let emergency = i == 1 && t % 60 == 31;
            let reason = if emergency { 2 } else { 3 };
            let heading = (a.to_degrees() + 90.0).rem_euclid(360.0);
            out.extend(sim::tetra::location(
                issi, BASE_ISSI, lat, lon, speed, heading, reason,
            ));
        }
    }
    match t % 60 {
        // Handheld 1002's emergency button: the emergency status.
        30 => out.extend(sim::tetra::status("1002", BASE_ISSI, 0)),
        // A talk burst from 1001 on the station's talkgroup.
        10 => out.extend(sim::tetra::group_call(1, "1001", TALKGROUP).0),
        13 => out.extend(sim::tetra::group_call(1, "1001", TALKGROUP).1),
        // The car's radio reports "on scene" (status) and texts.
        45 => out.extend(sim::tetra::status("1003", BASE_ISSI, 0x8003)),
        50 => out.extend(sim::tetra::text_ucs2(
            "1003",
            BASE_ISSI,
            (t % 256) as u8,
            "已到达现场",
        )),
        _ => {}
    }
    out
}

/// The body-cam dock: recorders dock one after another (their directory appears under `root`)
/// and unload their footage as a collection station does, a file every few seconds, each
/// written in pieces and named `{recorder}_{officer}_{start}.MP4` in Beijing time.
pub(super) fn simulate_dock(
    root: &Path,
    stop: CancellationToken,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    use std::io::Write;
    std::fs::create_dir_all(root)?;
    let root = root.to_path_buf();
    const RECORDERS: [(&str, &str); 3] = [
        ("DSJ-A1-0001", "P-0417"),
        ("DSJ-A1-0002", "P-0522"),
        ("DSJ-A1-0003", "A-1031"),
    ];
    Ok(std::thread::Builder::new()
        .name("demo-dock".into())
        .spawn(move || {
            let mut t = 0u64;
            while !stop.is_cancelled() {
                let (recorder, officer) = RECORDERS[(t / 20 % 3) as usize];
                let dir = root.join(recorder);
                if t % 4 == 2 && std::fs::create_dir_all(&dir).is_ok() {
                    // Beijing time of "when it was recorded": a while ago.
                    let ms = crate::clock::unix_ms() + 8 * 3_600_000 - 600_000;
                    let when = time::OffsetDateTime::from_unix_timestamp(ms / 1000)
                        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
                    let name = format!(
                        "{recorder}_{officer}_{:04}{:02}{:02}{:02}{:02}{:02}.MP4",
                        when.year(),
                        when.month() as u8,
                        when.day(),
                        when.hour(),
                        when.minute(),
                        when.second()
                    );
                    if let Ok(mut f) = std::fs::File::create(dir.join(name)) {
                        for piece in 0..4u8 {
                            let _ = f.write_all(&[piece.wrapping_add(t as u8); 64 * 1024]);
                        }
                    }
                }
                t += 1;
                #[allow(clippy::disallowed_methods)] // the simulated dock's own thread
                std::thread::sleep(Duration::from_secs(1));
            }
        })?)
}

/// The station's sign-in system and door panel, as JSON lines from another local system (its
/// own kinds: `radio.*` and the other reserved namespaces are the daemon's). The auxiliaries
/// sign on at the start; A-1042 steps out now and then, so car-02's crew goes short and back.
pub(super) async fn simulate_inputs(port: u16, stop: CancellationToken) {
    let mut tick: u64 = 0;
    let mut conn: Option<TcpStream> = None;
    let mut interval = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stop.cancelled() => return,
        }
        tick += 1;
        let mut lines = String::new();
        let sign = |kind: &str, person: &str| {
            format!("{{\"kind\":\"duty.{kind}\",\"device\":\"signin\",\"data\":{{\"person\":\"{person}\"}}}}\n")
        };
        // After the roster has come (dispatch sends it first), every 4 s in.
        if tick == 16 {
            for person in ["A-1031", "A-1032", "A-1041", "A-1042", "P-0522"] {
                lines.push_str(&sign("signed_on", person));
            }
        }
        // A-1042 is out from 30 s to 40 s of every minute (the calls come at other moments).
        if tick > 16 && tick % 240 == 120 {
            lines.push_str(&sign("signed_off", "A-1042"));
        }
        if tick > 16 && tick % 240 == 160 {
            lines.push_str(&sign("signed_on", "A-1042"));
        }
        if tick.is_multiple_of(28) {
            lines.push_str(&format!("{{\"kind\":\"panel.door\",\"prio\":\"event\",\"device\":\"panel0\",\"data\":{{\"door\":\"gate\",\"open\":{}}}}}\n", tick.is_multiple_of(56)));
        }
        if conn.is_none() {
            conn = TcpStream::connect(("127.0.0.1", port)).await.ok();
        }
        if let Some(c) = conn.as_mut() {
            if c.write_all(lines.as_bytes()).await.is_err() {
                conn = None;
            }
        }
    }
}
