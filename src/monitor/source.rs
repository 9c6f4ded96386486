//! Reading one process's numbers: from /proc (by pid, pid file or name/cmdline match) or from
//! its own Prometheus endpoint.
//!
//! /proc is read directly: per sample `stat` (CPU ticks, start time,
//! state), `status` (`VmRSS`, `Threads`) and a count of `fd/` entries. Name/cmdline matching
//! scans /proc only while the process is unresolved or gone.

use std::io;
use std::path::{Path, PathBuf};

use super::expo;
use super::settings::{ScrapeNames, Source};

/// Kernel clock ticks per second of the `/proc/<pid>/stat` CPU fields (`USER_HZ`), from
/// `sysconf(_SC_CLK_TCK)`; 100 if the call fails.
fn clk_tck() -> f64 {
    static TCK: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TCK.get_or_init(|| {
        // SAFETY: sysconf has no preconditions.
        let v = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        if v > 0 {
            v as f64
        } else {
            100.0
        }
    })
}

/// Who the process is; a change means a restart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Identity {
    /// Process id (local sources).
    pub pid: Option<u32>,
    /// Start time: clock ticks since boot (local) or seconds since the epoch (scrape).
    pub start: Option<f64>,
}

/// One successful reading. Absent values were unreadable (partial data).
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// Who was read.
    pub identity: Identity,
    /// Resident set size, bytes.
    pub rss: Option<f64>,
    /// Open file descriptors.
    pub fds: Option<f64>,
    /// Threads.
    pub threads: Option<f64>,
    /// CPU seconds since the process started.
    pub cpu: Option<f64>,
    /// Why some value is missing, for a rate-limited warning.
    pub partial: Option<String>,
}

/// Why a process could not be read this sample.
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    /// The pid does not exist (or is a zombie).
    #[error("process {0} is gone")]
    Gone(u32),
    /// No process matches the name/cmdline pattern.
    #[error("no running process matches {0}")]
    NoMatch(String),
    /// The pid file is missing or does not hold a pid.
    #[error("pid file {path}: {reason}")]
    PidFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// /proc could not be read.
    #[error("reading /proc/{pid}: {source}")]
    Proc {
        /// The pid.
        pid: u32,
        /// The I/O error.
        source: io::Error,
    },
    /// The scrape request failed.
    #[error("scrape failed: {0}")]
    Scrape(String),
    /// The scraped text is not an exposition.
    #[error("scrape returned an unparsable exposition: {0}")]
    Exposition(#[from] expo::ParseError),
    /// The scraped exposition lacks the RSS metric.
    #[error("scrape lacks {0}")]
    Missing(String),
}

impl SampleError {
    /// Number of kinds, for a rate limiter with one budget per kind.
    pub const KINDS: usize = 7;

    /// Stable index of the kind, so a rate-limited warning of a new cause shows at once.
    pub fn kind_index(&self) -> usize {
        match self {
            SampleError::Gone(_) => 0,
            SampleError::NoMatch(_) => 1,
            SampleError::PidFile { .. } => 2,
            SampleError::Proc { .. } => 3,
            SampleError::Scrape(_) => 4,
            SampleError::Exposition(_) => 5,
            SampleError::Missing(_) => 6,
        }
    }
}

fn proc_path(pid: u32, file: &str) -> PathBuf {
    Path::new("/proc").join(pid.to_string()).join(file)
}

fn io_err(pid: u32, e: io::Error) -> SampleError {
    if e.kind() == io::ErrorKind::NotFound {
        SampleError::Gone(pid)
    } else {
        SampleError::Proc { pid, source: e }
    }
}

/// Fields of `/proc/<pid>/stat` soakd uses.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stat {
    /// Process state letter.
    pub state: char,
    /// utime + stime, seconds.
    pub cpu_seconds: f64,
    /// Start time, clock ticks since boot (field 22).
    pub start_ticks: u64,
    /// Threads (field 20).
    pub threads: u64,
}

/// Parses `/proc/<pid>/stat`. The command name (field 2) may contain spaces and parentheses,
/// so fields are counted from the LAST `)`.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().take(20).collect();
    // f[0] is field 3 (state); field N is f[N - 3].
    let get = |n: usize| f.get(n - 3)?.parse::<u64>().ok();
    Some(Stat {
        state: f.first()?.chars().next()?,
        cpu_seconds: (get(14)? + get(15)?) as f64 / clk_tck(),
        start_ticks: get(22)?,
        threads: get(20)?,
    })
}

/// `VmRSS` (bytes) and `Threads` from `/proc/<pid>/status`.
pub fn parse_status(text: &str) -> (Option<f64>, Option<f64>) {
    let (mut rss, mut threads) = (None, None);
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("VmRSS:") {
            rss = v
                .split_whitespace()
                .next()
                .and_then(|k| k.parse::<f64>().ok())
                .map(|kb| kb * 1024.0);
        } else if let Some(v) = line.strip_prefix("Threads:") {
            threads = v.trim().parse::<f64>().ok();
        }
    }
    (rss, threads)
}

fn read_stat(pid: u32) -> Result<Stat, SampleError> {
    let text = std::fs::read_to_string(proc_path(pid, "stat")).map_err(|e| io_err(pid, e))?;
    let stat = parse_stat(&text).ok_or_else(|| SampleError::Proc {
        pid,
        source: io::Error::new(io::ErrorKind::InvalidData, "unparsable stat"),
    })?;
    if matches!(stat.state, 'Z' | 'X') {
        return Err(SampleError::Gone(pid));
    }
    Ok(stat)
}

fn count_fds(pid: u32) -> io::Result<usize> {
    Ok(std::fs::read_dir(proc_path(pid, "fd"))?.count())
}

/// Reads one local process from /proc.
pub fn read_local(pid: u32) -> Result<Reading, SampleError> {
    let stat = read_stat(pid)?;
    let status = std::fs::read_to_string(proc_path(pid, "status")).map_err(|e| io_err(pid, e))?;
    let (rss, threads) = parse_status(&status);
    let mut partial = None;
    let fds = match count_fds(pid) {
        Ok(n) => Some(n as f64),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(SampleError::Gone(pid)),
        Err(e) => {
            partial = Some(format!("open fds unreadable: {e}"));
            None
        }
    };
    if rss.is_none() {
        // Kernel threads and exiting processes have no VmRSS.
        partial = Some("no VmRSS in status".into());
    }
    Ok(Reading {
        identity: Identity {
            pid: Some(pid),
            start: Some(stat.start_ticks as f64),
        },
        rss,
        fds,
        threads: threads.or(Some(stat.threads as f64)),
        cpu: Some(stat.cpu_seconds),
        partial,
    })
}

/// Reads a pid file (trimmed decimal pid).
pub fn read_pid_file(path: &Path) -> Result<u32, SampleError> {
    let text = std::fs::read_to_string(path).map_err(|e| SampleError::PidFile {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    match text.trim().parse::<u32>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(SampleError::PidFile {
            path: path.to_path_buf(),
            reason: format!("does not hold a pid: {:?}", text.trim()),
        }),
    }
}

/// Scans /proc for the oldest process (earliest start) whose comm equals `name` and whose
/// command line contains `cmdline` (each when given), other than `exclude` (soakd itself).
pub fn find_match(name: Option<&str>, cmdline: Option<&str>, exclude: u32) -> Option<u32> {
    let mut best: Option<(u64, u32)> = None;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == exclude {
            continue;
        }
        if let Some(want) = name {
            match std::fs::read_to_string(proc_path(pid, "comm")) {
                Ok(comm) if comm.trim_end_matches('\n') == want => {}
                _ => continue,
            }
        }
        if let Some(want) = cmdline {
            match std::fs::read(proc_path(pid, "cmdline")) {
                Ok(raw) => {
                    let joined: String = String::from_utf8_lossy(&raw)
                        .split('\0')
                        .filter(|s| !s.is_empty())
                        .collect::<Vec<_>>()
                        .join(" ");
                    if !joined.contains(want) {
                        continue;
                    }
                }
                Err(_) => continue,
            }
        }
        let Ok(stat) = read_stat(pid) else { continue };
        if best.is_none_or(|(s, p)| (stat.start_ticks, pid) < (s, p)) {
            best = Some((stat.start_ticks, pid));
        }
    }
    best.map(|(_, pid)| pid)
}

/// Human description of a match pattern, for messages.
pub fn describe_match(name: Option<&str>, cmdline: Option<&str>) -> String {
    match (name, cmdline) {
        (Some(n), Some(c)) => format!("name {n:?} and cmdline containing {c:?}"),
        (Some(n), None) => format!("name {n:?}"),
        (None, Some(c)) => format!("cmdline containing {c:?}"),
        (None, None) => "anything".into(),
    }
}

/// Scrapes and reads one process's exposition.
pub async fn read_scrape(
    client: &reqwest::Client,
    url: &url::Url,
    names: &ScrapeNames,
) -> Result<Reading, SampleError> {
    let resp = client
        .get(url.clone())
        .send()
        .await
        .map_err(|e| SampleError::Scrape(without_url(e)))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(SampleError::Scrape(format!("HTTP {status}")));
    }
    let text = resp
        .text()
        .await
        .map_err(|e| SampleError::Scrape(without_url(e)))?;
    parse_scrape(&text, names)
}

/// Turns an exposition into a [`Reading`].
pub fn parse_scrape(text: &str, names: &ScrapeNames) -> Result<Reading, SampleError> {
    let [rss, fds, threads, start, cpu] = expo::find_first(
        text,
        [
            names.rss.as_str(),
            names.fds.as_str(),
            names.threads.as_str(),
            names.start_time.as_str(),
            names.cpu.as_str(),
        ],
    )?;
    let finite = |v: Option<f64>| v.filter(|v| v.is_finite());
    let rss = finite(rss).ok_or_else(|| SampleError::Missing(names.rss.clone()))?;
    let (fds, threads) = (finite(fds), finite(threads));
    let missing: Vec<&str> = [(&names.fds, fds), (&names.threads, threads)]
        .into_iter()
        .filter(|(_, v)| v.is_none())
        .map(|(n, _)| n.as_str())
        .collect();
    Ok(Reading {
        identity: Identity {
            pid: None,
            start: finite(start),
        },
        rss: Some(rss),
        fds,
        threads,
        cpu: finite(cpu),
        partial: (!missing.is_empty()).then(|| format!("exposition lacks {}", missing.join(", "))),
    })
}

/// reqwest errors print the URL; the message is fine in a log but keep it short.
fn without_url(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "bad body"
    } else {
        "request error"
    };
    format!("{kind}: {}", e.without_url())
}

/// True for sources read from /proc.
pub fn is_local(source: &Source) -> bool {
    !matches!(source, Source::Scrape { .. })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scratch::ScratchDir;

    #[test]
    fn stat_with_odd_comm() {
        // comm "a) b (c" holds spaces and parentheses.
        let text = "1234 (a) b (c) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 7 0 \
                    987654 123456789 3000 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0";
        let s = parse_stat(text).unwrap();
        assert_eq!(s.state, 'S');
        assert_eq!(s.cpu_seconds, 3.0);
        assert_eq!(s.threads, 7);
        assert_eq!(s.start_ticks, 987_654);
        assert!(parse_stat("garbage").is_none());
    }

    #[test]
    fn status_fields() {
        let text = "Name:\tx\nVmPeak:\t  9999 kB\nVmRSS:\t    2048 kB\nThreads:\t12\n";
        assert_eq!(parse_status(text), (Some(2048.0 * 1024.0), Some(12.0)));
        assert_eq!(parse_status("Name:\tkthread\n"), (None, None));
    }

    #[test]
    fn reads_own_process() {
        let me = std::process::id();
        let r = read_local(me).unwrap();
        assert_eq!(r.identity.pid, Some(me));
        assert!(r.rss.unwrap() > 1024.0 * 1024.0);
        assert!(r.fds.unwrap() >= 3.0);
        assert!(r.threads.unwrap() >= 1.0);
        assert!(r.partial.is_none());
        // Same start time on a second read: no false restart.
        assert_eq!(read_local(me).unwrap().identity, r.identity);
    }

    #[test]
    fn missing_pid_is_gone() {
        // pid_max is at most 2^22, so this pid cannot exist.
        assert!(matches!(
            read_local(4_194_304 + 7),
            Err(SampleError::Gone(_))
        ));
    }

    #[test]
    fn pid_file_errors() {
        let dir = ScratchDir::new("pidfile");
        let f = dir.write("p.pid", "  4321\n");
        assert_eq!(read_pid_file(&f).unwrap(), 4321);
        std::fs::write(&f, "nope").unwrap();
        let e = read_pid_file(&f).unwrap_err().to_string();
        assert!(e.contains("does not hold a pid"), "{e}");
        assert!(read_pid_file(&dir.join("absent")).is_err());
    }

    #[test]
    fn scrape_text_to_reading() {
        let names = ScrapeNames::default();
        let r = parse_scrape(
            "process_resident_memory_bytes 1e6\nprocess_open_fds 5\nprocess_start_time_seconds 17e8\n",
            &names,
        )
        .unwrap();
        assert_eq!(r.rss, Some(1e6));
        assert_eq!(r.fds, Some(5.0));
        assert_eq!(r.threads, None);
        assert_eq!(r.identity.start, Some(1.7e9));
        assert!(r.partial.unwrap().contains("process_threads"));
        assert!(matches!(
            parse_scrape("process_open_fds 5\n", &names),
            Err(SampleError::Missing(_))
        ));
        assert!(matches!(
            parse_scrape("process_resident_memory_bytes NaN\n", &names),
            Err(SampleError::Missing(_))
        ));
        assert!(matches!(
            parse_scrape("<html>", &names),
            Err(SampleError::Exposition(_))
        ));
    }
}
