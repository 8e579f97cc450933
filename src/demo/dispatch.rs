//! The demo's central dispatch side of commands: a real MQTT client on central's broker that
//! sends the station signed commands now and then — a `ping`, a text to patrol car 02's
//! terminal, an SDS text to handheld 1001 through the base radio, the list of an officer's
//! body-cam footage — as the command centre would, after the station's roster (`roster.set`);
//! and every minute a call, sending the nearest ready crew (`dispatch`). The key is the test key of `tests/data/keys`
//! (public in the repository: it proves nothing outside the demo).

use crate::command::{signing_key_from_pem, Command};
use rumqttc::{AsyncClient, MqttOptions, QoS};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub(super) const PUBLIC_KEY: &str = include_str!("../../tests/data/keys/dispatch-test.pub");
const PRIVATE_KEY: &str = include_str!("../../tests/data/keys/dispatch-test.key");

/// What dispatch sent, for the screen: (request_id, what).
pub(super) type Sent = std::sync::mpsc::Sender<(String, String)>;

/// The calls the demo's central sends a crew to, in turn: (type, summary, address, where).
const CALLS: [(&str, &str, &str, (f64, f64)); 3] = [
    (
        "dispute",
        "两人争吵 / a quarrel",
        "泉城广场东口",
        (36.6640, 117.0240),
    ),
    (
        "help",
        "老人走失 / an elderly man lost",
        "文化路口",
        (36.6650, 117.0290),
    ),
    (
        "traffic",
        "两车剐蹭 / a fender-bender",
        "泺源大街",
        (36.6590, 117.0170),
    ),
];
/// A call every this often, the first `FIRST_CALL` in (once crews are ready).
const CALL_EVERY: Duration = Duration::from_secs(60);

/// Every `every`, a signed command to `station`, in turn: ping, a text to car-02, a text to
/// handheld 1001, the body-cam footage officer P-0417 recorded. From `first_call` on, every
/// minute, a call: `dispatch` of the nearest ready crew to one of [`CALLS`] (its place goes to
/// `scene`, where the chosen car's simulated terminal drives).
pub(super) async fn dispatch(
    central_port: u16,
    station: &'static str,
    every: Duration,
    first_call: Duration,
    scene: super::devices::Scene,
    sent: Sent,
    stop: CancellationToken,
) {
    let key = signing_key_from_pem(PRIVATE_KEY).expect("the demo key is valid");
    let mut o = MqttOptions::new("demo-dispatch", "127.0.0.1", central_port);
    o.set_keep_alive(Duration::from_secs(30));
    let (client, mut eventloop) = AsyncClient::new(o, 16);
    // The client's event loop runs beside the sender; it only has to keep the session going.
    let poll = tokio::spawn(async move {
        loop {
            if eventloop.poll().await.is_err() {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    });
    // The station's roster first, as the command centre keeps it (names stay on the box),
    // once the station has had time to connect and subscribe.
    tokio::select! {
        _ = tokio::time::sleep(every / 2) => {}
        _ = stop.cancelled() => {
            poll.abort();
            return;
        }
    }
    let roster = serde_json::json!([
        {"id": "P-0417", "name": "李伟", "role": "officer", "team": "1"},
        {"id": "P-0522", "name": "陈明", "role": "officer", "team": "1"},
        {"id": "A-1031", "name": "张三", "role": "auxiliary", "team": "1"},
        {"id": "A-1032", "name": "王五", "role": "auxiliary", "team": "1"},
        {"id": "A-1041", "name": "赵六", "role": "auxiliary", "team": "1"},
        {"id": "A-1042", "name": "钱七", "role": "auxiliary", "team": "1"},
        {"id": "L-0001", "name": "孙队长", "role": "leader", "team": "2"},
    ]);
    let now = crate::clock::unix_ms();
    let mut args = serde_json::Map::new();
    args.insert("people".into(), roster);
    let mut cmd = Command::new("roster.set", "demo-roster", now, now + 60_000, args);
    cmd.sign(station, &key);
    if client
        .publish(
            format!("stations/{station}/cmd/roster.set"),
            QoS::AtLeastOnce,
            false,
            cmd.to_payload(),
        )
        .await
        .is_ok()
    {
        let _ = sent.send(("demo-roster".into(), "roster.set (7 people)".into()));
    }
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    let mut calls = tokio::time::interval_at(
        tokio::time::Instant::now() + first_call - every / 2,
        CALL_EVERY,
    );
    let mut n = 0u32;
    let mut call = 0usize;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = calls.tick() => {
                let (kind, summary, address, at) = CALLS[call % CALLS.len()];
                call += 1;
                *scene.lock().unwrap_or_else(|p| p.into_inner()) = Some(at);
                let incident = format!("J-{call:04}");
                let args = serde_json::json!({
                    "incident": incident, "priority": 2, "type": kind, "summary": summary,
                    "location": {"lat": at.0, "lon": at.1, "address": address}, "car": "nearest",
                });
                let serde_json::Value::Object(args) = args else { unreachable!("an object") };
                let now = crate::clock::unix_ms();
                let mut cmd = Command::new("dispatch", &incident, now, now + 60_000, args);
                cmd.sign(station, &key);
                if client
                    .publish(format!("stations/{station}/cmd/dispatch"), QoS::AtLeastOnce, false, cmd.to_payload())
                    .await
                    .is_ok()
                {
                    let _ = sent.send((incident.clone(), format!("dispatch {incident} → nearest")));
                }
                continue;
            }
            _ = stop.cancelled() => break,
        }
        n += 1;
        let now = crate::clock::unix_ms();
        let id = format!("demo-{n}");
        let mut a = serde_json::Map::new();
        let (name, what) = match n % 4 {
            1 => ("ping", "ping"),
            2 => {
                a.insert("car".into(), "car-02".into());
                a.insert(
                    "text".into(),
                    "请到文化路口处置纠纷 / go to Wenhua Rd crossing".into(),
                );
                ("jt808.text", "jt808.text to car-02")
            }
            3 => {
                a.insert("to".into(), "1001".into());
                a.insert("text".into(), "请回电指挥中心 / call dispatch".into());
                ("radio.text", "radio.text to 1001")
            }
            _ => {
                a.insert("officer".into(), "P-0417".into());
                a.insert("limit".into(), 5.into());
                ("footage.list", "footage.list of P-0417")
            }
        };
        let (args, what) = (a, what.to_string());
        let mut cmd = Command::new(name, &id, now, now + 60_000, args);
        cmd.sign(station, &key);
        let topic = format!("stations/{station}/cmd/{name}");
        if client
            .publish(topic, QoS::AtLeastOnce, false, cmd.to_payload())
            .await
            .is_ok()
        {
            let _ = sent.send((id, what));
        }
    }
    poll.abort();
}
