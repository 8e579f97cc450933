//! The I/O loop around the state machine, against a real broker in this process (rumqttd, the
//! demo's central) over loopback TCP: what the machine's own tests cannot show is that its
//! actions reach the wire and the wire's answers come back as the right notes.
//!
//! Real time, bounded by timeouts, not tokio's paused time: with the clock paused, tokio
//! jumps to the next timer whenever the runtime waits for I/O, so the 10 s CONNACK deadline
//! would expire while the broker's thread is still answering. The machine's timing is tested
//! on a hand-moved clock in `machine_tests.rs` instead.

use super::*;
use crate::config::{BrokerUrl, Durability};
use crate::event::{ClockQuality, Event, Priority};
use crate::outbox::{open_store, OutboxOptions, WriterThread};
use serde_json::value::RawValue;
use std::sync::mpsc::Receiver;

fn event(n: u32) -> Event {
    Event {
        ts_ms: 1_795_940_102_120,
        clock: ClockQuality::Synced,
        device: "dev0".into(),
        kind: "sample".into(),
        prio: Priority::Event,
        historical: false,
        data: RawValue::from_string(format!(r#"{{"n":{n}}}"#)).unwrap(),
        topic: None,
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The next message central receives, within 10 s.
/// What central receives: (topic, payload), as the demo's broker hands it over.
type Central = Arc<Mutex<Receiver<(String, Vec<u8>)>>>;

async fn next(central: &Central) -> (String, serde_json::Value) {
    let central = central.clone();
    let (topic, payload) = tokio::task::spawn_blocking(move || {
        central
            .lock()
            .unwrap()
            .recv_timeout(Duration::from_secs(10))
            .expect("central received nothing within 10 s")
    })
    .await
    .unwrap();
    (topic, serde_json::from_slice(&payload).unwrap())
}

#[tokio::test]
async fn a_dead_broker_is_passed_over_rows_go_out_in_order_are_deleted_once_acked_and_shutdown_says_offline(
) {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open_store(&OutboxOptions {
        path: dir.path().join("outbox.db"),
        station: "t01".into(),
        max_bytes: 1 << 30,
        durability: Durability::ProcessCrash,
    })
    .unwrap();
    let metrics = Arc::new(metrics::Metrics::default());
    let (new_data, link) = (Arc::new(Notify::new()), Arc::new(LinkState::default()));
    let (writer, sink, control) =
        WriterThread::start(store, 64, new_data.clone(), link.clone(), metrics.clone());
    for n in 1..=3 {
        sink.send(event(n)).await.unwrap();
    }
    control.flush().await.unwrap();

    let port = free_port();
    let central = Arc::new(Mutex::new(crate::demo::start_central(port).unwrap()));
    let dead = BrokerUrl::try_from(format!("mqtt://127.0.0.1:{}", free_port())).unwrap();
    let live = BrokerUrl::try_from(format!("mqtt://127.0.0.1:{port}")).unwrap();
    let opts = UplinkOptions {
        brokers: vec![dead, live.clone()],
        topic_root: "stations/t01".into(),
        station: "t01".into(),
        client_id: "stationd-t01".into(),
        keep_alive: Duration::from_secs(30),
        window: 2,
        tls: None,
        credentials: None,
        backoff: crate::backoff::Backoff {
            min_ms: 100,
            max_ms: 1_000,
        },
        version: "test".into(),
        boot_id: "boot".into(),
        profile: None,
        replay: Default::default(),
        message_expiry: Default::default(),
        session_expiry_s: 60,
        jitter: true,
    };
    let shutdown = CancellationToken::new();
    let reader = Reader::open(&dir.path().join("outbox.db")).unwrap();
    let uplink = Uplink::new(
        opts,
        reader,
        control.clone(),
        new_data,
        link.clone(),
        shutdown.clone(),
        metrics.clone(),
    );
    let status = uplink.status();
    let task = tokio::spawn(uplink.run());

    let (topic, birth) = next(&central).await;
    assert_eq!(topic, "stations/t01/status");
    assert_eq!(birth["state"], "online");
    assert_eq!(
        birth["broker"],
        live.to_string(),
        "the second broker, after the dead one"
    );
    let error = status
        .lock()
        .unwrap()
        .last_error
        .clone()
        .unwrap_or_default();
    assert!(error.starts_with("connection refused"), "{error}");
    let mut seqs = Vec::new();
    for _ in 1..=3 {
        let (_, row) = next(&central).await;
        seqs.push(row["seq"].as_u64().unwrap());
    }
    assert_eq!(seqs, [1, 2, 3], "in order, window 2 or not");
    assert!(link.is_up());

    // A row committed while connected goes out without any reconnect.
    sink.send(event(4)).await.unwrap();
    let (_, row) = next(&central).await;
    assert_eq!(row["seq"], 4);
    assert_eq!(row["historical"], false, "made while the link was up");

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the uplink stops within its goodbye deadlines")
        .unwrap();
    let (topic, bye) = next(&central).await;
    assert_eq!(topic, "stations/t01/status");
    assert_eq!(
        (bye["state"].as_str(), bye["reason"].as_str()),
        (Some("offline"), Some("shutdown"))
    );
    assert!(!link.is_up());
    // Every PUBACK reached the writer before the uplink stopped: nothing is left to resend.
    assert_eq!(metrics.value("uplink.acked", ""), 4);
    drop((sink, control));
    writer.join();
    let left = Reader::open(&dir.path().join("outbox.db"))
        .unwrap()
        .stats()
        .unwrap();
    assert_eq!(left.rows(), 0);
}
