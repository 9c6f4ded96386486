//! The `[monitor]` config section: raw structs mirroring the file, validated into
//! [`MonitorSettings`].

use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use crate::units::{self, ConfigError, MIB};

/// Fewest fit points (closed buckets) a window needs before it reports a slope.
pub const MIN_POINTS: usize = 8;

/// Name reserved for soakd's own process, which is always sampled.
pub const SELF_NAME: &str = "soakd";

/// Name of the process `--watch-pid` adds.
pub const WATCH_PID_NAME: &str = "target";

/// `[monitor]` as written in the file.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize, Default, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RawMonitor {
    /// How often every process is sampled, e.g. "5s" (default "5s").
    pub sample_interval: Option<String>,
    /// Time after the start (and after every restart of a process) whose samples the fit
    /// ignores, so start-up allocation is not taken for a leak (default "3m").
    pub warmup: Option<String>,
    /// Growth windows, e.g. ["5m", "30m", "2h"] (the default). Each string is also the
    /// `window` label value.
    pub windows: Option<Vec<String>>,
    /// How long after a burst ends the retained RSS is measured (default "30s").
    pub burst_settle: Option<String>,
    /// How long a change into or out of `leak` must hold before it is reported (default
    /// "15s"): the hysteresis of `soakd_leak_suspected`.
    pub confirm: Option<String>,
    /// When growth counts as a leak.
    pub thresholds: RawLeakThresholds,
    /// The processes to watch besides soakd itself.
    pub processes: Vec<RawProcess>,
}

/// `[monitor.thresholds]`: when a window's growth counts as a leak.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize, Default, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RawLeakThresholds {
    /// RSS growth in MiB per hour above which a window may call a leak (default 50); the
    /// growth must also pass `rss_percent_per_hour`.
    pub rss_mib_per_hour: Option<f64>,
    /// RSS growth per hour, as a percentage of the post-warm-up baseline RSS, above which a
    /// window may call a leak (default 10); the growth must also pass `rss_mib_per_hour`.
    pub rss_percent_per_hour: Option<f64>,
    /// Deprecated and ignored (still validated, 0–1): a window now calls a leak on the lower
    /// confidence bound of its slope, which needs no R² gate. A warning is logged when set.
    pub min_r2: Option<f64>,
    /// Least RSS growth fitted across a window for it to call a leak, bytes or a size such
    /// as "4MiB" (default 4 MiB); the growth must also pass `min_growth_percent`.
    #[serde(with = "units::serde_opt_size", default)]
    pub min_growth_bytes: Option<u64>,
    /// Least RSS growth fitted across a window, as a percentage of the baseline (default 2).
    pub min_growth_percent: Option<f64>,
    /// Open file descriptors gained per hour that count as a leak (default 60).
    pub fds_per_hour: Option<f64>,
    /// Threads gained per hour that count as a leak (default 30).
    pub threads_per_hour: Option<f64>,
}

/// One `[[monitor.processes]]` entry. Exactly one source: `pid`, `pid_file`,
/// `match_name`/`match_cmdline` (either or both), or `scrape_url`.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize, Default, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RawProcess {
    /// The `process` label value: `[a-zA-Z_][a-zA-Z0-9_-]*`, unique, not "soakd".
    pub name: String,
    /// A fixed process id.
    pub pid: Option<u32>,
    /// A file holding the process id, re-read at every sample.
    pub pid_file: Option<PathBuf>,
    /// The process name (`/proc/<pid>/comm`), matched exactly.
    pub match_name: Option<String>,
    /// A substring of the command line (arguments joined by spaces).
    pub match_cmdline: Option<String>,
    /// The process's own Prometheus endpoint (http or https).
    pub scrape_url: Option<String>,
    /// Metric names to read from `scrape_url` (defaults: the standard `process_*` names).
    pub scrape_metrics: Option<RawScrapeMetrics>,
    /// Whether this process's `leak` verdict fails the run (default true; see
    /// `[thresholds] leak_verdicts`). `false` keeps it monitored and reported only.
    pub fail_on_leak: Option<bool>,
    /// Watch the process with all its descendants, found again at every sample (default
    /// false; local sources only): memory is their summed PSS, fds and threads are summed.
    /// With `match_*` matching a wrapper and what it runs, the tree of the outermost match.
    pub include_children: Option<bool>,
}

/// Metric names read from a scraped endpoint.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize, Default, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RawScrapeMetrics {
    /// Resident memory in bytes (default `process_resident_memory_bytes`).
    pub rss: Option<String>,
    /// Open file descriptors (default `process_open_fds`).
    pub fds: Option<String>,
    /// Threads (default `process_threads`).
    pub threads: Option<String>,
    /// Start time in seconds since the epoch, for restart detection
    /// (default `process_start_time_seconds`).
    pub start_time: Option<String>,
    /// CPU seconds (default `process_cpu_seconds_total`).
    pub cpu: Option<String>,
}

/// Validated monitor settings.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorSettings {
    /// Sampling period.
    pub sample_interval: Duration,
    /// Samples ignored by the fit after the start and after every restart.
    pub warmup: Duration,
    /// Growth windows, sorted by duration, shortest first.
    pub windows: Vec<Window>,
    /// Delay after a burst ends before retained RSS is measured.
    pub burst_settle: Duration,
    /// Leak thresholds.
    pub thresholds: LeakThresholds,
    /// Hysteresis of the reported leak verdict.
    pub confirm: Duration,
    /// Watched processes (soakd itself is added by the monitor).
    pub processes: Vec<ProcessSpec>,
    /// The load's own cycle (bursts, looping stages), from the plan rather than `[monitor]`:
    /// the least trough width of fds ([`super::trend::TrendSet::with_load_period`]).
    pub load_period: Option<Duration>,
}

/// A growth window: its label as written and its length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// The `window` label value, e.g. "5m".
    pub label: String,
    /// The parsed length.
    pub duration: Duration,
}

impl Window {
    /// The windows of list `field` (each item named `field[i]`), shortest first: each value is
    /// trimmed into its label and its length comes from `parse(item field, value as written)`;
    /// no two may have the same length. Whether an empty list is allowed is the caller's rule.
    pub fn parse_list(
        field: &str,
        values: &[String],
        parse: impl Fn(&str, &str) -> Result<Duration, ConfigError>,
    ) -> Result<Vec<Window>, ConfigError> {
        let mut windows: Vec<Window> = Vec::with_capacity(values.len());
        for (i, v) in values.iter().enumerate() {
            let item = format!("{field}[{i}]");
            let duration = parse(&item, v)?;
            if windows.iter().any(|w| w.duration == duration) {
                return Err(ConfigError::invalid(&item, v, "duplicate window length"));
            }
            windows.push(Window {
                label: v.trim().to_string(),
                duration,
            });
        }
        windows.sort_by_key(|w| w.duration);
        Ok(windows)
    }
}

/// Validated leak thresholds, in per-hour units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LeakThresholds {
    /// Absolute RSS growth, bytes per hour.
    pub rss_bytes_per_hour: f64,
    /// Relative RSS growth per hour, as a fraction of the baseline (0.10 = 10 %/h).
    pub rss_fraction_per_hour: f64,
    /// The deprecated `min_r2` as written (ignored; logged once as deprecated).
    pub min_r2: Option<f64>,
    /// Least RSS growth across a window, bytes.
    pub min_growth_bytes: f64,
    /// Least RSS growth across a window, fraction of the baseline (0.02 = 2 %).
    pub min_growth_fraction: f64,
    /// File descriptors per hour.
    pub fds_per_hour: f64,
    /// Threads per hour.
    pub threads_per_hour: f64,
}

impl Default for LeakThresholds {
    fn default() -> Self {
        LeakThresholds {
            rss_bytes_per_hour: 50.0 * MIB,
            rss_fraction_per_hour: 0.10,
            min_r2: None,
            min_growth_bytes: 4.0 * MIB,
            min_growth_fraction: 0.02,
            fds_per_hour: 60.0,
            threads_per_hour: 30.0,
        }
    }
}

/// A watched process.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessSpec {
    /// The `process` label value.
    pub name: String,
    /// Where its numbers come from.
    pub source: Source,
    /// Whether its `leak` verdicts fail the run (with `[thresholds] leak_verdicts` on).
    pub fail_on_leak: bool,
    /// Watched with its descendants ([`super::local::read_tree`]).
    pub include_children: bool,
}

/// Where a process's numbers come from; exactly one per process.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A fixed pid, read from /proc.
    Pid(u32),
    /// A pid file, re-read at every sample.
    PidFile(PathBuf),
    /// The oldest process whose comm equals `name` and/or whose command line contains
    /// `cmdline`; re-resolved when it is gone.
    Match {
        /// Exact process name (comm).
        name: Option<String>,
        /// Substring of the command line.
        cmdline: Option<String>,
    },
    /// The process's own Prometheus endpoint.
    Scrape {
        /// http(s) URL of the exposition.
        url: Url,
        /// Metric names to read.
        names: ScrapeNames,
    },
}

impl Source {
    /// True for sources read from the platform's process table (every one but a scrape).
    pub fn is_local(&self) -> bool {
        !matches!(self, Source::Scrape { .. })
    }

    /// Short kind name for reports: pid, pid_file, match, scrape.
    pub fn kind(&self) -> &'static str {
        match self {
            Source::Pid(_) => "pid",
            Source::PidFile(_) => "pid_file",
            Source::Match { .. } => "match",
            Source::Scrape { .. } => "scrape",
        }
    }
}

/// Metric names read from a scraped endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrapeNames {
    /// Resident memory bytes.
    pub rss: String,
    /// Open fds.
    pub fds: String,
    /// Threads.
    pub threads: String,
    /// Start time, seconds since the epoch.
    pub start_time: String,
    /// CPU seconds.
    pub cpu: String,
}

impl Default for ScrapeNames {
    fn default() -> Self {
        ScrapeNames {
            rss: "process_resident_memory_bytes".into(),
            fds: "process_open_fds".into(),
            threads: "process_threads".into(),
            start_time: "process_start_time_seconds".into(),
            cpu: "process_cpu_seconds_total".into(),
        }
    }
}

fn positive(field: &str, v: Option<f64>, default: f64) -> Result<f64, ConfigError> {
    units::positive(field, v.unwrap_or(default))
}

impl RawLeakThresholds {
    fn validate(&self) -> Result<LeakThresholds, ConfigError> {
        let d = LeakThresholds::default();
        let min_r2 = self
            .min_r2
            .map(|v| units::fraction("monitor.thresholds.min_r2", v))
            .transpose()?;
        Ok(LeakThresholds {
            rss_bytes_per_hour: positive(
                "monitor.thresholds.rss_mib_per_hour",
                self.rss_mib_per_hour,
                d.rss_bytes_per_hour / MIB,
            )? * MIB,
            rss_fraction_per_hour: positive(
                "monitor.thresholds.rss_percent_per_hour",
                self.rss_percent_per_hour,
                d.rss_fraction_per_hour * 100.0,
            )? / 100.0,
            min_r2,
            min_growth_bytes: self
                .min_growth_bytes
                .map_or(d.min_growth_bytes, |b| b as f64),
            min_growth_fraction: units::non_negative(
                "monitor.thresholds.min_growth_percent",
                self.min_growth_percent
                    .unwrap_or(d.min_growth_fraction * 100.0),
            )? / 100.0,
            fds_per_hour: positive(
                "monitor.thresholds.fds_per_hour",
                self.fds_per_hour,
                d.fds_per_hour,
            )?,
            threads_per_hour: positive(
                "monitor.thresholds.threads_per_hour",
                self.threads_per_hour,
                d.threads_per_hour,
            )?,
        })
    }
}

impl RawProcess {
    fn validate(&self, field: &str) -> Result<ProcessSpec, ConfigError> {
        units::label_value(&format!("{field}.name"), &self.name)?;
        if self.name == SELF_NAME {
            return Err(ConfigError::invalid(
                format!("{field}.name"),
                &self.name,
                "\"soakd\" is reserved for soakd itself, which is always sampled",
            ));
        }
        let mut sources = Vec::new();
        if let Some(pid) = self.pid {
            if pid == 0 {
                return Err(ConfigError::invalid(
                    format!("{field}.pid"),
                    pid,
                    "must be > 0",
                ));
            }
            sources.push(("pid", Source::Pid(pid)));
        }
        if let Some(p) = &self.pid_file {
            if p.as_os_str().is_empty() {
                return Err(ConfigError::invalid(
                    format!("{field}.pid_file"),
                    "",
                    "must not be empty",
                ));
            }
            sources.push(("pid_file", Source::PidFile(p.clone())));
        }
        if self.match_name.is_some() || self.match_cmdline.is_some() {
            for (key, v) in [
                ("match_name", &self.match_name),
                ("match_cmdline", &self.match_cmdline),
            ] {
                if matches!(v, Some(s) if s.is_empty()) {
                    return Err(ConfigError::invalid(
                        format!("{field}.{key}"),
                        "",
                        "must not be empty",
                    ));
                }
            }
            sources.push((
                "match_name/match_cmdline",
                Source::Match {
                    name: self.match_name.clone(),
                    cmdline: self.match_cmdline.clone(),
                },
            ));
        }
        if let Some(u) = &self.scrape_url {
            let f = format!("{field}.scrape_url");
            let url = units::http_url(&f, u)?;
            let raw = self.scrape_metrics.clone().unwrap_or_default();
            let d = ScrapeNames::default();
            let mut names = ScrapeNames::default();
            for (key, v, slot, default) in [
                ("rss", raw.rss, &mut names.rss, d.rss),
                ("fds", raw.fds, &mut names.fds, d.fds),
                ("threads", raw.threads, &mut names.threads, d.threads),
                (
                    "start_time",
                    raw.start_time,
                    &mut names.start_time,
                    d.start_time,
                ),
                ("cpu", raw.cpu, &mut names.cpu, d.cpu),
            ] {
                let v = v.unwrap_or(default);
                if !valid_metric_name(&v) {
                    return Err(ConfigError::invalid(
                        format!("{field}.scrape_metrics.{key}"),
                        &v,
                        "not a Prometheus metric name",
                    ));
                }
                *slot = v;
            }
            sources.push(("scrape_url", Source::Scrape { url, names }));
        } else if self.scrape_metrics.is_some() {
            return Err(ConfigError::invalid(
                format!("{field}.scrape_metrics"),
                "set",
                "only meaningful together with scrape_url",
            ));
        }
        let include_children = self.include_children.unwrap_or(false);
        if let [(key, source)] = sources.as_slice() {
            if include_children && !source.is_local() {
                return Err(ConfigError::invalid(
                    format!("{field}.include_children"),
                    true,
                    "only for local processes (pid, pid_file, match_name/match_cmdline): a \
                     scraped endpoint reports one process",
                ));
            }
            if source.is_local() && !super::local::supported() {
                return Err(ConfigError::invalid(
                    format!("{field}.{key}"),
                    &self.name,
                    "local process sampling is not available on this platform; use \
                     scrape_url with the process's own Prometheus endpoint",
                ));
            }
        }
        match sources.len() {
            1 => Ok(ProcessSpec {
                name: self.name.clone(),
                source: sources.remove(0).1,
                fail_on_leak: self.fail_on_leak.unwrap_or(true),
                include_children,
            }),
            0 => Err(ConfigError::invalid(
                field,
                &self.name,
                "needs exactly one source: pid, pid_file, match_name/match_cmdline or scrape_url",
            )),
            _ => Err(ConfigError::invalid(
                field,
                &self.name,
                format!(
                    "sets several sources ({}); choose exactly one",
                    sources
                        .iter()
                        .map(|(k, _)| *k)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }
}

fn valid_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

impl RawMonitor {
    /// `--watch-pid PID`: adds a process named `target` with a pid source, or replaces the
    /// source of the one already named so (keeping its `fail_on_leak`).
    pub fn watch_pid(&mut self, pid: u32) {
        let mut p = RawProcess {
            name: WATCH_PID_NAME.into(),
            pid: Some(pid),
            ..RawProcess::default()
        };
        match self.processes.iter_mut().find(|p| p.name == WATCH_PID_NAME) {
            Some(existing) => {
                p.fail_on_leak = existing.fail_on_leak;
                *existing = p;
            }
            None => self.processes.push(p),
        }
    }

    /// Validates into [`MonitorSettings`]; errors name the field, the value and the reason.
    pub fn validate(&self) -> Result<MonitorSettings, ConfigError> {
        let si = self.sample_interval.as_deref().unwrap_or("5s");
        let sample_interval = units::duration("monitor.sample_interval", si)?;
        if sample_interval < Duration::from_millis(10) {
            return Err(ConfigError::invalid(
                "monitor.sample_interval",
                si,
                "must be at least 10ms",
            ));
        }
        let warmup = units::duration("monitor.warmup", self.warmup.as_deref().unwrap_or("3m"))?;
        let burst_settle = units::duration(
            "monitor.burst_settle",
            self.burst_settle.as_deref().unwrap_or("30s"),
        )?;
        let raw_windows = self
            .windows
            .clone()
            .unwrap_or_else(|| vec!["5m".into(), "30m".into(), "2h".into()]);
        if raw_windows.is_empty() {
            return Err(ConfigError::invalid(
                "monitor.windows",
                "[]",
                "needs at least one window",
            ));
        }
        let windows = Window::parse_list("monitor.windows", &raw_windows, |field, w| {
            let duration = units::duration(field, w.trim())?;
            let need = sample_interval * (2 * MIN_POINTS as u32);
            if duration < need {
                return Err(ConfigError::invalid(
                    field,
                    w,
                    format!(
                        "too short for sample_interval {si}: a window needs half its span to \
                         hold {MIN_POINTS} samples, so at least {}",
                        units::fmt_duration(need)
                    ),
                ));
            }
            Ok(duration)
        })?;
        let thresholds = self.thresholds.validate()?;
        let confirm = units::duration("monitor.confirm", self.confirm.as_deref().unwrap_or("15s"))?;
        let mut processes: Vec<ProcessSpec> = Vec::with_capacity(self.processes.len());
        for (i, p) in self.processes.iter().enumerate() {
            let field = format!("monitor.processes[{i}]");
            let spec = p.validate(&field)?;
            if processes.iter().any(|o| o.name == spec.name) {
                return Err(ConfigError::invalid(
                    format!("{field}.name"),
                    &spec.name,
                    "duplicate process name",
                ));
            }
            processes.push(spec);
        }
        Ok(MonitorSettings {
            sample_interval,
            warmup,
            windows,
            burst_settle,
            thresholds,
            confirm,
            processes,
            load_period: None,
        })
    }
}

#[cfg(test)]
// Tests build a default config and change one field at a time, which reads clearer here.
#[allow(clippy::field_reassign_with_default)]
mod tests {
    use super::*;

    fn proc_(name: &str) -> RawProcess {
        RawProcess {
            name: name.into(),
            ..RawProcess::default()
        }
    }

    fn err(raw: &RawMonitor) -> String {
        raw.validate().unwrap_err().to_string()
    }

    #[test]
    fn defaults_validate() {
        let s = RawMonitor::default().validate().unwrap();
        assert_eq!(s.sample_interval, Duration::from_secs(5));
        assert_eq!(s.warmup, Duration::from_secs(180));
        assert_eq!(s.burst_settle, Duration::from_secs(30));
        let labels: Vec<_> = s.windows.iter().map(|w| w.label.as_str()).collect();
        assert_eq!(labels, ["5m", "30m", "2h"]);
        assert_eq!(s.windows[2].duration, Duration::from_secs(7200));
        assert_eq!(s.thresholds.rss_bytes_per_hour, 50.0 * MIB);
        assert_eq!(s.thresholds.rss_fraction_per_hour, 0.10);
        assert!(s.processes.is_empty());
    }

    #[test]
    fn each_source_kind_validates() {
        let mut raw = RawMonitor::default();
        let mut a = proc_("a");
        a.pid = Some(42);
        let mut b = proc_("b_1");
        b.pid_file = Some("/run/x.pid".into());
        let mut c = proc_("c-2");
        c.match_cmdline = Some("litellm".into());
        let mut d = proc_("_d");
        d.scrape_url = Some("http://127.0.0.1:4000/metrics".into());
        d.scrape_metrics = Some(RawScrapeMetrics {
            rss: Some("my_rss".into()),
            ..Default::default()
        });
        b.fail_on_leak = Some(false);
        raw.processes = vec![a, b, c, d];
        let s = raw.validate().unwrap();
        assert_eq!(s.processes[0].source, Source::Pid(42));
        // fail_on_leak defaults to true, and false opts one process out.
        let fail: Vec<bool> = s.processes.iter().map(|p| p.fail_on_leak).collect();
        assert_eq!(fail, [true, false, true, true]);
        assert_eq!(s.processes[1].source, Source::PidFile("/run/x.pid".into()));
        assert_eq!(
            s.processes[2].source,
            Source::Match {
                name: None,
                cmdline: Some("litellm".into())
            }
        );
        match &s.processes[3].source {
            Source::Scrape { url, names } => {
                assert_eq!(url.port(), Some(4000));
                assert_eq!(names.rss, "my_rss");
                assert_eq!(names.fds, "process_open_fds");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn source_must_be_exactly_one() {
        let mut raw = RawMonitor::default();
        raw.processes = vec![proc_("a")];
        let e = err(&raw);
        assert!(
            e.contains("monitor.processes[0]") && e.contains("exactly one"),
            "{e}"
        );
        let mut p = proc_("a");
        p.pid = Some(1);
        p.scrape_url = Some("http://127.0.0.1:1/metrics".into());
        raw.processes = vec![p];
        let e = err(&raw);
        assert!(
            e.contains("several") && e.contains("pid, scrape_url"),
            "{e}"
        );
    }

    #[test]
    fn names_are_checked() {
        let mut raw = RawMonitor::default();
        for (bad, why) in [
            ("soakd", "reserved"),
            ("a b", "letters, digits"),
            ("", "letters, digits"),
        ] {
            let mut p = proc_(bad);
            p.pid = Some(1);
            raw.processes = vec![p];
            let e = err(&raw);
            assert!(
                e.contains("monitor.processes[0].name") && e.contains(why),
                "{e}"
            );
        }
        let mut p = proc_("x");
        p.pid = Some(1);
        raw.processes = vec![p.clone(), p];
        let e = err(&raw);
        assert!(
            e.contains("monitor.processes[1].name") && e.contains("duplicate"),
            "{e}"
        );
    }

    #[test]
    fn bad_values_name_the_field() {
        let mut raw = RawMonitor::default();
        let mut p = proc_("ok");
        p.pid = Some(1);
        let mut q = proc_("web");
        q.scrape_url = Some("ftp://127.0.0.1/metrics".into());
        raw.processes = vec![p, q];
        let e = err(&raw);
        assert!(
            e.contains("monitor.processes[1].scrape_url") && e.contains("ftp://"),
            "{e}"
        );

        let mut p = proc_("f");
        p.pid_file = Some(PathBuf::new());
        raw.processes = vec![p];
        assert!(err(&raw).contains("monitor.processes[0].pid_file"));

        let raw = RawMonitor {
            windows: Some(vec!["5m".into(), "abc".into()]),
            ..Default::default()
        };
        let e = err(&raw);
        assert!(e.contains("monitor.windows[1]") && e.contains("abc"), "{e}");

        let raw = RawMonitor {
            sample_interval: Some("10s".into()),
            windows: Some(vec!["1m".into()]),
            ..Default::default()
        };
        assert!(err(&raw).contains("too short"));

        let raw = RawMonitor {
            windows: Some(vec!["5m".into(), "300s".into()]),
            ..Default::default()
        };
        assert!(err(&raw).contains("duplicate window"));

        let mut raw = RawMonitor::default();
        raw.thresholds.min_r2 = Some(1.5);
        assert!(err(&raw).contains("monitor.thresholds.min_r2"));
        let mut raw = RawMonitor::default();
        raw.thresholds.fds_per_hour = Some(-1.0);
        assert!(err(&raw).contains("monitor.thresholds.fds_per_hour"));
    }

    #[test]
    fn include_children_is_for_local_processes_only() {
        let mut raw = RawMonitor::default();
        let mut p = proc_("tree");
        p.match_cmdline = Some("litellm".into());
        p.include_children = Some(true);
        raw.processes = vec![p.clone()];
        let s = raw.validate().unwrap();
        assert!(s.processes[0].include_children);
        p.match_cmdline = None;
        p.scrape_url = Some("http://127.0.0.1:4000/metrics".into());
        raw.processes = vec![p];
        let e = err(&raw);
        assert!(
            e.contains("monitor.processes[0].include_children") && e.contains("only for local"),
            "{e}"
        );
    }

    #[test]
    fn watch_pid_adds_or_replaces_the_target() {
        let mut raw = RawMonitor {
            sample_interval: Some("1s".into()),
            windows: Some(vec!["2m".into(), "30m".into()]),
            warmup: Some("0s".into()),
            ..Default::default()
        };
        raw.watch_pid(1234);
        let s = raw.validate().unwrap();
        assert_eq!(s.sample_interval, Duration::from_secs(1));
        assert_eq!(s.warmup, Duration::ZERO);
        assert_eq!(s.windows.len(), 2);
        assert_eq!(s.processes[0].name, "target");
        assert_eq!(s.processes[0].source, Source::Pid(1234));
        // A second override replaces the target's source rather than duplicating it, and
        // keeps its fail_on_leak.
        raw.processes[0].fail_on_leak = Some(false);
        raw.watch_pid(99);
        let s = raw.validate().unwrap();
        assert_eq!(s.processes.len(), 1);
        assert_eq!(s.processes[0].source, Source::Pid(99));
        assert!(!s.processes[0].fail_on_leak);
    }

    #[test]
    fn raw_deserializes_and_rejects_unknown_keys() {
        let v: RawMonitor = serde_json::from_str(
            r#"{"sample_interval":"1s","processes":[{"name":"p","match_name":"nginx","fail_on_leak":false}],
                "thresholds":{"min_r2":0.9}}"#,
        )
        .unwrap();
        assert_eq!(v.processes[0].match_name.as_deref(), Some("nginx"));
        assert_eq!(v.processes[0].fail_on_leak, Some(false));
        assert_eq!(v.thresholds.min_r2, Some(0.9));
        assert!(serde_json::from_str::<RawMonitor>(r#"{"bogus":1}"#).is_err());
    }
}
