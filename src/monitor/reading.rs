//! What one sample of a process holds, why one fails, and the platform's process table as a
//! trait: the types every process reader shares (/proc in [`super::procfs`], sysinfo in
//! [`super::sysinfo_source`], the tree and matching in [`super::local`], scrapes and pid files
//! in [`super::source`]), below all of them so none imports another for its types.

use std::io;
use std::path::PathBuf;

use super::expo;

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
    /// `LARGEST_CHILDREN` of [`super::local`].
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

/// One process of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcEntry {
    /// Its pid.
    pub pid: u32,
    /// Its parent's pid (0 when none).
    pub ppid: u32,
    /// When it started, in the table's own unit (for ordering only).
    pub start: f64,
    /// Its name (comm).
    pub name: String,
    /// Its command line, arguments joined by spaces, when asked for.
    pub cmdline: Option<String>,
}

/// The platform's process table.
pub trait ProcessTable: Send + Sync {
    /// The backend, for messages: `/proc` or `sysinfo`.
    fn name(&self) -> &'static str;
    /// What this backend cannot give on this platform, named for the one start-up message.
    fn unavailable(&self) -> Vec<&'static str>;
    /// One process's reading.
    fn read(&self, pid: u32) -> Result<Reading, SampleError>;
    /// Its proportional set size in bytes, where the platform gives it.
    fn pss(&self, pid: u32) -> Option<f64>;
    /// Every process now; command lines only when `with_cmdline`.
    fn list(&self, with_cmdline: bool) -> Vec<ProcEntry>;
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
