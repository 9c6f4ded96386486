//! Attribution of RSS growth to scenarios: bytes of growth per request of each scenario, per
//! process and window (`soakd_process_rss_growth_bytes_per_request_by_scenario`).
//!
//! # Why the mix varies
//! Under steady traffic with fixed weights every scenario's cumulative request count is the
//! same fraction of the total, so the counts are collinear and no regression can tell which
//! scenario's requests the memory follows. The engine therefore varies the mix slowly
//! (`[load] mix_variation`, [`crate::workload::Mix`]): every period each scenario's weight is
//! multiplied by a fresh random factor, and the counts drift apart. The monitor sees the
//! period boundaries through `LoadSignals` (the mix epoch) and nothing else of the plan.
//!
//! # Data
//! [`AttributionBuf`] is fed plain samples: time, RSS, each scenario's cumulative finished
//! requests, and the mix epoch. Like the slope windows it cuts its window into at most
//! [`super::estimate::MAX_BUCKETS`] equal time buckets (width = window / 120, at least one sample interval)
//! and keeps per bucket the sample with the LOWEST RSS, with the counts and epoch read at that
//! sample. Memory per window is fixed: 122 buckets of [`MAX_SCENARIOS`] counts. The fit runs
//! only when a bucket closes; one costs 0.27 ms with 2 scenarios and 8.7 ms with 16 (release
//! build, 120 buckets, `tests::bench_refit_cost`).
//!
//! # Fit
//! The closed buckets are fitted with [`fit::quantile_nnls`]: RSS against the per-scenario
//! counts (relative to the window's first bucket), free intercept, coefficients ≥ 0, at the
//! 0.05 quantile, leaving at least [`fit::MIN_BELOW`] points below (the lower envelope: bucket
//! minima are a sawtooth's troughs when its period is shorter than a bucket, and the low
//! quantile discards the ramps when it is longer; outliers pull by their sign, not their
//! size, and a few low ones take the places below the surface instead of dragging it). Each coefficient is bytes per request of
//! that scenario. Nothing in the model depends on time, so growth that follows time rather
//! than requests (a timer, a per-second cache) spreads equally over all scenarios at a
//! constant total rate: equal values for every scenario mean "not tied to a kind of request".
//!
//! # Publishing rule (identifiability)
//! With more than [`MAX_SCENARIOS`] scenarios configured nothing is attributed
//! (`too_many_scenarios`). Otherwise a window publishes scenario `s` only when all of these
//! hold; else its value is absent and the report names the first rule that failed
//! ([`Withheld`]):
//! 1. the window holds at least [`MIN_POINTS`] closed buckets spanning at least half the window
//!    (as the slope does) — else `not_enough_data`;
//! 2. `s` finished requests inside the window — else `no_requests`; the scenarios that did are
//!    the model's columns;
//! 3. with two or more columns, the mix varies (`mix_fixed` when `mix_variation = "off"`)
//!    and the mix changed at least max([`MIN_MIX_CHANGES`], columns) times between the first
//!    and the last fitted bucket — else `few_mix_periods`. One column needs no variation:
//!    there is nothing to tell apart, and its value is simply the overall growth per request
//!    (`g` below). The report says so (`single_scenario`), and the summary labels the table
//!    `rss growth per request (one scenario: the overall growth per request)` when one
//!    scenario is configured, or marks the cell `(the only one with requests)`;
//! 4. the fitted growth per request over all scenarios, `g = Σ b_s Δn_s / Σ Δn_s`, is above
//!    0 — else `no_growth` (nothing to attribute);
//! 5. the centred count matrix is not collinear (Cholesky pivot above
//!    [`fit::COLLINEAR_TOL`] of its diagonal) — else `collinear`;
//! 6. the standard error of `b_s` is at most [`MAX_REL_SE`] × g — else `imprecise`.
//!
//! Rules 1–3 are the design (enough data, enough periods); 5–6 are the count matrix's
//! conditioning and the variation of the scenario's share measured against the RSS noise:
//! `se_s = σ̂ / ‖x_s⊥‖`, where `x_s⊥` is the part of the scenario's counts that the other
//! scenarios' counts do not explain, and σ̂ the residual scale of [`fit`].
//!
//! # Accuracy
//! Measured (`tests::attribution_table`, seeds 0–9): two scenarios 50/50 at 20 rps, mix
//! varied every minute by the real [`crate::workload::Mix`], scenario 0 leaking the given
//! bytes per request and scenario 1 nothing, a 30 MiB GC sawtooth, ±2 MiB uniform noise, 1 s
//! samples, run for 1.3 windows. "Worst error" is the largest |error| of a published value of
//! either scenario, as a fraction of the leak; se/g is the median standard error relative to
//! the growth per request (the rule publishes at ≤ 0.25).
//!
//! | window, leak, sawtooth period | published | worst error | se/g |
//! |---|---|---|---|
//! | 30m, 64 KiB, 7 s | 10/10 | 0.4 % | 0.00 |
//! | 30m, 64 KiB, 120 s | 10/10 | 2.5 % | 0.05 |
//! | 30m, 64 KiB, 300 s | 10/10 | 3.4 % | 0.04 |
//! | 30m, 64 KiB, 120 s + a 500 MiB spike or 90 MiB dip every 397 s | 10/10 | 1.8 % | 0.05 |
//! | 5m, 64 KiB, 7 s | 10/10 | 5.4 % | 0.05 |
//! | 5m, 64 KiB, 30 s | 6/10 | 2.8 % | 0.18 |
//! | 2h, 64 KiB, 600 s | 10/10 | 1.0 % | 0.03 |
//! | 30m, 8 KiB, 7 s | 10/10 | 2.5 % | 0.03 |
//! | 30m, 1 KiB, 7 s (20 KiB/s under 30 MiB of saw) | 6/10 | 19.6 % | 0.22 |
//!
//! The quantile was chosen on the same cases (10 seeds, 30 min window): at 0.05 the RMS error
//! was 0.2 % / 1.1 % / 1.2 % for sawtooth periods 7 / 120 / 300 s, against 0.4 % / 3.6 % /
//! 3.2 % at 0.2 and 0.5 % / 1.8 % / 10.3 % at the median (0.5); the envelope matters once the
//! saw is longer than a bucket. Standard errors come from the residuals' sparsity just above
//! the surface (`(q(τ+0.1) − q(τ)) / 0.1`, a one-sided Siddiqui estimate, so low outliers
//! below the surface do not inflate it); they are usually conservative here (median
//! |error| / se between 0.04 and 0.4) but reached 4.7 on one seed of the 5 min window, which is
//! why the rule asks for se ≤ 0.25 g rather than trusting them as intervals. A fixed mix
//! publishes nothing (`mix_fixed`, tested); a 5 min window with a 2 min period is
//! `few_mix_periods`. Through the binary (`tests/attribution.rs`: mock leaking 64 KiB per
//! streaming request, 40 rps 50/50, 5 s periods, 25 s window, 250 ms samples) the streaming
//! scenario read 65,543–65,678 B and the unary one 0–24 B over six runs.

mod export;
pub mod fit;
pub mod nnls;

use std::collections::VecDeque;

use serde::Serialize;

use super::estimate::Grid;
use super::settings::MIN_POINTS;
use fit::{quantile_nnls, FitScratch, MIN_BELOW, TAU};

pub(super) use export::bufs;
pub use export::{AttributionReport, MixTick, ScenarioReport};

/// Most scenarios attributed; with more configured, nothing is.
pub const MAX_SCENARIOS: usize = 16;
/// Fewest mix changes inside the fitted span (with two or more scenarios).
pub const MIN_MIX_CHANGES: u64 = 3;
/// Largest standard error published, relative to the growth per request over all scenarios.
pub const MAX_REL_SE: f64 = 0.25;

/// Why a window or a scenario has no published value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Withheld {
    /// Fewer buckets than a fit needs, or spanning under half the window.
    NotEnoughData,
    /// More than [`MAX_SCENARIOS`] scenarios are configured.
    TooManyScenarios,
    /// No requests of the scenario (or of any) finished inside the window.
    NoRequests,
    /// The mix is fixed (`mix_variation = "off"`), so the counts are collinear.
    MixFixed,
    /// The mix changed fewer times inside the window than the rule needs.
    FewMixPeriods,
    /// The fit finds no growth per request to attribute.
    NoGrowth,
    /// The scenario's counts are (nearly) a combination of the others'.
    Collinear,
    /// The standard error is above [`MAX_REL_SE`] × the growth per request.
    Imprecise,
}

impl Withheld {
    /// Short text for the summary table.
    pub fn as_str(self) -> &'static str {
        match self {
            Withheld::NotEnoughData => "not enough data",
            Withheld::TooManyScenarios => "too many scenarios",
            Withheld::NoRequests => "no requests",
            Withheld::MixFixed => "mix fixed",
            Withheld::FewMixPeriods => "few mix periods",
            Withheld::NoGrowth => "no growth",
            Withheld::Collinear => "collinear",
            Withheld::Imprecise => "imprecise",
        }
    }
}

/// One scenario's part of a window's attribution.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ScenarioAttribution {
    /// Requests of the scenario that finished between the first and last fitted bucket.
    pub requests: u64,
    /// RSS growth per request of this scenario, bytes (only when published).
    pub bytes_per_request: Option<f64>,
    /// Approximate standard error of the estimate, bytes (when the fit ran).
    pub std_error: Option<f64>,
    /// Why no value is published.
    pub withheld: Option<Withheld>,
}

/// A window's attribution, scenarios in configuration order: each a [`ScenarioAttribution`]
/// as the estimator gives it, or in `/status` and the summary an [`AttributionReport`], whose
/// scenarios carry their names.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Attribution<S = ScenarioAttribution> {
    /// Why nothing is published for the whole window (see the module docs for the rule).
    pub withheld: Option<Withheld>,
    /// Buckets fitted.
    pub points: usize,
    /// Mix changes between the first and the last fitted bucket.
    pub mix_changes: u64,
    /// Fitted RSS growth per request over all scenarios, bytes.
    pub growth_per_request: Option<f64>,
    /// Only one scenario finished requests in the window: its value is the overall growth
    /// per request (`growth_per_request`), which needs no mix changes (rule 3).
    pub single_scenario: bool,
    /// Per scenario, in configuration order.
    pub scenarios: Vec<S>,
}

impl Attribution {
    fn withheld(k: usize, why: Withheld) -> Self {
        Attribution {
            withheld: Some(why),
            points: 0,
            mix_changes: 0,
            growth_per_request: None,
            single_scenario: false,
            scenarios: vec![
                ScenarioAttribution {
                    requests: 0,
                    bytes_per_request: None,
                    std_error: None,
                    withheld: Some(why),
                };
                k
            ],
        }
    }

    /// The published value of scenario `i`.
    pub fn value(&self, i: usize) -> Option<f64> {
        self.scenarios.get(i).and_then(|s| s.bytes_per_request)
    }
}

/// One sample as attribution sees it: plain values, read by the monitor at one instant.
#[derive(Debug, Clone, Copy)]
pub struct Sample<'a> {
    /// Seconds since the monitor started.
    pub t: f64,
    /// Resident memory, bytes.
    pub rss: f64,
    /// Each scenario's cumulative finished requests, in configuration order.
    pub counts: &'a [u64],
    /// The mix epoch (period number; constant while the mix is fixed).
    pub epoch: u64,
    /// Whether the engine varies the mix at all.
    pub mix_varies: bool,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    idx: u64,
    t: f64,
    rss: f64,
    epoch: u64,
    counts: [u64; MAX_SCENARIOS],
}

/// One attribution window of one process.
#[derive(Debug)]
pub struct AttributionBuf {
    grid: Grid,
    origin: Option<f64>,
    buckets: VecDeque<Bucket>,
    k: usize,
    mix_varies: bool,
    result: Attribution,
    cols: Vec<usize>,
    y: Vec<f64>,
    x: Vec<f64>,
    scratch: FitScratch,
}

impl AttributionBuf {
    /// A window of `span` seconds sampled every `interval` seconds, for `scenarios`
    /// scenarios.
    pub fn new(span: f64, interval: f64, scenarios: usize) -> Self {
        let grid = Grid::new(span, interval);
        let k = scenarios.min(MAX_SCENARIOS);
        AttributionBuf {
            grid,
            origin: None,
            buckets: VecDeque::with_capacity(grid.cap),
            k: scenarios,
            mix_varies: false,
            result: Attribution::withheld(
                scenarios,
                if scenarios > MAX_SCENARIOS {
                    Withheld::TooManyScenarios
                } else {
                    Withheld::NotEnoughData
                },
            ),
            cols: Vec::with_capacity(k),
            y: Vec::with_capacity(grid.cap),
            x: Vec::with_capacity(grid.cap * k),
            scratch: FitScratch::with_capacity(grid.cap, k),
        }
    }

    /// The latest attribution.
    pub fn result(&self) -> &Attribution {
        &self.result
    }

    /// Buckets held now.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    /// Forgets everything (a restart of the process).
    pub fn clear(&mut self) {
        self.origin = None;
        self.buckets.clear();
        if self.k <= MAX_SCENARIOS {
            self.result = Attribution::withheld(self.k, Withheld::NotEnoughData);
        }
    }

    /// Adds a sample. Returns true when a bucket closed and the attribution was recomputed.
    pub fn push(&mut self, p: &Sample<'_>) -> bool {
        if self.k > MAX_SCENARIOS {
            return false;
        }
        self.mix_varies = p.mix_varies;
        let (t, rss, epoch) = (p.t, p.rss, p.epoch);
        let origin = *self.origin.get_or_insert(t);
        let idx = self.grid.index(origin, t);
        let mut sample = Bucket {
            idx,
            t,
            rss,
            epoch,
            counts: [0; MAX_SCENARIOS],
        };
        for (slot, c) in sample.counts.iter_mut().zip(p.counts) {
            *slot = *c;
        }
        let mut closed = false;
        match self.buckets.back_mut() {
            Some(b) if b.idx == idx => {
                if rss < b.rss {
                    *b = sample;
                }
            }
            _ => {
                closed = !self.buckets.is_empty();
                self.buckets.push_back(sample);
            }
        }
        self.grid.evict(&mut self.buckets, |b| b.idx, origin, t);
        if closed {
            self.result = self.refit();
        }
        closed
    }

    fn refit(&mut self) -> Attribution {
        let n = self.buckets.len().saturating_sub(1);
        let k = self.k;
        let (Some(first), Some(last)) = (self.buckets.front(), self.buckets.get(n.wrapping_sub(1)))
        else {
            return Attribution::withheld(k, Withheld::NotEnoughData);
        };
        let (first, last) = (*first, *last);
        if n < MIN_POINTS || last.t - first.t < self.grid.span * 0.5 - self.grid.width {
            return Attribution::withheld(k, Withheld::NotEnoughData);
        }
        let mut out = Attribution::withheld(k, Withheld::NoRequests);
        out.points = n;
        out.mix_changes = last.epoch.saturating_sub(first.epoch);
        self.cols.clear();
        for s in 0..k {
            let requests = last.counts[s].saturating_sub(first.counts[s]);
            out.scenarios[s].requests = requests;
            if requests > 0 {
                self.cols.push(s);
            }
        }
        if self.cols.is_empty() {
            return out;
        }
        out.withheld = None;
        out.single_scenario = self.cols.len() == 1;
        let window_rule = if self.cols.len() < 2 {
            None
        } else if !self.mix_varies {
            Some(Withheld::MixFixed)
        } else if out.mix_changes < MIN_MIX_CHANGES.max(self.cols.len() as u64) {
            Some(Withheld::FewMixPeriods)
        } else {
            None
        };
        if let Some(why) = window_rule {
            return self.withhold_all(out, why);
        }
        let m = self.cols.len();
        self.y.clear();
        self.x.clear();
        for b in self.buckets.iter().take(n) {
            self.y.push(b.rss);
            for &s in &self.cols {
                self.x
                    .push(b.counts[s].saturating_sub(first.counts[s]) as f64);
            }
        }
        let tau = TAU.max(MIN_BELOW / n as f64);
        let fit = quantile_nnls(&self.y, &self.x, m, tau, &mut self.scratch);
        let total: u64 = self.cols.iter().map(|&s| out.scenarios[s].requests).sum();
        let grown: f64 = self
            .cols
            .iter()
            .zip(&fit.coef)
            .map(|(&s, b)| b * out.scenarios[s].requests as f64)
            .sum();
        let g = grown / total as f64;
        out.growth_per_request = Some(g);
        for (j, &s) in self.cols.iter().enumerate() {
            let se = fit.std_error.as_ref().map(|v| v[j]);
            let sa = &mut out.scenarios[s];
            sa.std_error = se;
            sa.withheld = match se {
                _ if g <= 0.0 => Some(Withheld::NoGrowth),
                None => Some(Withheld::Collinear),
                Some(se) if se > MAX_REL_SE * g => Some(Withheld::Imprecise),
                Some(_) => None,
            };
            if sa.withheld.is_none() {
                sa.bytes_per_request = Some(fit.coef[j]);
            }
        }
        if g <= 0.0 {
            out.withheld = Some(Withheld::NoGrowth);
        }
        out
    }

    fn withhold_all(&self, mut out: Attribution, why: Withheld) -> Attribution {
        out.withheld = Some(why);
        for &s in &self.cols {
            out.scenarios[s].withheld = Some(why);
        }
        out
    }
}

#[cfg(test)]
mod tests;
