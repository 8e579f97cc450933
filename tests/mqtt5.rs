//! MQTT 5 against a real mosquitto: what a `mqtt5://` broker gets that a 3.1.1 one does not
//! (user properties, message expiry the broker honours, a session that expires), and what the
//! station makes of its reason codes (a refused message stays in the outbox; a refused login
//! is told in words).
#![allow(clippy::disallowed_methods)] // test threads may block (clippy.toml bans it in the daemon)

mod common;

use common::*;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A message as an MQTT 5 subscriber sees it.
#[derive(Debug, Clone)]
struct Msg5 {
    topic: String,
    json: Value,
    user: Vec<(String, String)>,
    expiry: Option<u32>,
    format: Option<u8>,
}

impl Msg5 {
    fn user(&self, key: &str) -> Option<&str> {
        self.user
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// An MQTT 5 client on `stations/#` (QoS 1), its session kept `session_expiry_s` by the broker.
struct Subscriber5 {
    msgs: Arc<Mutex<Vec<Msg5>>>,
    subscribed: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Subscriber5 {
    fn connect(port: u16, client_id: &str, session_expiry_s: u32) -> Subscriber5 {
        let msgs = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let subscribed = Arc::new(AtomicBool::new(false));
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
                use rumqttc::v5::mqttbytes::v5::Packet;
                use rumqttc::v5::mqttbytes::QoS;
                use rumqttc::v5::{AsyncClient, Event, MqttOptions};
                let mut o = MqttOptions::new(id, "127.0.0.1", port);
                o.set_clean_start(false)
                    .set_session_expiry_interval(Some(session_expiry_s))
                    .set_keep_alive(Duration::from_secs(5));
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
                            let props = p.properties.clone().unwrap_or_default();
                            m.lock().unwrap().push(Msg5 {
                                topic: String::from_utf8_lossy(&p.topic).into_owned(),
                                json: serde_json::from_slice(&p.payload).unwrap_or(Value::Null),
                                user: props.user_properties,
                                expiry: props.message_expiry_interval,
                                format: props.payload_format_indicator,
                            });
                        }
                        Ok(Ok(_)) | Err(_) => {}
                        Ok(Err(_)) => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                }
                // Leaves without DISCONNECT's session end: the broker keeps the session.
                let _ = client.disconnect().await;
                let _ = tokio::time::timeout(Duration::from_millis(300), el.poll()).await;
            });
        });
        let s = Subscriber5 {
            msgs,
            subscribed,
            stop,
            thread: Some(thread),
        };
        assert!(
            wait_until(Duration::from_secs(5), || s
                .subscribed
                .load(Ordering::SeqCst)),
            "the MQTT 5 subscriber could not subscribe"
        );
        s
    }

    fn all(&self) -> Vec<Msg5> {
        self.msgs.lock().unwrap().clone()
    }

    fn with_seq(&self) -> Vec<Msg5> {
        self.all()
            .into_iter()
            .filter(|m| m.json.get("seq").is_some())
            .collect()
    }

    fn wait(&self, timeout: Duration, mut cond: impl FnMut(&[Msg5]) -> bool) -> bool {
        wait_until(timeout, || cond(&self.msgs.lock().unwrap()))
    }

    fn leave(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for Subscriber5 {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn mqtt5_station(broker: &Broker, extra_uplink: &str) -> Station {
    Station::with_uplink(
        &format!(
            "brokers = [\"mqtt5://127.0.0.1:{}\"]\n{extra_uplink}",
            broker.port
        ),
        "",
    )
}

fn lines(kind: &str, prio: &str, n: u64) -> Vec<String> {
    (1..=n).map(|i| line(kind, prio, i)).collect()
}

#[test]
fn every_row_carries_its_seq_prio_and_its_class_expiry() {
    let broker = Broker::started();
    let central5 = Subscriber5::connect(broker.port, "central-v5", 60);
    // A 3.1.1 consumer on the same broker gets the same messages (and checks the contract).
    let central = Subscriber::connect(broker.port, "central-v311");
    let station = mqtt5_station(&broker, "message_expiry_s = { telemetry = 600, alarm = 0 }");
    let daemon = station.start();
    wait_online(&central, &daemon);
    let mut input = lines("speed", "telemetry", 5);
    input.extend(lines("door.open", "event", 3));
    input.extend(lines("panic", "alarm", 2));
    send_lines(station.ingest_port, &input);
    assert!(
        central5.wait(Duration::from_secs(15), |m| m
            .iter()
            .filter(|m| m.json.get("seq").is_some())
            .count()
            >= 10),
        "not all rows reached the MQTT 5 subscriber; log:\n{}",
        daemon.log_text()
    );
    let rows = central5.with_seq();
    for m in &rows {
        let (seq, prio) = (
            m.json["seq"].as_u64().unwrap(),
            m.json["prio"].as_str().unwrap(),
        );
        assert_eq!(m.user("seq"), Some(seq.to_string().as_str()), "{m:?}");
        assert_eq!(m.user("prio"), Some(prio), "{m:?}");
        assert_eq!(m.format, Some(1), "the payload is marked UTF-8: {m:?}");
        match prio {
            // The broker passes on what is left of the interval.
            "telemetry" => assert!(
                matches!(m.expiry, Some(590..=600)),
                "telemetry expires after 600 s: {m:?}"
            ),
            _ => assert_eq!(m.expiry, None, "events and alarms do not expire: {m:?}"),
        }
    }
    let prios: Vec<&str> = rows
        .iter()
        .map(|m| m.json["prio"].as_str().unwrap())
        .collect();
    for p in ["telemetry", "event", "alarm"] {
        assert!(prios.contains(&p), "{prios:?}");
    }
    // The retained status carries neither row properties nor an expiry.
    let status = central5
        .all()
        .into_iter()
        .find(|m| m.topic.ends_with("/status"))
        .expect("the birth");
    assert!(
        status.user.is_empty() && status.expiry.is_none(),
        "{status:?}"
    );
    assert_eq!(status.json["state"], "online");
    // 3.1.1 consumers get the same rows.
    assert!(wait_until(Duration::from_secs(5), || central.seqs().len() >= 10));
    let check = station.cli_ok(&["check-config", "--config", station.config.to_str().unwrap()]);
    assert!(
        check.contains("(MQTT 5)") && check.contains("telemetry 600 s"),
        "{check}"
    );
}

#[test]
fn the_broker_drops_expired_telemetry_for_a_subscriber_that_was_away_and_keeps_events() {
    let broker = Broker::started();
    // An archive that was subscribed and went away; the broker queues for it.
    Subscriber5::connect(broker.port, "archive", 300).leave();
    let live = Subscriber::connect(broker.port, "live");
    let station = mqtt5_station(&broker, "message_expiry_s = { telemetry = 2 }");
    let daemon = station.start();
    wait_online(&live, &daemon);
    let mut input = lines("speed", "telemetry", 6);
    input.extend(lines("door.open", "event", 4));
    send_lines(station.ingest_port, &input);
    assert!(
        wait_until(Duration::from_secs(15), || live.seqs().len() >= 10),
        "the rows did not arrive; log:\n{}",
        daemon.log_text()
    );
    // Past the telemetry's 2 s (the broker counts from when it took them).
    std::thread::sleep(Duration::from_millis(3_500));
    let archive = Subscriber5::connect(broker.port, "archive", 300);
    assert!(
        archive.wait(Duration::from_secs(10), |m| m
            .iter()
            .filter(|m| m.json["prio"] == "event")
            .count()
            >= 4),
        "the events queued for the archive did not arrive: {:?}",
        archive.all()
    );
    // A moment more for anything else queued, then count.
    std::thread::sleep(Duration::from_millis(500));
    let rows = archive.with_seq();
    let telemetry = rows
        .iter()
        .filter(|m| m.json["prio"] == "telemetry")
        .count();
    assert_eq!(
        telemetry, 0,
        "expired telemetry was still delivered: {rows:?}"
    );
    assert_eq!(rows.iter().filter(|m| m.json["prio"] == "event").count(), 4);
}

/// An ACL that lets the station publish everything but events.
fn acl(dir: &std::path::Path, events_allowed: bool) -> String {
    let mut rules = String::from(
        "topic read stations/#\n\
         topic readwrite stations/test-st01/status\n\
         topic readwrite stations/test-st01/state/#\n\
         topic readwrite stations/test-st01/telemetry/#\n\
         topic read stations/test-st01/cmd/#\n",
    );
    if events_allowed {
        rules.push_str("topic readwrite stations/test-st01/event/#\n");
    }
    let path = dir.join("acl");
    std::fs::write(&path, rules).unwrap();
    format!("acl_file {}\n", path.display())
}

#[test]
fn a_message_the_broker_refuses_stays_in_the_outbox_until_the_broker_takes_it() {
    let mut broker = Broker::with_config(|dir| acl(dir, false));
    broker.start();
    let central = Subscriber::connect(broker.port, "central");
    let station = mqtt5_station(&broker, "");
    let daemon = station.start();
    wait_online(&central, &daemon);
    let mut input = lines("speed", "telemetry", 3);
    input.extend(lines("door.open", "event", 3));
    send_lines(station.ingest_port, &input);
    // The broker answers the events' PUBACK with 0x87; the station says so in words.
    assert!(
        wait_until(Duration::from_secs(15), || daemon
            .log_text()
            .contains("not authorized to publish there (0x87)")),
        "no refusal in the log:\n{}",
        daemon.log_text()
    );
    // The technician's view names it too. (mosquitto 2.0.11 drops the connection right after
    // such a PUBACK and its reset can swallow it, so some rounds end as a plain cut: the
    // status shows whichever came last.)
    let mut status = String::new();
    assert!(
        wait_until(Duration::from_secs(15), || {
            status = station.cli_ok(&["status"]);
            status.contains("the broker refused seq") && status.contains("stays in the outbox")
        }),
        "{status}"
    );
    assert!(
        station.outbox_rows() >= 3,
        "the refused events left the outbox: {}",
        station.outbox_stats()
    );
    assert_eq!(
        central
            .envelopes()
            .iter()
            .filter(|e| e["prio"] == "event")
            .count(),
        0
    );
    let status: Value = serde_json::from_str(&station.cli_ok(&["status", "--json"])).unwrap();
    assert!(
        status["counters"]["uplink.publish_refused"].as_u64() >= Some(1),
        "{status}"
    );

    // Central fixes its ACL: everything arrives, nothing missing.
    acl(broker.dir(), true);
    broker.reload();
    assert!(
        wait_until(Duration::from_secs(30), || central
            .envelopes()
            .iter()
            .filter(|e| e["prio"] == "event")
            .count()
            >= 3),
        "the events never arrived after the ACL was fixed; log:\n{}",
        daemon.log_tail(40)
    );
    assert!(
        wait_until(Duration::from_secs(10), || station.outbox_rows() == 0),
        "{}",
        station.outbox_stats()
    );
    let seqs = central.seqs();
    let top = *seqs.iter().max().unwrap();
    assert_eq!(missing_seqs(&seqs, top), Vec::<u64>::new());
    assert!(top >= 6, "{seqs:?}");
}

#[test]
fn the_command_subscription_outlives_a_stop_for_session_expiry_s_and_not_longer() {
    for (session_expiry_s, answered) in [(60, true), (1, false)] {
        let broker = Broker::started();
        let central = Subscriber::connect(broker.port, "central");
        let station = mqtt5_station(&broker, &format!("session_expiry_s = {session_expiry_s}"));
        dispatch::take_commands(&station, "");
        let daemon = station.start();
        wait_online(&central, &daemon);
        daemon.terminate();
        // Longer than the short session, far shorter than the long one.
        std::thread::sleep(Duration::from_secs(3));
        let request_id = format!("ping-while-away-{session_expiry_s}");
        dispatch::send(broker.port, "ping", &request_id, json!({}));
        let daemon = station.start();
        let got = wait_until(Duration::from_secs(if answered { 20 } else { 6 }), || {
            !dispatch::answers(&central, &request_id).is_empty()
        });
        assert_eq!(
            got,
            answered,
            "session_expiry_s = {session_expiry_s}: a command sent while the station was away {}; log:\n{}",
            if answered { "was not answered" } else { "was answered from an expired session" },
            daemon.log_text()
        );
        if answered {
            assert_eq!(
                dispatch::answers(&central, &request_id)[0]["status"],
                "done"
            );
        }
    }
}

/// (A DISCONNECT's reason is told the same way, unit-tested in `reasons.rs`: mosquitto 2.0.11
/// closes the socket on a session takeover or its own shutdown without one reaching the
/// client, so no real-broker test here shows it.)
#[test]
fn a_refused_login_is_told_in_words_with_its_code() {
    let mut broker = Broker::with_config(|_| "allow_anonymous false\n".into());
    broker.start();
    let station = mqtt5_station(&broker, "");
    let daemon = station.start();
    let words =
        "the broker refused the login: not authorized (0x87): check username and password_file";
    assert!(
        wait_until(Duration::from_secs(10), || daemon
            .log_text()
            .contains(words)),
        "log:\n{}",
        daemon.log_text()
    );
    // Not a passing trouble: logged as an error to act on, and shown to the technician.
    assert!(
        daemon.log_text().contains("retrying will not help"),
        "{}",
        daemon.log_text()
    );
    let status = station.cli_ok(&["status"]);
    assert!(status.contains(words), "{status}");
}
