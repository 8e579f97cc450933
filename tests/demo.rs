//! The README's first command: `stationd demo` runs the whole pipeline with simulated outages
//! and reports what central received.

#[test]
fn demo_runs_outages_and_central_receives_everything() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stationd"))
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
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
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
