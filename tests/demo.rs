//! The README's first command: `stationd demo` runs the whole pipeline with simulated outages
//! and reports what central received; the status page it prints shows the station.
#![allow(clippy::disallowed_methods)] // test threads may block (clippy.toml bans it in the daemon)

use std::io::BufRead;
use std::time::{Duration, Instant};

#[test]
fn demo_runs_outages_and_central_receives_everything() {
    let started = Instant::now();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_stationd"))
        .args([
            "demo",
            "--seconds",
            "14",
            "--up",
            "4",
            "--down",
            "3",
            "--plain",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Lines as they come: the status page's address is among the first.
    let (lines_tx, lines) = std::sync::mpsc::channel::<String>();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = lines_tx.send(line);
        }
    });
    let mut stderr_pipe = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr_pipe, &mut text);
        text
    });
    let mut stdout = String::new();
    let mut page = None;
    while page.is_none() {
        let line = lines
            .recv_timeout(Duration::from_secs(30))
            .expect("the demo prints its status page's address");
        page = line
            .strip_prefix("status page (open in a browser): ")
            .map(str::to_string);
        stdout.push_str(&line);
        stdout.push('\n');
    }
    // Once crews have formed, the page's data shows the station's devices and crews.
    std::thread::sleep(Duration::from_secs(9).saturating_sub(started.elapsed()));
    let page = page.unwrap();
    let (base, token) = page.split_once("/?token=").unwrap();
    let doc: serde_json::Value = serde_json::from_str(
        &ureq::get(format!("{base}/api/status"))
            .header("Authorization", format!("Bearer {token}"))
            .call()
            .expect("the status page answers with the printed token")
            .body_mut()
            .read_to_string()
            .unwrap(),
    )
    .unwrap();
    let devices: Vec<&str> = doc["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    for id in ["car-01", "radio0", "dock0", "ingest0"] {
        assert!(devices.contains(&id), "{id} on the page: {devices:?}");
    }
    assert_eq!(
        doc["staffing"]["crews"].as_array().unwrap().len(),
        2,
        "{doc}"
    );
    let status = child.wait().unwrap();
    reader.join().unwrap();
    for line in lines.try_iter() {
        stdout.push_str(&line);
        stdout.push('\n');
    }
    let stderr = stderr.join().unwrap();
    assert!(status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("uplink DOWN"),
        "an outage was simulated:\n{stdout}"
    );
    let summary = stdout
        .lines()
        .find(|l| l.starts_with("demo summary"))
        .expect("summary line");
    let number_before = |word: &str| -> u64 {
        let i = summary
            .find(word)
            .unwrap_or_else(|| panic!("{word} in {summary}"));
        summary[..i]
            .split_whitespace()
            .last()
            .unwrap()
            .trim_start_matches('(')
            .parse()
            .unwrap()
    };
    assert!(number_before(" messages") > 25, "{summary}");
    assert!(
        number_before(" positions from JT/T 808 terminals") >= 6,
        "{summary}"
    );
    assert!(
        number_before(" historical") > 5,
        "backlog from the outage delivered late: {summary}"
    );
    assert_eq!(number_before(" missing seqs"), 0, "{summary}");
    assert!(
        number_before(" positions from the NMEA receiver") >= 2,
        "{summary}"
    );
    assert!(
        number_before(" positions from handheld radios") >= 2,
        "the base radio's handhelds, through the PEI on a pty: {summary}"
    );
    assert!(
        number_before(" footage files indexed") >= 1,
        "the dock's footage, hashed and chained: {summary}"
    );
    assert!(
        number_before(" commands answered") >= 2,
        "dispatch's signed ping and text to car-02 were answered: {summary}"
    );
    assert!(
        number_before(" crews ready") >= 1,
        "the roster from dispatch, the sign-in lines and the radios made a crew ready: {summary}"
    );
    assert!(
        number_before(" crews sent to calls") >= 1 && number_before(" acknowledged") >= 1,
        "dispatch's call went to the nearest ready crew, whose handheld acknowledged it: {summary}"
    );
    assert!(summary.ends_with("station offline (shutdown)"), "{summary}");
}
