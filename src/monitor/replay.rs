//! One resource's series through the estimator ([`TrendSet`]), the verdict
//! ([`resource_verdict`]) and its [`Hysteresis`] — the code the live monitor is to run too —
//! for recorded series (`soakd analyze`) and synthetic ones (tests and the detection-time
//! matrix).
//!
//! Times are rebased to the first sample. Samples within `warmup` of it are not fitted; the
//! baseline (for the relative RSS thresholds) is the first fitted sample, as in the monitor.
//! The raw verdict is re-evaluated whenever a window refits; the hysteresis sees it at every
//! sample. Memory is that of the [`TrendSet`] plus a few counters, whatever the length.

use crate::monitor::Resource;

use super::estimate::{Point, N_RES};
use super::judge::{resource_verdict, Hysteresis, LeakRules, Transition};
use super::trend::{NoFit, TrendFit, TrendSet, DEFAULT_CONFIDENCE};
use super::Verdict;

/// How to replay a series.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayConfig {
    /// Window spans in seconds, ascending.
    pub windows: Vec<f64>,
    /// Sample interval, seconds (sets the finest bucket width).
    pub interval: f64,
    /// Two-sided confidence of the slope intervals.
    pub confidence: f64,
    /// Thresholds.
    pub rules: LeakRules,
    /// Hysteresis, seconds.
    pub confirm: f64,
    /// Which resource the values are (selects the thresholds).
    pub resource: Resource,
    /// Seconds after the first sample that are not fitted.
    pub warmup: f64,
    /// The load's own cycle, seconds (burst period or looping stages, as `soakd run` passes
    /// it): the least trough width of fds ([`TrendSet::with_load_period`]).
    pub load_period: Option<f64>,
}

impl ReplayConfig {
    /// Default rules, 95 % confidence, 15 s confirm, no warm-up.
    pub fn new(windows: Vec<f64>, interval: f64, resource: Resource) -> Self {
        ReplayConfig {
            windows,
            interval,
            confidence: DEFAULT_CONFIDENCE,
            rules: LeakRules::default(),
            confirm: super::judge::DEFAULT_CONFIRM_SECS,
            resource,
            warmup: 0.0,
            load_period: None,
        }
    }
}

/// A series being replayed.
#[derive(Debug)]
pub struct Replay {
    cfg: ReplayConfig,
    set: TrendSet,
    hysteresis: Hysteresis,
    fits: Vec<Option<TrendFit>>,
    start: Option<f64>,
    last_t: f64,
    baseline: Option<f64>,
    raw: Verdict,
    samples: u64,
    first_raw_leak: Option<f64>,
    first_leak: Option<f64>,
    first_judged: Option<f64>,
    leak_episodes: u32,
    leak_seconds: f64,
    leak_since: Option<f64>,
}

impl Replay {
    /// A replay with `cfg`.
    pub fn new(cfg: ReplayConfig) -> Self {
        let set = TrendSet::new(&cfg.windows, cfg.interval, cfg.confidence)
            .with_load_period(cfg.load_period);
        Replay {
            hysteresis: Hysteresis::new(cfg.confirm),
            fits: vec![None; cfg.windows.len()],
            cfg,
            set,
            start: None,
            last_t: 0.0,
            baseline: None,
            raw: Verdict::Unknown,
            samples: 0,
            first_raw_leak: None,
            first_leak: None,
            first_judged: None,
            leak_episodes: 0,
            leak_seconds: 0.0,
            leak_since: None,
        }
    }

    /// Adds the sample `value` at time `t` (seconds, non-decreasing; non-finite values are
    /// skipped). Returns the change of the reported verdict, if any.
    pub fn push(&mut self, t: f64, value: f64) -> Option<Transition> {
        if !value.is_finite() || !t.is_finite() {
            return None;
        }
        let start = *self.start.get_or_insert(t);
        let t = t - start;
        self.last_t = t;
        self.samples += 1;
        if t >= self.cfg.warmup {
            let baseline = *self.baseline.get_or_insert(value);
            let mut values = [None; N_RES];
            values[self.cfg.resource.index()] = Some(value);
            let p = Point {
                t,
                values,
                requests: 0,
                streams: 0.0,
            };
            if self.set.push(&p) {
                let r = self.cfg.resource.index();
                for (i, slot) in self.fits.iter_mut().enumerate() {
                    *slot = self.set.fit(i, r);
                }
                self.raw = resource_verdict(
                    self.cfg.resource,
                    &self.fits,
                    Some(baseline),
                    &self.cfg.rules,
                    self.raw == Verdict::Leak,
                );
                if self.raw == Verdict::Leak && self.first_raw_leak.is_none() {
                    self.first_raw_leak = Some(t);
                }
            }
        }
        let tr = self.hysteresis.update(t, self.raw)?;
        if tr.to != Verdict::Unknown && self.first_judged.is_none() {
            self.first_judged = Some(t);
        }
        if tr.to == Verdict::Leak {
            self.first_leak.get_or_insert(t);
            self.leak_episodes += 1;
            self.leak_since = Some(t);
        } else if tr.from == Verdict::Leak {
            if let Some(s) = self.leak_since.take() {
                self.leak_seconds += t - s;
            }
        }
        Some(tr)
    }

    /// The fits of the replayed resource, shortest window first.
    pub fn fits(&self) -> &[Option<TrendFit>] {
        &self.fits
    }

    /// Why window `i` (shortest first) has no fit of the replayed resource, while its fit is
    /// `None`.
    pub fn no_fit(&self, i: usize) -> NoFit {
        self.set.no_fit(i, self.cfg.resource.index())
    }

    /// The raw (undebounced) verdict now.
    pub fn raw_verdict(&self) -> Verdict {
        self.raw
    }

    /// The reported (debounced) verdict now.
    pub fn verdict(&self) -> Verdict {
        self.hysteresis.verdict()
    }

    /// First fitted value.
    pub fn baseline(&self) -> Option<f64> {
        self.baseline
    }

    /// Samples pushed.
    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// Seconds since the first sample, at the last one.
    pub fn elapsed(&self) -> f64 {
        self.last_t
    }

    /// When the raw verdict first said leak (seconds since the first sample).
    pub fn first_raw_leak(&self) -> Option<f64> {
        self.first_raw_leak
    }

    /// When the reported verdict first became leak.
    pub fn first_leak(&self) -> Option<f64> {
        self.first_leak
    }

    /// When the reported verdict first left unknown.
    pub fn first_judged(&self) -> Option<f64> {
        self.first_judged
    }

    /// How many times the reported verdict rose to leak.
    pub fn leak_episodes(&self) -> u32 {
        self.leak_episodes
    }

    /// Seconds spent reported as leak so far.
    pub fn leak_seconds(&self) -> f64 {
        self.leak_seconds + self.leak_since.map_or(0.0, |s| self.last_t - s)
    }

    /// The estimator's heap bytes.
    pub fn heap_bytes(&self) -> usize {
        self.set.heap_bytes()
    }
}
