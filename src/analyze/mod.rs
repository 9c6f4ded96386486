//! `soakd analyze`: post-hoc leak analysis of a series recorded anywhere — a CSV file, or a
//! Prometheus that scraped the proxy for weeks — with the live monitor's own estimator and
//! verdict, so a recorded series gets the verdict `soakd run` would have given at its end.
//!
//! - [`cli`]: the command — arguments, their validation (exit 78), reading the input (exit 2),
//!   the exit code (1 on `leak`, else 0).
//! - [`csv`]: a `timestamp_seconds,value` CSV file.
//! - [`prometheus`]: a Prometheus `query_range`, fetched in chunks of at most
//!   [`prometheus::MAX_POINTS_PER_REQUEST`] points per series, merged by label set.
//! - [`run`]: the monitor's own estimator and verdict ([`crate::monitor::replay`]) over each
//!   series, for a set of windows and thresholds, giving a serialisable [`run::Analysis`]
//!   (the `--json` output).
//! - [`text`]: the default output, a table per series and the verdict line.
//!
//! Every input error names its source: the file and line for CSV, the URL (and the query
//! when it matched nothing) for Prometheus.
//! Inputs are capped ([`MAX_POINTS`] points in all, [`MAX_SERIES`] series, a response body
//! of [`prometheus::MAX_BODY_BYTES`]) so a wrong query cannot exhaust memory.

pub mod cli;
pub mod csv;
pub mod prometheus;
pub mod run;
pub mod text;

use std::collections::BTreeMap;

/// Most points read from one input (all series together): a month at one sample a second is
/// 2.6 million.
pub const MAX_POINTS: usize = 5_000_000;

/// Most series one input may hold.
pub const MAX_SERIES: usize = 1_000;

/// A recorded series: its labels and its points `(timestamp seconds, value)` in strictly
/// increasing time order, all finite.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Series {
    /// Label names and values (a CSV file's series gets `file` = its path, from [`cli`]).
    pub labels: BTreeMap<String, String>,
    /// `(timestamp_seconds, value)`.
    pub points: Vec<(f64, f64)>,
}

/// An input that cannot be read (exit code 2 in `soakd analyze`).
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// A CSV problem at a line (1-based).
    #[error("{file}:{line}: {reason}")]
    Csv {
        /// The file as given.
        file: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The file cannot be opened or read.
    #[error("{file}: {source}")]
    Io {
        /// The file as given.
        file: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Prometheus cannot be reached, refused the query or answered something unreadable.
    #[error("Prometheus at {url}: {reason}")]
    Prometheus {
        /// The server's base URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The query matched nothing.
    #[error("Prometheus at {url}: query {query:?} returned no series in the requested range")]
    NoSeries {
        /// The server's base URL.
        url: String,
        /// The PromQL query.
        query: String,
    },
    /// Invalid request parameters (range, step).
    #[error("{0}")]
    Request(String),
}
