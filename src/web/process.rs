//! The process's own figures from `/proc/self` (CPU time, memory, file descriptors, threads,
//! start time), read at each scrape: what every Prometheus client library exports as
//! `process_*`, so the fleet's dashboards for other daemons work on this one too.

/// One reading of the process.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessStats {
    pub cpu_seconds: f64,
    pub resident_bytes: u64,
    pub virtual_bytes: u64,
    pub open_fds: u64,
    pub max_fds: Option<u64>,
    pub threads: u64,
    pub start_time_seconds: Option<f64>,
}

/// Reads `/proc/self`; None where there is no procfs.
pub fn read() -> Option<ProcessStats> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let ticks = clock_ticks()?;
    let page = page_size()?;
    let boot = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| boot_time(&s));
    let mut p = parse_stat(&stat, ticks, page, boot)?;
    p.open_fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64);
    p.max_fds = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|s| max_open_files(&s));
    Some(p)
}

fn clock_ticks() -> Option<f64> {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK) {
        Ok(Some(t)) if t > 0 => Some(t as f64),
        _ => None,
    }
}

fn page_size() -> Option<u64> {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE) {
        Ok(Some(p)) if p > 0 => Some(p as u64),
        _ => None,
    }
}

/// `/proc/self/stat` (proc(5)): the fields after the command name, which may hold spaces
/// and parentheses, so the text is split after its last `)`.
fn parse_stat(stat: &str, ticks: f64, page: u64, boot_time: Option<u64>) -> Option<ProcessStats> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state): field N is f[N - 3].
    let field = |n: usize| f.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    let (utime, stime) = (field(14)?, field(15)?);
    let starttime = field(22)?;
    Some(ProcessStats {
        cpu_seconds: (utime + stime) as f64 / ticks,
        threads: field(20)?,
        virtual_bytes: field(23)?,
        resident_bytes: field(24)? * page,
        open_fds: 0,
        max_fds: None,
        start_time_seconds: boot_time.map(|b| b as f64 + starttime as f64 / ticks),
    })
}

/// `btime` of `/proc/stat`: when the system booted, seconds since the epoch.
fn boot_time(proc_stat: &str) -> Option<u64> {
    proc_stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// The soft limit of `Max open files` in `/proc/self/limits`.
fn max_open_files(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_with_a_name_holding_spaces_and_parens() {
        // A real line's shape (proc(5)), the name "(st (d))".
        let line = "4242 (st (d)) S 1 4242 4242 0 -1 4194560 500 0 0 0 250 50 0 0 20 0 7 0 1000 123456789 2048 18446744073709551615";
        let p = parse_stat(line, 100.0, 4096, Some(1_700_000_000)).unwrap();
        assert_eq!(p.cpu_seconds, 3.0);
        assert_eq!(p.threads, 7);
        assert_eq!(p.virtual_bytes, 123_456_789);
        assert_eq!(p.resident_bytes, 2048 * 4096);
        assert_eq!(p.start_time_seconds, Some(1_700_000_010.0));
        assert_eq!(
            boot_time("cpu 1 2\nbtime 1700000000\n"),
            Some(1_700_000_000)
        );
        let limits = "Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 524288               files\n";
        assert_eq!(max_open_files(limits), Some(1024));
    }

    #[test]
    fn this_process_reads() {
        let p = read().expect("procfs on Linux");
        assert!(p.open_fds >= 3, "{p:?}");
        assert!(p.start_time_seconds.unwrap() > 1.6e9, "{p:?}");
        // qemu-user (the cross builds' test run) emulates /proc/self/stat with zeros for the
        // memory and thread fields; a kernel never says a process has no thread.
        if p.threads == 0 {
            eprintln!(
                "/proc/self/stat is emulated here (qemu-user): memory and threads not checked"
            );
        } else {
            assert!(
                p.resident_bytes > 0 && p.virtual_bytes > p.resident_bytes,
                "{p:?}"
            );
        }
    }
}
