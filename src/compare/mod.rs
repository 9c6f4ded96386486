//! `soakd compare BASE.json NEW.json`: two runs' summary JSON side by side, for CI gates.
//!
//! # Inputs
//! Each file must be a summary written by `soakd run` (`[run] summary_json`) whose
//! `schema_version` is [`SUMMARY_SCHEMA_VERSION`]. A file that cannot be read, is not JSON, has
//! no `schema_version` (not a summary, or one written before versioning) or another version is
//! refused ([`CompareError`], exit 2): comparing fields whose meaning may have moved would give
//! a verdict nobody can trust.
//!
//! # Rules
//! Each row compares one quantity of BASE and NEW. A row is a **regression** when NEW is worse
//! than BASE by more than its limit ([`Key`], set with `--max-regression key=limit`):
//! - `p50_latency`, `p99_latency` (request duration), `p50_ttft`, `p99_ttft`: relative %,
//!   `new > base × (1 + limit/100)`; defaults 10 % for p50, 25 % for p99;
//! - `error_ratio`: percentage points, `new − base > limit`; default 1 point;
//! - `rss_per_request`: per process (matched by name), RSS growth per request in the longest
//!   window that has one, relative %; default 25 %. A difference under
//!   [`RSS_PER_REQUEST_FLOOR`] (1 KiB per request) is noise and never a regression;
//! - `retained_after_burst`: per process, RSS retained after the last burst, relative %;
//!   default 25 %, never a regression under [`RETAINED_FLOOR`] (4 MiB); no row when neither
//!   run had a burst.
//!
//! The relative rules read `new > base + max(|base| × limit/100, floor)`, so a base at or
//! below zero (a shrinking process) is judged on the floor alone. A row without data on either
//! side is "not compared", never a regression.
//!
//! **Aborted** requests (stopped by soakd at the end of the grace period) are shown in a row
//! of their own when either run had any, for information: `[thresholds] max_aborted` judges
//! them in the run itself.
//!
//! A **leak verdict** (`rss`, `fds` or `threads`) that is `leak` in NEW and not in BASE is a
//! regression whatever the limits; a leak in both is shown and is not a new regression. soakd's
//! own process (`soakd`) is shown for information only: its growth never fails a comparison,
//! as it never fails a run.
//!
//! # Exit codes
//! 0 no regression, 1 at least one regression ([`Comparison::exit_code`]), 2 a file that is not
//! a summary of a known version, 78 a bad `--max-regression`.

mod output;

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::report::SUMMARY_SCHEMA_VERSION;
use crate::units::{ConfigError, MIB};

/// A per-request RSS growth difference below this many bytes is never a regression.
pub const RSS_PER_REQUEST_FLOOR: f64 = 1024.0;
/// A retained-after-burst difference below this many bytes is never a regression.
pub const RETAINED_FLOOR: f64 = 4.0 * MIB;

/// The name soakd's own process has in every summary.
const SELF_NAME: &str = crate::monitor::settings::SELF_NAME;

/// A file that cannot be compared.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The path given.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not a soakd summary.
    #[error("{path} is not a soakd summary: {why}")]
    NotASummary {
        /// The path given.
        path: String,
        /// What is wrong.
        why: String,
    },
    /// A summary of another layout version.
    #[error(
        "{path} has schema_version {found}; this soakd reads schema_version {}",
        SUMMARY_SCHEMA_VERSION
    )]
    UnknownSchema {
        /// The path given.
        path: String,
        /// The version in the file.
        found: serde_json::Value,
    },
}

/// One compared quantity, with its limit's unit and default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Key {
    P50Latency,
    P99Latency,
    P50Ttft,
    P99Ttft,
    ErrorRatio,
    RssPerRequest,
    RetainedAfterBurst,
}

impl Key {
    /// Every key, in table order.
    pub const ALL: [Key; 7] = [
        Key::P50Latency,
        Key::P99Latency,
        Key::P50Ttft,
        Key::P99Ttft,
        Key::ErrorRatio,
        Key::RssPerRequest,
        Key::RetainedAfterBurst,
    ];

    /// The `--max-regression` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Key::P50Latency => "p50_latency",
            Key::P99Latency => "p99_latency",
            Key::P50Ttft => "p50_ttft",
            Key::P99Ttft => "p99_ttft",
            Key::ErrorRatio => "error_ratio",
            Key::RssPerRequest => "rss_per_request",
            Key::RetainedAfterBurst => "retained_after_burst",
        }
    }

    /// The default limit: relative % for every key but `error_ratio` (percentage points).
    pub fn default_limit(self) -> f64 {
        match self {
            Key::P50Latency | Key::P50Ttft => 10.0,
            Key::P99Latency | Key::P99Ttft => 25.0,
            Key::ErrorRatio => 1.0,
            Key::RssPerRequest | Key::RetainedAfterBurst => 25.0,
        }
    }

    /// Differences at or under this (in the row's unit) are never a regression.
    fn floor(self) -> f64 {
        match self {
            Key::RssPerRequest => RSS_PER_REQUEST_FLOOR,
            Key::RetainedAfterBurst => RETAINED_FLOOR,
            _ => 0.0,
        }
    }

    fn from_name(s: &str) -> Option<Key> {
        Key::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// The limit of every key.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits([f64; 7]);

impl Default for Limits {
    fn default() -> Self {
        Limits(Key::ALL.map(Key::default_limit))
    }
}

impl Limits {
    /// The limit of `k`.
    pub fn get(&self, k: Key) -> f64 {
        self.0[k as usize]
    }

    /// Parses `--max-regression` values: `key=limit` pairs (several per value, comma
    /// separated, are accepted too); a limit may end in `%` (relative keys) or `pp`
    /// (`error_ratio`). Later pairs win. Errors name the flag, the pair and the reason.
    pub fn parse<S: AsRef<str>>(pairs: &[S]) -> Result<Limits, ConfigError> {
        const FLAG: &str = "--max-regression";
        let mut limits = Limits::default();
        for pair in pairs.iter().flat_map(|p| p.as_ref().split(',')) {
            let pair = pair.trim();
            if pair.is_empty() {
                continue;
            }
            let Some((k, v)) = pair.split_once('=') else {
                return Err(ConfigError::invalid(FLAG, pair, "expected key=limit"));
            };
            let key = Key::from_name(k.trim()).ok_or_else(|| {
                let known: Vec<&str> = Key::ALL.iter().map(|k| k.as_str()).collect();
                ConfigError::invalid(
                    FLAG,
                    pair,
                    format!("unknown key; must be one of: {}", known.join(", ")),
                )
            })?;
            let v = v.trim();
            let number = if key == Key::ErrorRatio {
                v.strip_suffix("pp").unwrap_or(v)
            } else {
                v.strip_suffix('%').unwrap_or(v)
            };
            let limit: f64 = number.trim().parse().map_err(|_| {
                let unit = if key == Key::ErrorRatio {
                    "percentage points, e.g. error_ratio=0.5"
                } else {
                    "a relative percentage, e.g. p99_ttft=20"
                };
                ConfigError::invalid(FLAG, pair, format!("the limit must be {unit}"))
            })?;
            if !(limit.is_finite() && limit >= 0.0) {
                return Err(ConfigError::invalid(
                    FLAG,
                    pair,
                    "the limit must be 0 or more",
                ));
            }
            limits.0[key as usize] = limit;
        }
        Ok(limits)
    }
}

/// The parts of a summary that `compare` reads (schema version 1).
#[derive(Debug, Clone, Deserialize)]
pub struct RunSummary {
    pub schema_version: u32,
    pub run_id: String,
    pub target: String,
    pub verdict: String,
    pub exit_code: i32,
    pub requests_finished: u64,
    pub errors: u64,
    /// Requests soakd stopped at the end of the grace period (absent before it was counted).
    #[serde(default)]
    pub aborted: u64,
    #[serde(default)]
    pub suspect: bool,
    pub latency: Latency,
    pub monitor: Option<MonitorView>,
}

/// `latency` of a summary.
#[derive(Debug, Clone, Deserialize)]
pub struct Latency {
    pub duration: Pct,
    pub ttft: Pct,
}

/// Percentiles in seconds.
#[derive(Debug, Clone, Deserialize)]
pub struct Pct {
    pub count: u64,
    pub p50: f64,
    pub p99: f64,
}

/// `monitor` of a summary.
#[derive(Debug, Clone, Deserialize)]
pub struct MonitorView {
    pub processes: Vec<ProcessView>,
}

/// One process of `monitor.processes`.
#[derive(Debug, Clone, Deserialize)]
pub struct ProcessView {
    pub name: String,
    pub windows: Vec<WindowView>,
    pub retained_after_burst_bytes: Option<f64>,
    pub verdict: Verdicts,
}

/// One window of a process (shortest first).
#[derive(Debug, Clone, Deserialize)]
pub struct WindowView {
    pub window: String,
    pub rss_bytes_per_request: Option<f64>,
}

/// Leak verdicts of a process: `leak`, `ok` or `unknown`.
#[derive(Debug, Clone, Deserialize)]
pub struct Verdicts {
    pub rss: String,
    pub fds: String,
    pub threads: String,
}

impl Verdicts {
    fn get(&self, resource: &str) -> &str {
        match resource {
            "rss" => &self.rss,
            "fds" => &self.fds,
            _ => &self.threads,
        }
    }
}

impl RunSummary {
    /// Parses a summary from JSON text; `path` names it in errors.
    pub fn parse(text: &str, path: &str) -> Result<RunSummary, CompareError> {
        let not = |why: String| CompareError::NotASummary {
            path: path.to_owned(),
            why,
        };
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| not(format!("not JSON ({e})")))?;
        let Some(version) = v.get("schema_version") else {
            return Err(not(
                "no schema_version (not written by `soakd run`, or by a soakd older than \
                 schema_version 1)"
                    .into(),
            ));
        };
        if version.as_u64() != Some(u64::from(SUMMARY_SCHEMA_VERSION)) {
            return Err(CompareError::UnknownSchema {
                path: path.to_owned(),
                found: version.clone(),
            });
        }
        serde_json::from_value(v).map_err(|e| not(e.to_string()))
    }

    /// Reads and parses a summary file.
    pub fn load(path: &Path) -> Result<RunSummary, CompareError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| CompareError::Read {
            path: name.clone(),
            source,
        })?;
        Self::parse(&text, &name)
    }

    fn error_ratio(&self) -> Option<f64> {
        (self.requests_finished > 0).then(|| self.errors as f64 / self.requests_finished as f64)
    }

    fn process(&self, name: &str) -> Option<&ProcessView> {
        self.monitor
            .as_ref()?
            .processes
            .iter()
            .find(|p| p.name == name)
    }

    fn processes(&self) -> &[ProcessView] {
        self.monitor.as_ref().map_or(&[], |m| &m.processes)
    }
}

impl ProcessView {
    /// RSS growth per request of the longest window that has one, with its label.
    fn rss_per_request(&self) -> Option<(f64, &str)> {
        self.windows
            .iter()
            .rev()
            .find_map(|w| w.rss_bytes_per_request.map(|v| (v, w.window.as_str())))
    }
}

/// The outcome of one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RowStatus {
    /// Within the limit (or better).
    Ok,
    /// Worse than BASE by more than the limit, or a new leak.
    Regression,
    /// No data on one side.
    NotCompared,
    /// Shown, never judged (soakd itself, a leak present in both runs).
    Info,
}

/// The unit of a row's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RowUnit {
    Seconds,
    /// Error ratio in percent; its change is in percentage points.
    Percent,
    Bytes,
    /// A leak verdict: no values.
    Verdict,
    /// A count of requests.
    Requests,
}

/// One line of the comparison.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The key (`p99_ttft`, `rss_per_request`, …) or `leak`.
    pub key: &'static str,
    /// The process (and for `leak` the resource, `process:resource`), when per process.
    pub subject: Option<String>,
    pub base: Option<f64>,
    pub new: Option<f64>,
    pub unit: RowUnit,
    /// Relative change in % (percentage points for `error_ratio`).
    pub change: Option<f64>,
    /// The limit on `change`.
    pub limit: Option<f64>,
    pub status: RowStatus,
    /// The windows compared, the verdicts, or why the row was not compared.
    pub detail: String,
}

/// Both runs compared.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub base: RunInfo,
    pub new: RunInfo,
    pub rows: Vec<Row>,
    pub regressions: usize,
}

/// Which run a side is.
#[derive(Debug, Clone, Serialize)]
pub struct RunInfo {
    pub file: String,
    pub run_id: String,
    pub target: String,
    pub verdict: String,
    pub exit_code: i32,
    pub suspect: bool,
}

impl RunInfo {
    fn of(s: &RunSummary, file: &str) -> RunInfo {
        RunInfo {
            file: file.to_owned(),
            run_id: s.run_id.clone(),
            target: s.target.clone(),
            verdict: s.verdict.clone(),
            exit_code: s.exit_code,
            suspect: s.suspect,
        }
    }
}

impl Comparison {
    /// [`crate::exit::FAIL`] when a row regressed, else [`crate::exit::PASS`].
    pub fn exit_code(&self) -> u8 {
        if self.regressions > 0 {
            crate::exit::FAIL
        } else {
            crate::exit::PASS
        }
    }
}

/// A relative row: `new > base + max(|base| × limit/100, floor)` regresses.
fn relative(
    key: Key,
    subject: Option<String>,
    unit: RowUnit,
    base: Option<f64>,
    new: Option<f64>,
    limits: &Limits,
    detail: String,
) -> Row {
    let limit = limits.get(key);
    let (change, status, detail) = match (base, new) {
        (Some(b), Some(n)) => {
            let change = (b != 0.0).then(|| (n - b) / b.abs() * 100.0);
            let allowed = b + (b.abs() * limit / 100.0).max(key.floor());
            let status = if n > allowed {
                RowStatus::Regression
            } else {
                RowStatus::Ok
            };
            (change, status, detail)
        }
        (None, _) => (None, RowStatus::NotCompared, "no data in BASE".to_owned()),
        (_, None) => (None, RowStatus::NotCompared, "no data in NEW".to_owned()),
    };
    Row {
        key: key.as_str(),
        subject,
        base,
        new,
        unit,
        change,
        limit: Some(limit),
        status,
        detail,
    }
}

/// Compares NEW against BASE under `limits`; `files` name them in the output.
pub fn compare(
    base: &RunSummary,
    new: &RunSummary,
    limits: &Limits,
    files: (&str, &str),
) -> Comparison {
    let mut rows = Vec::new();
    let latency = |s: &RunSummary, ttft: bool, p99: bool| {
        let p = if ttft {
            &s.latency.ttft
        } else {
            &s.latency.duration
        };
        (p.count > 0).then_some(if p99 { p.p99 } else { p.p50 })
    };
    for (key, ttft, p99) in [
        (Key::P50Latency, false, false),
        (Key::P99Latency, false, true),
        (Key::P50Ttft, true, false),
        (Key::P99Ttft, true, true),
    ] {
        rows.push(relative(
            key,
            None,
            RowUnit::Seconds,
            latency(base, ttft, p99),
            latency(new, ttft, p99),
            limits,
            String::new(),
        ));
    }
    rows.push(error_ratio_row(base, new, limits));
    if base.aborted > 0 || new.aborted > 0 {
        rows.push(Row {
            key: "aborted",
            subject: None,
            base: Some(base.aborted as f64),
            new: Some(new.aborted as f64),
            unit: RowUnit::Requests,
            change: None,
            limit: None,
            status: RowStatus::Info,
            detail: "still running at the end of the grace period: not successes; \
                     [thresholds] max_aborted judges them"
                .to_owned(),
        });
    }
    for p in new.processes() {
        let b = base.process(&p.name);
        let n_rpr = p.rss_per_request();
        let b_rpr = b.and_then(ProcessView::rss_per_request);
        let detail = match (b_rpr, n_rpr) {
            (Some((_, bw)), Some((_, nw))) if bw == nw => format!("window {nw}"),
            (Some((_, bw)), Some((_, nw))) => format!("windows {bw} / {nw}"),
            _ => String::new(),
        };
        let per_request = relative(
            Key::RssPerRequest,
            Some(p.name.clone()),
            RowUnit::Bytes,
            b_rpr.map(|(v, _)| v),
            n_rpr.map(|(v, _)| v),
            limits,
            detail,
        );
        let retained = relative(
            Key::RetainedAfterBurst,
            Some(p.name.clone()),
            RowUnit::Bytes,
            b.and_then(|b| b.retained_after_burst_bytes),
            p.retained_after_burst_bytes,
            limits,
            String::new(),
        );
        // Without a burst in either run there is no retention to compare: no row.
        let rows_of = [
            Some(per_request),
            (retained.base.is_some() || retained.new.is_some()).then_some(retained),
        ];
        for mut row in rows_of.into_iter().flatten() {
            if p.name == SELF_NAME && row.status != RowStatus::NotCompared {
                row.status = RowStatus::Info;
                row.detail = "soakd itself: shown, never judged".to_owned();
            }
            rows.push(row);
        }
        for resource in ["rss", "fds", "threads"] {
            if p.verdict.get(resource) != "leak" {
                continue;
            }
            let was = b.map_or("absent", |b| b.verdict.get(resource));
            let status = if p.name == SELF_NAME || was == "leak" {
                RowStatus::Info
            } else {
                RowStatus::Regression
            };
            rows.push(Row {
                key: "leak",
                subject: Some(format!("{}:{resource}", p.name)),
                base: None,
                new: None,
                unit: RowUnit::Verdict,
                change: None,
                limit: None,
                status,
                detail: format!("{was} -> leak"),
            });
        }
    }
    let regressions = rows
        .iter()
        .filter(|r| r.status == RowStatus::Regression)
        .count();
    Comparison {
        base: RunInfo::of(base, files.0),
        new: RunInfo::of(new, files.1),
        rows,
        regressions,
    }
}

fn error_ratio_row(base: &RunSummary, new: &RunSummary, limits: &Limits) -> Row {
    let limit = limits.get(Key::ErrorRatio);
    let (b, n) = (
        base.error_ratio().map(|r| r * 100.0),
        new.error_ratio().map(|r| r * 100.0),
    );
    let (change, status, detail) = match (b, n) {
        (Some(b), Some(n)) => {
            let status = if n - b > limit {
                RowStatus::Regression
            } else {
                RowStatus::Ok
            };
            (Some(n - b), status, String::new())
        }
        (None, _) => (None, RowStatus::NotCompared, "no request in BASE".into()),
        (_, None) => (None, RowStatus::NotCompared, "no request in NEW".into()),
    };
    Row {
        key: Key::ErrorRatio.as_str(),
        subject: None,
        base: b,
        new: n,
        unit: RowUnit::Percent,
        change,
        limit: Some(limit),
        status,
        detail,
    }
}

#[cfg(test)]
mod tests;
