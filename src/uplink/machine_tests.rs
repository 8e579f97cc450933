//! The uplink's decisions, on a clock the test moves by hand: no broker, no runtime, no sleep.

use super::*;
use crate::event::Priority;

const MIN_MS: u64 = 500;

fn url(s: &str) -> BrokerUrl {
    BrokerUrl::try_from(format!("mqtt://{s}")).unwrap()
}

fn backoff() -> Backoff {
    Backoff {
        min_ms: MIN_MS,
        max_ms: 8_000,
    }
}

/// A machine whose jitter always picks the ceiling, so waits are predictable.
fn machine(brokers: &[&str], window: usize) -> Machine {
    Machine::new(
        brokers.iter().map(|b| url(b)).collect(),
        window,
        backoff(),
        Box::new(|n| n),
        0,
    )
}

fn actions(m: &mut Machine) -> Vec<Action> {
    std::iter::from_fn(|| m.poll_action()).collect()
}

fn row(seq: u64) -> (Lane, OutRow) {
    (
        Lane::Live,
        OutRow {
            seq,
            prio: Priority::Telemetry,
            topic: format!("t/{seq}"),
            payload: vec![],
        },
    )
}

fn net() -> LinkError {
    LinkError::Network("connection refused".into())
}

fn failed(a: &Action) -> Option<(&str, Option<Duration>)> {
    match a {
        Action::Failed {
            broker,
            connected_for,
            ..
        } => Some((broker.host.as_str(), *connected_for)),
        _ => None,
    }
}

/// Connects to the first broker and takes the birth and the first read-ahead's request.
fn connected(m: &mut Machine, now: u64) -> u64 {
    let before = actions(m);
    assert!(
        matches!(before.last(), Some(Action::Connect(_))),
        "{before:?}"
    );
    m.on(Note::ConnAck, now);
    let a = actions(m);
    assert!(matches!(a[0], Action::Connected(_)), "{a:?}");
    assert!(matches!(a[1], Action::SayOnline(_)), "{a:?}");
    match a[2] {
        Action::Fetch { fetch, cursors, .. } => {
            assert_eq!(cursors, [0; 3], "a new session reads from the start");
            fetch
        }
        _ => panic!("{a:?}"),
    }
}

#[test]
fn a_failed_broker_hands_over_to_the_next_and_a_failed_round_waits_then_starts_over() {
    let mut m = machine(&["a", "b"], 4);
    assert_eq!(actions(&mut m), [Action::Connect(url("a"))]);
    m.on(Note::Lost(net()), 5);
    let a = actions(&mut m);
    assert_eq!(failed(&a[0]), Some(("a", None)));
    assert_eq!(a[1], Action::Connect(url("b")), "the next broker at once");
    m.on(Note::Lost(net()), 6);
    let a = actions(&mut m);
    assert_eq!(failed(&a[0]), Some(("b", None)));
    assert_eq!(a[1], Action::Wait(Duration::from_millis(MIN_MS)));
    assert_eq!(m.deadline(), Some(6 + MIN_MS));
    m.on(Note::Tick, 5 + MIN_MS);
    assert!(actions(&mut m).is_empty(), "not before the wait is over");
    m.on(Note::Tick, 6 + MIN_MS);
    assert_eq!(actions(&mut m), [Action::Connect(url("a"))]);
    // The second failed round waits twice as long (the ceiling, as this test's jitter picks).
    m.on(Note::Lost(net()), 600);
    m.on(Note::Lost(net()), 601);
    let a = actions(&mut m);
    assert_eq!(
        a.last(),
        Some(&Action::Wait(Duration::from_millis(2 * MIN_MS)))
    );
    assert_eq!(m.attempts(), 2);
}

#[test]
fn the_wait_is_drawn_from_the_randomness_it_is_given() {
    let mut m = Machine::new(vec![url("a")], 4, backoff(), Box::new(|n| n / 4), 0);
    m.on(Note::Lost(net()), 0);
    m.on(Note::Tick, 1_000);
    m.on(Note::Lost(net()), 1_000);
    let a = actions(&mut m);
    assert_eq!(
        a.iter()
            .filter_map(|a| match a {
                Action::Wait(d) => Some(d.as_millis() as u64),
                _ => None,
            })
            .collect::<Vec<_>>(),
        [MIN_MS / 4, 2 * MIN_MS / 4]
    );
}

#[test]
fn no_connack_within_the_timeout_is_a_failed_attempt() {
    let mut m = machine(&["a", "b"], 4);
    actions(&mut m);
    assert_eq!(m.deadline(), Some(CONNECT_TIMEOUT_MS));
    m.on(Note::Tick, CONNECT_TIMEOUT_MS - 1);
    assert!(actions(&mut m).is_empty());
    m.on(Note::Tick, CONNECT_TIMEOUT_MS);
    let a = actions(&mut m);
    match &a[0] {
        Action::Failed { error, .. } => assert_eq!(*error, LinkError::NoConnAck(10)),
        other => panic!("{other:?}"),
    }
    assert_eq!(a[1], Action::Connect(url("b")));
}

#[test]
fn a_session_sends_its_birth_then_rows_keeping_two_windows_queued_and_reads_ahead() {
    let mut m = machine(&["a"], 2);
    let f1 = connected(&mut m, 10);
    assert_eq!(m.in_window(), 1, "the birth");
    m.on(
        Note::Rows {
            fetch: f1,
            rows: vec![row(1), row(2)],
        },
        11,
    );
    let a = actions(&mut m);
    assert_eq!(a[0], Action::Publish(row(1).1));
    assert_eq!(a[1], Action::Publish(row(2).1));
    // A full read means there may be more: read again, after the last seq of the lane.
    let f2 = match a[2] {
        Action::Fetch { fetch, cursors, .. } => {
            assert_eq!(cursors[Lane::Live as usize], 2);
            fetch
        }
        ref other => panic!("{other:?}"),
    };
    assert_eq!(a.len(), 3);
    m.on(
        Note::Rows {
            fetch: f2,
            rows: vec![row(3), row(4)],
        },
        12,
    );
    let a = actions(&mut m);
    assert_eq!(a[0], Action::Publish(row(3).1));
    assert_eq!(m.in_window(), 4, "2 windows: birth + 3 rows");
    assert!(
        !a.iter()
            .any(|a| matches!(a, Action::Publish(_)) && *a != Action::Publish(row(3).1)),
        "row 4 waits for room: {a:?}"
    );
    // rumqttc reports packet ids in queue order; the birth's PUBACK is not an outbox row.
    for pkid in 1..=4 {
        m.on(Note::Sent(pkid), 13);
    }
    m.on(Note::PubAck(1), 14);
    m.on(Note::PubAck(3), 14);
    m.on(Note::PubAck(2), 14);
    let a = actions(&mut m);
    assert_eq!(
        a[0],
        Action::Ack(vec![2, 1]),
        "the acks of one batch in one go"
    );
    assert_eq!(a[1], Action::Publish(row(4).1), "room again");
}

#[test]
fn new_data_during_a_read_makes_it_read_again_and_a_short_read_stops_reading() {
    let mut m = machine(&["a"], 4);
    let f1 = connected(&mut m, 0);
    m.on(Note::NewData, 1);
    m.on(
        Note::Rows {
            fetch: f1,
            rows: vec![row(1)],
        },
        2,
    );
    let a = actions(&mut m);
    let f2 = match a.last() {
        Some(Action::Fetch { fetch, .. }) => *fetch,
        other => panic!("a commit during the read may be missing from it: {other:?}"),
    };
    m.on(
        Note::Rows {
            fetch: f2,
            rows: vec![],
        },
        3,
    );
    assert!(
        actions(&mut m).is_empty(),
        "caught up: no read until new data"
    );
    m.on(Note::NewData, 4);
    assert!(matches!(
        actions(&mut m).as_slice(),
        [Action::Fetch { cursors, .. }] if cursors[Lane::Live as usize] == 1
    ));
}

#[test]
fn a_lost_session_hands_over_its_acks_first_then_waits_and_starts_from_the_first_broker() {
    let mut m = machine(&["a", "b"], 4);
    actions(&mut m);
    m.on(Note::Lost(net()), 1);
    actions(&mut m);
    m.on(Note::ConnAck, 2); // on b
    let f = match actions(&mut m).pop() {
        Some(Action::Fetch { fetch, .. }) => fetch,
        other => panic!("{other:?}"),
    };
    m.on(
        Note::Rows {
            fetch: f,
            rows: vec![row(7), row(8)],
        },
        3,
    );
    actions(&mut m);
    for pkid in 1..=3 {
        m.on(Note::Sent(pkid), 4);
    }
    // The PUBACK for row 7 and the loss arrive in the same batch.
    m.on(Note::PubAck(2), 5);
    m.on(Note::Lost(net()), 1_005);
    let a = actions(&mut m);
    assert_eq!(a[0], Action::Ack(vec![7]), "{a:?}");
    assert_eq!(
        failed(&a[1]),
        Some(("b", Some(Duration::from_millis(1_003))))
    );
    assert!(matches!(a[2], Action::Wait(_)));
    assert_eq!(m.in_window(), 0);
    m.on(Note::Tick, 60_000);
    assert_eq!(actions(&mut m), [Action::Connect(url("a"))]);
}

#[test]
fn only_a_session_that_lasted_resets_the_backoff() {
    let waits = |lasted: u64| {
        let mut m = machine(&["a"], 4);
        let mut now = 0;
        for _ in 0..3 {
            actions(&mut m);
            m.on(Note::Lost(net()), now);
            now += 10_000;
            m.on(Note::Tick, now);
        }
        connected(&mut m, now);
        m.on(Note::Lost(net()), now + lasted);
        match actions(&mut m).pop() {
            Some(Action::Wait(d)) => d.as_millis() as u64,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(
        waits(STABLE_SESSION_MS),
        MIN_MS,
        "a good session starts over"
    );
    assert_eq!(
        waits(1_000),
        8 * MIN_MS,
        "a flapping link keeps backing off"
    );
}

#[test]
fn rows_read_for_a_session_that_has_ended_are_not_published_in_the_next() {
    let mut m = machine(&["a"], 4);
    let old = connected(&mut m, 0);
    m.on(Note::Lost(net()), 1);
    m.on(Note::Tick, 10_000);
    let new = connected(&mut m, 10_000);
    assert_ne!(old, new);
    m.on(
        Note::Rows {
            fetch: old,
            rows: vec![row(5)],
        },
        10_001,
    );
    assert!(actions(&mut m).is_empty());
    m.on(
        Note::Rows {
            fetch: new,
            rows: vec![row(1)],
        },
        10_002,
    );
    assert_eq!(actions(&mut m)[0], Action::Publish(row(1).1));
}

#[test]
fn shutdown_while_connected_drains_says_offline_then_disconnects() {
    let mut m = machine(&["a"], 2);
    let f = connected(&mut m, 0);
    m.on(
        Note::Rows {
            fetch: f,
            rows: vec![row(1), row(2), row(3)],
        },
        1,
    );
    actions(&mut m);
    for pkid in 1..=4 {
        m.on(Note::Sent(pkid), 2);
    }
    m.on(Note::Shutdown, 3);
    assert!(actions(&mut m).is_empty(), "nothing new is published");
    m.on(Note::PubAck(1), 4);
    m.on(Note::PubAck(2), 4);
    assert_eq!(actions(&mut m), [Action::Ack(vec![1])]);
    m.on(Note::PubAck(3), 5);
    m.on(Note::PubAck(4), 5);
    assert_eq!(
        actions(&mut m),
        [Action::Ack(vec![2, 3]), Action::SayOffline],
        "once nothing is in flight"
    );
    m.on(Note::Sent(5), 6);
    m.on(Note::PubAck(5), 7);
    assert_eq!(actions(&mut m), [Action::Disconnect, Action::Stop]);
}

#[test]
fn shutdown_waits_for_acks_only_so_long() {
    let mut m = machine(&["a"], 2);
    connected(&mut m, 0);
    m.on(Note::Sent(1), 1);
    m.on(Note::Shutdown, 100);
    m.on(Note::Tick, 100 + DRAIN_MS - 1);
    assert!(actions(&mut m).is_empty());
    m.on(Note::Tick, 100 + DRAIN_MS);
    assert_eq!(actions(&mut m), [Action::SayOffline]);
    m.on(Note::Tick, 100 + DRAIN_MS + OFFLINE_MS);
    assert_eq!(actions(&mut m), [Action::Disconnect, Action::Stop]);
}

#[test]
fn shutdown_when_not_connected_stops_at_once_and_a_loss_while_saying_goodbye_ends_it() {
    let mut m = machine(&["a"], 2);
    actions(&mut m);
    m.on(Note::Shutdown, 1);
    assert_eq!(actions(&mut m), [Action::Stop], "connecting");
    let mut m = machine(&["a"], 2);
    actions(&mut m);
    m.on(Note::Lost(net()), 1);
    actions(&mut m);
    m.on(Note::Shutdown, 2);
    assert_eq!(actions(&mut m), [Action::Stop], "waiting");

    let mut m = machine(&["a"], 2);
    connected(&mut m, 0);
    m.on(Note::Sent(1), 1);
    m.on(Note::Shutdown, 2);
    m.on(Note::Lost(net()), 3);
    let a = actions(&mut m);
    assert!(failed(&a[0]).is_some(), "{a:?}");
    assert_eq!(a[1], Action::Stop);
    m.on(Note::Tick, 60_000);
    assert!(actions(&mut m).is_empty(), "stopped means stopped");
}

#[test]
fn a_rebirth_republishes_the_birth_only_while_connected() {
    let mut m = machine(&["a"], 2);
    m.on(Note::Rebirth, 1);
    assert_eq!(
        actions(&mut m),
        [Action::Connect(url("a"))],
        "not connected: the next connection says it anyway"
    );
    m.on(Note::ConnAck, 2);
    actions(&mut m);
    m.on(Note::Rebirth, 3);
    assert_eq!(actions(&mut m), [Action::SayOnline(url("a"))]);
    assert_eq!(m.in_window(), 2, "both births await their PUBACK");
    m.on(Note::Shutdown, 4);
    m.on(Note::Rebirth, 5);
    assert!(
        !actions(&mut m).contains(&Action::SayOnline(url("a"))),
        "not while saying goodbye"
    );
}

#[test]
fn state_snapshots_go_out_on_connect_after_changes_at_most_every_interval_and_on_request() {
    let mut m = Machine::new(vec![url("a")], 2, backoff(), Box::new(|n| n), 0).with_state();
    m.on(Note::StateChanged, 1);
    actions(&mut m);
    m.on(Note::ConnAck, 10);
    let a = actions(&mut m);
    assert_eq!(
        &a[..3],
        [
            Action::Connected(url("a")),
            Action::SayOnline(url("a")),
            Action::PublishState
        ]
    );
    assert_eq!(
        m.in_window(),
        2,
        "the birth and the snapshot await their PUBACKs"
    );
    // A change right after: not before the interval has passed since the last one.
    m.on(Note::StateChanged, 100);
    m.on(Note::StateChanged, 200);
    assert_eq!(m.deadline(), Some(10 + STATE_INTERVAL_MS));
    m.on(Note::Tick, 10 + STATE_INTERVAL_MS - 1);
    assert!(!actions(&mut m).contains(&Action::PublishState));
    m.on(Note::Tick, 10 + STATE_INTERVAL_MS);
    assert_eq!(
        actions(&mut m),
        [Action::PublishState],
        "two changes, one snapshot"
    );
    // Quiet for long: the next change goes out at once.
    m.on(Note::StateChanged, 60_000);
    assert_eq!(actions(&mut m), [Action::PublishState]);
    // Asked for: at once, whatever the interval.
    m.on(Note::StateRequested, 60_001);
    assert_eq!(actions(&mut m), [Action::PublishState]);
    // Without with_state() nothing of this happens.
    let mut plain = machine(&["a"], 2);
    actions(&mut plain);
    plain.on(Note::ConnAck, 1);
    plain.on(Note::StateRequested, 2);
    assert!(!actions(&mut plain).contains(&Action::PublishState));
}

fn backlog_row(seq: u64, bytes: usize) -> (Lane, OutRow) {
    (
        Lane::Backlog,
        OutRow {
            seq,
            prio: Priority::Telemetry,
            topic: "t".into(),
            payload: vec![b'x'; bytes - 1],
        },
    )
}

/// Publishes everything the machine hands out, acknowledging each at once.
fn publish_all(m: &mut Machine, now: u64, published: &mut Vec<(u64, OutRow)>) {
    while let Some(a) = m.poll_action() {
        if let Action::Publish(row) = a {
            published.push((now, row));
            let pkid = published.len() as u16;
            m.on(Note::Sent(pkid), now);
            m.on(Note::PubAck(pkid), now);
        }
    }
}

#[test]
fn the_replay_cap_holds_the_backlog_to_its_rate_and_lets_live_rows_and_alarms_pass() {
    let mut m = machine(&["a"], 64);
    let fetch = connected(&mut m, 0);
    m.on(Note::Sent(1), 0); // the birth
    m.on(Note::PubAck(1), 0);
    m.set_replay_cap(Some(1_000), 0);
    // 20 backlog rows of 250 bytes: 5 s at 1 kB/s.
    let rows: Vec<_> = (1..=20).map(|seq| backlog_row(seq, 250)).collect();
    m.on(Note::Rows { fetch, rows }, 0);
    let mut published = Vec::new();
    publish_all(&mut m, 0, &mut published);
    assert!(published.is_empty(), "nothing before the first token");
    let wake = m.deadline().expect("a wake-up for the cap");
    assert!(wake <= 2, "{wake}");
    // Time passes in 10 ms steps, as the I/O loop would wake.
    let mut now = 0;
    let mut alarm_at = None;
    while published.iter().filter(|(_, r)| r.seq <= 20).count() < 20 && now < 10_000 {
        now += 10;
        m.on(Note::Tick, now);
        if now == 1_500 {
            // An alarm and a live row arrive in the middle of the replay.
            let fetch = match actions_until_fetch(&mut m, now, &mut published) {
                Some(f) => f,
                None => panic!("no read-ahead for new data"),
            };
            let alarm = (
                Lane::Alarm,
                OutRow {
                    seq: 100,
                    prio: Priority::Alarm,
                    topic: "alarm".into(),
                    payload: vec![b'a'; 2_000],
                },
            );
            m.on(
                Note::Rows {
                    fetch,
                    rows: vec![alarm, row(101)],
                },
                now,
            );
            alarm_at = Some(now);
        }
        publish_all(&mut m, now, &mut published);
    }
    let at = |seq: u64| published.iter().find(|(_, r)| r.seq == seq).unwrap().0;
    // The alarm (2 kB) and the live row went at once, without waiting for the cap.
    assert_eq!(alarm_at, Some(1_500));
    assert_eq!((at(100), at(101)), (1_500, 1_500));
    assert!(at(20) > 4_000, "the backlog was still being replayed then");
    // 5,000 backlog bytes at 1,000 bytes/s: the last one after about 4.75 s (the first went
    // on the first token), not before.
    assert!(
        (4_700..=5_300).contains(&now),
        "the replay ended at {now} ms"
    );
}

/// Takes actions (publishing what comes) until the machine asks for a read-ahead.
fn actions_until_fetch(
    m: &mut Machine,
    now: u64,
    published: &mut Vec<(u64, OutRow)>,
) -> Option<u64> {
    m.on(Note::NewData, now);
    while let Some(a) = m.poll_action() {
        match a {
            Action::Fetch { fetch, backlog, .. } => {
                assert!(backlog, "less than a window of backlog waits: read it too");
                return Some(fetch);
            }
            Action::Publish(row) => {
                published.push((now, row));
                let pkid = published.len() as u16;
                m.on(Note::Sent(pkid), now);
                m.on(Note::PubAck(pkid), now);
            }
            _ => {}
        }
    }
    None
}

#[test]
fn a_window_of_backlog_waiting_for_the_cap_does_not_stop_live_rows_being_read() {
    let mut m = machine(&["a"], 4);
    let fetch = connected(&mut m, 0);
    m.set_replay_cap(Some(10), 0);
    let rows: Vec<_> = (1..=4).map(|seq| backlog_row(seq, 100)).collect();
    m.on(Note::Rows { fetch, rows }, 0);
    m.on(Note::NewData, 0);
    let a = actions(&mut m);
    let fetch = a
        .iter()
        .find_map(|a| match a {
            Action::Fetch { fetch, backlog, .. } => Some((*fetch, *backlog)),
            _ => None,
        })
        .expect("a read-ahead for the new live data");
    assert!(
        !fetch.1,
        "a window of backlog waits: read alarms and live only"
    );
    m.on(
        Note::Rows {
            fetch: fetch.0,
            rows: vec![row(9)],
        },
        0,
    );
    let a = actions(&mut m);
    assert!(
        a.iter()
            .any(|a| matches!(a, Action::Publish(r) if r.seq == 9)),
        "the live row goes past the waiting backlog: {a:?}"
    );
}

#[test]
fn backlog_skipped_by_a_read_ahead_is_read_once_the_waiting_backlog_goes_down() {
    // A read-ahead that left the backlog out (a window of it waited) must not leave the rest
    // of the backlog unread when it returns with little: no new data will come to wake it.
    let mut m = machine(&["a"], 4);
    let fetch = connected(&mut m, 0);
    m.on(Note::Sent(1), 0);
    m.on(Note::PubAck(1), 0);
    m.set_replay_cap(Some(100), 0);
    let rows: Vec<_> = (1..=8).map(|seq| backlog_row(seq, 10)).collect();
    m.on(Note::Rows { fetch, rows }, 0);
    let mut published = Vec::new();
    let mut fetches = Vec::new();
    let mut now = 0;
    // Publish everything as the cap allows, answering read-aheads with nothing new.
    while now < 2_000 {
        now += 1;
        m.on(Note::Tick, now);
        while let Some(a) = m.poll_action() {
            match a {
                Action::Publish(row) => {
                    published.push(row.seq);
                    let pkid = published.len() as u16 + 1;
                    m.on(Note::Sent(pkid), now);
                    m.on(Note::PubAck(pkid), now);
                }
                Action::Fetch { fetch, backlog, .. } => {
                    fetches.push(backlog);
                    m.on(
                        Note::Rows {
                            fetch,
                            rows: vec![],
                        },
                        now,
                    );
                }
                _ => {}
            }
        }
    }
    assert_eq!(published, (1..=8).collect::<Vec<_>>());
    assert!(
        fetches.contains(&false) && fetches.last() == Some(&true),
        "the backlog lane is read again after a read-ahead skipped it: {fetches:?}"
    );
    assert!(
        fetches.len() < 10,
        "no empty reads while the backlog waits: {fetches:?}"
    );
}

#[test]
fn a_row_the_broker_refuses_is_not_acknowledged_and_ends_the_session_with_the_reason() {
    let mut m = machine(&["a"], 4);
    let f = connected(&mut m, 1);
    m.on(
        Note::Rows {
            fetch: f,
            rows: vec![row(7), row(8)],
        },
        2,
    );
    actions(&mut m);
    // The birth, then rows 7 and 8.
    for pkid in 1..=3 {
        m.on(Note::Sent(pkid), 3);
    }
    let refused = || LinkError::Refused("not authorized to publish there (0x87)".into());
    // A refused status message is let go: the session goes on.
    m.on(
        Note::Refused {
            pkid: 1,
            why: refused(),
        },
        4,
    );
    assert!(m.is_connected());
    assert!(actions(&mut m).iter().all(|a| failed(a).is_none()));
    m.on(Note::PubAck(3), 5);
    m.on(
        Note::Refused {
            pkid: 2,
            why: refused(),
        },
        6,
    );
    let a = actions(&mut m);
    assert_eq!(
        a[0],
        Action::Ack(vec![8]),
        "only what the broker took: {a:?}"
    );
    match &a[1] {
        Action::Failed { error, .. } => {
            assert!(!error.is_transient());
            assert_eq!(
                error.to_string(),
                "the broker refused seq 7, which stays in the outbox: not authorized to publish there (0x87)"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(!m.is_connected());
}
