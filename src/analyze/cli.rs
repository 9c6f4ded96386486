//! The `soakd analyze` command: its arguments, their validation, reading the input, and the
//! exit code.
//!
//! # Inputs (exactly one)
//! - `soakd analyze FILE.csv [FILE2.csv …]`: one series per file ([`super::csv`]); each series
//!   gets the label `file` = the path as given.
//! - `soakd analyze --prometheus URL --query PROMQL --range DUR [--step DUR] [--end TIME]`: a
//!   `query_range` over `[end − range, end]` ([`super::prometheus`]). `--end` is Unix seconds
//!   or RFC 3339 (`2024-05-01T12:00:00Z`, an offset like `+02:00`, or no zone = UTC); default
//!   now. `--step` defaults to [`default_step`]: 15 s (Prometheus's default scrape interval),
//!   or `range / 40,000` rounded up to whole seconds when that is larger (ranges over about
//!   7 days), so a series is at most ~40,000 points, fetched in requests of at most
//!   [`super::prometheus::MAX_POINTS_PER_REQUEST`] points. Each request times out after
//!   [`REQUEST_TIMEOUT`].
//!
//! # Settings
//! - Windows and thresholds: the `[monitor]` section of `--config FILE` (the file is read as a
//!   soakd config — environment `SOAKD__*` included, unknown keys refused — and its
//!   `[monitor]` validated as `soakd run` does; the other sections are not validated, so a
//!   run config whose API-key variable is not set here still works). Without `--config`: the
//!   monitor's defaults (windows 5m, 30m, 2h; 50 MiB/h and 10 %/h for RSS, 60 fds/h, 30
//!   threads/h; growth floor 4 MiB and 2 %). `--windows 5m,30m,2h` replaces the windows
//!   either way.
//! - `--warmup DUR` (default 0): seconds at the start of each series not fitted. Not taken
//!   from the config's `monitor.warmup`: a recorded series is usually a slice of a long-lived
//!   process's life, with no start-up transient in it; skipping its first minutes would only
//!   lose data. Pass `--warmup 3m` when the data starts at the process's start.
//! - `--load-period DUR` (default none): the load's own cycle in the run the series come
//!   from (its burst `every`, or its looping stages' total), as `soakd run` passes it to the
//!   monitor: with `--resource fds`, troughs at least one load cycle apart in windows holding
//!   six cycles.
//! - `--resource rss|fds|threads` (default rss) selects the thresholds and the units.
//!
//! # Exit codes
//! [`exit::PASS`] for `ok` or `unknown`, [`exit::FAIL`] for `leak`, [`exit::RUNTIME`] for input
//! that cannot be read ([`InputError`]), [`exit::CONFIG`] for a bad config or contradictory or
//! invalid arguments — checked before any file is read or request sent.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;

use super::prometheus::{fetch_range, plan_chunks, RangeQuery, MAX_POINTS_PER_REQUEST};
use super::run::{analyze, Analysis, AnalyzeSettings};
use super::{csv, text, InputError, Series};
use crate::config::{self, Overrides};
use crate::exit;
use crate::monitor::judge::{min_r2_deprecation, LeakRules};
use crate::monitor::trend::DEFAULT_CONFIDENCE;
use crate::monitor::{RawMonitor, Resource, Verdict, Window};
use crate::units::{self, ConfigError};

/// Timeout of each Prometheus request (connect, send, read the whole answer).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Connect timeout of each Prometheus request.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The smallest default `--step`, seconds.
pub const MIN_DEFAULT_STEP_SECS: u64 = 15;

/// Points per series the default `--step` aims at for long ranges.
pub const DEFAULT_STEP_POINTS: u64 = 40_000;

/// `soakd analyze`: post-hoc leak analysis of recorded series.
#[derive(Debug, Clone, Default, Args)]
pub struct AnalyzeArgs {
    /// CSV files with the header `timestamp_seconds,value`, one series each. Not with
    /// --prometheus.
    #[arg(value_name = "FILE.csv")]
    pub files: Vec<PathBuf>,
    /// Prometheus base URL, e.g. http://127.0.0.1:9090 (needs --query and --range).
    #[arg(long, value_name = "URL")]
    pub prometheus: Option<String>,
    /// PromQL whose series to analyse, e.g. 'process_resident_memory_bytes{job="litellm"}'.
    #[arg(long, value_name = "PROMQL")]
    pub query: Option<String>,
    /// How far back from --end to read, e.g. "6h" or "14d".
    #[arg(long, value_name = "DURATION")]
    pub range: Option<String>,
    /// Query resolution (default 15s, coarser for ranges over ~7 days).
    #[arg(long, value_name = "DURATION")]
    pub step: Option<String>,
    /// End of the range: Unix seconds or RFC 3339 (default now).
    #[arg(long, value_name = "TIME")]
    pub end: Option<String>,
    /// What the values are: rss (bytes), fds or threads.
    #[arg(long, value_name = "RESOURCE", default_value = "rss")]
    pub resource: String,
    /// soakd config whose `[monitor]` windows and thresholds apply.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Growth windows, comma-separated, e.g. "5m,30m,2h" (overrides the config's).
    #[arg(long, value_delimiter = ',', value_name = "DURATIONS")]
    pub windows: Option<Vec<String>>,
    /// Time at the start of each series that is not fitted (default 0).
    #[arg(long, value_name = "DURATION")]
    pub warmup: Option<String>,
    /// The load's own cycle in the recorded run (its burst period, or its looping stages'
    /// total), e.g. "15s"; fds troughs are then taken at least one cycle apart.
    #[arg(long, value_name = "DURATION")]
    pub load_period: Option<String>,
    /// Print the analysis as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Where the series come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// CSV files, in the order given.
    Csv(Vec<PathBuf>),
    /// A Prometheus range query.
    Prometheus(RangeQuery),
}

/// The validated command.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    /// The input.
    pub input: Input,
    /// Windows, thresholds, resource, confidence, warm-up.
    pub settings: AnalyzeSettings,
    /// JSON output.
    pub json: bool,
    /// Warnings to print before the analysis (a deprecated config key).
    pub warnings: Vec<String>,
}

/// The default `--step` for a range (module rules), seconds.
pub fn default_step(range_secs: f64) -> f64 {
    let per_points = (range_secs / DEFAULT_STEP_POINTS as f64).ceil();
    per_points.max(MIN_DEFAULT_STEP_SECS as f64)
}

/// Parses `--end`: Unix seconds, or RFC 3339 with `Z`, an offset `±HH:MM`, or no zone (UTC).
pub fn parse_end(v: &str) -> Result<f64, ConfigError> {
    let t = v.trim();
    if let Ok(secs) = t.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Ok(secs);
        }
        return Err(ConfigError::invalid(
            "--end",
            v,
            "must be Unix seconds of 0 or more",
        ));
    }
    let bad = |why: String| {
        ConfigError::invalid(
            "--end",
            v,
            format!("{why}; use Unix seconds or RFC 3339 like 2024-05-01T12:00:00Z"),
        )
    };
    // A trailing ±HH:MM offset after the time of day (humantime reads UTC only).
    let tail_at = t.len().checked_sub(6).filter(|_| t.is_ascii());
    let (stamp, offset) = match tail_at.map(|i| (i, &t[i..])) {
        Some((i, tail))
            if i > 10
                && (tail.starts_with('+') || tail.starts_with('-'))
                && tail.as_bytes()[3] == b':' =>
        {
            let h: i64 = tail[1..3].parse().map_err(|_| bad("bad offset".into()))?;
            let m: i64 = tail[4..6].parse().map_err(|_| bad("bad offset".into()))?;
            if h > 23 || m > 59 {
                return Err(bad("bad offset".into()));
            }
            let sign = if tail.starts_with('-') { -1 } else { 1 };
            (&t[..i], sign * (h * 3600 + m * 60))
        }
        _ => (t, 0),
    };
    let time = humantime::parse_rfc3339_weak(stamp).map_err(|e| bad(e.to_string()))?;
    let secs = match time.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(_) => return Err(bad("before 1970".into())),
    };
    // Local time = UTC + offset, so UTC = local − offset.
    Ok(secs - offset as f64)
}

/// Parses `--windows` values: positive durations, no two of the same length.
fn parse_windows(values: &[String]) -> Result<Vec<Window>, ConfigError> {
    if values.iter().all(|v| v.trim().is_empty()) {
        return Err(ConfigError::invalid(
            "--windows",
            "",
            "needs at least one window",
        ));
    }
    Window::parse_list("--windows", values, |field, v| {
        units::positive_duration(field, v.trim())
    })
}

fn parse_resource(v: &str) -> Result<Resource, ConfigError> {
    Resource::ALL
        .iter()
        .copied()
        .find(|r| r.as_str() == v.trim())
        .ok_or_else(|| ConfigError::invalid("--resource", v, "must be rss, fds or threads"))
}

impl AnalyzeArgs {
    /// Validates the arguments and loads the config; `now` is the default `--end` (Unix
    /// seconds) and `env` the environment for `SOAKD__*` overrides of the config file.
    pub fn command(
        &self,
        now: f64,
        env: &std::collections::HashMap<String, String>,
    ) -> Result<Command, ConfigError> {
        let resource = parse_resource(&self.resource)?;
        let mut warnings = Vec::new();
        let monitor = match &self.config {
            Some(path) => {
                let raw = config::load(Some(path), env, &Overrides::default())?;
                warnings.extend(min_r2_deprecation(raw.monitor.thresholds.min_r2));
                raw.monitor.validate()?
            }
            None => RawMonitor::default().validate()?,
        };
        let windows = match &self.windows {
            Some(w) => parse_windows(w)?,
            None => monitor.windows.clone(),
        };
        let warmup = match &self.warmup {
            Some(w) => units::duration("--warmup", w)?.as_secs_f64(),
            None => 0.0,
        };
        let load_period = match &self.load_period {
            Some(p) => Some(units::positive_duration("--load-period", p)?.as_secs_f64()),
            None => None,
        };
        let settings = AnalyzeSettings {
            windows,
            rules: LeakRules::from_thresholds(&monitor.thresholds),
            resource,
            confidence: DEFAULT_CONFIDENCE,
            warmup,
            load_period,
        };
        let input = self.input(now)?;
        Ok(Command {
            input,
            settings,
            json: self.json,
            warnings,
        })
    }

    fn input(&self, now: f64) -> Result<Input, ConfigError> {
        let Some(url) = &self.prometheus else {
            let stray = [
                ("--query", &self.query),
                ("--range", &self.range),
                ("--step", &self.step),
                ("--end", &self.end),
            ];
            if let Some((flag, Some(v))) = stray.iter().find(|(_, v)| v.is_some()) {
                return Err(ConfigError::invalid(
                    *flag,
                    v,
                    "applies only with --prometheus URL",
                ));
            }
            if self.files.is_empty() {
                return Err(ConfigError::invalid(
                    "input",
                    "(none)",
                    "give CSV files (soakd analyze FILE.csv …) or --prometheus URL --query \
                     PROMQL --range DUR",
                ));
            }
            return Ok(Input::Csv(self.files.clone()));
        };
        if let Some(f) = self.files.first() {
            return Err(ConfigError::invalid(
                "--prometheus",
                url,
                format!(
                    "cannot be combined with CSV files ({}); analyse one input at a time",
                    f.display()
                ),
            ));
        }
        let base = units::http_url("--prometheus", url)?;
        let query = match self.query.as_deref().map(str::trim) {
            Some(q) if !q.is_empty() => q.to_string(),
            Some(q) => return Err(ConfigError::invalid("--query", q, "must not be empty")),
            None => {
                return Err(ConfigError::invalid(
                    "--prometheus",
                    url,
                    "needs --query PROMQL",
                ))
            }
        };
        let Some(range) = &self.range else {
            return Err(ConfigError::invalid(
                "--prometheus",
                url,
                "needs --range DUR (how far back to read, e.g. 6h)",
            ));
        };
        let range = units::positive_duration("--range", range)?.as_secs_f64();
        let step = match &self.step {
            Some(s) => units::positive_duration("--step", s)?.as_secs_f64(),
            None => default_step(range),
        };
        let end = match &self.end {
            Some(e) => parse_end(e)?,
            None => now,
        };
        let start = end - range;
        if start < 0.0 {
            return Err(ConfigError::invalid(
                "--range",
                units::fmt_duration(Duration::from_secs_f64(range)),
                "reaches before 1970 from --end",
            ));
        }
        plan_chunks(start, end, step, MAX_POINTS_PER_REQUEST).map_err(|e| {
            ConfigError::invalid(
                "--step",
                units::fmt_duration(Duration::from_secs_f64(step)),
                e.to_string(),
            )
        })?;
        Ok(Input::Prometheus(RangeQuery {
            base,
            query,
            start,
            end,
            step,
        }))
    }
}

/// Reads the series of `input`; a CSV series gets the label `file`.
pub fn read(input: &Input) -> Result<Vec<Series>, InputError> {
    match input {
        Input::Csv(files) => files
            .iter()
            .map(|f| {
                let mut s = csv::read_csv(f)?;
                s.labels.insert("file".into(), f.display().to_string());
                Ok(s)
            })
            .collect(),
        Input::Prometheus(q) => {
            let client = reqwest::Client::builder()
                .timeout(REQUEST_TIMEOUT)
                .connect_timeout(CONNECT_TIMEOUT)
                .build()
                .map_err(|e| InputError::Prometheus {
                    url: q.base.to_string(),
                    reason: format!("cannot build the HTTP client: {e}"),
                })?;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| InputError::Prometheus {
                    url: q.base.to_string(),
                    reason: format!("cannot start the runtime: {e}"),
                })?;
            rt.block_on(fetch_range(&client, q))
        }
    }
}

/// The exit code of a verdict: 1 for leak, 0 otherwise.
pub fn exit_code(verdict: Verdict) -> u8 {
    match verdict {
        Verdict::Leak => exit::FAIL,
        Verdict::Ok | Verdict::Unknown => exit::PASS,
    }
}

/// Runs `soakd analyze`: validate, read, analyse, print; returns the exit code.
pub fn run(args: &AnalyzeArgs) -> u8 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let env = std::env::vars().collect();
    let cmd = match args.command(now, &env) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("soakd analyze: {e}");
            return exit::CONFIG;
        }
    };
    for w in &cmd.warnings {
        eprintln!("soakd analyze: warning: {w}");
    }
    let series = match read(&cmd.input) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("soakd analyze: {e}");
            return exit::RUNTIME;
        }
    };
    let a: Analysis = analyze(&series, &cmd.settings);
    let out = if cmd.json {
        match serde_json::to_string_pretty(&a) {
            Ok(j) => j + "\n",
            Err(e) => {
                eprintln!("soakd analyze: cannot write JSON: {e}");
                return exit::RUNTIME;
            }
        }
    } else {
        text::render(&a, &cmd.settings)
    };
    // A closed pipe (`| head`) is the reader's choice, not a failure of the analysis.
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
    {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("soakd analyze: cannot write the output: {e}");
            return exit::RUNTIME;
        }
    }
    exit_code(a.verdict)
}

#[cfg(test)]
#[path = "cli_tests.rs"]
mod tests;
