//! Reading one process's numbers: what a reading holds and why one fails, pid files, and the
//! process's own Prometheus endpoint. Local processes (by pid, pid file or name/cmdline
//! match, alone or with their descendants) are read through the platform's process table
//! ([`super::local`]): /proc on Linux ([`super::procfs`]), sysinfo elsewhere.

use std::io;
use std::path::{Path, PathBuf};

use super::expo;
use super::settings::{ScrapeNames, Source};

#[cfg(target_os = "linux")]
pub use super::procfs::read as read_local;

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
    /// For a process read with its descendants: the tree ([`super::local::read_tree`]).
    pub tree: Option<TreeReading>,
}

/// A process tree at one sample: how many processes it holds and its largest descendants.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TreeReading {
    /// Processes in the tree, the root included.
    pub members: usize,
    /// The descendants holding the most memory (PSS), largest first, at most
    /// [`super::local::LARGEST_CHILDREN`].
    pub largest: Vec<ChildMemory>,
}

impl TreeReading {
    /// The summary's line, e.g. `    tree: 3 processes; largest: 1234 gateway 41.2MiB, …`.
    pub fn text(&self) -> String {
        let largest: Vec<String> = self
            .largest
            .iter()
            .map(|c| {
                format!(
                    "{} {} {}",
                    c.pid,
                    c.name,
                    crate::units::fmt_bytes(c.memory_bytes)
                )
            })
            .collect();
        format!(
            "    tree: {} processes; largest children: {}\n",
            self.members,
            if largest.is_empty() {
                "none".to_string()
            } else {
                largest.join(", ")
            }
        )
    }
}

/// One descendant of a watched process tree.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ChildMemory {
    /// Its pid.
    pub pid: u32,
    /// Its name (comm).
    pub name: String,
    /// Its memory: PSS, or RSS where the platform has no PSS (bytes).
    pub memory_bytes: f64,
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
        tree: None,
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
