//! `mqtts://` with a private CA and a client certificate (mutual TLS), against mosquitto.
#![allow(clippy::disallowed_methods)] // test threads may block (clippy.toml bans it in the daemon)

mod common;

use common::*;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use std::path::Path;
use std::time::Duration;

struct Pki {
    ca: String,
    server_cert: String,
    server_key: String,
    client_cert: String,
    client_key: String,
}

fn make_pki(ca_name: &str) -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, ca_name);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let mut sp = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    sp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    sp.distinguished_name
        .push(DnType::CommonName, "central broker");
    let server_cert = sp.signed_by(&server_key, &ca).unwrap();
    let client_key = KeyPair::generate().unwrap();
    let mut cp = CertificateParams::new(Vec::<String>::new()).unwrap();
    cp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    cp.distinguished_name.push(DnType::CommonName, "test-st01");
    let client_cert = cp.signed_by(&client_key, &ca).unwrap();
    Pki {
        ca: ca.pem(),
        server_cert: server_cert.pem(),
        server_key: server_key.serialize_pem(),
        client_cert: client_cert.pem(),
        client_key: client_key.serialize_pem(),
    }
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

/// A broker with a plain listener (for the test's subscriber) and a mutual-TLS listener.
fn tls_broker(pki: &Pki) -> (Broker, u16) {
    let tls_port = free_port();
    let mut broker = Broker::with_config(|dir| {
        format!(
            "listener {tls_port} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate true\n",
            write(dir, "ca.pem", &pki.ca),
            write(dir, "server.pem", &pki.server_cert),
            write(dir, "server.key", &pki.server_key)
        )
    });
    broker.start();
    assert!(wait_until(Duration::from_secs(5), || {
        std::net::TcpStream::connect(("127.0.0.1", tls_port)).is_ok()
    }));
    (broker, tls_port)
}

/// In MQTT 3.1.1 (`mqtts://`) and MQTT 5 (`mqtts5://`): the same TLS either way.
#[test]
fn mutual_tls_to_the_broker_delivers() {
    let pki = make_pki("test central CA");
    let (broker, tls_port) = tls_broker(&pki);
    let central = Subscriber::connect(broker.port, "central-tls");
    let files = tempfile::tempdir().unwrap();
    for scheme in ["mqtts", "mqtts5"] {
        let uplink = format!(
            "brokers = [\"{scheme}://127.0.0.1:{tls_port}\"]\nca_file = \"{}\"\nclient_cert = \"{}\"\nclient_key = \"{}\"",
            write(files.path(), "ca.pem", &pki.ca),
            write(files.path(), "client.pem", &pki.client_cert),
            write(files.path(), "client.key", &pki.client_key)
        );
        let station = Station::with_uplink(&uplink, "");
        let daemon = station.start();
        let url = format!("{scheme}://127.0.0.1:{tls_port}");
        assert!(
            central.wait(Duration::from_secs(20), |m| m
                .iter()
                .any(|m| m.json["state"] == "online" && m.json["broker"] == url)),
            "log:\n{}",
            daemon.log_text()
        );
        let kind = format!("over.{scheme}");
        send_lines(station.ingest_port, &[line(&kind, "event", 1)]);
        assert!(
            central.wait(Duration::from_secs(20), |m| m
                .iter()
                .any(|m| m.json["kind"] == kind.as_str())),
            "log:\n{}",
            daemon.log_text()
        );
    }
}

#[test]
fn a_broker_signed_by_another_ca_is_refused_and_data_stays_buffered() {
    let pki = make_pki("test central CA");
    let impostor_ca = make_pki("someone else's CA").ca;
    let (broker, tls_port) = tls_broker(&pki);
    let central = Subscriber::connect(broker.port, "central-tls-bad");
    let files = tempfile::tempdir().unwrap();
    let uplink = format!(
        "brokers = [\"mqtts://127.0.0.1:{tls_port}\"]\nca_file = \"{}\"\nclient_cert = \"{}\"\nclient_key = \"{}\"",
        write(files.path(), "ca.pem", &impostor_ca),
        write(files.path(), "client.pem", &pki.client_cert),
        write(files.path(), "client.key", &pki.client_key)
    );
    let station = Station::with_uplink(&uplink, "");
    let daemon = station.start();
    send_lines(station.ingest_port, &[line("kept", "alarm", 1)]);
    assert!(wait_until(Duration::from_secs(10), || daemon
        .log_text()
        .contains("uplink.connect_failed")));
    let log = daemon.log_text();
    assert!(
        log.to_lowercase().contains("certificate"),
        "the log says why: {log}"
    );
    assert!(
        wait_until(Duration::from_secs(5), || station.outbox_rows() == 1),
        "the event waits in the outbox"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        central.envelopes().is_empty(),
        "nothing may reach an unverified broker"
    );
}

#[test]
fn unreadable_ca_file_is_a_config_error() {
    let station = Station::with_uplink(
        "brokers = [\"mqtts://127.0.0.1:8883\"]\nca_file = \"/nonexistent/ca.pem\"",
        "",
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stationd"))
        .arg("run")
        .arg("--config")
        .arg(&station.config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("uplink.ca_file") && err.contains("/nonexistent/ca.pem"),
        "{err}"
    );
}
